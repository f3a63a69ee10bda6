/// A record to produce.
public struct OutgoingRecord: Sendable, Equatable {
    /// Destination topic (already prefixed).
    public var topic: String
    /// Explicit partition, or `nil` to let the partitioner choose from the key.
    public var partition: Int32?
    /// Record key; records with equal keys land in the same partition.
    public var key: [UInt8]?
    /// Record value.
    public var value: [UInt8]
    /// Record headers, in order.
    public var headers: [KafkaHeader]
    /// Timestamp in epoch milliseconds (Vigil sets it to the event time), `nil` for "now".
    public var timestamp: Int64?

    /// A record to produce.
    public init(topic: String, partition: Int32? = nil, key: [UInt8]? = nil, value: [UInt8],
                headers: [KafkaHeader] = [], timestamp: Int64? = nil) {
        self.topic = topic
        self.partition = partition
        self.key = key
        self.value = value
        self.headers = headers
        self.timestamp = timestamp
    }
}

/// One record header. Values are bytes; Vigil's own headers are UTF-8 text.
public struct KafkaHeader: Sendable, Equatable {
    /// Header name.
    public var name: String
    /// Header value (`nil` for a null header).
    public var value: [UInt8]?

    /// A header with raw bytes.
    public init(name: String, value: [UInt8]?) {
        self.name = name
        self.value = value
    }

    /// A header with a UTF-8 text value.
    public init(_ name: String, _ text: String) {
        self.name = name
        self.value = Array(text.utf8)
    }

    /// The value as UTF-8 text.
    public var text: String? { value.map { String(decoding: $0, as: UTF8.self) } }
}

extension Array where Element == KafkaHeader {
    /// The text of the first header named `name`.
    public func text(_ name: String) -> String? { first(where: { $0.name == name })?.text }
}

/// A record read from Kafka, copied out of librdkafka's buffers.
public struct ConsumedRecord: Sendable, Equatable {
    /// Topic it was read from.
    public var topic: String
    /// Partition it was read from.
    public var partition: Int32
    /// Its offset in the partition.
    public var offset: Int64
    /// Record key.
    public var key: [UInt8]?
    /// Record value (empty for a null value).
    public var value: [UInt8]
    /// Record headers, in order.
    public var headers: [KafkaHeader]
    /// Timestamp in epoch milliseconds, `nil` when the broker gave none.
    public var timestamp: Int64?

    /// A consumed record (tests build these directly).
    public init(topic: String, partition: Int32, offset: Int64, key: [UInt8]? = nil, value: [UInt8],
                headers: [KafkaHeader] = [], timestamp: Int64? = nil) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
        self.headers = headers
        self.timestamp = timestamp
    }
}

/// A topic and partition.
public struct TopicPartition: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Topic name.
    public var topic: String
    /// Partition number.
    public var partition: Int32

    /// A topic and partition.
    public init(topic: String, partition: Int32) {
        self.topic = topic
        self.partition = partition
    }

    public var description: String { "\(topic)[\(partition)]" }

    public static func < (lhs: TopicPartition, rhs: TopicPartition) -> Bool {
        (lhs.topic, lhs.partition) < (rhs.topic, rhs.partition)
    }
}

/// A position in a partition: the offset of the next record to read.
public struct TopicPartitionOffset: Sendable, Hashable {
    /// Topic and partition.
    public var topicPartition: TopicPartition
    /// Offset (for stores and commits: the next offset to read).
    public var offset: Int64

    /// A position in a partition.
    public init(_ topicPartition: TopicPartition, offset: Int64) {
        self.topicPartition = topicPartition
        self.offset = offset
    }
}

/// Where a produced record landed.
public struct DeliveryReport: Sendable, Equatable {
    /// Topic it was written to.
    public var topic: String
    /// Partition it was written to.
    public var partition: Int32
    /// Its offset, or -1 when the broker did not report one.
    public var offset: Int64
}
