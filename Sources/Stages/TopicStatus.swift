import Kafka
import Logging
import Pipeline

/// What `vigil topics describe` shows operators: per partition of each Vigil topic, its
/// offsets and record count, and how far behind the stage group that consumes it is.
public struct PartitionStatus: Sendable, Equatable {
    /// Topic name.
    public var topic: String
    /// Partition number.
    public var partition: Int32
    /// The oldest offset still kept.
    public var low: Int64
    /// The next offset to be written.
    public var high: Int64
    /// The consumer group that reads the topic (`nil` for topics no stage consumes).
    public var group: String?
    /// The group's committed offset (the next it will read), `nil` before its first commit.
    public var committed: Int64?

    /// Records kept in the partition.
    public var records: Int64 { high - low }

    /// Records the group has yet to process: from its committed offset (or, before any
    /// commit, from the oldest kept record) to the end.
    public var lag: Int64? {
        guard group != nil else { return nil }
        return high - max(committed ?? low, low)
    }
}

/// Reads partition offsets and group lag for the topics of `topics`.
public enum TopicStatus {
    /// The stage consumer group of each topic, under the default group ids (a stage's group
    /// is its name; vigil-detect and the executor add suffixes). `overrides` maps a topic
    /// name without the prefix (`raw`, `alerts`) to another group id.
    public static func groups(_ topics: Topics, overrides: [String: String] = [:]) -> [String: String] {
        var groups = [
            "raw": "vigil-ingest", "events": "vigil-enrich", "enriched": "vigil-detect-select",
            "detect.partials": "vigil-detect-aggregate", "alerts": "vigil-respond", "commands": "vigil-respond-executor",
        ]
        groups.merge(overrides) { _, new in new }
        return Dictionary(uniqueKeysWithValues: groups.map { (topics.prefix + $0.key, $0.value) })
    }

    /// The status of every partition of every existing topic under the prefix, sorted by
    /// topic and partition.
    public static func describe(_ topics: Topics, config: KafkaConfig, groups: [String: String], logger: Logger) async throws -> [PartitionStatus] {
        let admin = try KafkaAdmin(config: config, logger: logger)
        let metadata = try await admin.listTopics().filter { $0.name.hasPrefix(topics.prefix) }
        let probe = try KafkaConsumer(config: config, groupID: nil, logger: logger)
        var rows: [PartitionStatus] = []
        for topic in metadata {
            for partition in topic.partitions {
                let marks = try await probe.watermarks(TopicPartition(topic: topic.name, partition: partition))
                rows.append(PartitionStatus(topic: topic.name, partition: partition, low: marks.low, high: marks.high,
                                            group: groups[topic.name]))
            }
        }
        await probe.close()
        // One consumer per group, never subscribed: it only asks for committed offsets and
        // joins nothing.
        for group in Set(rows.compactMap(\.group)).sorted() {
            let consumer = try KafkaConsumer(config: config, groupID: group, logger: logger)
            let partitions = rows.filter { $0.group == group }.map { TopicPartition(topic: $0.topic, partition: $0.partition) }
            let committed = try await consumer.committed(partitions)
            await consumer.close()
            for index in rows.indices where rows[index].group == group {
                let offset = committed[TopicPartition(topic: rows[index].topic, partition: rows[index].partition)] ?? -1
                rows[index].committed = offset >= 0 ? offset : nil
            }
        }
        return rows.sorted { ($0.topic, $0.partition) < ($1.topic, $1.partition) }
    }
}
