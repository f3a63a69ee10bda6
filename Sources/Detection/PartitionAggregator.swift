import OCSF

/// The aggregate state of one partials partition: a ``WindowAggregator`` per stateful rule, so
/// every rule's watermark follows that rule's own partials.
///
/// Partials of every rule share the partition (they are keyed by rule and group), and log
/// sources reach Vigil with different delays: with one watermark per partition, a CloudTrail
/// file shipped ten minutes after a flow-log batch would make that file's console-login partials
/// late for the brute-force rule merely because a flow-log rule had seen newer times. With one
/// watermark per rule, a rule's partials are late only behind that rule's own newest partial.
/// Within a rule nothing changes (see ``WindowAggregator``), and the result still depends only on
/// each rule's partials in partition order, which the select step fixes by key.
///
/// **Sources.** The partials of one partition come from every input partition of the select
/// step, and those are not read at the same pace: catching up on a backlog, a consumer receives
/// long runs of one input partition before the next, so one source can be minutes of event time
/// ahead of another. With `tracksSources`, the partition keeps each source's progress (the newest
/// event time of its partials, by ``Partial/source``) and no rule's watermark passes the slowest
/// source's progress minus the rule's lateness: a source that is behind is not late because
/// another ran ahead. In live mode a source silent for `sourceIdleMillis` of wall-clock time
/// stops holding the watermark back (as an idle partition's watermark follows the wall clock).
/// A source can only hold the watermark back once the partition knows of it: `expectedSources`
/// (every partition of the select step's input) are known from the start, and until each has
/// sent a partial (or, live, stayed silent for `sourceIdleMillis`) no watermark moves.
public struct PartitionAggregator: Sendable {
    private var byRule: [String: WindowAggregator] = [:]
    /// Partials dropped because no stateful rule has their rule id.
    public private(set) var unknownRuleRecords = 0
    /// Whether the watermarks wait for the slowest source (see the type's documentation).
    public let tracksSources: Bool
    /// Live mode: a source whose last partial arrived this long ago (wall clock) no longer holds
    /// the watermarks back; `nil` (offline, replay): a source always does.
    public let sourceIdleMillis: Int64?
    /// Each source's newest event time (`nil`: expected, nothing seen yet) and the wall-clock
    /// time its last partial arrived (for an expected source, when the partition began).
    private var sources: [String: (newest: Int64?, seenAt: Int64)] = [:]
    /// Sources known before their first partial; registered at the first partial.
    private var expectedSources: [String]
    /// The cap last applied to every rule.
    private var appliedCap: Int64?
    /// The stateful rules' ids, sorted: the order in which rules fire together.
    private var ruleOrder: [String] = []
    /// Each stateful rule's version and state signature: a snapshot's state of a rule is
    /// restored only into the same.
    private var ruleVersions: [String: (version: Int, signature: String)] = [:]
    /// After ``init(restoring:rules:maxKeysPerRule:tracksSources:sourceIdleMillis:)``: which
    /// rules got their state back; empty otherwise.
    public private(set) var restoreReport = RestoreReport()

    /// An aggregator for the stateful rules of `rules` (single-event rules are ignored). A
    /// rule without `max_keys` holds at most `maxKeysPerRule` keys.
    public init(rules: RuleSet, maxKeysPerRule: Int = WindowAggregator.defaultMaxKeysPerRule,
                tracksSources: Bool = false, sourceIdleMillis: Int64? = nil, expectedSources: [String] = []) {
        self.tracksSources = tracksSources
        self.sourceIdleMillis = sourceIdleMillis
        self.expectedSources = expectedSources
        for rule in rules.rules where rule.isStateful {
            guard let single = try? RuleSet(rules: [rule]) else { continue }
            byRule[rule.id] = WindowAggregator(rules: single, maxKeysPerRule: maxKeysPerRule)
            ruleVersions[rule.id] = (rule.version, rule.stateSignature)
        }
        ruleOrder = byRule.keys.sorted()
    }

    /// Takes one partial read at `offset` (at wall-clock time `now`, live mode) and returns the
    /// alerts it fires: its own rule's, and other rules' when the slowest source moved on.
    public mutating func add(_ partial: Partial, offset: Int64, now: Int64 = 0) -> [JSON] {
        var cap: Int64?
        if tracksSources, let source = partial.source {
            if !expectedSources.isEmpty {
                for expected in expectedSources where sources[expected] == nil { sources[expected] = (nil, now) }
                expectedSources = []
            }
            let newest = max(sources[source]?.newest ?? partial.eventTime, partial.eventTime)
            sources[source] = (newest, now)
            cap = slowestSource(now: now)
        }
        guard let index = byRule.index(forKey: partial.ruleID) else {
            unknownRuleRecords += 1
            guard let cap else { return [] }
            return applyCap(cap)
        }
        // Changed in place: one lookup, and the rule's aggregator is not copied.
        var alerts = byRule.values[index].add(partial, offset: offset, cap: cap)
        if let cap { alerts += applyCap(cap) }
        return alerts
    }

