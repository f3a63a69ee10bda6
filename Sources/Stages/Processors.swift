import Detection
import Foundation
import Inventory
import Kafka
import Logging
import Normalize
import OCSF
import Pipeline
import Response

/// Clock of the processing host, in epoch ms. Used only for `metadata.processed_time` and
/// live-mode idle watermarks, never for event time.
public func wallClockMillis() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

/// The Kafka record of an OCSF event: keyed by its primary entity, timestamped with its event time.
func eventRecord(_ event: JSON, topic: String, headers: [KafkaHeader] = []) -> OutgoingRecord {
    OutgoingRecord(topic: topic, key: OCSFEvent.primaryKey(event).map { Array($0.utf8) }, value: event.serialized(),
                   headers: headers, timestamp: OCSFEvent.time(event))
}

/// Parses an input record's value as one JSON object or returns the dead letter saying why not.
func parseObject(_ record: ConsumedRecord, what: String) -> Result<JSON, DeadLetter> {
    do {
        let value = try JSON.parse(record.value)
        guard case .object = value else { return .failure(.notAnObject(what)) }
        return .success(value)
    } catch {
        return .failure(.invalidJSON(error))
    }
}

extension DeadLetter {
    /// An input that is JSON but not an object (`what`: event, alert, command).
    static func notAnObject(_ what: String) -> DeadLetter {
        DeadLetter(code: "invalid_\(what)", reason: "\(what) is not a JSON object")
    }

    /// An input that is not JSON; the reason names the position, never the payload.
    static func invalidJSON(_ error: JSONParseError) -> DeadLetter {
        DeadLetter(code: "invalid_json", reason: error.description)
    }
}

/// vigil-ingest: raw records to OCSF events. Every input becomes events or dead letters.
public struct IngestProcessor: StageProcessor {
    let normalizer: Normalizer
    let topics: Topics
    let metrics: MetricsRegistry
    let clock: @Sendable () -> Int64

    /// An ingest transform writing to `topics.events`.
    public init(topics: Topics, metrics: MetricsRegistry, normalizer: Normalizer = Normalizer(),
                clock: @escaping @Sendable () -> Int64 = wallClockMillis) {
        self.normalizer = normalizer
        self.topics = topics
        self.metrics = metrics
        self.clock = clock
    }

    public mutating func process(_ record: ConsumedRecord) -> StageOutput {
        let declared = record.headers.text(VigilHeader.source)
        let result = normalizer.normalize(RawRecord(bytes: record.value, source: declared, recordTime: record.timestamp))
        metrics.increment("vigil_ingest_records_total", labels: ["source": result.source, "detected": result.detected ? "true" : "false"],
                          help: "Raw records by source, and whether the source was detected (no vigil-source header) or declared.")
        if result.skipped > 0 {
            metrics.increment("vigil_ingest_skipped_total", by: Double(result.skipped), labels: ["source": result.source],
                              help: "Entries deliberately skipped (for example CloudTrail digest files).")
        }
        let processed = clock()
        var output = StageOutput()
        for var event in result.events {
            event.set("metadata.processed_time", .int(processed))
            event.set("vigil.lineage", .object(["topic": .string(record.topic), "partition": .int(Int64(record.partition)),
                                                "offset": .int(record.offset)]))
            output.records.append(eventRecord(event, topic: topics.events, headers: [KafkaHeader(VigilHeader.source, result.source)]))
        }
        for failure in result.failures {
            output.deadLetters.append(DeadLetter(code: failure.code, reason: failure.message, bytes: failure.entryBytes, entryIndex: failure.entryIndex))
        }
        return output
    }
}

/// vigil-detect, select step: single-event rules alert directly; window rules emit partial
/// records keyed by (rule, group) so the aggregate step owns each group whatever copy selected it.
public struct DetectSelectProcessor: StageProcessor {
    let selector: RuleSelector
    let topics: Topics
    let metrics: MetricsRegistry

