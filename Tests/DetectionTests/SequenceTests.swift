import Detection
import OCSF
import Testing

/// Three failed console logins then a success for one user within 5 minutes.
let sequenceYAML = """
    id: t.sequence
    version: 2
    title: T
    severity: high
    sequence:
      group_by: [actor.user.name]
      within: 5m
      steps:
        - match: {all: [{field: class_uid, equals: 3002}, {field: status_id, equals: 2}]}
          count: 3
        - match: {all: [{field: class_uid, equals: 3002}, {field: status_id, equals: 1}]}
    """

/// Console logins for alice at `t0 + seconds`: `F` failed, `S` succeeded.
func logins(_ pattern: [(String, Double)], user: String = "alice") -> [JSON] {
    pattern.enumerated().map { index, item in
        consoleLogin(user: user, at: t0 + Int64(item.1 * 1000), uid: "\(user)-\(index)", failed: item.0 == "F")
    }
}

@Suite("Sequences")
struct SequenceTests {
    let rules: RuleSet

    init() throws {
        rules = try rulesFrom(sequenceYAML)
    }

    @Test func failuresThenSuccessFire() throws {
        let alerts = DetectRun(rules: rules, events: logins([("F", 0), ("F", 10), ("F", 20), ("S", 30)])).alerts
        try #require(alerts.count == 1)
        let alert = alerts[0]
        #expect(alert.value(at: "metadata.uid") == .string(StableID.hash(["t.sequence", "2", "alice", "alice-0"])))
        #expect(alert.value(at: "vigil.window.start") == .int(t0))
        #expect(alert.value(at: "vigil.window.end") == .int(t0 + 30_000))
        #expect(alert["time"] == .int(t0 + 30_000))
        #expect(alert.value(at: "vigil.count") == 4)
        #expect(alert.value(at: "vigil.event_uids") == ["alice-0", "alice-1", "alice-2", "alice-3"])
        #expect(alert.value(at: "vigil.sequence.steps") == [3, 1])
        #expect(alert.value(at: "vigil.group_key") == "alice")
    }

    @Test func nearMisses() {
        // Too few failures; no success; success first; another user's success.
        #expect(DetectRun(rules: rules, events: logins([("F", 0), ("F", 10), ("S", 30)])).alerts.isEmpty)
        #expect(DetectRun(rules: rules, events: logins([("F", 0), ("F", 10), ("F", 20), ("F", 30)])).alerts.isEmpty)
        #expect(DetectRun(rules: rules, events: logins([("S", 0), ("F", 10), ("F", 20), ("F", 30)])).alerts.isEmpty)
        let split = logins([("F", 0), ("F", 10), ("F", 20)]) + logins([("S", 30)], user: "bob")
        #expect(DetectRun(rules: rules, events: split).alerts.isEmpty)
    }

    @Test func spanMustBeUnderWithin() {
        #expect(DetectRun(rules: rules, events: logins([("F", 0), ("F", 10), ("F", 20), ("S", 300)])).alerts.isEmpty)
        #expect(DetectRun(rules: rules, events: logins([("F", 0), ("F", 10), ("F", 20), ("S", 299.999)])).alerts.count == 1)
        // A failure too old for the success drops out, but the three after it still count.
        let alerts = DetectRun(rules: rules, events: logins([("F", 0), ("F", 100), ("F", 200), ("F", 250), ("S", 320)])).alerts
        #expect(alerts.map { $0.value(at: "vigil.window.start") } == [.int(t0 + 100_000)])
    }

    @Test func theLatestQualifyingRunIsReportedOncePerCompletion() throws {
        let events = logins([("F", 0), ("F", 10), ("F", 20), ("F", 30), ("F", 40), ("S", 50), ("S", 60)])
        let alerts = DetectRun(rules: rules, events: events).alerts
        try #require(alerts.count == 1)
        #expect(alerts[0].value(at: "vigil.event_uids") == ["alice-2", "alice-3", "alice-4", "alice-5"])
        // After a completion, matching starts over.
        let again = DetectRun(rules: rules, events: events + logins([("F", 70), ("F", 80), ("F", 90), ("S", 100)]).map {
            var event = $0
            event.set("metadata.uid", .string("again-" + (event.value(at: "metadata.uid")?.stringValue ?? "")))
            return event
        }).alerts
        #expect(again.count == 2)
    }

    @Test func outOfOrderWithinLatenessGivesTheSameAlert() throws {
        let events = logins([("F", 0), ("F", 5), ("F", 10), ("S", 15), ("F", 16), ("F", 17), ("F", 18), ("S", 19)])
        let reference = DetectRun(rules: rules, events: events).alerts.map(\.jsonText)
        #expect(reference.count == 2)
        var generator = SeededGenerator(seed: 11)
        for _ in 0..<20 {
            let run = DetectRun(rules: rules, events: events.shuffled(using: &generator))
            #expect(run.aggregator.lateRecords == 0)
            #expect(run.alerts.map(\.jsonText) == reference)
        }
    }

    @Test func aSuccessBeforeTheFailuresInEventTimeDoesNotCountWhateverItsArrival() {
        // The success arrives last but happened first.
        let events = logins([("F", 10), ("F", 20), ("F", 30), ("S", 5)])
        #expect(DetectRun(rules: rules, events: events).alerts.isEmpty)
    }

