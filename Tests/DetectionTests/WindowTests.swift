import Detection
import OCSF
import Testing

@Suite("Sliding count: aws.console.bruteforce")
struct WindowTests {
    let rules: RuleSet
    let rule: Rule

    init() throws {
        rules = try loadShippedRules()
        rule = try #require(rules.rule(id: "aws.console.bruteforce"))
    }

    /// Failed logins for `user` at `t0 + seconds`.
    func failures(_ user: String, atSeconds seconds: [Int64], uidPrefix: String? = nil) -> [JSON] {
        seconds.enumerated().map { index, second in
            consoleLogin(user: user, at: t0 + second * 1000, uid: "\(uidPrefix ?? user)-\(index)")
        }
    }

    @Test func fiveFailuresWithinFiveMinutesGiveOneAlert() throws {
        let run = DetectRun(rules: rules, events: failures("alice", atSeconds: [0, 60, 120, 180, 240]))
        try #require(run.alerts.count == 1)
        let alert = run.alerts[0]
        let end = t0 + 240_000
        let id = StableID.hash(["aws.console.bruteforce", "1", "alice", String(t0), String(end)])
        #expect(alert["class_uid"] == 2004)
        #expect(alert["activity_id"] == 1)
        #expect(alert["type_uid"] == 200_401)
        #expect(alert["time"] == .int(end))
        #expect(alert["severity_id"] == 3)
        #expect(alert.value(at: "metadata.uid") == .string(id))
        #expect(alert.value(at: "metadata.product.name") == "Vigil")
        #expect(alert.value(at: "finding_info.uid") == .string(id))
        #expect(alert.value(at: "finding_info.analytic.uid") == "aws.console.bruteforce")
        #expect(alert.value(at: "finding_info.analytic.type_id") == 1)
        #expect(alert.value(at: "finding_info.analytic.version") == "1")
        #expect(alert.value(at: "finding_info.attacks.0.technique.uid") == "T1110")
        #expect(alert.value(at: "finding_info.first_seen_time") == .int(t0))
        #expect(alert.value(at: "finding_info.last_seen_time") == .int(end))
        #expect(alert.value(at: "vigil.count") == 5)
        #expect(alert.value(at: "vigil.window.start") == .int(t0))
        #expect(alert.value(at: "vigil.window.end") == .int(end))
        #expect(alert.value(at: "vigil.group_key") == "alice")
        #expect(alert.value(at: "vigil.group") == ["actor.user.name": "alice"])
        #expect(alert.value(at: "vigil.event_uids") == ["alice-0", "alice-1", "alice-2", "alice-3", "alice-4"])
        #expect(alert.value(at: "vigil.rule") == ["id": "aws.console.bruteforce", "version": 1])
        #expect(alert.value(at: "actor.user.name") == "alice")
        #expect(alert.value(at: "src_endpoint.ip") == "203.0.113.7")
        #expect(alert.value(at: "cloud.account.uid") == "111122223333")
    }

    @Test func alertFiresWhenLaterEventsMoveTheWatermark() {
        var events = failures("alice", atSeconds: [0, 60, 120, 180, 240])
        // Still within the 30 s lateness of the fifth failure: nothing is final yet.
        events.append(consoleLogin(user: "bob", at: t0 + 270_000, uid: "bob-0"))
        #expect(DetectRun(rules: rules, events: events, flush: false).alerts.isEmpty)
        // 30 s + 1 ms after the fifth failure: the watermark passes it and the alert fires.
        events.append(consoleLogin(user: "bob", at: t0 + 270_001, uid: "bob-1"))
        let run = DetectRun(rules: rules, events: events, flush: false)
        #expect(run.alerts.count == 1)
        #expect(run.aggregator.watermark == t0 + 240_001)
    }

    @Test func fourFailuresGiveNoAlert() {
        #expect(DetectRun(rules: rules, events: failures("alice", atSeconds: [0, 60, 120, 180])).alerts.isEmpty)
    }