    /// A select transform for `rules`.
    public init(rules: RuleSet, topics: Topics, metrics: MetricsRegistry) {
        self.selector = RuleSelector(rules: rules)
        self.topics = topics
        self.metrics = metrics
    }

    public mutating func process(_ record: ConsumedRecord) -> StageOutput {
        // Scanned, not parsed: an event no rule selects is never built (the same bytes are
        // rejected with the same dead letters as `parseObject` gives).
        let selections: [Selection]
        do {
            guard let selected = try selector.select(bytes: record.value) else {
                return StageOutput(deadLetters: [.notAnObject("event")])
            }
            selections = selected
        } catch {
            return StageOutput(deadLetters: [.invalidJSON(error)])
        }
        var output = StageOutput()
        for selection in selections {
            switch selection {
            case .alert(let alert):
                output.records.append(alertRecord(alert, topics: topics))
                metrics.increment("vigil_alerts_total", labels: ["rule": alert.value(at: "vigil.rule.id")?.stringValue ?? ""],
                                  help: "Alerts emitted, by rule.")
            case .partial(var partial):
                partial.source = "\(record.topic)/\(record.partition)"
                output.records.append(OutgoingRecord(topic: topics.detectPartials, key: Array(partial.kafkaKey.utf8),
                                                     value: partial.json().serialized(), timestamp: partial.eventTime))
            }
        }
        return output
    }
}

/// An alert's Kafka record: keyed by alert id, timestamped with its (event-time) `time`.
func alertRecord(_ alert: JSON, topics: Topics) -> OutgoingRecord {
    OutgoingRecord(topic: topics.alerts, key: OCSFEvent.uid(alert).map { Array($0.utf8) }, value: alert.serialized(),
                   timestamp: OCSFEvent.time(alert))
}

/// vigil-detect, aggregate step: event-time windows, sequences and absences per partition of
/// the partials topic.
///
/// Window state is partition-local. With a state store, every `snapshotIntervalMillis` (after
/// a batch's alerts are acknowledged) each partition's state is written to the state topic
/// with the offset it resumes from, and a new owner (after a crash or a rebalance) restores the
/// newest snapshot, skips the partials before its offset and reads on: it ends windows,
/// sequences and suppressions exactly as the old owner did, and re-emits the alerts after the
/// snapshot under the same ids with the same contents. The runner never commits past the
/// snapshot's offset nor past the oldest partial still held (`retainedOffset`), so without a
/// snapshot (none written yet, or the state topic lost) the new owner rebuilds by re-reading
/// from the oldest held partial, which is not exact (docs/rules.md, "Takeovers").
public struct DetectAggregateProcessor: StageProcessor {
    let rules: RuleSet
    let topics: Topics
    let metrics: MetricsRegistry
    /// Live mode: a partition idle this long has its watermark moved to the wall clock.
    /// `nil` (replay, offline) never does.
    let idleAdvanceMillis: Int64?
    /// The cap on keys per rule and partition for rules without `max_keys`.
    let maxKeysPerRule: Int
    /// The select step's input partitions (`topic/partition`), each of which holds the
    /// watermarks back until it is heard from (see ``PartitionAggregator``).
    let sourcePartitions: [String]
    var aggregators: [TopicPartition: PartitionAggregator] = [:]
    var lastActivity: [TopicPartition: Int64] = [:]
    /// Where snapshots go; `nil`: none are written or restored.
    let stateStore: AggregateStateStore?
    /// Wall-clock time between two snapshots of a partition.
    let snapshotIntervalMillis: Int64
    /// Per partition: the offset after the last partial processed.
    var processedNext: [TopicPartition: Int64] = [:]
    /// Per partition: the last snapshot acknowledged (its offset and key slot), and one written
    /// but not yet acknowledged.
    var confirmedSnapshot: [TopicPartition: (next: Int64, slot: Int)] = [:]
    var pendingSnapshot: [TopicPartition: (next: Int64, slot: Int)] = [:]
    /// Per partition: the wall-clock time before which no snapshot is taken.
    var nextSnapshotAt: [TopicPartition: Int64] = [:]
    /// Restored partitions: the snapshot's offset, until the first partial at or after it.
    var resumeFrom: [TopicPartition: Int64] = [:]
    /// Restored partitions: the rules that start empty, which still read the partials before
    /// the snapshot's offset.
    var rebuildRules: [TopicPartition: Set<String>] = [:]
    var generation: Int64 = 0

