import Kafka

/// Vigil's topic names under a configurable prefix (default `vigil.`), so a replay or a
/// second tenant uses its own set (`case-42.vigil.alerts`).
public struct Topics: Sendable, Equatable {
    /// The prefix every name starts with.
    public let prefix: String

    /// Topic names under `prefix`.
    public init(prefix: String = "vigil.") { self.prefix = prefix }

    /// Raw records from shippers, with a `vigil-source` header.
    public var raw: String { prefix + "raw" }
    /// Normalized OCSF events.
    public var events: String { prefix + "events" }
    /// Events joined with the asset inventory.
    public var enriched: String { prefix + "enriched" }
    /// Partial aggregation records keyed by rule and group (detect select -> aggregate).
    public var detectPartials: String { prefix + "detect.partials" }
    /// Snapshots of the detect aggregate step's state, compacted (see `AggregateStateStore`).
    public var detectState: String { prefix + "detect.state" }
    /// OCSF Detection Findings.
    public var alerts: String { prefix + "alerts" }
    /// Response commands keyed by target.
    public var commands: String { prefix + "commands" }
    /// Outcomes of executed commands.
    public var commandResults: String { prefix + "command-results" }
    /// Inventory changes, compacted, keyed by asset id.
    public var inventory: String { prefix + "inventory" }
    /// Records a stage could not process, with the reason in headers.
    public var deadLetters: String { prefix + "dlq" }

    /// Every topic with the partition count and configuration Vigil creates it with.
    public func specs(partitions: Int32 = 4, replicationFactor: Int32 = -1) -> [TopicSpec] {
        // retention.ms is set explicitly: some brokers report only configs given at creation.
        let week = ["retention.ms": "604800000"]
        // The aggregate step commits no further than the oldest partial a rule still holds, and
        // first_seen rules hold theirs for their look-back (30 days in the built-in pack).
        let partialsRetention = ["retention.ms": String(35 * 24 * 3_600_000)]
        return [
            TopicSpec(name: raw, partitions: partitions, replicationFactor: replicationFactor, configs: week),
            TopicSpec(name: events, partitions: partitions, replicationFactor: replicationFactor, configs: week),
            TopicSpec(name: enriched, partitions: partitions, replicationFactor: replicationFactor, configs: week),
            TopicSpec(name: detectPartials, partitions: partitions, replicationFactor: replicationFactor, configs: partialsRetention),
            TopicSpec(name: detectState, partitions: partitions, replicationFactor: replicationFactor,
                      configs: ["cleanup.policy": "compact", "retention.ms": "-1"]),
            TopicSpec(name: alerts, partitions: partitions, replicationFactor: replicationFactor, configs: week),
            TopicSpec(name: commands, partitions: partitions, replicationFactor: replicationFactor, configs: week),
            TopicSpec(name: commandResults, partitions: partitions, replicationFactor: replicationFactor, configs: week),
            TopicSpec(name: inventory, partitions: 1, replicationFactor: replicationFactor,
                      configs: ["cleanup.policy": "compact", "retention.ms": "-1"]),
            TopicSpec(name: deadLetters, partitions: partitions, replicationFactor: replicationFactor, configs: week),
        ]
    }
}

/// Header names Vigil reads and writes.
public enum VigilHeader {
    /// The log source of a raw record (`cloudtrail`, `vpcflow`, ...).
    public static let source = "vigil-source"
    /// Stage that dead-lettered a record.
    public static let dlqStage = "vigil-dlq-stage"
    /// Stable error code of a dead letter.
    public static let dlqErrorCode = "vigil-dlq-error-code"
    /// Human reason of a dead letter (never payload contents).
    public static let dlqError = "vigil-dlq-error"
    /// Topic the dead-lettered record was read from.
    public static let dlqTopic = "vigil-dlq-topic"
    /// Partition the dead-lettered record was read from.
    public static let dlqPartition = "vigil-dlq-partition"
    /// Offset the dead-lettered record was read from.
    public static let dlqOffset = "vigil-dlq-offset"
    /// Index of the bad entry inside a multi-entry record, when known.
    public static let dlqEntry = "vigil-dlq-entry"
    /// Set when a dead letter was too large for the dead-letter topic: the original value's
    /// size in bytes; the letter then holds only its first 64 KiB.
    public static let dlqTruncated = "vigil-dlq-truncated"
}