    @Test func fiveFailuresSpreadOverSixMinutesGiveNoAlert() {
        #expect(DetectRun(rules: rules, events: failures("alice", atSeconds: [0, 90, 180, 270, 360])).alerts.isEmpty)
        // Exactly five minutes between first and fifth is outside the window (span < size).
        #expect(DetectRun(rules: rules, events: failures("alice", atSeconds: [0, 75, 150, 225, 300])).alerts.isEmpty)
        #expect(DetectRun(rules: rules, events: failures("alice", atSeconds: [0, 75, 150, 225, 299])).alerts.count == 1)
    }

    @Test func successfulLoginsAndOtherEventsDoNotCount() {
        var events = failures("alice", atSeconds: [0, 60, 120, 180])
        events.append(consoleLogin(user: "alice", at: t0 + 200_000, uid: "ok", failed: false))
        events.append(cloudTrailCall("DescribeTrails", at: t0 + 210_000, uid: "other"))
        #expect(DetectRun(rules: rules, events: events).alerts.isEmpty)
    }

    @Test func eventsWithoutTheGroupFieldAreNotSelected() {
        var event = consoleLogin(user: "x", at: t0, uid: "anon")
        event.set("actor.user.name", nil)
        #expect(RuleSelector(rules: rules).select(event).isEmpty)
        event.set("actor.user.name", "")
        #expect(RuleSelector(rules: rules).select(event).isEmpty)
    }

    @Test func twoUsersInterleaved() throws {
        let alice = failures("alice", atSeconds: [0, 50, 100, 150, 200])
        let bob = failures("bob", atSeconds: [10, 60, 110, 160, 210])
        let carol = failures("carol", atSeconds: [20, 70, 120])
        var events: [JSON] = []
        for index in 0..<5 {
            events.append(alice[index])
            events.append(bob[index])
            if index < carol.count { events.append(carol[index]) }
        }
        let alerts = DetectRun(rules: rules, events: events).alerts
        try #require(alerts.count == 2)
        let byUser = Dictionary(uniqueKeysWithValues: alerts.map { ($0.value(at: "vigil.group_key")!.stringValue!, $0) })
        #expect(byUser["alice"]?.value(at: "vigil.window.start") == .int(t0))
        #expect(byUser["alice"]?.value(at: "vigil.window.end") == .int(t0 + 200_000))
        #expect(byUser["bob"]?.value(at: "vigil.window.start") == .int(t0 + 10_000))
        #expect(byUser["bob"]?.value(at: "vigil.window.end") == .int(t0 + 210_000))
        #expect(byUser["bob"]?.value(at: "vigil.event_uids") == ["bob-0", "bob-1", "bob-2", "bob-3", "bob-4"])
        #expect(byUser["carol"] == nil)
    }

    @Test func oneAlertPerBurstThenCountingStartsOver() throws {
        // Ten failures in 90 s: two alerts of five, not six alerts for every window of five.
        let alerts = DetectRun(rules: rules, events: failures("alice", atSeconds: Array(stride(from: 0, to: 100, by: 10)))).alerts
        try #require(alerts.count == 2)
        #expect(alerts.map { $0.value(at: "vigil.window.start") } == [.int(t0), .int(t0 + 50_000)])
        #expect(alerts.map { $0.value(at: "vigil.count") } == [5, 5])
    }

    @Test func shuffledArrivalGivesIdenticalAlertBytes() throws {
        // 16 failures over 22.5 s (inside the 30 s lateness): alice 10, bob 6, same-millisecond
        // ties included, so only the (time, uid) order decides.
        var events: [JSON] = []
        for index in 0..<16 {
            let user = index % 8 < 5 ? "alice" : "bob"
            let time = t0 + Int64(index / 2) * 3000
            events.append(consoleLogin(user: user, at: time, uid: "e\(String(index, radix: 16))"))
        }
        let reference = DetectRun(rules: rules, events: events).alerts.map(\.jsonText).sorted()
        #expect(reference.count == 3)
        var generator = SeededGenerator(seed: 42)
        for _ in 0..<25 {
            let shuffled = events.shuffled(using: &generator)
            let run = DetectRun(rules: rules, events: shuffled)
            #expect(run.aggregator.lateRecords == 0)
            #expect(run.alerts.map(\.jsonText).sorted() == reference)
        }
    }

