import Detection
import OCSF
import Testing

/// One watermark per rule within a partials partition: a source shipped late is not late for a
/// rule merely because another rule on the same partition has seen newer times.
@Suite("Partition aggregator: a watermark per rule")
struct PartitionAggregatorTests {
    static let rules = """
        id: test.bruteforce
        version: 1
        title: failures
        severity: medium
        match:
          all:
            - field: api.operation
              equals: ConsoleLogin
            - field: status_id
              equals: 2
        window:
          type: tumbling
          size: 10m
          group_by: [actor.user.name]
          threshold: ">= 3"
        ---
        id: test.calls
        version: 1
        title: calls
        severity: low
        match:
          field: class_uid
          equals: 6003
        window:
          type: tumbling
          size: 10m
          group_by: [actor.user.name]
          threshold: ">= 1"
        """

    /// Partials in one partition's arrival order: the newer API call first, then the older
    /// console failures (their file was shipped later).
    static func partials() throws -> [Partial] {
        let rules = try rulesFrom(Self.rules)
        let selector = RuleSelector(rules: rules)
        var events = [cloudTrailCall("StopLogging", at: t0 + 40 * 60_000, uid: "call-1")]
        events += (0..<3).map { consoleLogin(user: "alice", at: t0 + Int64($0) * 60_000, uid: "login-\($0)") }
        var out: [Partial] = []
        for event in events {
            for case .partial(let partial) in selector.select(event) {
                out.append(try Partial(json: JSON.parse(partial.json().serialized())))
            }
        }
        return out
    }

    @Test("an older rule's partials are on time after a newer partial of another rule")
    func perRuleWatermark() throws {
        let rules = try rulesFrom(Self.rules)
        var partition = PartitionAggregator(rules: rules)
        var alerts: [JSON] = []
        for (offset, partial) in try Self.partials().enumerated() { alerts += partition.add(partial, offset: Int64(offset)) }
        alerts += partition.flush()
        #expect(partition.lateRecords == 0)
        #expect(Set(alerts.compactMap { $0.value(at: "vigil.rule.id")?.stringValue }) == ["test.bruteforce", "test.calls"])

        // One watermark for the whole partition (a single WindowAggregator) drops them as late.
        var shared = WindowAggregator(rules: rules)
        var sharedAlerts: [JSON] = []
        for (offset, partial) in try Self.partials().enumerated() { sharedAlerts += shared.add(partial, offset: Int64(offset)) }
        sharedAlerts += shared.flush()
        #expect(shared.lateRecords == 3)
        #expect(!sharedAlerts.contains { $0.value(at: "vigil.rule.id") == "test.bruteforce" })
    }

    @Test("idle advance fires every rule's windows, retained offsets cover every rule, unknown rules are counted")
    func idleAndOffsets() throws {
        let rules = try rulesFrom(Self.rules)
        var partition = PartitionAggregator(rules: rules)
        for (offset, partial) in try Self.partials().enumerated() { _ = partition.add(partial, offset: Int64(offset) + 10) }
        #expect(partition.holdsState)
        #expect(partition.oldestRetainedOffset() == 10)
        let fired = partition.advanceIdle(now: t0 + 2 * 3_600_000)
        #expect(fired.count == 2)
        #expect(!partition.holdsState && partition.oldestRetainedOffset() == nil)
        var stranger = try Self.partials()[0]
        stranger.ruleID = "not.a.rule"
        _ = partition.add(stranger, offset: 99)
        #expect(partition.unknownRuleRecords == 1)
    }

    /// Console failures by two users on two input partitions, each minute for 20 minutes: in
    /// arrival order as a consumer catching up hands them over (all of partition 0, then all of
    /// partition 1), and in event-time order.
    static func twoSources() throws -> (catchUp: [Partial], inOrder: [Partial]) {
        let rules = try rulesFrom(Self.rules)
        let selector = RuleSelector(rules: rules)
        func partials(user: String, source: String) -> [Partial] {
            (0..<20).flatMap { minute in
                let event = consoleLogin(user: user, at: t0 + Int64(minute) * 60_000, uid: "\(user)-\(minute)")
                return selector.select(event).compactMap { selection -> Partial? in
                    guard case .partial(var partial) = selection else { return nil }
                    partial.source = source
                    return partial
                }
            }
        }
        let first = partials(user: "alice", source: "vigil.enriched/0")
        let second = partials(user: "bob", source: "vigil.enriched/1")
        let inOrder = zip(first, second).flatMap { [$0, $1] }
        return (first + second, inOrder)
    }

