import Detection
import OCSF
import Testing

/// A sliding count rule over `user` keys: `>= 3` events in 10 minutes, no lateness, so each
/// partial becomes final as soon as a later one arrives.
private func cappedRule(maxKeys: Int?, extra: String = "") -> String {
    """
    id: t.capped
    version: 1
    title: capped
    severity: high
    match: {field: class_uid, equals: 3002}
    window:
      group_by: [actor.user.name]
      type: sliding
      size: 10m
      threshold: ">= 3"
      lateness: 0s
    \(maxKeys.map { "max_keys: \($0)\n" } ?? "")\(extra)
    """
}

/// A partial of `rule` for `user` at `t0 + seconds`.
private func partial(_ user: String, _ seconds: Int64, rule: String = "t.capped", uid: String? = nil) -> Partial {
    Partial(ruleID: rule, ruleVersion: 1, groupKey: user, groupValues: ["actor.user.name": user],
            eventTime: t0 + seconds * 1000, eventUID: uid ?? "\(user)-\(seconds)")
}

/// Feeds `partials` in order (offsets 0, 1, ...) and flushes; returns the alerts' group keys.
private func run(_ aggregator: inout WindowAggregator, _ partials: [Partial]) -> [JSON] {
    var alerts: [JSON] = []
    for (offset, item) in partials.enumerated() { alerts += aggregator.add(item, offset: Int64(offset)) }
    return alerts + aggregator.flush()
}

private func groups(_ alerts: [JSON]) -> [String] {
    alerts.compactMap { $0.value(at: "vigil.group_key")?.stringValue }
}

@Suite("Cap on keys per rule")
struct KeyCapTests {
    @Test func aNewKeyBeyondTheCapEvictsTheLeastRecentlyActiveKey() throws {
        let rules = try rulesFrom(cappedRule(maxKeys: 2))
        var aggregator = WindowAggregator(rules: rules)
        #expect(aggregator.maxKeys(rule: "t.capped") == 2)
        // alice opened first but was active last: bob (last event at 1 s) is the one to go.
        let alerts = run(&aggregator, [
            partial("alice", 0), partial("bob", 1), partial("alice", 2),
            partial("carol", 3),                          // third key: evicts bob
            partial("alice", 4),                          // alice's third event: fires
            partial("carol", 5), partial("carol", 6),     // carol's third: fires
            partial("bob", 7), partial("bob", 8),         // bob starts afresh: two events only
        ])
        #expect(groups(alerts) == ["alice", "carol"])
        #expect(alerts.map { $0.value(at: "vigil.count") } == [.int(3), .int(3)])
        #expect(aggregator.evictedKeys == 1)
        #expect(aggregator.evictedKeysByRule == ["t.capped": 1])

        // Without the cap bob's earlier event counts and he fires too.
        var uncapped = WindowAggregator(rules: try rulesFrom(cappedRule(maxKeys: nil)))
        let all = run(&uncapped, [
            partial("alice", 0), partial("bob", 1), partial("alice", 2), partial("carol", 3), partial("alice", 4),
            partial("carol", 5), partial("carol", 6), partial("bob", 7), partial("bob", 8),
        ])
        #expect(groups(all) == ["alice", "carol", "bob"])
        #expect(uncapped.evictedKeys == 0)
    }

    @Test func openKeysStayWithinTheCap() throws {
        let rules = try rulesFrom(cappedRule(maxKeys: 5))
        var aggregator = WindowAggregator(rules: rules)
        for index in 0..<100 {
            _ = aggregator.add(partial("user\(index)", Int64(index)), offset: Int64(index))
            #expect(aggregator.openKeys(rule: "t.capped") <= 5)
        }
        #expect(aggregator.openKeys(rule: "t.capped") == 5)
        #expect(aggregator.openKeys == 5)
        #expect(aggregator.evictedKeys == 95)
        // The survivors are the five most recent; their events still count.
        let alerts = run(&aggregator, (95..<100).map { partial("user\($0)", 200 + Int64($0)) }
                                      + (95..<100).map { partial("user\($0)", 300 + Int64($0)) })
        #expect(groups(alerts) == (95..<100).map { "user\($0)" })
        #expect(aggregator.evictedKeys == 95)
    }

