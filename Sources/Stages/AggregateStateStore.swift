import Foundation
import Kafka
import Logging
import Pipeline

/// Where the detect aggregate step keeps snapshots of its state: `<prefix>detect.state`.
///
/// A snapshot of one partials partition is the aggregate state after some partial (see
/// ``PartitionAggregator/snapshot()``) and the offset after that partial. It is written as
/// chunks of at most ``chunkBytes`` to the state partition `partition % statePartitions`, each
/// with headers naming the partials partition, the snapshot's generation, the chunk's index and
/// count, and the offset. Keys alternate between two slots per partials partition
/// (`<topic>/<partition>/<slot>/<chunk>`): on a compacted topic a snapshot overwrites the keys
/// of the one before the last, never the last complete one, so a copy that dies while writing
/// leaves the previous snapshot whole.
///
/// Any complete snapshot is a correct starting point (its state and its offset belong
/// together); the newest is only the cheapest. A restore reads the end of the state partition
/// (growing the span read until it finds a complete snapshot of its partition) and takes the
/// complete one with the highest offset.
public struct AggregateStateStore: Sendable {
    /// Chunk size: below the 1 MB default record limit of Kafka brokers.
    public static let chunkBytes = 256 * 1024

    enum Header {
        static let source = "vigil-state-source"
        static let generation = "vigil-state-generation"
        static let chunk = "vigil-state-chunk"
        static let offset = "vigil-state-offset"
    }

    let kafka: KafkaConfig
    /// The state topic.
    public let topic: String
    /// Its partition count (at least 1).
    public let partitions: Int32
    let logger: Logger

    /// A store on `topic`, which has `partitions` partitions.
    public init(kafka: KafkaConfig, topic: String, partitions: Int32, logger: Logger) {
        self.kafka = kafka
        self.topic = topic
        self.partitions = max(1, partitions)
        self.logger = logger
    }

    /// The store on `topics.detectState`, created when missing (compacted, with as many
    /// partitions as the partials topic, or `vigil topics create`'s count when that is missing
    /// too).
    public static func open(kafka: KafkaConfig, topics: Topics, logger: Logger) async throws -> AggregateStateStore {
        let admin = try KafkaAdmin(config: kafka, logger: logger)
        var listed = try await admin.listTopics()
        if !listed.contains(where: { $0.name == topics.detectState }) {
            let partitions = listed.first { $0.name == topics.detectPartials }.map { Int32($0.partitions.count) }
            var spec = topics.specs().first { $0.name == topics.detectState }!
            if let partitions, partitions > 0 { spec.partitions = partitions }
            _ = try await admin.createTopics([spec])
            for _ in 0..<50 where !listed.contains(where: { $0.name == topics.detectState }) {
                try await Task.sleep(for: .milliseconds(200))
                listed = try await admin.listTopics()
            }
        }
        guard let metadata = listed.first(where: { $0.name == topics.detectState }), !metadata.partitions.isEmpty else {
            throw ConfigError("topic \(topics.detectState) does not exist and could not be created")
        }
        return AggregateStateStore(kafka: kafka, topic: topics.detectState, partitions: Int32(metadata.partitions.count), logger: logger)
    }

    /// A snapshot found by ``latest(for:)``.
    public struct Found: Sendable {
        /// The offset of the partials partition the state resumes from.
        public var next: Int64
        /// The snapshot's key slot (0 or 1); the next snapshot uses the other.
        public var slot: Int
        public var generation: Int64
        public var bytes: [UInt8]
    }

    /// The state partition that holds snapshots of `source`.
    func statePartition(of source: TopicPartition) -> Int32 { source.partition % partitions }

    /// The records of one snapshot of `source`: `bytes`, the aggregate state after the partial
    /// before offset `next`, written under `slot`.
    public func records(source: TopicPartition, next: Int64, generation: Int64, slot: Int, bytes: [UInt8]) -> [OutgoingRecord] {
        let count = max(1, (bytes.count + Self.chunkBytes - 1) / Self.chunkBytes)
        let name = "\(source.topic)/\(source.partition)"
        return (0..<count).map { index in
            let chunk = Array(bytes[min(bytes.count, index * Self.chunkBytes)..<min(bytes.count, (index + 1) * Self.chunkBytes)])
            return OutgoingRecord(
                topic: topic, partition: statePartition(of: source), key: Array("\(name)/\(slot)/\(index)".utf8), value: chunk,
                headers: [KafkaHeader(Header.source, name), KafkaHeader(Header.generation, String(generation)),
                          KafkaHeader(Header.chunk, "\(index)/\(count)"), KafkaHeader(Header.offset, String(next))])
        }
    }