    /// An aggregate transform for `rules`; a rule without `max_keys` holds at most
    /// `maxKeysPerRule` keys per partition. Watermarks wait for the slowest source partition;
    /// with `idleAdvanceMillis`, `sourcePartitions` are expected from the start (a source silent
    /// that long stops holding back); without it only sources heard from count.
    /// With `stateStore`, each partition's state is saved every `snapshotIntervalMillis` and
    /// restored on assignment.
    public init(rules: RuleSet, topics: Topics, metrics: MetricsRegistry, idleAdvanceMillis: Int64?,
                maxKeysPerRule: Int = WindowAggregator.defaultMaxKeysPerRule, sourcePartitions: [String] = [],
                stateStore: AggregateStateStore? = nil, snapshotIntervalMillis: Int64 = 5_000) {
        self.stateStore = stateStore
        self.snapshotIntervalMillis = snapshotIntervalMillis
        self.rules = rules
        self.topics = topics
        self.metrics = metrics
        self.idleAdvanceMillis = idleAdvanceMillis
        self.maxKeysPerRule = maxKeysPerRule
        self.sourcePartitions = idleAdvanceMillis == nil ? [] : sourcePartitions
    }

    public mutating func process(_ record: ConsumedRecord) -> StageOutput {
        let tp = TopicPartition(topic: record.topic, partition: record.partition)
        if let resume = resumeFrom[tp] {
            // The restored snapshot already holds every partial before its offset.
            if record.offset < resume {
                // Except for rules that start empty (new, or changed since the snapshot), which
                // rebuild from the partials before it as they would without a snapshot.
                guard let rebuild = rebuildRules[tp], let ruleID = try? Partial(json: JSON.parse(record.value)).ruleID,
                      rebuild.contains(ruleID) else {
                    metrics.increment("vigil_detect_restore_skipped_partials_total",
                                      help: "Partials read again after a takeover that the restored snapshot already held.")
                    return .empty
                }
            } else {
                resumeFrom[tp] = nil
                rebuildRules[tp] = nil
            }
            if record.offset > resume {
                // The partials between the snapshot and here are gone (retention) or were never
                // read: the snapshot does not lead here. Rebuild from here instead.
                stateStore?.logger.warning("snapshot does not reach the first partial read; rebuilding without it", metadata: [
                    "partition": .string(tp.description), "snapshot_offset": "\(resume)", "first_offset": "\(record.offset)",
                ])
                metrics.increment("vigil_detect_restores_total", labels: ["outcome": "discarded"])
                aggregators[tp] = nil
                confirmedSnapshot[tp] = nil
            }
        }
        processedNext[tp] = record.offset + 1
        let partial: Partial
        do {
            partial = try Partial(json: try JSON.parse(record.value))
        } catch let error as JSONParseError {
            return StageOutput(deadLetters: [.invalidJSON(error)])
        } catch {
            return StageOutput(deadLetters: [DeadLetter(code: "invalid_partial", reason: "\(error)")])
        }
        // Taken out of the dictionary while it changes: a copy left behind there would make the
        // first change copy every key the partition holds (once per partial).
        let now = wallClockMillis()
        var aggregator = aggregators.removeValue(forKey: tp)
            ?? PartitionAggregator(rules: rules, maxKeysPerRule: maxKeysPerRule, tracksSources: true, sourceIdleMillis: idleAdvanceMillis,
                                   expectedSources: sourcePartitions)
        let before = (late: aggregator.lateRecords, unknown: aggregator.unknownRuleRecords, valueless: aggregator.valuelessRecords,
                      suppressed: aggregator.suppressedAlerts, suppressedByRule: aggregator.suppressedAlertsByRule,
                      evicted: aggregator.evictedKeys(rule: partial.ruleID))
        let alerts = aggregator.add(partial, offset: record.offset, now: now)
        if aggregator.lateRecords > before.late {
            metrics.increment("vigil_detect_late_records_total", labels: ["rule": partial.ruleID],
                              help: "Partials that arrived behind the watermark and were not counted.")
        }
        if aggregator.unknownRuleRecords > before.unknown {
            metrics.increment("vigil_detect_unknown_rule_partials_total", labels: ["rule": partial.ruleID],
                              help: "Partials of a rule this copy does not have as a window rule (rule sets differ between copies).")
        }
        if aggregator.valuelessRecords > before.valueless {
            metrics.increment("vigil_detect_valueless_partials_total", labels: ["rule": partial.ruleID],
                              help: "Partials without the value (or sequence step) their rule needs (an older select step), not counted.")
        }
        if aggregator.suppressedAlerts > before.suppressed {
            countSuppressed(before: before.suppressedByRule, after: aggregator.suppressedAlertsByRule)
        }
        let evicted = aggregator.evictedKeys(rule: partial.ruleID)
        if evicted > before.evicted { countEvicted(rule: partial.ruleID, Double(evicted - before.evicted)) }
        aggregators[tp] = aggregator
        lastActivity[tp] = now
        setOpenKeys(rule: partial.ruleID)
        return StageOutput(records: alerts.map { counted(alertRecord($0, topics: topics), $0) })
    }

