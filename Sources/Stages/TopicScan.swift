import Kafka
import Logging
import Pipeline

/// Reads a whole topic as it is now: every partition from the beginning to its end.
///
/// The end is the partition-EOF event, not the high watermark read up front: some
/// Kafka-protocol brokers report the watermark in batches rather than records, and EOF is
/// right on all of them. Records produced while the scan runs may or may not be included.
public enum TopicScan {
    /// Calls `visit` for every record of `topic` up to its end, each partition in offset
    /// order; returns how many were read.
    @discardableResult
    public static func read(_ topic: String, config: KafkaConfig, logger: Logger, timeout: Duration = .seconds(60),
                            visit: (ConsumedRecord) -> Void) async throws -> Int {
        let admin = try KafkaAdmin(config: config, logger: logger)
        guard let metadata = try await admin.listTopics().first(where: { $0.name == topic }) else {
            throw ConfigError("topic \(topic) does not exist")
        }
        let consumer = try KafkaConsumer(config: config, groupID: nil, logger: logger, partitionEOF: true)
        try consumer.assign(metadata.partitions.map {
            TopicPartitionOffset(TopicPartition(topic: topic, partition: $0), offset: KafkaConsumer.beginning)
        })
        var open = Set(metadata.partitions)
        var count = 0
        let deadline = ContinuousClock.now + timeout
        while !open.isEmpty {
            guard ContinuousClock.now < deadline else {
                await consumer.close()
                throw ConfigError("reading \(topic) did not reach its end within \(timeout)")
            }
            let batch = try await consumer.poll(maxRecords: 1000, timeout: .milliseconds(200))
            for record in batch.records where open.contains(record.partition) {
                visit(record)
                count += 1
            }
            for end in batch.endOfPartition { open.remove(end.topicPartition.partition) }
        }
        await consumer.close()
        return count
    }
}
