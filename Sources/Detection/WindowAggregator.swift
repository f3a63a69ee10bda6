import OCSF

/// The aggregate step for one partition of `vigil.detect.partials`: holds the partials of
/// window rules per (rule, group key) and fires alerts as event time advances.
///
/// Time is event time only. The watermark is the largest event time seen minus the allowed
/// lateness (the largest `lateness` among the window rules), never decreasing. A partial
/// older than the watermark on arrival is late: counted and dropped. A held partial becomes
/// final once the watermark is past its time plus the rule's grace; final partials of a key
/// are applied in (event time, event uid) order, so the alerts do not depend on the arrival
/// order of partials that are not late. See docs/rules.md.
public struct WindowAggregator: Sendable {
    private let rules: [String: Rule]
    /// The allowed lateness applied to every partial: the largest of the window rules'.
    public let latenessMillis: Int64
    /// Event time up to which this partition's input is taken as complete; `nil` before the
    /// first partial or advance.
    public private(set) var watermark: Int64?
    /// Partials dropped because they arrived behind the watermark.
    public private(set) var lateRecords = 0
    /// Partials dropped because no window rule of this aggregator has their rule id.
    public private(set) var unknownRuleRecords = 0
    /// Partials dropped because they lack the value their rule's aggregate reads (a text or
    /// number for `distinct`, a number for `sum`, `min`, `max`, `avg`): written by a select step
    /// that ran an older definition of the rule.
    public private(set) var valuelessRecords = 0

    private var keys: [KeyID: SlidingWindowState] = [:]
    // When pending partials become final, and when the oldest windowed partial of a key
    // expires; both popped as the watermark advances, so idle keys are evicted without scans.
    private var finalizations = MinHeap<Deadline>()
    private var expirations = MinHeap<Deadline>()

    /// An aggregator for the window rules of `rules` (single-event rules are ignored).
    public init(rules: RuleSet) {
        var windowRules: [String: Rule] = [:]
        for rule in rules.rules where rule.window != nil { windowRules[rule.id] = rule }
        self.rules = windowRules
        self.latenessMillis = windowRules.values.map { $0.window!.latenessMillis }.max() ?? WindowSpec.defaultLatenessMillis
    }

    /// Number of (rule, group key) pairs holding state.
    public var openKeys: Int { keys.count }

    /// Takes one partial read at `offset` and returns the alerts that fire because the
    /// watermark advanced. A partial whose (time, uid) is already held is ignored, so
    /// redelivered records do not count twice.
    public mutating func add(_ partial: Partial, offset: Int64) -> [JSON] {
        guard let rule = rules[partial.ruleID], let window = rule.window else {
            unknownRuleRecords += 1
            return []
        }
        if let watermark, partial.eventTime < watermark {
            lateRecords += 1
            return []
        }
        if window.aggregate.field != nil, partial.value == nil || (window.aggregate.isNumeric && partial.value?.number == nil) {
            valuelessRecords += 1
            return []
        }
        let id = KeyID(ruleID: partial.ruleID, groupKey: partial.groupKey)
        let held = Held(eventTime: partial.eventTime, eventUID: partial.eventUID, offset: offset, context: partial.context,
                        value: partial.value)
        var state = keys[id] ?? SlidingWindowState(groupValues: partial.groupValues, aggregate: window.aggregate)
        if state.hold(held) {
            finalizations.push(Deadline(time: partial.eventTime.addingClamped(window.graceMillis), key: id))
        }
        keys[id] = state
        return advance(to: partial.eventTime.addingClamped(-latenessMillis))
    }

    /// Moves the watermark to `millis` if that is later (an idle partition in live mode passes
    /// the wall clock minus `latenessMillis`; replays never call this) and returns the alerts
    /// that fire.
    public mutating func advanceWatermark(to millis: Int64) -> [JSON] {
        advance(to: millis)
    }

    /// End of input: makes every held partial final, in order, and returns the alerts that
    /// fire. The watermark does not move; partials still in windows stay held.
    public mutating func flush() -> [JSON] {
        finalizations = MinHeap()
        var alerts: [JSON] = []
        for id in keys.keys.sorted() {
            alerts += finalize(id, before: nil)
        }
        return alerts
    }