    /// Sets `vigil_detect_open_keys{rule}`: the rule's keys holding state over every partition of this copy.
    private func setOpenKeys(rule id: String) {
        metrics.set("vigil_detect_open_keys", Double(aggregators.values.reduce(0) { $0 + $1.openKeys(rule: id) }),
                    labels: ["rule": id],
                    help: "Group keys holding window, sequence, absence, first_seen or baseline state in this copy, by rule.")
    }

    /// Sets `vigil_detect_open_keys` for every stateful rule.
    private func setOpenKeysOfEveryRule() {
        for rule in rules.rules where rule.isStateful { setOpenKeys(rule: rule.id) }
    }

    private func countEvicted(rule id: String, _ count: Double) {
        metrics.increment("vigil_detect_keys_evicted_total", by: count, labels: ["rule": id],
                          help: "Group keys whose state was dropped to keep the rule within its max_keys (least recently active first).")
    }

    public mutating func idle(now: Int64) -> StageOutput {
        guard let idleAdvanceMillis else { return .empty }
        var output = StageOutput()
        var advanced = false
        let due = aggregators.filter { tp, aggregator in now - (lastActivity[tp] ?? now) >= idleAdvanceMillis && aggregator.holdsState }.keys
        for tp in due {
            guard var aggregator = aggregators.removeValue(forKey: tp) else { continue }
            let suppressed = aggregator.suppressedAlertsByRule
            let evicted = aggregator.evictedKeysByRule
            let alerts = aggregator.advanceIdle(now: now)
            countSuppressed(before: suppressed, after: aggregator.suppressedAlertsByRule)
            for (rule, count) in aggregator.evictedKeysByRule where count > evicted[rule] ?? 0 {
                countEvicted(rule: rule, Double(count - (evicted[rule] ?? 0)))
            }
            aggregators[tp] = aggregator
            output.records += alerts.map { counted(alertRecord($0, topics: topics), $0) }
            advanced = true
        }
        if advanced { setOpenKeysOfEveryRule() }
        return output
    }