    @Test func latePartialIsCountedAndDropped() {
        var events = failures("alice", atSeconds: [100, 110, 120, 130])
        // 31 s behind the newest event: behind the watermark.
        events.append(consoleLogin(user: "alice", at: t0 + 99_000, uid: "late"))
        let run = DetectRun(rules: rules, events: events)
        // Late for both console rules: aws.console.bruteforce and its _then_success sequence.
        #expect(run.aggregator.lateRecords == 2)
        #expect(run.alerts.isEmpty)
    }

    @Test func redeliveredPartialCountsOnce() {
        var events = failures("alice", atSeconds: [0, 10, 20, 30])
        events.append(events[2])
        #expect(DetectRun(rules: rules, events: events).alerts.isEmpty)
    }

    @Test func flushFiresWhatIsPending() throws {
        let selector = RuleSelector(rules: rules)
        var aggregator = WindowAggregator(rules: rules)
        for (offset, event) in failures("alice", atSeconds: [0, 1, 2, 3, 4]).enumerated() {
            guard case .partial(let partial) = selector.select(event).first else {
                Issue.record("not selected")
                return
            }
            #expect(aggregator.add(partial, offset: Int64(offset)).isEmpty)
        }
        #expect(aggregator.openKeys == 1)
        #expect(aggregator.oldestRetainedOffset() == 0)
        let alerts = aggregator.flush()
        #expect(alerts.count == 1)
        #expect(aggregator.openKeys == 0)
        #expect(aggregator.oldestRetainedOffset() == nil)
        #expect(aggregator.flush().isEmpty)
    }

    @Test func oldestRetainedOffsetMovesForwardAfterFiringAndEviction() throws {
        let selector = RuleSelector(rules: rules)
        var aggregator = WindowAggregator(rules: rules)
        var offset: Int64 = 0
        func feed(_ event: JSON) -> [JSON] {
            defer { offset += 1 }
            guard case .partial(let partial) = selector.select(event).first else { return [] }
            return aggregator.add(partial, offset: offset)
        }
        // Offset 0: a lone failure for carol, which expires later.
        _ = feed(consoleLogin(user: "carol", at: t0, uid: "c0"))
        // Offsets 1-5: a burst for alice.
        for event in failures("alice", atSeconds: [10, 20, 30, 40, 50]) { _ = feed(event) }
        #expect(aggregator.oldestRetainedOffset() == 0)
        #expect(aggregator.openKeys == 2)
        // Offset 6 at +90 s makes alice's burst final: it fires and releases offsets 1-5.
        #expect(feed(consoleLogin(user: "bob", at: t0 + 90_000, uid: "b0")).count == 1)
        #expect(aggregator.oldestRetainedOffset() == 0)
        #expect(aggregator.openKeys == 2)
        // Offset 7 at +6 min (watermark +5.5 min): carol's failure can no longer share a
        // window with anything to come and is evicted; bob's (+90 s) still can.
        _ = feed(consoleLogin(user: "dave", at: t0 + 360_000, uid: "d0"))
        #expect(aggregator.openKeys == 2)
        #expect(aggregator.oldestRetainedOffset() == 6)
        // At +6.5 min bob's failure is 5 minutes old and goes too.
        #expect(aggregator.advanceWatermark(to: t0 + 390_000).isEmpty)
        #expect(aggregator.openKeys == 1)
        #expect(aggregator.oldestRetainedOffset() == 7)
    }

    @Test func idleAdvanceFinalizesAndEvicts() {
        let selector = RuleSelector(rules: rules)
        var aggregator = WindowAggregator(rules: rules)
        for (offset, event) in failures("alice", atSeconds: [0, 1, 2, 3, 4]).enumerated() {
            if case .partial(let partial) = selector.select(event).first { _ = aggregator.add(partial, offset: Int64(offset)) }
        }
        #expect(aggregator.advanceWatermark(to: t0 + 4_000).isEmpty)
        #expect(aggregator.advanceWatermark(to: t0 + 4_001).count == 1)
        #expect(aggregator.watermark == t0 + 4_001)
        // The watermark never goes back.
        #expect(aggregator.advanceWatermark(to: t0).isEmpty)
        #expect(aggregator.watermark == t0 + 4_001)
        #expect(aggregator.openKeys == 0)
    }