    /// The progress of the slowest source that still holds the watermark back (`Int64.min`
    /// while an expected source has sent nothing); `nil` when none does.
    private func slowestSource(now: Int64) -> Int64? {
        var slowest: Int64?
        for (_, source) in sources {
            if let sourceIdleMillis, now - source.seenAt >= sourceIdleMillis { continue }
            let progress = source.newest ?? .min
            slowest = min(slowest ?? progress, progress)
        }
        return slowest
    }

    /// When the slowest source moved on, lets every rule's watermark follow (up to its own
    /// newest partial).
    private mutating func applyCap(_ cap: Int64) -> [JSON] {
        guard appliedCap.map({ cap > $0 }) ?? true else { return [] }
        appliedCap = cap
        var alerts: [JSON] = []
        for id in ruleOrder {
            alerts += byRule[id]?.advanceCapped(cap) ?? []  // changed in place
        }
        return alerts
    }

    /// Live mode, an idle partition: moves every rule's watermark to `now` minus that rule's
    /// lateness and returns the alerts that fire, by rule id.
    public mutating func advanceIdle(now: Int64) -> [JSON] {
        var alerts: [JSON] = []
        for id in byRule.keys.sorted() {
            guard var aggregator = byRule.removeValue(forKey: id) else { continue }
            alerts += aggregator.advanceWatermark(to: now - aggregator.latenessMillis)
            byRule[id] = aggregator
        }
        return alerts
    }

    /// End of input: every rule's ``WindowAggregator/flush()``, by rule id.
    public mutating func flush() -> [JSON] {
        var alerts: [JSON] = []
        for id in byRule.keys.sorted() {
            guard var aggregator = byRule.removeValue(forKey: id) else { continue }
            alerts += aggregator.flush()
            byRule[id] = aggregator
        }
        return alerts
    }

    /// The smallest offset any rule still holds; `nil` when nothing is held.
    public func oldestRetainedOffset() -> Int64? {
        byRule.values.compactMap { $0.oldestRetainedOffset() }.min()
    }

    /// Partials dropped because they arrived behind their rule's watermark.
    public var lateRecords: Int { byRule.values.reduce(0) { $0 + $1.lateRecords } }
    /// Partials dropped because they lack the value or step their rule needs.
    public var valuelessRecords: Int { byRule.values.reduce(0) { $0 + $1.valuelessRecords } }
    /// Alerts withheld by `suppress`.
    public var suppressedAlerts: Int { byRule.values.reduce(0) { $0 + $1.suppressedAlerts } }
    /// ``suppressedAlerts`` by rule id.
    public var suppressedAlertsByRule: [String: Int] {
        var out: [String: Int] = [:]
        for aggregator in byRule.values {
            out.merge(aggregator.suppressedAlertsByRule) { $0 + $1 }
        }
        return out
    }
    /// (Rule, group key) pairs holding state.
    public var openKeys: Int { byRule.values.reduce(0) { $0 + $1.openKeys } }
    /// Group keys of rule `id` holding state.
    public func openKeys(rule id: String) -> Int { byRule[id]?.openKeys ?? 0 }
    /// Keys evicted by the cap on keys per rule (`max_keys`), by rule id.
    public var evictedKeysByRule: [String: Int] {
        var out: [String: Int] = [:]
        for (id, aggregator) in byRule {
            let evicted = aggregator.evictedKeys
            if evicted > 0 { out[id] = evicted }
        }
        return out
    }
    /// Every eviction of ``evictedKeysByRule``.
    public var evictedKeys: Int { byRule.values.reduce(0) { $0 + $1.evictedKeys } }
    /// Evictions of rule `id`'s keys.
    public func evictedKeys(rule id: String) -> Int { byRule[id]?.evictedKeys ?? 0 }
    /// Whether any rule holds state (open keys or a running suppression).
    public var holdsState: Bool { byRule.values.contains { $0.holdsState } }
}

extension PartitionAggregator {
    /// A partition's aggregate state as ``snapshot()`` writes it.
    struct Snapshot {
        struct RuleState {
            var id: String
            var version: Int
            /// ``Rule/stateSignature`` when saved.
            var signature: String
            var state: WindowAggregator.State
        }
        struct Source {
            var name: String
            var newest: Int64?
            var seenAt: Int64
        }
        /// The first bytes of every snapshot.
        static let magic: [UInt8] = Array("VGAS".utf8)
        /// Bumped when the layout changes; a snapshot of another format is not restored.
        static let currentFormat = 2
        var rules: [RuleState]
        var unknownRuleRecords: Int
        var sources: [Source]
        var expectedSources: [String]
        var appliedCap: Int64?
    }

