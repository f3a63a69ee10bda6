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
public struct PartitionAggregator: Sendable {
    private var byRule: [String: WindowAggregator] = [:]
    /// Partials dropped because no stateful rule has their rule id.
    public private(set) var unknownRuleRecords = 0

    /// An aggregator for the stateful rules of `rules` (single-event rules are ignored). A
    /// rule without `max_keys` holds at most `maxKeysPerRule` keys.
    public init(rules: RuleSet, maxKeysPerRule: Int = WindowAggregator.defaultMaxKeysPerRule) {
        for rule in rules.rules where rule.isStateful {
            guard let single = try? RuleSet(rules: [rule]) else { continue }
            byRule[rule.id] = WindowAggregator(rules: single, maxKeysPerRule: maxKeysPerRule)
        }
    }

    /// Takes one partial read at `offset` and returns the alerts its rule fires.
    public mutating func add(_ partial: Partial, offset: Int64) -> [JSON] {
        guard var aggregator = byRule.removeValue(forKey: partial.ruleID) else {
            unknownRuleRecords += 1
            return []
        }
        let alerts = aggregator.add(partial, offset: offset)
        byRule[partial.ruleID] = aggregator
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
