import Kafka
import Logging
import Pipeline

/// Reads a whole topic as it is now: every partition from the beginning up to the end
/// offsets captured at the start (records produced meanwhile are not waited for).
public enum TopicScan {
    /// Calls `visit` for every record of `topic` up to its current end, partition by
    /// partition in offset order; returns how many were read.
    @discardableResult
    public static func read(_ topic: String, config: KafkaConfig, logger: Logger, timeout: Duration = .seconds(60),
                            visit: (ConsumedRecord) -> Void) async throws -> Int {
        let admin = try KafkaAdmin(config: config, logger: logger)
        guard let metadata = try await admin.listTopics().first(where: { $0.name == topic }) else {
            throw ConfigError("topic \(topic) does not exist")
        }
        let consumer = try KafkaConsumer(config: config, groupID: nil, logger: logger)
        var remaining: [Int32: Int64] = [:]
        for partition in metadata.partitions {
            let marks = try await consumer.watermarks(TopicPartition(topic: topic, partition: partition))
            if marks.high > marks.low { remaining[partition] = marks.high }
        }
        try consumer.assign(remaining.keys.sorted().map {
            TopicPartitionOffset(TopicPartition(topic: topic, partition: $0), offset: KafkaConsumer.beginning)
        })
        var count = 0
        let deadline = ContinuousClock.now + timeout
        while !remaining.isEmpty {
            guard ContinuousClock.now < deadline else {
                await consumer.close()
                throw ConfigError("reading \(topic) did not reach its end within \(timeout)")
            }
            for record in try await consumer.poll(maxRecords: 1000, timeout: .milliseconds(200)).records {
                guard let end = remaining[record.partition], record.offset < end else { continue }
                visit(record)
                count += 1
                if record.offset + 1 >= end { remaining[record.partition] = nil }
            }
        }
        await consumer.close()
        return count
    }
}
