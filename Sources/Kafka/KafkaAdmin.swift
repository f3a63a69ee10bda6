import CRdKafka
import Logging

/// A topic to create.
public struct TopicSpec: Sendable, Equatable {
    /// Topic name (already prefixed).
    public var name: String
    /// Number of partitions.
    public var partitions: Int32
    /// Replication factor; -1 asks for the broker's default.
    public var replicationFactor: Int32
    /// Topic configuration, e.g. `cleanup.policy=compact`, `retention.ms`.
    public var configs: [String: String]

    /// A topic to create.
    public init(name: String, partitions: Int32, replicationFactor: Int32 = -1, configs: [String: String] = [:]) {
        self.name = name
        self.partitions = partitions
        self.replicationFactor = replicationFactor
        self.configs = configs
    }
}

/// A topic as the cluster describes it.
public struct TopicMetadata: Sendable, Equatable {
    /// Topic name.
    public var name: String
    /// Partition numbers.
    public var partitions: [Int32]
}

/// Cluster administration: create and list topics.
public final class KafkaAdmin: Sendable {
    private let client: NativeClient

    /// Connects an admin client.
    public init(config: KafkaConfig, logger: Logger) throws(KafkaError) {
        client = try NativeClient(type: RD_KAFKA_PRODUCER, config: config, defaults: [:],
                                  context: ClientContext(logger: logger, rebalanceListener: nil))
    }

    /// Creates topics; a topic that already exists is not an error.
    /// Returns the names that were newly created.
    @discardableResult
    public func createTopics(_ topics: [TopicSpec], timeout: Duration = .seconds(30)) async throws(KafkaError) -> [String] {
        guard !topics.isEmpty else { return [] }
        let client = self.client
        let millis = Int32(clamping: timeout.components.seconds * 1000)
        let result = await Blocking.run { () -> Result<[String], KafkaError> in
            KafkaAdmin.createBlocking(client.handle, topics, millis)
        }
        return try result.get()
    }

    private static func createBlocking(_ rk: OpaquePointer, _ topics: [TopicSpec], _ millis: Int32) -> Result<[String], KafkaError> {
        var errstr = [CChar](repeating: 0, count: 512)
        var newTopics: [OpaquePointer?] = []
        defer { for topic in newTopics { rd_kafka_NewTopic_destroy(topic) } }
        for spec in topics {
            guard let topic = rd_kafka_NewTopic_new(spec.name, spec.partitions, spec.replicationFactor, &errstr, errstr.count) else {
                return .failure(.configuration("topic \(spec.name): \(cString(errstr))"))
            }
            newTopics.append(topic)
            for (key, value) in spec.configs.sorted(by: { $0.key < $1.key }) {
                let code = rd_kafka_NewTopic_set_config(topic, key, value)
                if code != RD_KAFKA_RESP_ERR_NO_ERROR { return .failure(KafkaError(code: code, reason: "topic \(spec.name) config \(key)")) }
            }
        }
        let queue = rd_kafka_queue_new(rk)
        defer { rd_kafka_queue_destroy(queue) }
        let options = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS)
        defer { rd_kafka_AdminOptions_destroy(options) }
        _ = rd_kafka_AdminOptions_set_request_timeout(options, millis, &errstr, errstr.count)
        _ = rd_kafka_AdminOptions_set_operation_timeout(options, millis, &errstr, errstr.count)
        newTopics.withUnsafeMutableBufferPointer { buffer in
            rd_kafka_CreateTopics(rk, buffer.baseAddress, buffer.count, options, queue)
        }
        guard let event = rd_kafka_queue_poll(queue, millis + 1000) else {
            return .failure(KafkaError(code: RD_KAFKA_RESP_ERR__TIMED_OUT, reason: "create topics"))
        }
        defer { rd_kafka_event_destroy(event) }
        let eventError = rd_kafka_event_error(event)
        if eventError != RD_KAFKA_RESP_ERR_NO_ERROR {
            return .failure(KafkaError(code: eventError, reason: "create topics: \(String(cString: rd_kafka_event_error_string(event)))"))
        }
        guard let result = rd_kafka_event_CreateTopics_result(event) else {
            return .failure(KafkaError(code: RD_KAFKA_RESP_ERR__FAIL, reason: "create topics: no result"))
        }
        var count = 0
        guard let results = rd_kafka_CreateTopics_result_topics(result, &count) else { return .success([]) }
        var created: [String] = []
        for index in 0..<count {
            let topicResult = results[index]
            let name = String(cString: rd_kafka_topic_result_name(topicResult))
            let code = rd_kafka_topic_result_error(topicResult)
            switch code {
            case RD_KAFKA_RESP_ERR_NO_ERROR: created.append(name)
            case RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS: continue
            default:
                let message = rd_kafka_topic_result_error_string(topicResult).map { String(cString: $0) } ?? ""
                return .failure(KafkaError(code: code, reason: "create topic \(name): \(message)"))
            }
        }
        return .success(created)
    }

    /// Every topic the cluster knows, with its partitions.
    public func listTopics(timeout: Duration = .seconds(10)) async throws(KafkaError) -> [TopicMetadata] {
        let client = self.client
        let millis = Int32(clamping: timeout.components.seconds * 1000)
        let result = await Blocking.run { () -> Result<[TopicMetadata], KafkaError> in
            var metadata: UnsafePointer<rd_kafka_metadata>?
            let code = rd_kafka_metadata(client.handle, 1, nil, &metadata, millis)
            guard code == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else { return .failure(KafkaError(code: code, reason: "metadata")) }
            defer { rd_kafka_metadata_destroy(metadata) }
            var topics: [TopicMetadata] = []
            for index in 0..<Int(metadata.pointee.topic_cnt) {
                let topic = metadata.pointee.topics[index]
                guard topic.err == RD_KAFKA_RESP_ERR_NO_ERROR else { continue }
                let partitions = (0..<Int(topic.partition_cnt)).map { topic.partitions[$0].id }.sorted()
                topics.append(TopicMetadata(name: String(cString: topic.topic), partitions: partitions))
            }
            return .success(topics.sorted { $0.name < $1.name })
        }
        return try result.get()
    }
}