    /// The whole state as bytes: every rule's keys, pending partials, engine state, suppressions
    /// and watermark, and the sources' progress. An aggregator restored from them
    /// (``init(restoring:rules:maxKeysPerRule:tracksSources:sourceIdleMillis:)``) and given the
    /// partials that follow behaves exactly as this one does. The layout is Vigil's own (see
    /// `SnapshotCoding.swift`), versioned by a format number.
    public func snapshot() -> [UInt8] {
        let snapshot = Snapshot(
            rules: ruleOrder.compactMap { id in
                byRule[id].map { Snapshot.RuleState(id: id, version: ruleVersions[id]?.version ?? 0,
                                                    signature: ruleVersions[id]?.signature ?? "", state: $0.state) }
            },
            unknownRuleRecords: unknownRuleRecords,
            sources: sources.keys.sorted().map { Snapshot.Source(name: $0, newest: sources[$0]!.newest, seenAt: sources[$0]!.seenAt) },
            expectedSources: expectedSources, appliedCap: appliedCap)
        var writer = SnapshotWriter()
        snapshot.write(to: &writer)
        return writer.bytes
    }

    /// An aggregator for `rules` resuming from `bytes` (a ``snapshot()``). A rule whose id,
    /// version and state parameters (``Rule/stateSignature``) are as in the snapshot gets its
    /// state back; any other rule starts empty (it is new or its definition changed), and the
    /// state of rules no longer loaded is dropped: all are listed in ``restoreReport``. Throws
    /// when the bytes are not a snapshot of this format.
    public init(restoring bytes: [UInt8], rules: RuleSet, maxKeysPerRule: Int = WindowAggregator.defaultMaxKeysPerRule,
                tracksSources: Bool = false, sourceIdleMillis: Int64? = nil) throws {
        var reader = SnapshotReader(bytes)
        let snapshot = try Snapshot(reading: &reader)
        self.init(rules: rules, maxKeysPerRule: maxKeysPerRule, tracksSources: tracksSources, sourceIdleMillis: sourceIdleMillis)
        var report = RestoreReport()
        for saved in snapshot.rules {
            guard let rule = rules.rules.first(where: { $0.id == saved.id }), rule.isStateful else {
                report.dropped.append(saved.id)
                continue
            }
            guard rule.version == saved.version, rule.stateSignature == saved.signature, let single = try? RuleSet(rules: [rule]),
                  let restored = WindowAggregator(rules: single, maxKeysPerRule: maxKeysPerRule, state: saved.state) else {
                report.reset.append(saved.id)
                continue
            }
            byRule[saved.id] = restored
            report.restored.append(saved.id)
        }
        let saved = Set(snapshot.rules.map(\.id))
        report.added = ruleOrder.filter { !saved.contains($0) }
        unknownRuleRecords = snapshot.unknownRuleRecords
        for source in snapshot.sources { sources[source.name] = (source.newest, source.seenAt) }
        expectedSources = snapshot.expectedSources
        appliedCap = snapshot.appliedCap
        restoreReport = report
    }
}

/// What a restore from a snapshot did with each rule's saved state.
public struct RestoreReport: Sendable, Equatable {
    /// Rules whose state came back.
    public var restored: [String] = []
    /// Rules loaded now with another version, or other window, sequence, absence, first_seen,
    /// baseline or suppress parameters, than the snapshot's: they start empty.
    public var reset: [String] = []
    /// Rules in the snapshot that are not loaded (or no longer stateful): their state is dropped.
    public var dropped: [String] = []
    /// Stateful rules loaded now that the snapshot does not have: they start empty.
    public var added: [String] = []

    public init() {}
}

/// A snapshot that cannot be restored.
public struct SnapshotError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

// MARK: Snapshot layout (see SnapshotCoding.swift)

extension PartitionAggregator.Snapshot: SnapshotCodable {
    func write(to writer: inout SnapshotWriter) {
        writer.raw(Self.magic)
        writer.int(Self.currentFormat)
        writer.array(rules) { writer, rule in
            writer.string(rule.id)
            writer.int(rule.version)
            writer.string(rule.signature)
            writer.value(rule.state)
        }
        writer.int(unknownRuleRecords)
        writer.array(sources) { writer, source in
            writer.string(source.name)
            writer.optional(source.newest) { $0.int($1) }
            writer.int(source.seenAt)
        }
        writer.strings(expectedSources)
        writer.optional(appliedCap) { $0.int($1) }
    }

    init(reading reader: inout SnapshotReader) throws {
        guard (try? reader.raw(count: Self.magic.count)) == Self.magic else {
            throw SnapshotError("not an aggregate snapshot (no VGAS header)")
        }
        let format = try reader.int()
        guard format == Self.currentFormat else {
            throw SnapshotError("aggregate snapshot format \(format) is not \(Self.currentFormat)")
        }
        rules = try reader.array { reader in
            RuleState(id: try reader.string(), version: try reader.int(), signature: try reader.string(), state: try reader.value())
        }
        unknownRuleRecords = try reader.int()
        sources = try reader.array { reader in
            Source(name: try reader.string(), newest: try reader.optional { try $0.int64() }, seenAt: try reader.int64())
        }
        expectedSources = try reader.strings()
        appliedCap = try reader.optional { try $0.int64() }
        guard reader.isAtEnd else { throw SnapshotError("aggregate snapshot invalid (bytes after its end)") }
    }
}