    @Test func equalLastEventTimesEvictTheSmallestGroupKeyWhateverTheArrivalOrder() throws {
        let rules = try rulesFrom(cappedRule(maxKeys: 2))
        for order in [["xavier", "walter"], ["walter", "xavier"]] {
            var aggregator = WindowAggregator(rules: rules)
            let alerts = run(&aggregator, [
                partial(order[0], 0), partial(order[1], 0),
                partial("yves", 1),                                       // evicts walter (w < x)
                partial("xavier", 2), partial("xavier", 3),
                partial("walter", 4), partial("walter", 5),
            ])
            // xavier keeps his first event and fires; walter lost his and has two. walter's
            // return evicts yves (the least recently active then).
            #expect(groups(alerts) == ["xavier"], "\(order)")
            #expect(aggregator.evictedKeys == 2, "\(order)")
        }
    }

    @Test func evictionIsDeterministicForTheSameInput() throws {
        let rules = try rulesFrom(cappedRule(maxKeys: 7))
        var generator = SeededGenerator(seed: 42)
        var partials: [Partial] = []
        var time: Int64 = 0
        for index in 0..<3_000 {
            time += Int64.random(in: 0...2, using: &generator)
            partials.append(partial("u\(Int.random(in: 0..<40, using: &generator))", time, uid: "e\(index)"))
        }
        var first = WindowAggregator(rules: rules)
        var second = WindowAggregator(rules: rules)
        let a = run(&first, partials)
        let b = run(&second, partials)
        #expect(!a.isEmpty)
        #expect(first.evictedKeys > 0)
        #expect(a.map(\.jsonText) == b.map(\.jsonText))
        #expect(first.evictedKeysByRule == second.evictedKeysByRule)

        // Through select and the partition aggregator as the stage runs it: the same again.
        var partitionA = PartitionAggregator(rules: rules)
        var partitionB = PartitionAggregator(rules: rules)
        var alertsA: [JSON] = []
        var alertsB: [JSON] = []
        for (offset, item) in partials.enumerated() {
            alertsA += partitionA.add(item, offset: Int64(offset))
            alertsB += partitionB.add(item, offset: Int64(offset))
        }
        alertsA += partitionA.flush()
        alertsB += partitionB.flush()
        #expect(alertsA.map(\.jsonText) == a.map(\.jsonText))
        #expect(alertsB.map(\.jsonText) == a.map(\.jsonText))
        #expect(partitionA.evictedKeysByRule == ["t.capped": first.evictedKeys])
    }

    @Test func withoutEvictionsTheCapChangesNothing() throws {
        var generator = SeededGenerator(seed: 7)
        var partials: [Partial] = []
        for index in 0..<2_000 {
            partials.append(partial("u\(Int.random(in: 0..<30, using: &generator))", Int64(index / 3), uid: "e\(index)"))
        }
        var capped = WindowAggregator(rules: try rulesFrom(cappedRule(maxKeys: 30)))
        var uncapped = WindowAggregator(rules: try rulesFrom(cappedRule(maxKeys: nil)))
        let a = run(&capped, partials)
        let b = run(&uncapped, partials)
        #expect(capped.evictedKeys == 0)
        #expect(a.map(\.jsonText) == b.map(\.jsonText))
    }