    static func ids(_ alerts: [JSON]) -> Set<String> { Set(alerts.compactMap { OCSFEvent.uid($0) }) }

    @Test("a source read far ahead does not make another source's partials late")
    func slowestSourceHoldsTheWatermark() throws {
        let rules = try rulesFrom(Self.rules)
        let (catchUp, inOrder) = try Self.twoSources()
        func run(_ partials: [Partial], tracking: Bool) -> (alerts: Set<String>, late: Int) {
            var partition = PartitionAggregator(rules: rules, tracksSources: tracking,
                                                expectedSources: ["vigil.enriched/0", "vigil.enriched/1"])
            var alerts: [JSON] = []
            for (offset, partial) in partials.enumerated() { alerts += partition.add(partial, offset: Int64(offset)) }
            alerts += partition.flush()
            return (Self.ids(alerts), partition.lateRecords)
        }
        let expected = run(inOrder, tracking: true)
        #expect(expected.late == 0)
        #expect(expected.alerts.count == 4)  // 2 users x 2 windows (sign-ins are not API calls)
        // Without sources, bob's partials arrive after alice's 19th minute: most are late.
        let untracked = run(catchUp, tracking: false)
        #expect(untracked.late > 0)
        #expect(untracked.alerts != expected.alerts)
        // Tracking sources, the same arrival order gives the in-order result.
        let tracked = run(catchUp, tracking: true)
        #expect(tracked.late == 0)
        #expect(tracked.alerts == expected.alerts)
    }

    @Test("windows fire once every source has passed them; a silent source stops holding back in live mode")
    func slowestSourceAndIdleSources() throws {
        let rules = try rulesFrom(Self.rules)
        let (catchUp, _) = try Self.twoSources()
        let alice = catchUp.filter { $0.source == "vigil.enriched/0" }
        let bob = catchUp.filter { $0.source == "vigil.enriched/1" }
        // Offline-like (no idle): bob has sent one partial (minute 0), alice all 20 minutes:
        // nothing may fire before bob's progress passes the first window.
        var held = PartitionAggregator(rules: rules, tracksSources: true)
        var alerts = held.add(bob[0], offset: 0)
        for (offset, partial) in alice.enumerated() { alerts += held.add(partial, offset: Int64(offset) + 1) }
        #expect(alerts.isEmpty)
        // Bob's progress reaching minute 19 lets alice's and bob's first windows (0-10 min) fire.
        for (offset, partial) in bob.dropFirst().enumerated() { alerts += held.add(partial, offset: Int64(offset) + 100) }
        #expect(alerts.count == 2)
        #expect(held.lateRecords == 0)

        // Live: bob went silent 10 s ago (wall clock) with idle time 5 s: alice's progress alone counts.
        var live = PartitionAggregator(rules: rules, tracksSources: true, sourceIdleMillis: 5_000)
        var liveAlerts = live.add(bob[0], offset: 0, now: 1_000_000)
        for (offset, partial) in alice.enumerated() { liveAlerts += live.add(partial, offset: Int64(offset) + 1, now: 1_010_000) }
        #expect(liveAlerts.count == 1)  // alice's first window (bob's holds one failure)

        // An expected source that never sends holds everything back (offline-like), until, live,
        // it has been silent for the idle time.
        var waiting = PartitionAggregator(rules: rules, tracksSources: true, expectedSources: ["vigil.enriched/0", "vigil.enriched/9"])
        var waitingAlerts: [JSON] = []
        for (offset, partial) in alice.enumerated() { waitingAlerts += waiting.add(partial, offset: Int64(offset)) }
        #expect(waitingAlerts.isEmpty && waiting.lateRecords == 0)
        var expiring = PartitionAggregator(rules: rules, tracksSources: true, sourceIdleMillis: 5_000,
                                           expectedSources: ["vigil.enriched/0", "vigil.enriched/9"])
        var expiringAlerts = expiring.add(alice[0], offset: 0, now: 1_000_000)
        for (offset, partial) in alice.dropFirst().enumerated() { expiringAlerts += expiring.add(partial, offset: Int64(offset) + 1, now: 1_006_000) }
        #expect(expiringAlerts.count == 1)
    }
}