    /// Counts the alerts suppressed between two readings of `suppressedAlertsByRule`.
    private func countSuppressed(before: [String: Int], after: [String: Int]) {
        for (rule, count) in after where count > before[rule] ?? 0 {
            metrics.increment("vigil_detect_suppressed_alerts_total", by: Double(count - (before[rule] ?? 0)), labels: ["rule": rule],
                              help: "Alerts not emitted because their rule's suppress period for the group key was running.")
        }
    }

    private func counted(_ record: OutgoingRecord, _ alert: JSON) -> OutgoingRecord {
        metrics.increment("vigil_alerts_total", labels: ["rule": alert.value(at: "vigil.rule.id")?.stringValue ?? ""],
                          help: "Alerts emitted, by rule.")
        return record
    }

    public mutating func partitionsRevoked(_ partitions: [TopicPartition]) {
        for tp in partitions {
            aggregators[tp] = nil
            lastActivity[tp] = nil
            processedNext[tp] = nil
            confirmedSnapshot[tp] = nil
            pendingSnapshot[tp] = nil
            nextSnapshotAt[tp] = nil
            resumeFrom[tp] = nil
            rebuildRules[tp] = nil
        }
        setOpenKeysOfEveryRule()
    }

    /// Restores each partition's newest snapshot, if the store has one.
    public mutating func partitionsAssignedAsync(_ partitions: [TopicPartition]) async {
        guard let stateStore else { return }
        for tp in partitions where tp.topic == topics.detectPartials {
            let outcome: String
            do {
                if let found = try await stateStore.latest(for: tp) {
                    let aggregator = try PartitionAggregator(restoring: found.bytes, rules: rules, maxKeysPerRule: maxKeysPerRule,
                                                             tracksSources: true, sourceIdleMillis: idleAdvanceMillis)
                    aggregators[tp] = aggregator
                    resumeFrom[tp] = found.next
                    rebuildRules[tp] = Set(aggregator.restoreReport.reset + aggregator.restoreReport.added)
                    confirmedSnapshot[tp] = (found.next, found.slot)
                    generation = max(generation, found.generation)
                    outcome = "restored"
                    let report = aggregator.restoreReport
                    stateStore.logger.info("aggregate state restored", metadata: [
                        "partition": .string(tp.description), "offset": "\(found.next)", "bytes": "\(found.bytes.count)",
                        "open_keys": "\(aggregator.openKeys)", "rules_reset": .string(report.reset.joined(separator: ",")),
                        "rules_dropped": .string(report.dropped.joined(separator: ",")),
                        "rules_added": .string(report.added.joined(separator: ",")),
                    ])
                } else {
                    outcome = "none"
                    stateStore.logger.info("no aggregate snapshot; rebuilding from the committed offset", metadata: ["partition": .string(tp.description)])
                }
            } catch {
                outcome = "failed"
                stateStore.logger.warning("aggregate snapshot not restored; rebuilding from the committed offset",
                                          metadata: ["partition": .string(tp.description), "error": .string("\(error)")])
            }
            metrics.increment("vigil_detect_restores_total", labels: ["outcome": outcome],
                              help: "Partition assignments by what became of the aggregate snapshot: restored, none, failed (unreadable), discarded (did not reach the input).")
        }
        setOpenKeysOfEveryRule()
    }