    /// The smallest offset of any partial still held (pending or in a window): the partition's
    /// offsets before it are no longer needed to rebuild this state. `nil` when nothing is held.
    /// Linear in the partials held.
    public func oldestRetainedOffset() -> Int64? {
        var oldest: Int64?
        for state in keys.values {
            for held in state.pending { oldest = min(oldest ?? held.offset, held.offset) }
            for held in state.window { oldest = min(oldest ?? held.offset, held.offset) }
        }
        return oldest
    }

    private mutating func advance(to candidate: Int64) -> [JSON] {
        guard watermark.map({ candidate > $0 }) ?? true else { return [] }
        watermark = candidate
        var touched: Set<KeyID> = []
        while let next = finalizations.peek, next.time < candidate {
            touched.insert(finalizations.pop()!.key)
        }
        var alerts: [JSON] = []
        for id in touched.sorted() {
            alerts += finalize(id, before: candidate)
        }
        while let next = expirations.peek, next.time <= candidate {
            evictExpired(expirations.pop()!.key, watermark: candidate)
        }
        return alerts
    }

    /// Applies the pending partials of `id` that are final at `watermark` (all when `nil`).
    private mutating func finalize(_ id: KeyID, before watermark: Int64?) -> [JSON] {
        guard var state = keys[id], let rule = rules[id.ruleID], let window = rule.window else { return [] }
        var alerts: [JSON] = []
        let oldestBefore = state.window.first
        while let next = state.pending.first,
              watermark.map({ next.eventTime.addingClamped(window.graceMillis) < $0 }) ?? true {
            state.pending.removeFirst()
            if let alert = state.apply(next, rule: rule, window: window, key: id) { alerts.append(alert) }
        }
        if let oldest = state.window.first, oldest != oldestBefore {
            expirations.push(Deadline(time: oldest.expiry(window), key: id))
        }
        store(state, for: id)
        return alerts
    }

    private mutating func evictExpired(_ id: KeyID, watermark: Int64) {
        guard var state = keys[id], let window = rules[id.ruleID]?.window else { return }
        let oldestBefore = state.window.first
        let expired = state.window.prefix { $0.expiry(window) <= watermark }.count
        state.removeOldest(expired)
        if let oldest = state.window.first, oldest != oldestBefore {
            expirations.push(Deadline(time: oldest.expiry(window), key: id))
        }
        store(state, for: id)
    }

    private mutating func store(_ state: SlidingWindowState, for id: KeyID) {
        keys[id] = state.pending.isEmpty && state.window.isEmpty ? nil : state
    }
}

/// A (rule, group key) pair.
struct KeyID: Hashable, Comparable, Sendable {
    let ruleID: String
    let groupKey: String

    static func < (lhs: KeyID, rhs: KeyID) -> Bool {
        (lhs.ruleID, lhs.groupKey) < (rhs.ruleID, rhs.groupKey)
    }
}

/// A partial held by the aggregator, ordered by (event time, event uid).
struct Held: Comparable, Sendable {
    let eventTime: Int64
    let eventUID: String
    let offset: Int64
    let context: JSON
    /// The aggregated field's value; `nil` for `count` rules.
    let value: AggregateValue?

    static func < (lhs: Held, rhs: Held) -> Bool { (lhs.eventTime, lhs.eventUID) < (rhs.eventTime, rhs.eventUID) }
    static func == (lhs: Held, rhs: Held) -> Bool { lhs.eventTime == rhs.eventTime && lhs.eventUID == rhs.eventUID }

    /// The watermark at which no later partial can share a window with this one.
    func expiry(_ window: WindowSpec) -> Int64 {
        eventTime.addingClamped(window.sizeMillis).addingClamped(window.graceMillis)
    }
}

/// The state of one key of a sliding window: partials waiting to become final, and the final
/// ones within `size` of the newest, with the aggregate kept up to date as they come and go
/// (a value → occurrences table for `distinct`, a running sum for `sum` and `avg`; `min` and
/// `max` rescan the window, which the size bounds).
struct SlidingWindowState: Sendable {
    let groupValues: [String: String]
    let aggregate: WindowSpec.Aggregate
    /// Sorted; not yet final.
    var pending: [Held] = []
    /// Sorted; final, spanning less than the window size. Changed only through `append`,
    /// `removeOldest` and `removeAll`, which keep the aggregate in step.
    private(set) var window: [Held] = []
    private var occurrences: [String: Int] = [:]
    private var sum: Double = 0

