import Detection
import Kafka
import OCSF
import Pipeline
@testable import Stages
import Testing

/// The detect aggregate processor after a takeover, given the snapshot the old owner wrote (no
/// broker: the state store's part is `AggregateStateStoreTests`). The new owner reads the
/// partition again from an offset before the snapshot's, as it does when the committed offset
/// trails the snapshot.
@Suite("Aggregate processor resuming from a snapshot")
struct AggregateRestoreTests {
    static let rules = """
        id: t.bruteforce
        version: 1
        title: failures in any 2 minutes
        severity: medium
        match: {field: status_id, equals: 2}
        window: {group_by: [actor.user.name], type: sliding, size: 2m, threshold: ">= 4", lateness: 10s}
        ---
        id: t.per_minute
        version: 1
        title: failures per minute
        severity: low
        match: {field: status_id, equals: 2}
        window: {group_by: [actor.user.name], type: tumbling, size: 1m, threshold: ">= 3", lateness: 10s}
        """
    static let topics = Topics(prefix: "ar.")
    static let tp = TopicPartition(topic: topics.detectPartials, partition: 0)

    /// Partials of failed and successful sign-ins by 6 users over 30 minutes, as records of one
    /// partials partition.
    static func records(rules: RuleSet) throws -> [ConsumedRecord] {
        let selector = RuleSelector(rules: rules)
        var records: [ConsumedRecord] = []
        let t0: Int64 = 1_780_000_000_000
        for step in 0..<900 {
            let user = (step * 7) % 6
            let time = t0 + Int64(step) * 2_000
            var event = OCSFEvent.base(class: .authentication, activityID: 1, activityName: "Logon", time: time,
                                       status: step % 5 == 4 ? .success : .failure, uid: "e\(step)", product: "CloudTrail", vendor: "AWS")
            event.set("actor.user.name", .string("user-\(user)"))
            for case .partial(let partial) in selector.select(event) {
                records.append(ConsumedRecord(topic: tp.topic, partition: tp.partition, offset: Int64(records.count), key: nil,
                                              value: partial.json().serialized(), headers: [], timestamp: time))
            }
        }
        return records
    }

    static func processor(_ rules: RuleSet) -> DetectAggregateProcessor {
        DetectAggregateProcessor(rules: rules, topics: topics, metrics: MetricsRegistry(), idleAdvanceMillis: nil)
    }

    /// Alert id -> serialized alert, of what `outputs` emitted.
    static func alerts(_ outputs: [StageOutput]) -> [String: String] {
        var out: [String: String] = [:]
        for record in outputs.flatMap(\.records) where record.topic == topics.alerts {
            out[String(decoding: record.key ?? [], as: UTF8.self)] = String(decoding: record.value, as: UTF8.self)
        }
        return out
    }

    /// The old owner after the records before `cut` (half of them by default), and its snapshot.
    static func oldOwner(cut: Int? = nil) throws -> (rules: RuleSet, records: [ConsumedRecord], cut: Int,
                                                      old: DetectAggregateProcessor, outputs: [StageOutput], snapshot: [UInt8]) {
        let rules = try RuleSet(rules: RuleSet.parse(yaml: Self.rules, file: "t.yaml"))
        let records = try Self.records(rules: rules)
        let cut = cut ?? records.count / 2
        var old = Self.processor(rules)
        let outputs = records[..<cut].map { old.process($0) }
        return (rules, records, cut, old, outputs, try #require(old.aggregators[Self.tp]).snapshot())
    }

    @Test("partials the snapshot holds are skipped; the rest fire what the old owner fired")
    func resumes() throws {
        var (rules, records, cut, old, before, bytes) = try Self.oldOwner()
        let committed = try #require(old.retainedOffset(for: Self.tp))
        #expect(committed < Int64(cut), "the test reads partials before the snapshot again")
        let after = Self.alerts(records[cut...].map { old.process($0) })
        #expect(after.count > 5)

        var new = Self.processor(rules)
        new.aggregators[Self.tp] = try PartitionAggregator(restoring: bytes, rules: rules, tracksSources: true)
        new.resumeFrom[Self.tp] = Int64(cut)
        let replayed = records[Int(committed)...].map { new.process($0) }
        #expect(replayed.prefix(cut - Int(committed)).allSatisfy { $0.records.isEmpty && $0.deadLetters.isEmpty })
        #expect(Self.alerts(replayed) == after)
        #expect(new.resumeFrom[Self.tp] == nil)
        // Not even counted as late: the partials before the snapshot were not taken again.
        #expect(new.aggregators[Self.tp]?.lateRecords == old.aggregators[Self.tp]?.lateRecords)
        #expect(!Self.alerts(before).isEmpty)
    }

    @Test("a rule changed since the snapshot rebuilds from the partials before it")
    func changedRuleRebuilds() throws {
        let (rules, records, cut, _, _, bytes) = try Self.oldOwner()

        // t.per_minute now needs 2 failures: a new meaning, a new version.
        var changed = rules.rules
        let index = try #require(changed.firstIndex { $0.id == "t.per_minute" })
        changed[index].version = 2
        changed[index].window?.threshold = try #require(Threshold(parsing: ">= 2"))
        let next = try RuleSet(rules: changed)
        let restored = try PartitionAggregator(restoring: bytes, rules: next, tracksSources: true)
        #expect(restored.restoreReport.reset == ["t.per_minute"])
        var new = Self.processor(next)
        new.aggregators[Self.tp] = restored
        new.resumeFrom[Self.tp] = Int64(cut)
        new.rebuildRules[Self.tp] = ["t.per_minute"]
        let resumed = Self.alerts(records.map { new.process($0) })

        // The changed rule fires as a fresh run from the first partial would; the other
        // continues from the snapshot and fires only after it.
        var fresh = Self.processor(next)
        let reference = Self.alerts(records.map { fresh.process($0) })
        let rule = { (alerts: [String: String], id: String) in alerts.filter { $0.value.contains("\"id\":\"\(id)\"") } }
        #expect(!rule(reference, "t.per_minute").isEmpty)
        #expect(rule(resumed, "t.per_minute") == rule(reference, "t.per_minute"))
        let unchanged = rule(reference, "t.bruteforce")
        let resumedUnchanged = rule(resumed, "t.bruteforce")
        #expect(!resumedUnchanged.isEmpty)
        #expect(resumedUnchanged.count < unchanged.count, "alerts before the snapshot are not fired again")
        #expect(resumedUnchanged.allSatisfy { unchanged[$0.key] == $0.value })
    }

    @Test("a snapshot the input no longer reaches is discarded")
    func discardsUnreachableSnapshot() throws {
        let (rules, records, _, _, _, bytes) = try Self.oldOwner(cut: 100)
        var new = Self.processor(rules)
        new.aggregators[Self.tp] = try PartitionAggregator(restoring: bytes, rules: rules, tracksSources: true)
        new.resumeFrom[Self.tp] = 100
        new.confirmedSnapshot[Self.tp] = (100, 0)
        // Retention removed offsets 100..<150: the first partial read is 150.
        _ = new.process(records[150])
        #expect(new.aggregators[Self.tp]?.openKeys == 1, "only the partial just read is held")
        #expect(new.confirmedSnapshot[Self.tp] == nil)
    }
}