    @Test func oneEventAdvancesAtMostOneStep() throws {
        let rules = try rulesFrom("""
            id: t.twice
            version: 1
            title: T
            severity: low
            sequence:
              group_by: [actor.user.name]
              within: 1m
              steps:
                - match: {field: class_uid, equals: 3002}
                - match: {field: status_id, equals: 1}
            """)
        let selections = RuleSelector(rules: rules).select(consoleLogin(user: "alice", at: t0, uid: "s", failed: false))
        #expect(selections.count == 2)
        #expect(DetectRun(rules: rules, events: logins([("S", 0)])).alerts.isEmpty)
        #expect(DetectRun(rules: rules, events: logins([("F", 0), ("S", 1)])).alerts.count == 1)
        #expect(DetectRun(rules: rules, events: logins([("S", 0), ("S", 1)])).alerts.count == 1)
    }

    @Test func partialsCarryTheStepAndOldRecordsStillRead() throws {
        let selections = RuleSelector(rules: rules).select(consoleLogin(user: "alice", at: t0, uid: "u"))
        guard case .partial(let partial) = try #require(selections.first) else {
            Issue.record("expected a partial")
            return
        }
        #expect(partial.step == 0)
        #expect(partial.json()["step"] == 0)
        #expect(try Partial(json: JSON.parse(partial.json().serialized())) == partial)
        // A record written before steps existed reads with no step; a sequence rule cannot
        // place it and counts it as valueless.
        var old = partial.json()
        old["step"] = nil
        let decoded = try Partial(json: old)
        #expect(decoded.step == nil)
        var aggregator = WindowAggregator(rules: rules)
        #expect(aggregator.add(decoded, offset: 0).isEmpty)
        #expect(aggregator.valuelessRecords == 1)
        old["step"] = "first"
        #expect(throws: RuleError.self) { try Partial(json: old) }
    }

    @Test func runsExpireWithTheWatermarkAndReleaseOffsets() throws {
        let selector = RuleSelector(rules: rules)
        var aggregator = WindowAggregator(rules: rules)
        for (offset, event) in logins([("F", 0), ("F", 10)]).enumerated() {
            guard case .partial(let partial) = selector.select(event).first else { continue }
            _ = aggregator.add(partial, offset: Int64(offset))
        }
        #expect(aggregator.oldestRetainedOffset() == 0)
        _ = aggregator.advanceWatermark(to: t0 + 300_000)
        #expect(aggregator.oldestRetainedOffset() == 1)
        _ = aggregator.advanceWatermark(to: t0 + 310_000)
        #expect(aggregator.oldestRetainedOffset() == nil)
        #expect(aggregator.openKeys == 0)
    }
}

/// StopLogging not followed by StartLogging for the same trail within 15 minutes.
let absenceYAML = """
    id: t.absence
    version: 1
    title: T
    severity: high
    absence:
      group_by: [actor.user.name]
      trigger: {field: api.operation, equals: StopLogging}
      expected: {field: api.operation, equals: StartLogging}
      within: 15m
    """

@Suite("Absence")
struct AbsenceTests {
    let rules: RuleSet

    init() throws {
        rules = try rulesFrom(absenceYAML)
    }

    func calls(_ items: [(String, Double)]) -> [JSON] {
        items.enumerated().map { cloudTrailCall($1.0, at: t0 + Int64($1.1 * 1000), uid: "c\($0)") }
    }

    @Test func firesWhenTheWatermarkPassesTheDeadline() throws {
        var events = calls([("StopLogging", 0)])
        // Another user's call at 15m30s - 1 ms: watermark 14m59.999s.
        var other = cloudTrailCall("DescribeTrails", at: t0 + 929_999, uid: "o1")
        other.set("actor.user.name", "trent")
        events.append(other)
        #expect(DetectRun(rules: rules, events: events, flush: false).alerts.isEmpty)
        var later = cloudTrailCall("StopLogging", at: t0 + 930_000, uid: "o2")
        later.set("actor.user.name", "trent")
        let alerts = DetectRun(rules: rules, events: events + [later], flush: false).alerts
        try #require(alerts.count == 1)
        #expect(alerts[0].value(at: "metadata.uid") == .string(StableID.hash(["t.absence", "1", "mallory", "c0"])))
        #expect(alerts[0].value(at: "vigil.window.start") == .int(t0))
        #expect(alerts[0].value(at: "vigil.window.end") == .int(t0 + 900_000))
    }

    @Test func theExpectedEventInTimeCancels() {
        #expect(DetectRun(rules: rules, events: calls([("StopLogging", 0), ("StartLogging", 600)])).alerts.isEmpty)
        // Arriving first but happening after the trigger, within lateness.
        #expect(DetectRun(rules: rules, events: calls([("StartLogging", 20), ("StopLogging", 0)])).alerts.isEmpty)
        // At the deadline is too late.
        #expect(DetectRun(rules: rules, events: calls([("StopLogging", 0), ("StartLogging", 900)])).alerts.count == 1)
        // Before the trigger does not count.
        #expect(DetectRun(rules: rules, events: calls([("StartLogging", 0), ("StopLogging", 10)])).alerts.count == 1)
    }

    @Test func repeatedTriggersFoldIntoOneExpectation() throws {
        let alerts = DetectRun(rules: rules, events: calls([("StopLogging", 0), ("StopLogging", 60), ("StopLogging", 1000)])).alerts
        #expect(alerts.map { $0.value(at: "vigil.count") } == [2, 1])
        #expect(alerts.map { $0.value(at: "vigil.window.start") } == [.int(t0), .int(t0 + 1_000_000)])
    }
}