    /// Chunks of one generation being put together.
    struct Assembly {
        var next: Int64
        var slot: Int
        var count: Int
        var chunks: [Int: [UInt8]] = [:]
        var isComplete: Bool { chunks.count == count }
    }

    /// Adds a state record to `assemblies` (by generation) when it belongs to `source`; returns
    /// the generation when it completed one.
    static func collect(_ record: ConsumedRecord, source: String, into assemblies: inout [Int64: Assembly]) -> Int64? {
        func header(_ name: String) -> String? {
            record.headers.last { $0.name == name }?.value.map { String(decoding: $0, as: UTF8.self) }
        }
        guard header(Header.source) == source, let generation = header(Header.generation).flatMap({ Int64($0) }),
              let next = header(Header.offset).flatMap({ Int64($0) }),
              let parts = header(Header.chunk)?.split(separator: "/"), parts.count == 2,
              let index = Int(parts[0]), let count = Int(parts[1]), count >= 1, (0..<count).contains(index),
              let slotText = record.key.map({ String(decoding: $0, as: UTF8.self) })?.split(separator: "/").dropLast().last,
              let slot = Int(slotText) else { return nil }
        var assembly = assemblies[generation] ?? Assembly(next: next, slot: slot, count: count)
        guard assembly.count == count, assembly.next == next else { return nil }
        assembly.chunks[index] = record.value
        assemblies[generation] = assembly
        return assembly.isComplete ? generation : nil
    }

    /// The complete snapshot of `source` with the highest offset near the end of its state
    /// partition; `nil` when the partition holds none. Throws when the topic cannot be read.
    public func latest(for source: TopicPartition, timeout: Duration = .seconds(60)) async throws -> Found? {
        let partition = TopicPartition(topic: topic, partition: statePartition(of: source))
        let name = "\(source.topic)/\(source.partition)"
        let consumer = try KafkaConsumer(config: kafka, groupID: nil, logger: logger, partitionEOF: true)
        let found: Result<Found?, any Error>
        do {
            found = .success(try await latest(of: name, in: partition, consumer: consumer, timeout: timeout))
        } catch {
            found = .failure(error)
        }
        await consumer.close()
        Self.dispose(consume consumer)
        return try found.get()
    }

    /// Drops the last reference to a closed lookup consumer on a background queue. Destroying a
    /// librdkafka client waits for its threads, which now and then takes a whole second; done
    /// by the caller, that second held up the aggregate step's first partials on every
    /// assignment where it happened.
    private static func dispose(_ consumer: consuming KafkaConsumer) {
        let retained = Unmanaged.passRetained(consumer)
        _ = consume consumer
        DispatchQueue.global(qos: .utility).async { retained.release() }
    }

    private func latest(of name: String, in partition: TopicPartition, consumer: KafkaConsumer, timeout: Duration) async throws -> Found? {
        let (low, high) = try await consumer.watermarks(partition)
        guard high > low else { return nil }
        let deadline = ContinuousClock.now + timeout
        var span: Int64 = 256
        while true {
            let start = max(low, high - span)
            try consumer.assign([TopicPartitionOffset(partition, offset: start)])
            var assemblies: [Int64: Assembly] = [:]
            var complete: [Int64] = []
            var reachedEnd = false
            while !reachedEnd {
                guard ContinuousClock.now < deadline else {
                    throw ConfigError("reading snapshots of \(name) from \(topic) did not finish within \(timeout)")
                }
                let batch = try await consumer.poll(maxRecords: 500, timeout: .milliseconds(200))
                for record in batch.records {
                    if let generation = Self.collect(record, source: name, into: &assemblies) { complete.append(generation) }
                    if record.offset + 1 >= high { reachedEnd = true }
                }
                if batch.endOfPartition.contains(where: { $0.topicPartition == partition && $0.offset >= high }) { reachedEnd = true }
            }
            let best = complete.compactMap { generation in assemblies[generation].map { (generation, $0) } }
                .max { ($0.1.next, $0.0) < ($1.1.next, $1.0) }
            if let (generation, assembly) = best {
                let bytes = (0..<assembly.count).flatMap { assembly.chunks[$0]! }
                return Found(next: assembly.next, slot: assembly.slot, generation: generation, bytes: bytes)
            }
            if start == low { return nil }
            span *= 4
        }
    }
}
