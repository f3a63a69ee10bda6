import Kafka
import Logging
import OCSF
import Pipeline

/// `vigil dlq replay`: sends dead letters back to the topic they were read from, once the
/// cause is fixed (a parser bug, a missing inventory row, a rule the select step choked on).
///
/// Each selected letter is produced again with its original bytes, key and timestamp and its
/// headers minus the `vigil-dlq-*` ones, to the topic its `vigil-dlq-topic` header names (else
/// its stage's input topic). Nothing is removed from the DLQ and nothing is remembered: every
/// run re-sends every letter it selects (`--since` bounds them). Re-sent records get the usual
/// deterministic output ids downstream, so a letter sent twice yields the same events and
/// alerts twice, recognizably; a letter that fails again is dead-lettered again.
public enum DeadLetterReplay {
    /// The stages and the topic each reads.
    public static let stages = ["ingest", "enrich", "detect", "respond"]

    /// The input topic of `stage` (`ingest` or `vigil-ingest`).
    public static func inputTopic(stage: String, topics: Topics) -> String? {
        switch stage.hasPrefix("vigil-") ? String(stage.dropFirst("vigil-".count)) : stage {
        case "ingest": topics.raw
        case "enrich": topics.events
        case "detect": topics.enriched
        case "respond": topics.alerts
        default: nil
        }
    }

    /// Per stage (the `vigil-dlq-stage` header): letters selected, re-sent, and skipped because
    /// they name no topic or one that does not exist.
    public struct StageCount: Sendable, Equatable {
        /// Letters of the stage in the time range.
        public var selected = 0
        /// Letters produced again (or that would be, with `--dry-run`).
        public var sent = 0
        /// Letters without a usable destination.
        public var skipped = 0
    }

    /// What a run did.
    public struct Outcome: Sendable {
        /// Letters read from the DLQ (any stage, any time).
        public var read = 0
        /// Counts by stage header.
        public var stages: [String: StageCount] = [:]
        /// Counts by destination topic.
        public var destinations: [String: Int] = [:]
        /// Nothing was produced.
        public var dryRun = false

        /// The summary object printed as the last line.
        public var summary: JSON {
            var byStage: [String: JSON] = [:]
            for (stage, count) in stages {
                byStage[stage] = ["selected": .int(Int64(count.selected)), "sent": .int(Int64(count.sent)),
                                  "skipped": .int(Int64(count.skipped))]
            }
            return [
                "read": .int(Int64(read)),
                "selected": .int(Int64(stages.values.reduce(0) { $0 + $1.selected })),
                "sent": .int(Int64(stages.values.reduce(0) { $0 + $1.sent })),
                "skipped": .int(Int64(stages.values.reduce(0) { $0 + $1.skipped })),
                "dry_run": .bool(dryRun),
                "stages": .object(byStage),
                "topics": .object(destinations.mapValues { .int(Int64($0)) }),
            ]
        }
    }

    /// The record that re-sends `letter`, and its destination: original bytes, key, timestamp,
    /// and headers without `vigil-dlq-*`. `nil` when the letter names no topic and no known stage.
    public static func resend(_ letter: ConsumedRecord, topics: Topics) -> OutgoingRecord? {
        let named = letter.headers.text(VigilHeader.dlqTopic).flatMap { $0.isEmpty ? nil : $0 }
        guard let destination = named ?? letter.headers.text(VigilHeader.dlqStage).flatMap({ inputTopic(stage: $0, topics: topics) }),
              destination != letter.topic
        else { return nil }
        return OutgoingRecord(topic: destination, key: letter.key, value: letter.value,
                              headers: letter.headers.filter { !$0.name.hasPrefix("vigil-dlq-") }, timestamp: letter.timestamp)
    }

    /// Reads `topics.deadLetters` (from `since`, by the letters' timestamps, which are those of
    /// the original inputs) and re-sends the letters of `stage` (all stages when `nil`).
    /// `report` receives a line per letter with `dryRun`, and one per stage at the end.
    public static func run(topics: Topics, config: KafkaConfig, stage: String?, since: Int64?, dryRun: Bool, logger: Logger,
                           report: (String) -> Void = { _ in }) async throws -> Outcome {
        let wanted = stage.map { $0.hasPrefix("vigil-") ? $0 : "vigil-" + $0 }
        let existing = Set(try await KafkaAdmin(config: config, logger: logger).listTopics().map(\.name))
        let producer = dryRun ? nil : try KafkaProducer(config: config, logger: logger)
        var outcome = Outcome()
        outcome.dryRun = dryRun
        let range = try since.map { try ReplayRange(from: $0, to: .max) } ?? ReplayRange.everything
        do {
            try await ReplayTopicReader.read(topic: topics.deadLetters, range: range, config: config, logger: logger) { letters in
                var batch: [OutgoingRecord] = []
                for letter in letters {
                    outcome.read += 1
                    let letterStage = letter.headers.text(VigilHeader.dlqStage) ?? "unknown"
                    if let wanted, letterStage != wanted { continue }
                    outcome.stages[letterStage, default: StageCount()].selected += 1
                    guard let record = resend(letter, topics: topics), existing.contains(record.topic) else {
                        outcome.stages[letterStage, default: StageCount()].skipped += 1
                        report("SKIPPED  \(describe(letter)): no existing topic to send it to")
                        continue
                    }
                    outcome.stages[letterStage, default: StageCount()].sent += 1
                    outcome.destinations[record.topic, default: 0] += 1
                    if dryRun { report("WOULD    \(describe(letter)) -> \(record.topic)") }
                    batch.append(record)
                }
                if let producer, !batch.isEmpty { try await producer.send(batch) }
            }
        } catch {
            await producer?.close(timeout: .seconds(5))
            throw error
        }
        await producer?.close()
        for (name, count) in outcome.stages.sorted(by: { $0.key < $1.key }) {
            report("\(name): \(count.selected) selected, \(count.sent) \(dryRun ? "would be re-sent" : "re-sent"), \(count.skipped) skipped")
        }
        return outcome
    }

    /// `vigil-ingest invalid_json (from vigil.raw[1]@7, 227 bytes)`: never the payload.
    static func describe(_ letter: ConsumedRecord) -> String {
        let headers = letter.headers
        return "\(headers.text(VigilHeader.dlqStage) ?? "unknown") \(headers.text(VigilHeader.dlqErrorCode) ?? "?") "
            + "(from \(headers.text(VigilHeader.dlqTopic) ?? "?")[\(headers.text(VigilHeader.dlqPartition) ?? "?")]"
            + "@\(headers.text(VigilHeader.dlqOffset) ?? "?"), \(letter.value.count) bytes)"
    }
}