    init(groupValues: [String: String], aggregate: WindowSpec.Aggregate) {
        self.groupValues = groupValues
        self.aggregate = aggregate
    }

    /// Inserts in order; `false` when an equal partial is already pending.
    mutating func hold(_ held: Held) -> Bool {
        var low = 0
        var high = pending.count
        while low < high {
            let mid = (low + high) / 2
            if pending[mid] < held { low = mid + 1 } else { high = mid }
        }
        if low < pending.count, pending[low] == held { return false }
        pending.insert(held, at: low)
        return true
    }

    /// The aggregate over the window; 0 for an empty window.
    var value: Double {
        switch aggregate {
        case .count: Double(window.count)
        case .distinct: Double(occurrences.count)
        case .sum: sum
        case .avg: window.isEmpty ? 0 : sum / Double(window.count)
        case .min: window.lazy.compactMap { $0.value?.number }.min() ?? 0
        case .max: window.lazy.compactMap { $0.value?.number }.max() ?? 0
        }
    }

    /// Adds one final partial; returns the alert when the aggregate meets the threshold, and
    /// then starts over (one alert per burst).
    mutating func apply(_ held: Held, rule: Rule, window spec: WindowSpec, key: KeyID) -> JSON? {
        if window.last == held { return nil }
        // Expired entries go before the new one comes, as eviction by the watermark would have
        // removed them: the running sum sees the same operations in the same order whenever
        // the watermark moved, so floating-point results do not depend on arrival order.
        removeOldest(window.prefix { held.eventTime - $0.eventTime >= spec.sizeMillis }.count)
        append(held)
        let value = value
        guard spec.threshold.isSatisfied(by: value) else { return nil }
        let alert = AlertBuilder.window(
            rule: rule, groupKey: key.groupKey, groupValues: groupValues,
            windowStart: window.first!.eventTime, windowEnd: held.eventTime, count: window.count,
            eventUIDs: window.prefix(AlertBuilder.maximumEventUIDs).map(\.eventUID), context: held.context,
            aggregateValue: value)
        removeAll()
        return alert
    }

    private mutating func append(_ held: Held) {
        window.append(held)
        switch aggregate {
        case .count, .min, .max: break
        case .distinct: occurrences[held.value?.text ?? "", default: 0] += 1
        case .sum, .avg: sum += held.value?.number ?? 0
        }
    }

    /// Drops the `count` oldest final partials.
    mutating func removeOldest(_ count: Int) {
        guard count > 0 else { return }
        guard count < window.count else { return removeAll() }
        switch aggregate {
        case .count, .min, .max: break
        case .distinct:
            for held in window.prefix(count) {
                let text = held.value?.text ?? ""
                if let seen = occurrences[text], seen > 1 { occurrences[text] = seen - 1 } else { occurrences[text] = nil }
            }
        case .sum, .avg:
            for held in window.prefix(count) { sum -= held.value?.number ?? 0 }
        }
        window.removeFirst(count)
    }

    /// Empties the window; the running sum restarts from exactly 0, so floating-point error
    /// does not outlive a burst.
    private mutating func removeAll() {
        window.removeAll()
        occurrences.removeAll()
        sum = 0
    }
}

/// A moment at which a key needs attention.
struct Deadline: Comparable, Sendable {
    let time: Int64
    let key: KeyID

    static func < (lhs: Deadline, rhs: Deadline) -> Bool { (lhs.time, lhs.key) < (rhs.time, rhs.key) }
}

/// A binary min-heap.
struct MinHeap<Element: Comparable & Sendable>: Sendable {
    private var items: [Element] = []

    var peek: Element? { items.first }
    var count: Int { items.count }

    mutating func push(_ element: Element) {
        items.append(element)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child] < items[parent] else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> Element? {
        guard !items.isEmpty else { return nil }
        items.swapAt(0, items.count - 1)
        let top = items.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < items.count, items[left] < items[smallest] { smallest = left }
            if right < items.count, items[right] < items[smallest] { smallest = right }
            if smallest == parent { break }
            items.swapAt(parent, smallest)
            parent = smallest
        }
        return top
    }
}

extension Int64 {
    /// Addition that saturates instead of trapping on hostile event times.
    func addingClamped(_ other: Int64) -> Int64 {
        let (sum, overflow) = addingReportingOverflow(other)
        if overflow { return other > 0 ? .max : .min }
        return sum
    }
}