    @Test func partialsOfUnknownRulesAreCountedAndDropped() {
        var aggregator = WindowAggregator(rules: rules)
        let partial = Partial(ruleID: "no.such.rule", ruleVersion: 1, groupKey: "k", groupValues: [:], eventTime: t0, eventUID: "u")
        #expect(aggregator.add(partial, offset: 0).isEmpty)
        #expect(aggregator.unknownRuleRecords == 1)
        #expect(aggregator.openKeys == 0)
    }
}

@Suite("Selection and partials")
struct SelectionTests {
    @Test func stopLoggingGivesOneAlert() throws {
        let rules = try loadShippedRules()
        let selector = RuleSelector(rules: rules)
        let event = cloudTrailCall("StopLogging", at: t0 + 5, uid: "evt-1")
        let selections = selector.select(event)
        try #require(selections.count == 1)
        guard case .alert(let alert) = selections[0] else {
            Issue.record("expected an alert")
            return
        }
        let id = StableID.hash(["aws.cloudtrail.logging_disabled", "1", "evt-1"])
        #expect(alert.value(at: "metadata.uid") == .string(id))
        #expect(alert["time"] == .int(t0 + 5))
        #expect(alert["severity_id"] == 4)
        #expect(alert["severity"] == "High")
        #expect(alert["class_uid"] == 2004)
        #expect(alert.value(at: "finding_info.attacks") == [["technique": ["uid": "T1562.008"]]])
        #expect(alert.value(at: "finding_info.types") == ["aws", "cloudtrail", "defense-evasion"])
        #expect(alert.value(at: "vigil.count") == 1)
        #expect(alert.value(at: "vigil.event_uids") == ["evt-1"])
        #expect(alert.value(at: "vigil.asset.id") == "trail/main")
        #expect(alert.value(at: "actor.user.name") == "mallory")
        // Same event, same bytes.
        #expect(selector.select(event) == selections)
        #expect(try selector.select(JSON.parse(event.serialized())) == selections)
    }

    @Test func otherCloudTrailEventsGiveNothing() throws {
        let selector = RuleSelector(rules: try loadShippedRules())
        #expect(selector.select(cloudTrailCall("DescribeTrails", at: t0, uid: "e1")).isEmpty)
        #expect(selector.select(cloudTrailCall("UpdateTrail", at: t0, uid: "e2")).isEmpty)
        #expect(selector.select(cloudTrailCall("StopLogging", service: "s3.amazonaws.com", at: t0, uid: "e3")).isEmpty)
        #expect(selector.select(cloudTrailCall("DeleteTrail", at: t0, uid: "e4")).count == 1)
        var timeless = cloudTrailCall("StopLogging", at: t0, uid: "e5")
        timeless["time"] = nil
        #expect(selector.select(timeless).isEmpty)
    }

    @Test func partialRoundTripsThroughJSON() throws {
        let selector = RuleSelector(rules: try loadShippedRules())
        let selections = selector.select(consoleLogin(user: "a|b%c", at: t0, uid: "u1"))
        guard case .partial(let partial) = try #require(selections.first) else {
            Issue.record("expected a partial")
            return
        }
        #expect(partial.groupKey == "a%7Cb%25c")
        #expect(partial.kafkaKey == "aws.console.bruteforce|a%7Cb%25c")
        #expect(partial.groupValues == ["actor.user.name": "a|b%c"])
        #expect(partial.context.value(at: "src_endpoint.ip") == "203.0.113.7")
        #expect(partial.context["api"] == nil)
        let decoded = try Partial(json: JSON.parse(partial.json().serialized()))
        #expect(decoded == partial)
    }
}
