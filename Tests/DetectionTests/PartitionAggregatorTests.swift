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
}