    /// Snapshots of the partitions that processed partials since their last one, once per
    /// `snapshotIntervalMillis` (or ten times the last snapshot's encoding time, if longer).
    public mutating func checkpoint(now: Int64) -> [OutgoingRecord] {
        guard let stateStore, snapshotIntervalMillis > 0 else { return [] }
        var records: [OutgoingRecord] = []
        for (tp, next) in processedNext.sorted(by: { $0.key < $1.key }) {
            guard next > confirmedSnapshot[tp]?.next ?? -1, now >= nextSnapshotAt[tp] ?? .min,
                  let aggregator = aggregators[tp] else { continue }
            let started = ContinuousClock.now
            let bytes = aggregator.snapshot()
            // A large state takes a while to encode: the next snapshot waits at least ten times
            // as long, so snapshots never take more than about a tenth of the step's time.
            let took = ContinuousClock.now - started
            let tookMillis = took.components.seconds * 1000 + took.components.attoseconds / 1_000_000_000_000_000
            nextSnapshotAt[tp] = now + max(snapshotIntervalMillis, 10 * tookMillis)
            generation = max(generation + 1, now)
            let slot = 1 - (confirmedSnapshot[tp]?.slot ?? 1)
            records += stateStore.records(source: tp, next: next, generation: generation, slot: slot, bytes: bytes)
            pendingSnapshot[tp] = (next, slot)
            metrics.set("vigil_detect_snapshot_bytes", Double(bytes.count), labels: ["partition": String(tp.partition)],
                        help: "Size of the last aggregate snapshot of a partials partition.")
        }
        return records
    }

    public mutating func checkpointDelivered(_ delivered: Bool) {
        if delivered {
            for (tp, snapshot) in pendingSnapshot where processedNext[tp] != nil {
                confirmedSnapshot[tp] = snapshot
                metrics.increment("vigil_detect_snapshots_total", help: "Aggregate snapshots written and acknowledged.")
            }
        }
        pendingSnapshot = [:]
    }

    public func retainedOffset(for partition: TopicPartition) -> Int64? {
        let held = aggregators[partition]?.oldestRetainedOffset()
        guard let snapshot = confirmedSnapshot[partition]?.next else { return held }
        return min(held ?? snapshot, snapshot)
    }
}

/// vigil-respond: alerts to gated commands (guards applied; the executor is `ExecutorProcessor`).
public struct RespondProcessor: StageProcessor {
    let responder: Responder
    let topics: Topics
    let metrics: MetricsRegistry
    /// Guard memory (rate limits, blast radius) and the command ids this copy already
    /// planned: a re-delivered alert yields no second command and uses up no limit.
    var guards = GuardState()

    /// A respond transform for `playbooks`; `inventory`, when given, sizes blast-radius groups
    /// (assets sharing a tag value) for `max_percent`.
    public init(playbooks: PlaybookSet, topics: Topics, metrics: MetricsRegistry, inventory: InventoryStore? = nil) {
        self.responder = Responder(playbooks: playbooks, groupSize: { tag, value in
            (try? inventory?.count(tag: tag, value: value)) ?? nil
        })
        self.topics = topics
        self.metrics = metrics
    }

    public mutating func process(_ record: ConsumedRecord) -> StageOutput {
        switch parseObject(record, what: "alert") {
        case .failure(let letter): return StageOutput(deadLetters: [letter])
        case .success(let alert):
            var output = StageOutput()
            for command in responder.commands(for: alert, state: &guards) {
                let id = command["command_id"]?.stringValue ?? ""
                let target = command["target"]?.stringValue ?? ""
                output.records.append(OutgoingRecord(topic: topics.commands, key: Array((target.isEmpty ? id : target).utf8),
                                                     value: command.serialized(), timestamp: command["created_time"]?.intValue))
                metrics.increment("vigil_commands_total", labels: ["action": command["action"]?.stringValue ?? "",
                                                                   "mode": command["mode"]?.stringValue ?? "",
                                                                   "status": command["status"]?.stringValue ?? ""],
                                  help: "Commands emitted, by action, mode and status (planned, pending, blocked).")
            }
            return output
        }
    }
}

/// A stage that copies every record unchanged to another topic: the runner's own cost,
/// used by `scripts/bench` as the stage baseline against kcat.
public struct PassthroughProcessor: StageProcessor {
    let destination: String

    /// Copies records to `destination`.
    public init(destination: String) { self.destination = destination }

    public mutating func process(_ record: ConsumedRecord) -> StageOutput {
        StageOutput(records: [OutgoingRecord(topic: destination, key: record.key, value: record.value,
                                             headers: record.headers, timestamp: record.timestamp)])
    }
}
