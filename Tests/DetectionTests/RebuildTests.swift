import Detection
import OCSF
import Testing

/// A takeover in the aggregate step: the new owner of a partials partition reads it again from
/// the offset the old owner last committed (its `oldestRetainedOffset()`), with empty state.
/// Whatever the moment of the takeover, the alerts the old owner emitted before it and the
/// alerts the new owner emits should together be exactly the alerts of one uninterrupted run:
/// none missing, none extra, the same contents for the same id. They are not yet: a known
/// issue (see the test).
@Suite("Aggregate state rebuilt from the committed offset")
struct RebuildTests {
    /// One rule of each kind whose state ends in a way that depends on what came before (a
    /// sliding window that fires and starts over, windows and sessions that close, a sequence
    /// that completes, an absence that fires), all on console sign-ins of one user.
    static let rules = """
        id: r.sliding
        version: 1
        title: failures in any 5 minutes
        severity: medium
        match: {field: status_id, equals: 2}
        window: {group_by: [actor.user.name], type: sliding, size: 5m, threshold: ">= 5", lateness: 30s}
        ---
        id: r.distinct
        version: 1
        title: addresses in any minute
        severity: medium
        match: {field: status_id, equals: 2}
        window: {group_by: [actor.user.name], type: sliding, size: 1m, aggregate: {distinct: src_endpoint.ip}, threshold: ">= 3", lateness: 30s}
        ---
        id: r.tumbling
        version: 1
        title: failures per 2 minutes
        severity: low
        match: {field: status_id, equals: 2}
        window: {group_by: [actor.user.name], type: tumbling, size: 2m, threshold: ">= 3", lateness: 30s}
        ---
        id: r.hopping
        version: 1
        title: failures per 2 minutes every minute
        severity: low
        match: {field: status_id, equals: 2}
        window: {group_by: [actor.user.name], type: hopping, size: 2m, advance: 1m, threshold: "== 4", lateness: 30s}
        ---
        id: r.session
        version: 1
        title: failure sessions
        severity: low
        match: {field: status_id, equals: 2}
        window: {group_by: [actor.user.name], type: session, gap: 30s, threshold: ">= 3", lateness: 30s}
        ---
        id: r.sequence
        version: 1
        title: failures then a success
        severity: high
        match: {field: api.operation, equals: ConsoleLogin}
        sequence:
          group_by: [actor.user.name]
          within: 5m
          steps:
            - match: {field: status_id, equals: 2}
              count: 3
            - match: {field: status_id, equals: 1}
          lateness: 30s
        ---
        id: r.absence
        version: 1
        title: a failure without a success
        severity: low
        match: {field: api.operation, equals: ConsoleLogin}
        absence:
          group_by: [actor.user.name]
          trigger: {field: status_id, equals: 2}
          expected: {field: status_id, equals: 1}
          within: 1m
          lateness: 30s
        """

    /// Bursts of failed sign-ins (some followed by a success) for `users` users over 40
    /// minutes, from four addresses; in time order, then shuffled within 20 s blocks (less
    /// than the 30 s lateness, so nothing is late in any run).
    static func events(users: Int, seed: UInt64) -> [JSON] {
        var generator = SeededGenerator(seed: seed)
        var events: [JSON] = []
        for user in 0..<users {
            var time = t0 + Int64.random(in: 0..<120_000, using: &generator)
            while time < t0 + 40 * 60_000 {
                for attempt in 0..<Int.random(in: 1...8, using: &generator) {
                    let ip = "203.0.113.\(Int.random(in: 1...4, using: &generator))"
                    events.append(consoleLogin(user: "user-\(user)", at: time, uid: "u\(user)-\(time)-\(attempt)", ip: ip))
                    time += Int64.random(in: 2_000...15_000, using: &generator)
                }
                if Bool.random(using: &generator) {
                    events.append(consoleLogin(user: "user-\(user)", at: time, uid: "u\(user)-\(time)-ok", failed: false))
                }
                time += Int64.random(in: 20_000...400_000, using: &generator)
            }
        }
        events.sort { (OCSFEvent.time($0) ?? 0, OCSFEvent.uid($0) ?? "") < (OCSFEvent.time($1) ?? 0, OCSFEvent.uid($1) ?? "") }
        return shuffledWithinBlocks(events, block: 20_000, using: &generator)
    }