    @Test func theStageDefaultAppliesToRulesWithoutMaxKeys() throws {
        let rules = try rulesFrom(cappedRule(maxKeys: nil))
        var aggregator = WindowAggregator(rules: rules, maxKeysPerRule: 3)
        #expect(aggregator.maxKeys(rule: "t.capped") == 3)
        for index in 0..<10 { _ = aggregator.add(partial("user\(index)", Int64(index)), offset: Int64(index)) }
        #expect(aggregator.openKeys == 3)
        #expect(aggregator.evictedKeys == 7)
        // A rule's own max_keys wins over the default.
        let own = WindowAggregator(rules: try rulesFrom(cappedRule(maxKeys: 8)), maxKeysPerRule: 3)
        #expect(own.maxKeys(rule: "t.capped") == 8)
        #expect(WindowAggregator(rules: rules).maxKeys(rule: "t.capped") == WindowAggregator.defaultMaxKeysPerRule)
        var partition = PartitionAggregator(rules: rules, maxKeysPerRule: 2)
        for index in 0..<4 { _ = partition.add(partial("user\(index)", Int64(index)), offset: Int64(index)) }
        #expect(partition.openKeys(rule: "t.capped") == 2)
        #expect(partition.evictedKeys(rule: "t.capped") == 2)
    }

    @Test func anEvictedSequenceRunDoesNotComplete() throws {
        let yaml = """
            id: t.seq
            version: 1
            title: seq
            severity: high
            max_keys: 1
            sequence:
              group_by: [actor.user.name]
              within: 5m
              lateness: 0s
              steps:
                - match: {field: status_id, equals: 2}
                - match: {field: status_id, equals: 1}
            """
        let rules = try rulesFrom(yaml)
        let events = [
            consoleLogin(user: "alice", at: t0, uid: "a1", failed: true),
            consoleLogin(user: "bob", at: t0 + 1000, uid: "b1", failed: true),        // evicts alice's run
            consoleLogin(user: "alice", at: t0 + 2000, uid: "a2", failed: false),     // evicts bob's
            consoleLogin(user: "carol", at: t0 + 3000, uid: "c1", failed: true),      // evicts alice's new key
            consoleLogin(user: "carol", at: t0 + 4000, uid: "c2", failed: false),     // completes carol's
        ]
        let capped = DetectRun(rules: rules, events: events)
        #expect(groups(capped.alerts) == ["carol"])
        #expect(capped.aggregator.evictedKeysByRule == ["t.seq": 3])
        let uncapped = DetectRun(rules: try rulesFrom(yaml.replacing("max_keys: 1", with: "max_keys: 10")), events: events)
        #expect(groups(uncapped.alerts) == ["alice", "carol"])
        #expect(uncapped.aggregator.evictedKeys == 0)
    }

    @Test func suppressionsAreCappedToo() throws {
        // Every event fires (sliding, >= 1) and opens a 1 h suppression for its key.
        let rules = try rulesFrom("""
            id: t.sup
            version: 1
            title: sup
            severity: high
            match: {field: class_uid, equals: 3002}
            suppress: 1h
            max_keys: 1
            window:
              group_by: [actor.user.name]
              type: sliding
              size: 1m
              threshold: ">= 1"
              lateness: 0s
            """)
        var aggregator = WindowAggregator(rules: rules)
        var alerts: [JSON] = []
        // Each partial is made final (and fires) before the next arrives, so only the
        // suppression periods compete for the one place.
        for (offset, (user, seconds)) in [("alice", 0), ("alice", 60), ("bob", 120), ("alice", 180)].enumerated() {
            alerts += aggregator.add(partial(user, Int64(seconds), rule: "t.sup"), offset: Int64(offset))
            alerts += aggregator.advanceWatermark(to: t0 + Int64(seconds) * 1000 + 1)
        }
        // alice at 60 s falls in her period; bob's alert evicts that period, so alice fires again.
        #expect(groups(alerts) == ["alice", "bob", "alice"])
        #expect(aggregator.suppressedAlerts == 1)
        #expect(aggregator.evictedKeysByRule == ["t.sup": 2])
    }

    // MARK: Validation

    static let invalid: [(value: String, reason: String)] = [
        ("0", "from 1 to"), ("-5", "from 1 to"), ("1.5", "whole number"), ("many", "whole number"),
        ("100000001", "from 1 to"), ("[1]", "whole number"),
    ]

