import Detection
import OCSF
import Testing

/// A takeover in the aggregate step. Whatever its moment, the alerts the old owner emitted before
/// it and the alerts the new owner emits should together be exactly the alerts of one
/// uninterrupted run: none missing, none extra, the same contents for the same id.
///
/// - Resuming from a snapshot (the state as it was after some partial, and that partial's
///   offset), which the aggregate step writes to its state topic: exact.
/// - The fallback when no snapshot exists, reading again from the committed offset (the oldest
///   partial still held) with empty state: not exact, a known issue (see the test).
@Suite("Aggregate state after a takeover")
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

    /// A takeover after partial `cut`: the old owner emitted `emitted` up to it, `successor`
    /// takes the partials from `start` on and is flushed. How the alerts of both differ from
    /// `reference` (rule ids of alerts extra, missing and changed), or `nil` when they do not.
    static func takeover(after cut: Int, emitted: [[JSON]], reference: [String: String], partials: [Partial],
                         successor: PartitionAggregator, resumingAt start: Int) -> String? {
        var seen: [String: String] = [:]
        byID(emitted[...cut].flatMap { $0 }, into: &seen)
        var successor = successor
        var replayed: [JSON] = []
        for index in start..<partials.count {
            replayed += successor.add(partials[index], offset: Int64(index))
        }
        replayed += successor.flush()
        let changed = byID(replayed, into: &seen)
        let extra = Set(seen.keys).subtracting(reference.keys)
        let missing = Set(reference.keys).subtracting(seen.keys)
        guard !extra.isEmpty || !missing.isEmpty || !changed.isEmpty else { return nil }
        let rulesOf = { (ids: Set<String>, table: [String: String]) in
            ids.compactMap { table[$0].flatMap { try? JSON.parse(Array($0.utf8)) }?.value(at: "vigil.rule.id")?.stringValue }.sorted()
        }
        return "after offset \(cut) (resumed at \(start)): extra \(rulesOf(extra, seen)), missing \(rulesOf(missing, reference)), changed \(rulesOf(changed, seen))"
    }

    @Test("resuming from a snapshot after a takeover at any offset neither misses nor adds alerts", arguments: [UInt64(1), 2, 3])
    func takeoverFromSnapshot(seed: UInt64) throws {
        let rules = try rulesFrom(Self.rules)
        let partials = try Self.partials(Self.events(users: 12, seed: seed), rules: rules)
        #expect(partials.count > 2_000)
        // The uninterrupted run; a snapshot every `interval` partials, as the stage takes them
        // every few seconds, each with the offset it resumes from.
        let interval = 97
        var whole = PartitionAggregator(rules: rules, tracksSources: true)
        var emitted: [[JSON]] = []
        var snapshots: [(next: Int, bytes: [UInt8])] = [(0, whole.snapshot())]
        for (index, partial) in partials.enumerated() {
            emitted.append(whole.add(partial, offset: Int64(index)))
            if (index + 1) % interval == 0 { snapshots.append((index + 1, whole.snapshot())) }
        }
        var reference: [String: String] = [:]
        Self.byID(emitted.flatMap { $0 } + whole.flush(), into: &reference)
        #expect(reference.count > 100, "the load fires many alerts (\(reference.count))")

        // Takeover after every 41st partial: the new owner resumes from the latest snapshot
        // taken before it and reads the partials after that snapshot again.
        var differing: [String] = []
        var cuts = 0
        for cut in stride(from: Int(seed), to: partials.count, by: 41) {
            cuts += 1
            let snapshot = snapshots.last { $0.next <= cut + 1 }!
            let successor = try PartitionAggregator(restoring: snapshot.bytes, rules: rules, tracksSources: true)
            if let difference = Self.takeover(after: cut, emitted: emitted, reference: reference, partials: partials,
                                              successor: successor, resumingAt: snapshot.next) {
                differing.append(difference)
            }
        }
        #expect(cuts > 50)
        #expect(differing.isEmpty, "\(differing.count) of \(cuts) takeover points differ: \(differing.prefix(3))")
    }

    /// A fresh aggregator for `rules` that took `partials`, at offsets 0, 1, 2, ...
    static func aggregator(rules: RuleSet, taking partials: ArraySlice<Partial>) -> PartitionAggregator {
        var aggregator = PartitionAggregator(rules: rules)
        for (index, partial) in partials.enumerated() { _ = aggregator.add(partial, offset: Int64(index)) }
        return aggregator
    }

    @Test("a restore keeps the state of rules of the same version and parameters only")
    func restoreByRuleVersion() throws {
        let rules = try rulesFrom(Self.rules)
        let aggregator = Self.aggregator(rules: rules, taking: try Self.partials(Self.events(users: 3, seed: 9), rules: rules).prefix(200))
        #expect(aggregator.openKeys(rule: "r.sliding") > 0)
        let bytes = aggregator.snapshot()
        let same = try PartitionAggregator(restoring: bytes, rules: rules)
        #expect(same.restoreReport.restored.sorted() == rules.rules.map(\.id).sorted())
        #expect(same.openKeys == aggregator.openKeys)
        #expect(same.oldestRetainedOffset() == aggregator.oldestRetainedOffset())

        // r.sliding in a new version starts empty; r.absence is no longer loaded.
        var changed = rules.rules.filter { $0.id != "r.absence" }
        let index = try #require(changed.firstIndex { $0.id == "r.sliding" })
        changed[index].version = 2
        let restored = try PartitionAggregator(restoring: bytes, rules: RuleSet(rules: changed))
        #expect(restored.restoreReport.reset == ["r.sliding"])
        #expect(restored.restoreReport.dropped == ["r.absence"])
        #expect(restored.openKeys(rule: "r.sliding") == 0)
        #expect(restored.openKeys(rule: "r.tumbling") == aggregator.openKeys(rule: "r.tumbling"))

        // Same version, other parameters (a longer span, another step count): reset too, so
        // state of one shape never meets a rule of another.
        var reshaped = rules.rules
        let sequence = try #require(reshaped.firstIndex { $0.id == "r.sequence" })
        reshaped[sequence].sequence?.steps[0].count = 4
        let session = try #require(reshaped.firstIndex { $0.id == "r.session" })
        reshaped[session].window?.gapMillis = 45_000
        let again = try PartitionAggregator(restoring: bytes, rules: RuleSet(rules: reshaped))
        #expect(again.restoreReport.reset.sorted() == ["r.sequence", "r.session"])
        #expect(again.restoreReport.restored.count == rules.rules.count - 2)
    }

    @Test("bytes that are not a snapshot are refused with an error",
          arguments: ["", "{}", "[1,2]", "VGAS", "VGAS\u{7}", "VGAS\u{4}\u{7f}", "VGAS\u{4}\u{2}\u{ff}\u{ff}\u{ff}\u{ff}\u{7}"])
    func invalidSnapshot(text: String) throws {
        let rules = try rulesFrom(Self.rules)
        #expect(throws: (any Error).self) { try PartitionAggregator(restoring: Array(text.utf8), rules: rules) }
    }

    @Test("a corrupted snapshot is refused or restores state that runs without crashing", arguments: [UInt64(11), 12, 13])
    func corruptedSnapshot(seed: UInt64) throws {
        let rules = try rulesFrom(Self.rules)
        let partials = try Self.partials(Self.events(users: 4, seed: seed), rules: rules)
        let bytes = Self.aggregator(rules: rules, taking: partials.prefix(300)).snapshot()
        var generator = SeededGenerator(seed: seed)
        var refused = 0
        var restored = 0
        for _ in 0..<300 {
            var corrupt = bytes
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                corrupt[Int.random(in: 0..<corrupt.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            }
            guard var resumed = try? PartitionAggregator(restoring: corrupt, rules: rules) else {
                refused += 1
                continue
            }
            restored += 1
            for (index, partial) in partials.dropFirst(300).prefix(200).enumerated() { _ = resumed.add(partial, offset: Int64(300 + index)) }
            _ = resumed.flush()
        }
        #expect(refused > 0)
        #expect(refused + restored == 300)
    }

    @Test("a truncated snapshot is refused with an error")
    func truncatedSnapshot() throws {
        let rules = try rulesFrom(Self.rules)
        let bytes = Self.aggregator(rules: rules, taking: try Self.partials(Self.events(users: 2, seed: 4), rules: rules).prefix(50)).snapshot()
        for length in [1, bytes.count / 3, bytes.count - 1] {
            #expect(throws: (any Error).self) { try PartitionAggregator(restoring: Array(bytes.prefix(length)), rules: rules) }
        }
    }

    @Test("without a snapshot, a rebuild from the committed offset at any offset neither misses nor adds alerts", arguments: [UInt64(1), 2, 3])
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
            if let difference = Self.takeover(after: cut, emitted: emitted, reference: reference, partials: partials,
                                              successor: PartitionAggregator(rules: rules), resumingAt: Int(commits[cut])) {
                differing.append(difference)
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
        // never advances at all. The aggregate step therefore resumes from snapshots (the test
        // above); this rebuild is only its fallback while no snapshot exists (docs/rules.md).
        withKnownIssue("a rebuild re-reads part of windows that already ended (issue 5)") {
            #expect(differing.isEmpty, "\(differing.count) of \(cuts.count) takeover points differ: \(differing.prefix(3))")
        }
    }
}