    /// The partials of `events` in one partition, in arrival order (the offset is the index).
    static func partials(_ events: [JSON], rules: RuleSet) throws -> [Partial] {
        let selector = RuleSelector(rules: rules)
        var out: [Partial] = []
        for event in events {
            for case .partial(let partial) in selector.select(event) {
                out.append(try Partial(json: JSON.parse(partial.json().serialized())))
            }
        }
        return out
    }

    /// Adds alerts by id; returns the ids already there with other contents.
    @discardableResult
    static func byID(_ alerts: [JSON], into table: inout [String: String]) -> Set<String> {
        var changed = Set<String>()
        for alert in alerts {
            let id = OCSFEvent.uid(alert) ?? "?"
            let text = alert.jsonText
            if let earlier = table[id], earlier != text { changed.insert(id) }
            table[id] = text
        }
        return changed
    }

    @Test("a takeover at any offset neither misses nor adds alerts", arguments: [UInt64(1), 2, 3])
    func takeoverAtAnyOffset(seed: UInt64) throws {
        let rules = try rulesFrom(Self.rules)
        let partials = try Self.partials(Self.events(users: 12, seed: seed), rules: rules)
        #expect(partials.count > 2_000)
        // The uninterrupted run, and after each partial what it had emitted and would commit.
        var whole = PartitionAggregator(rules: rules)
        var emitted: [[JSON]] = []
        var commits: [Int64] = []
        for (index, partial) in partials.enumerated() {
            emitted.append(whole.add(partial, offset: Int64(index)))
            commits.append(whole.oldestRetainedOffset() ?? Int64(index + 1))
        }
        var reference: [String: String] = [:]
        Self.byID(emitted.flatMap { $0 } + whole.flush(), into: &reference)
        #expect(whole.lateRecords == 0)
        #expect(reference.count > 100, "the load fires many alerts (\(reference.count))")

        // Takeover points evenly spread (each costs a rebuild from its commit point).
        let cuts = Array(Set((0..<24).map { $0 * partials.count / 24 + Int(seed) })).filter { $0 < partials.count }.sorted()
        var differing: [String] = []
        for cut in cuts {
            var seen: [String: String] = [:]
            Self.byID(emitted[...cut].flatMap { $0 }, into: &seen)
            var successor = PartitionAggregator(rules: rules)
            let start = Int(commits[cut])
            var replayed: [JSON] = []
            for index in start..<partials.count {
                replayed += successor.add(partials[index], offset: Int64(index))
            }
            replayed += successor.flush()
            let changed = Self.byID(replayed, into: &seen)
            let extra = Set(seen.keys).subtracting(reference.keys)
            let missing = Set(reference.keys).subtracting(seen.keys)
            if !extra.isEmpty || !missing.isEmpty || !changed.isEmpty {
                let rulesOf = { (ids: Set<String>, table: [String: String]) in
                    ids.compactMap { table[$0].flatMap { try? JSON.parse(Array($0.utf8)) }?.value(at: "vigil.rule.id")?.stringValue }.sorted()
                }
                differing.append("after offset \(cut) (commit \(start)): extra \(rulesOf(extra, seen)), missing \(rulesOf(missing, reference)), changed \(rulesOf(changed, seen))")
            }
        }
        // Known issue (issue 5): the commit point is the oldest partial still held, but state
        // that already ended (a sliding window that fired and started over, a completed
        // sequence, a closed window or session) depended on partials before it too. A rebuild
        // that re-reads only the later partials of such a unit ends it differently: a sliding
        // window missing its first failure fires one failure later, with other bounds (one alert
        // extra, the uninterrupted run's missing when it fired after the takeover). Moving
        // the commit point back to the start of every ended unit it falls inside makes this
        // test pass, but units of different keys overlap in offsets, so the commit point then
        // never advances at all; the fix needs the aggregate state stored (docs/rules.md).
        withKnownIssue("a rebuild re-reads part of windows that already ended (issue 5)") {
            #expect(differing.isEmpty, "\(differing.count) of \(cuts.count) takeover points differ: \(differing.prefix(3))")
        }
    }
}