    @Test(arguments: invalid.indices)
    func invalidMaxKeysIsRejectedWithFileAndLine(_ index: Int) {
        let sample = Self.invalid[index]
        let yaml = cappedRule(maxKeys: nil, extra: "max_keys: \(sample.value)\n")
        do {
            let rules = try RuleSet.parse(yaml: yaml, file: "rules/capped.yaml")
            Issue.record("max_keys \(sample.value): parsed \(rules.count) rule(s)")
        } catch {
            #expect(error.code == .invalidRule, "\(error)")
            #expect(error.line == 12, "\(error)")
            #expect(error.reason.contains(sample.reason), "\(error)")
            #expect(error.description.hasPrefix("rules/capped.yaml:12: "), "\(error)")
        }
    }

    @Test func maxKeysOnASingleEventRuleIsRejected() {
        let yaml = "id: t.single\nversion: 1\ntitle: s\nseverity: low\nmatch: {field: class_uid, equals: 3002}\nmax_keys: 10\n"
        do {
            _ = try RuleSet.parse(yaml: yaml, file: "rules/single.yaml")
            Issue.record("parsed")
        } catch {
            #expect(error.code == .invalidRule)
            #expect(error.line == 6)
            #expect(error.reason.contains("group key"))
        }
    }

    @Test func maxKeysParses() throws {
        let rule = try #require(try RuleSet.parse(yaml: cappedRule(maxKeys: 250), file: "w.yaml").first)
        #expect(rule.maxKeys == 250)
        #expect(try RuleSet.parse(yaml: cappedRule(maxKeys: nil), file: "w.yaml").first?.maxKeys == nil)
    }

    @Test func theShippedRulesStillLoad() throws {
        let rules = try loadShippedRules()
        #expect(rules.rules.allSatisfy { $0.maxKeys == nil || $0.isStateful })
    }

    // MARK: Contributing event uids

    @Test func anAlertListsAtMostAHundredEventUIDsAndTheFullCount() throws {
        let tumbling = try rulesFrom(cappedRule(maxKeys: nil).replacing("type: sliding", with: "type: tumbling"))
        var aggregator = WindowAggregator(rules: tumbling)
        let alerts = run(&aggregator, (0..<150).map { partial("alice", Int64($0)) })
        let alert = try #require(alerts.first)
        #expect(alerts.count == 1)
        #expect(alert.value(at: "vigil.count") == .int(150))
        let uids = try #require(alert.value(at: "vigil.event_uids")?.arrayValue)
        #expect(uids.count == AlertBuilder.maximumEventUIDs)
        #expect(AlertBuilder.maximumEventUIDs == 100)
        #expect(uids.first == .string("alice-0"))
        #expect(uids.last == .string("alice-99"))
        #expect(alert.value(at: "finding_info.related_events")?.arrayValue?.count == 100)

        // A sliding window that fires on its 150th event lists its oldest 100.
        let sliding = try rulesFrom(cappedRule(maxKeys: nil).replacing(">= 3", with: ">= 150"))
        var slidingAggregator = WindowAggregator(rules: sliding)
        let burst = run(&slidingAggregator, (0..<150).map { partial("bob", Int64($0)) })
        #expect(burst.count == 1)
        #expect(burst.first?.value(at: "vigil.count") == .int(150))
        #expect(burst.first?.value(at: "vigil.event_uids")?.arrayValue?.count == 100)

        // And the builder caps whatever it is given.
        let rule = try #require(tumbling.rules.first)
        let built = AlertBuilder.window(rule: rule, groupKey: "k", groupValues: [:], windowStart: t0, windowEnd: t0 + 1,
                                        count: 500, eventUIDs: (0..<500).map { "e\($0)" }, context: .object([:]))
        #expect(built.value(at: "vigil.event_uids")?.arrayValue?.count == 100)
        #expect(built.value(at: "vigil.count") == .int(500))
    }
}
