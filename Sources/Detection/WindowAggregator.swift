import OCSF

/// The aggregate step for one partition of `vigil.detect.partials`: holds the partials of
/// stateful rules (window, sequence, absence) per (rule, group key) and fires alerts as event
/// time advances.
///
/// Time is event time only. The watermark is the largest event time seen minus the allowed
/// lateness (the largest `lateness` among the stateful rules), never decreasing. A partial
/// older than the watermark on arrival is late: counted and dropped. A held partial becomes
/// final once the watermark is past its time plus the rule's grace; final partials of a key
/// are applied in (event time, event uid, step) order, and windows close when the watermark
/// reaches their end plus grace, so the alerts do not depend on the arrival order of partials
/// that are not late. See docs/rules.md.
public struct WindowAggregator: Sendable {
    private let rules: [String: StatefulRule]
    /// The only rule, when there is one (as in ``PartitionAggregator``): found without hashing.
    private let onlyRule: StatefulRule?
    /// The allowed lateness applied to every partial: the largest of the stateful rules'.
    public let latenessMillis: Int64
    /// Event time up to which this partition's input is taken as complete; `nil` before the
    /// first partial or advance.
    public private(set) var watermark: Int64?
    /// Partials dropped because they arrived behind the watermark.
    public private(set) var lateRecords = 0
    /// Partials dropped because no stateful rule of this aggregator has their rule id.
    public private(set) var unknownRuleRecords = 0
    /// Partials dropped because they lack the value their rule's aggregate reads (a text or
    /// number for `distinct`, a number for `sum`, `min`, `max`, `avg`) or the step index a
    /// sequence or absence rule needs: written by a select step that ran an older definition
    /// of the rule.
    public private(set) var valuelessRecords = 0
    /// Alerts not emitted because an earlier alert of the same (rule, group key) was emitted
    /// less than the rule's `suppress` period before them.
    public private(set) var suppressedAlerts = 0
    /// `suppressedAlerts` by rule id.
    public private(set) var suppressedAlertsByRule: [String: Int] = [:]

    /// The cap on keys per rule when the rule sets no `max_keys`.
    public static let defaultMaxKeysPerRule = 100_000

    private var keys: [KeyID: KeyState] = [:]
    // When pending partials become final, and when a key's windows close or its state
    // expires; both popped as the watermark advances, so idle keys are handled without scans.
    private var finalizations = MinHeap<Deadline>()
    private var deadlines = MinHeap<Deadline>()
    // The last emitted alert per key of a rule with `suppress`, until the period is over.
    private var suppressions: [KeyID: Suppression] = [:]
    // Per stateful rule (by `ruleIndex`): key counts, the cap, evictions, suppression expiries.
    private var ruleKeys: [RuleKeys] = []
    private var ruleIndex: [String: Int] = [:]
    // How many rules currently keep their keys ordered by recency (see `RuleKeys.recency`).
    private var trackedRules = 0
    // Reused by `advance(to:)` for the keys it processes, so a step allocates nothing.
    private var touchedBuffer: [KeyID] = []

    /// An aggregator for the stateful rules of `rules` (single-event rules are ignored). A rule
    /// without `max_keys` holds at most `maxKeysPerRule` keys (at least 1).
    public init(rules: RuleSet, maxKeysPerRule: Int = WindowAggregator.defaultMaxKeysPerRule) {
        var statefulRules: [String: StatefulRule] = [:]
        for rule in rules.rules where rule.isStateful {
            statefulRules[rule.id] = StatefulRule(rule)
            ruleIndex[rule.id] = ruleKeys.count
            ruleKeys.append(RuleKeys(cap: max(1, rule.maxKeys ?? maxKeysPerRule)))
        }
        self.rules = statefulRules
        self.onlyRule = statefulRules.count == 1 ? statefulRules.values.first : nil
        self.latenessMillis = statefulRules.values.compactMap(\.rule.latenessMillis).max() ?? WindowSpec.defaultLatenessMillis
    }

    /// Number of (rule, group key) pairs holding state.
    public var openKeys: Int { keys.count }

    /// Number of group keys of rule `id` holding state (not counting keys that only have a
    /// running `suppress` period).
    public func openKeys(rule id: String) -> Int {
        ruleIndex[id].map { ruleKeys[$0].stateKeys } ?? 0
    }

    /// The cap on keys of rule `id`: its `max_keys`, else the aggregator's default; `nil` for
    /// a rule the aggregator does not hold.
    public func maxKeys(rule id: String) -> Int? {
        ruleIndex[id].map { ruleKeys[$0].cap }
    }

    /// Keys whose state (or running suppression) was dropped to make room for a new key of
    /// the same rule beyond its cap, by rule id; rules without evictions are absent.
    public var evictedKeysByRule: [String: Int] {
        var out: [String: Int] = [:]
        for (id, index) in ruleIndex where ruleKeys[index].evicted > 0 { out[id] = ruleKeys[index].evicted }
        return out
    }

    /// Every eviction of `evictedKeysByRule`.
    public var evictedKeys: Int { ruleKeys.reduce(0) { $0 + $1.evicted } }

    /// Whether anything is held: open keys, or a running suppression period (which retains
    /// offsets too, so an idle partition still needs its watermark advanced).
    public var holdsState: Bool { !keys.isEmpty || !suppressions.isEmpty }

    /// Takes one partial read at `offset` and returns the alerts that fire because the
    /// watermark advanced. A partial whose (time, uid, step) is already held is ignored, so
    /// redelivered records do not count twice.
    ///
    /// With `cap`, the watermark moves to at most `cap` minus the lateness (the aggregate step
    /// passes the slowest source partition's progress, so partials of a source that is behind
    /// are not late merely because another source ran ahead).
    public mutating func add(_ partial: Partial, offset: Int64, cap: Int64? = nil) -> [JSON] {
        guard let rule = rule(partial.ruleID) else {
            unknownRuleRecords += 1
            return []
        }
        if let watermark, partial.eventTime < watermark {
            lateRecords += 1
            return []
        }
        if rule.stepCount > 0 {
            if partial.step.map({ $0 >= rule.stepCount }) ?? true {
                valuelessRecords += 1
                return []
            }
        } else if let numeric = rule.valueNumeric, partial.value == nil || (numeric && partial.value?.number == nil) {
            valuelessRecords += 1
            return []
        }
        let id = KeyID(ruleID: partial.ruleID, ruleHash: rule.idHash, groupKey: partial.groupKey)
        let held = Held(eventTime: partial.eventTime, eventUID: partial.eventUID, offset: offset, context: partial.context,
                        value: partial.value, step: rule.stepCount > 0 ? partial.step : nil)
        let newlyHeld: Bool
        if let index = keys.index(forKey: id) {
            // Changed in place (one lookup; the key's state is neither copied nor moved).
            let newer: Bool
            (newer, newlyHeld) = keys.values[index].take(held)
            if newer, trackedRules > 0 { noteActivity(id, at: partial.eventTime) }
        } else {
            admit(id, at: partial.eventTime)
            var state = KeyState(groupValues: partial.groupValues, engine: rule.emptyEngine, lastEventTime: partial.eventTime)
            newlyHeld = state.hold(held)
            keys[id] = consume state
        }
        if newlyHeld {
            finalizations.push(Deadline(time: partial.eventTime.addingClamped(rule.graceMillis), key: id))
        }
        newestEventTime = max(newestEventTime ?? partial.eventTime, partial.eventTime)
        return advance(to: min(partial.eventTime, cap ?? .max).addingClamped(-latenessMillis))
    }

    /// The stateful rule `id`, if this aggregator holds it.
    private func rule(_ id: String) -> StatefulRule? {
        if let onlyRule { return onlyRule.id == id ? onlyRule : nil }
        return rules[id]
    }

    /// The newest event time of the partials taken (late ones excluded).
    public private(set) var newestEventTime: Int64?

    /// Moves the watermark to the newest event time taken, held back to `cap` (the slowest
    /// source's progress), minus the lateness, if that is later; returns the alerts that fire.
    public mutating func advanceCapped(_ cap: Int64) -> [JSON] {
        guard let newestEventTime else { return [] }
        return advance(to: min(newestEventTime, cap).addingClamped(-latenessMillis))
    }

    /// Moves the watermark to `millis` if that is later (an idle partition in live mode passes
    /// the wall clock minus `latenessMillis`; replays never call this) and returns the alerts
    /// that fire.
    public mutating func advanceWatermark(to millis: Int64) -> [JSON] {
        advance(to: millis)
    }

    /// End of input: makes every held partial final, in order, closes every open tumbling,
    /// hopping and session window and every open absence, and returns the alerts that fire.
    /// The watermark does not move; partials still in sliding windows and unfinished
    /// sequences stay held.
    public mutating func flush() -> [JSON] {
        finalizations = MinHeap()
        var alerts: [JSON] = []
        for id in keys.keys.sorted() {
            alerts += process(id, watermark: nil)
        }
        return alerts
    }

    /// The smallest offset of any partial still held (pending, in a window or sequence, or
    /// behind the last alert of a suppression period): the partition's offsets before it are
    /// no longer needed to rebuild this state. `nil` when nothing is held. Linear in the
    /// partials held.
    public func oldestRetainedOffset() -> Int64? {
        var oldest: Int64?
        func note(_ offset: Int64?) {
            guard let offset else { return }
            oldest = min(oldest ?? offset, offset)
        }
        for state in keys.values {
            for held in state.pending { note(held.offset) }
            note(state.engine.oldestOffset)
        }
        for suppression in suppressions.values { note(suppression.offset) }
        return oldest
    }

    private mutating func advance(to candidate: Int64) -> [JSON] {
        guard watermark.map({ candidate > $0 }) ?? true else { return [] }
        watermark = candidate
        // The keys to process, in a buffer kept between calls (taken out while it is filled).
        var touched: [KeyID] = []
        swap(&touched, &touchedBuffer)
        defer {
            touched.removeAll(keepingCapacity: true)
            swap(&touched, &touchedBuffer)
        }
        while let next = finalizations.peek, next.time < candidate {
            touched.append(finalizations.pop()!.key)
        }
        while let next = deadlines.peek, next.time <= candidate {
            let due = deadlines.pop()!
            if let index = keys.index(forKey: due.key) { keys.values[index].unschedule(due.time) }
            touched.append(due.key)
        }
        // Each key once, in key order.
        if touched.count > 1 {
            touched.sort()
            var unique = 0
            for index in touched.indices where index == 0 || touched[index] != touched[unique - 1] {
                touched.swapAt(unique, index)
                unique += 1
            }
            touched.removeLast(touched.count - unique)
        }
        var alerts: [JSON] = []
        for id in touched {
            alerts += process(id, watermark: candidate)
        }
        for index in ruleKeys.indices {
            while let next = ruleKeys[index].suppressionExpiries.peek, next.time <= candidate {
                let expired = ruleKeys[index].suppressionExpiries.pop()!
                if let suppression = suppressions[expired.key], suppression.expiry <= candidate {
                    suppressions[expired.key] = nil
                    ruleKeys[index].suppressedKeys -= 1
                }
            }
        }
        return alerts
    }

    // MARK: The cap on keys per rule

    /// Counts a new key of `id.ruleID`, first evicting the least recently active keys of the
    /// rule (smallest last event time, then smallest group key) while the rule is at its cap.
    private mutating func admit(_ id: KeyID, at time: Int64) {
        guard let index = ruleIndex[id.ruleID] else { return }
        if ruleKeys[index].stateKeys >= ruleKeys[index].cap {
            if ruleKeys[index].recency == nil {
                ruleKeys[index].recency = recencyHeap(rule: id.ruleID)
                trackedRules += 1
            }
            while ruleKeys[index].stateKeys >= ruleKeys[index].cap, let victim = ruleKeys[index].recency!.pop() {
                // Entries left behind by later activity, or by a key already gone, are skipped.
                guard let state = keys[victim.key], state.lastEventTime == victim.time else { continue }
                keys[victim.key] = nil
                ruleKeys[index].stateKeys -= 1
                ruleKeys[index].evicted += 1
            }
        }
        ruleKeys[index].stateKeys += 1
        if ruleKeys[index].recency != nil { pushRecency(index, id, at: time) }
    }

    /// Records a later last event time of the existing key `id`, when its rule tracks recency.
    private mutating func noteActivity(_ id: KeyID, at time: Int64) {
        guard let index = ruleIndex[id.ruleID], ruleKeys[index].recency != nil else { return }
        pushRecency(index, id, at: time)
    }

    /// Queues `id` (out of `keys` while it changes) as last active at `time`.
    private mutating func pushRecency(_ index: Int, _ id: KeyID, at time: Int64) {
        ruleKeys[index].recency!.push(Deadline(time: time, key: id))
        // Stale entries are dropped by rebuilding once they outnumber the live ones: amortized O(1).
        if ruleKeys[index].recency!.count > 2 * ruleKeys[index].stateKeys + 64 {
            ruleKeys[index].recency = recencyHeap(rule: id.ruleID, except: id, adding: Deadline(time: time, key: id))
        }
    }

    /// Forgets a key of `id.ruleID` that holds nothing any more.
    private mutating func release(_ id: KeyID) {
        guard let index = ruleIndex[id.ruleID] else { return }
        ruleKeys[index].stateKeys -= 1
        // Far below the cap the order is not needed; it is rebuilt if the cap is reached again.
        if ruleKeys[index].recency != nil, ruleKeys[index].stateKeys <= ruleKeys[index].cap / 2 {
            ruleKeys[index].recency = nil
            trackedRules -= 1
        }
    }

    /// (last event time, key) of every key of rule `ruleID` held in `keys` (but `except`,
    /// which is out of the table while it changes), plus `adding`.
    private func recencyHeap(rule ruleID: String, except: KeyID? = nil, adding: Deadline? = nil) -> MinHeap<Deadline> {
        var entries: [Deadline] = []
        for (id, state) in keys where id.ruleID == ruleID && id != except {
            entries.append(Deadline(time: state.lastEventTime, key: id))
        }
        if let adding { entries.append(adding) }
        return MinHeap(entries)
    }

    /// Counts a new suppression of `id`, first evicting the rule's suppressions that end
    /// soonest (the least recently alerted keys) while the rule is at its cap.
    private mutating func admitSuppression(_ id: KeyID) {
        guard let index = ruleIndex[id.ruleID] else { return }
        while ruleKeys[index].suppressedKeys >= ruleKeys[index].cap, let victim = ruleKeys[index].suppressionExpiries.pop() {
            guard let suppression = suppressions[victim.key], suppression.expiry == victim.time else { continue }
            suppressions[victim.key] = nil
            ruleKeys[index].suppressedKeys -= 1
            ruleKeys[index].evicted += 1
        }
        ruleKeys[index].suppressedKeys += 1
    }

    /// Applies the pending partials of `id` that are final at `watermark`, then closes what
    /// the watermark closes (all when `nil`: end of input); returns the alerts not suppressed.
    private mutating func process(_ id: KeyID, watermark: Int64?) -> [JSON] {
        guard let rule = rule(id.ruleID), let index = keys.index(forKey: id) else { return [] }
        // The key's state changes in place: one lookup, and its buffers are not copied.
        let (fired, deadline, empty) = Self.run(&keys.values[index], rule, id, watermark: watermark)
        if let deadline { deadlines.push(Deadline(time: deadline, key: id)) }
        if empty {
            keys.remove(at: index)
            release(id)
        }
        return suppress(fired, id: id, rule: rule)
    }

    /// ``process(_:watermark:)`` on the key's state: what fired, the deadline to queue (earlier
    /// than the one queued), and whether the key now holds nothing.
    private static func run(_ state: inout KeyState, _ rule: StatefulRule, _ id: KeyID, watermark: Int64?)
        -> (fired: [Fired], deadline: Int64?, empty: Bool) {
        let context = EngineContext(stateful: rule, key: id, groupValues: state.groupValues)
        var fired: [Fired] = []
        // Moved out while the engine changes, so each partial is read in place, not copied.
        var pending: [Held] = []
        swap(&pending, &state.pending)
        let applied = pending.withUnsafeBufferPointer { pending in
            var applied = 0
            while applied < pending.count, watermark.map({ pending[applied].eventTime.addingClamped(rule.graceMillis) < $0 }) ?? true {
                fired += state.engine.apply(pending[applied], context)
                applied += 1
            }
            return applied
        }
        // Usually every pending partial is final: emptied in place, with no shifting.
        if applied == pending.count { pending.removeAll(keepingCapacity: true) } else { pending.removeFirst(applied) }
        swap(&pending, &state.pending)
        fired += state.engine.close(at: watermark, context)
        var deadline: Int64?
        if let next = state.engine.nextDeadline(context), state.scheduled.map({ next < $0 }) ?? true {
            state.scheduled = next
            deadline = next
        }
        return (fired, deadline, state.pending.isEmpty && state.engine.isEmpty)
    }

    /// The alerts of `fired` (in event-time order) that are not within the rule's `suppress`
    /// period of the last alert emitted for the key.
    private mutating func suppress(_ fired: [Fired], id: KeyID, rule: StatefulRule) -> [JSON] {
        guard let period = rule.rule.suppressMillis else { return fired.map(\.alert) }
        var alerts: [JSON] = []
        for item in fired {
            if let last = suppressions[id], item.time < last.until {
                suppressedAlerts += 1
                suppressedAlertsByRule[rule.id, default: 0] += 1
                continue
            }
            // Kept until no alert at a time before `until` can still fire: the grace covers
            // partials that were not final when the watermark passed `until`.
            let until = item.time.addingClamped(period)
            let suppression = Suppression(until: until, expiry: until.addingClamped(rule.graceMillis), offset: item.offset)
            if suppressions[id] == nil { admitSuppression(id) }
            suppressions[id] = suppression
            if let index = ruleIndex[id.ruleID] {
                ruleKeys[index].suppressionExpiries.push(Deadline(time: suppression.expiry, key: id))
            }
            alerts.append(item.alert)
        }
        return alerts
    }
}

/// The last emitted alert of a key with `suppress`: later alerts before `until` are counted,
/// not emitted. `offset` is the oldest partial behind that alert, retained so a rebuild fires
/// it again (the same id) and so suppresses what it suppressed before.
struct Suppression: Sendable {
    let until: Int64
    let expiry: Int64
    let offset: Int64
}

/// The state of one (rule, group key): partials waiting to become final, and the engine
/// they are applied to.
struct KeyState: Sendable {
    let groupValues: [String: String]
    var engine: KeyEngine
    /// Sorted; not yet final.
    var pending: [Held] = []
    /// The earliest engine deadline queued for the key, if any.
    var scheduled: Int64?
    /// The latest event time of the key's partials: how recently it was active, for the cap
    /// on keys per rule.
    var lastEventTime: Int64

    init(groupValues: [String: String], engine: KeyEngine, lastEventTime: Int64) {
        self.groupValues = groupValues
        self.engine = engine
        self.lastEventTime = lastEventTime
    }

    /// Holds a partial of an existing key: whether it is the key's newest activity (its last
    /// event time moved), and whether it was held (see ``hold(_:)``).
    mutating func take(_ held: Held) -> (newer: Bool, held: Bool) {
        let newer = held.eventTime > lastEventTime
        if newer { lastEventTime = held.eventTime }
        return (newer, hold(held))
    }

    /// Forgets the queued deadline when it is the one at `time` (now due).
    mutating func unschedule(_ time: Int64) {
        if scheduled == time { scheduled = nil }
    }

    /// Inserts in order; `false` when an equal partial is already pending.
    mutating func hold(_ held: Held) -> Bool {
        // On the buffer, so the comparisons read the held partials in place.
        let (low, duplicate) = pending.withUnsafeBufferPointer { pending in
            var low = 0
            var high = pending.count
            while low < high {
                let mid = (low + high) / 2
                if pending[mid] < held { low = mid + 1 } else { high = mid }
            }
            return (low, low < pending.count && pending[low] == held)
        }
        if duplicate { return false }
        // Partials mostly arrive in order: appended, without an insertion's shifting.
        if low == pending.count { pending.append(held) } else { pending.insert(held, at: low) }
        return true
    }
}

/// A (rule, group key) pair.
///
/// Hashed once, when made, with the standard library's per-process seeded hasher (so it
/// stays as hard to flood with colliding keys as a `String` key): the tables and queues of
/// the aggregate step then hash one integer per lookup, insertion or resize.
struct KeyID: Hashable, Comparable, Sendable {
    let ruleID: String
    let groupKey: String
    private let hash: Int

    init(ruleID: String, groupKey: String) {
        self.init(ruleID: ruleID, ruleHash: ruleID.hashValue, groupKey: groupKey)
    }

    /// With `ruleHash`, the rule id's `hashValue` worked out once per rule
    /// (``StatefulRule/idHash``): only the group key is hashed per partial.
    init(ruleID: String, ruleHash: Int, groupKey: String) {
        self.ruleID = ruleID
        self.groupKey = groupKey
        var hasher = Hasher()
        hasher.combine(ruleHash)
        hasher.combine(groupKey)
        hash = hasher.finalize()
    }

    func hash(into hasher: inout Hasher) { hasher.combine(hash) }

    static func == (lhs: KeyID, rhs: KeyID) -> Bool {
        lhs.hash == rhs.hash && lhs.groupKey == rhs.groupKey && lhs.ruleID == rhs.ruleID
    }

    // Field by field rather than as tuples, which would copy (retain) the strings.
    static func < (lhs: KeyID, rhs: KeyID) -> Bool {
        lhs.ruleID != rhs.ruleID ? lhs.ruleID < rhs.ruleID : lhs.groupKey < rhs.groupKey
    }
}

/// A partial held by the aggregator, ordered by (event time, event uid, step).
struct Held: Comparable, Sendable {
    let eventTime: Int64
    let eventUID: String
    let offset: Int64
    let context: JSON
    /// The aggregated field's value; `nil` for `count` rules.
    let value: AggregateValue?
    /// The sequence or absence step; `nil` for window rules.
    let step: Int?

    init(eventTime: Int64, eventUID: String, offset: Int64, context: JSON, value: AggregateValue?, step: Int? = nil) {
        self.eventTime = eventTime
        self.eventUID = eventUID
        self.offset = offset
        self.context = context
        self.value = value
        self.step = step
    }

    static func < (lhs: Held, rhs: Held) -> Bool {
        if lhs.eventTime != rhs.eventTime { return lhs.eventTime < rhs.eventTime }
        if lhs.eventUID != rhs.eventUID { return lhs.eventUID < rhs.eventUID }
        return (lhs.step ?? -1) < (rhs.step ?? -1)
    }
    static func == (lhs: Held, rhs: Held) -> Bool {
        lhs.eventTime == rhs.eventTime && lhs.eventUID == rhs.eventUID && lhs.step == rhs.step
    }

    /// The watermark at which no later partial can share a sliding window with this one.
    func expiry(_ window: WindowSpec) -> Int64 {
        eventTime.addingClamped(window.sizeMillis).addingClamped(window.graceMillis)
    }
}

/// A moment at which a key needs attention.
struct Deadline: Comparable, Sendable {
    let time: Int64
    let key: KeyID

    static func < (lhs: Deadline, rhs: Deadline) -> Bool { lhs.time != rhs.time ? lhs.time < rhs.time : lhs.key < rhs.key }
}

/// The keys of one rule in an aggregator: how many hold state or a running suppression, the
/// cap on each, and how many were evicted.
struct RuleKeys: Sendable {
    /// `max_keys`, or the aggregator's default.
    var cap: Int
    /// Keys holding state (an entry of `keys`).
    var stateKeys = 0
    /// Keys inside a suppression period (an entry of `suppressions`).
    var suppressedKeys = 0
    /// Keys (state or suppression) dropped to make room for new ones.
    var evicted = 0
    /// (last event time, key) of the keys holding state, with stale entries that later activity
    /// or removal left behind (skipped when popped): built when `stateKeys` first reaches the
    /// cap, dropped when it falls to half of it, so rules far from their cap pay nothing.
    var recency: MinHeap<Deadline>?
    /// When the rule's suppressions expire (stale entries of renewed periods included).
    var suppressionExpiries = MinHeap<Deadline>()

    init(cap: Int) { self.cap = cap }
}

/// A binary min-heap.
struct MinHeap<Element: Comparable & Sendable>: Sendable {
    private var items: [Element] = []

    init() {}

    /// A heap of `elements`, built in linear time.
    init(_ elements: [Element]) {
        items = elements
        var index = items.count / 2
        while index > 0 {
            index -= 1
            siftDown(from: index)
        }
    }

    var peek: Element? { items.first }
    var count: Int { items.count }

    // The sifts work on the buffer: its elements are compared in place, where the array's
    // subscript would copy (retain and release) both for every comparison.
    mutating func push(_ element: Element) {
        items.append(element)
        items.withUnsafeMutableBufferPointer { items in
            var child = items.count - 1
            while child > 0 {
                let parent = (child - 1) / 2
                guard items[child] < items[parent] else { break }
                items.swapAt(child, parent)
                child = parent
            }
        }
    }

    mutating func pop() -> Element? {
        guard !items.isEmpty else { return nil }
        items.swapAt(0, items.count - 1)
        let top = items.removeLast()
        siftDown(from: 0)
        return top
    }

    private mutating func siftDown(from start: Int) {
        items.withUnsafeMutableBufferPointer { items in
            var parent = start
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
        }
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

extension WindowAggregator {
    /// Everything that changes as partials arrive, which a snapshot keeps; the rules are not in
    /// it (a restore supplies them).
    struct State {
        var watermark: Int64?
        var lateRecords: Int
        var unknownRuleRecords: Int
        var valuelessRecords: Int
        var suppressedAlerts: Int
        var suppressedAlertsByRule: [String: Int]
        var keys: [KeyID: KeyState]
        var finalizations: MinHeap<Deadline>
        var deadlines: MinHeap<Deadline>
        var suppressions: [KeyID: Suppression]
        var ruleKeys: [RuleKeys]
        var trackedRules: Int
    }

    var state: State {
        State(watermark: watermark, lateRecords: lateRecords, unknownRuleRecords: unknownRuleRecords,
              valuelessRecords: valuelessRecords, suppressedAlerts: suppressedAlerts,
              suppressedAlertsByRule: suppressedAlertsByRule, keys: keys, finalizations: finalizations,
              deadlines: deadlines, suppressions: suppressions, ruleKeys: ruleKeys, trackedRules: trackedRules)
    }

    /// An aggregator for `rules` resuming from `state`; `nil` when the state holds a different
    /// number of rules than `rules` has stateful ones, or a key whose state does not fit its rule.
    init?(rules: RuleSet, maxKeysPerRule: Int, state: State) {
        self.init(rules: rules, maxKeysPerRule: maxKeysPerRule)
        guard state.ruleKeys.count == ruleKeys.count,
              state.keys.allSatisfy({ id, key in self.rules[id.ruleID].map { key.engine.fits($0.rule) } ?? false }) else { return nil }
        watermark = state.watermark
        lateRecords = state.lateRecords
        unknownRuleRecords = state.unknownRuleRecords
        valuelessRecords = state.valuelessRecords
        suppressedAlerts = state.suppressedAlerts
        suppressedAlertsByRule = state.suppressedAlertsByRule
        keys = state.keys
        finalizations = state.finalizations
        deadlines = state.deadlines
        suppressions = state.suppressions
        // The cap in force now (a lowered one evicts down to it at the next new key).
        let caps = ruleKeys.map(\.cap)
        ruleKeys = state.ruleKeys
        for index in ruleKeys.indices { ruleKeys[index].cap = caps[index] }
        trackedRules = state.trackedRules
    }
}

// MARK: Snapshot layout (see SnapshotCoding.swift)

extension Suppression: SnapshotCodable {
    func write(to writer: inout SnapshotWriter) {
        writer.int(until)
        writer.int(expiry)
        writer.int(offset)
    }

    init(reading reader: inout SnapshotReader) throws {
        self.init(until: try reader.int64(), expiry: try reader.int64(), offset: try reader.int64())
    }
}

extension KeyState: SnapshotCodable {
    func write(to writer: inout SnapshotWriter) {
        writer.dictionary(groupValues, key: { $0.string($1) }, value: { $0.string($1) })
        writer.value(engine)
        writer.array(pending)
        writer.optional(scheduled) { $0.int($1) }
        writer.int(lastEventTime)
    }

    init(reading reader: inout SnapshotReader) throws {
        groupValues = try reader.dictionary(key: { try $0.string() }, value: { try $0.string() })
        engine = try reader.value()
        pending = try reader.array(of: Held.self)
        scheduled = try reader.optional { try $0.int64() }
        lastEventTime = try reader.int64()
    }
}

extension KeyID: SnapshotCodable {
    func write(to writer: inout SnapshotWriter) {
        writer.string(ruleID)
        writer.string(groupKey)
    }

    init(reading reader: inout SnapshotReader) throws {
        self.init(ruleID: try reader.string(), groupKey: try reader.string())
    }
}

extension Held: SnapshotCodable {
    func write(to writer: inout SnapshotWriter) {
        writer.int(eventTime)
        writer.string(eventUID)
        writer.int(offset)
        writer.json(context)
        writer.optional(value) { $0.value($1) }
        writer.optional(step) { $0.int($1) }
    }

    init(reading reader: inout SnapshotReader) throws {
        self.init(eventTime: try reader.int64(), eventUID: try reader.string(), offset: try reader.int64(), context: try reader.json(),
                  value: try reader.optional { try $0.value(AggregateValue.self) }, step: try reader.optional { try $0.int() })
    }
}

extension Deadline: SnapshotCodable {
    func write(to writer: inout SnapshotWriter) {
        writer.int(time)
        writer.value(key)
    }

    init(reading reader: inout SnapshotReader) throws {
        self.init(time: try reader.int64(), key: try reader.value())
    }
}

extension RuleKeys: SnapshotCodable {
    func write(to writer: inout SnapshotWriter) {
        writer.int(cap)
        writer.int(stateKeys)
        writer.int(suppressedKeys)
        writer.int(evicted)
        writer.optional(recency) { $0.value($1) }
        writer.value(suppressionExpiries)
    }

    init(reading reader: inout SnapshotReader) throws {
        self.init(cap: try reader.int())
        stateKeys = try reader.int()
        suppressedKeys = try reader.int()
        evicted = try reader.int()
        recency = try reader.optional { try $0.value(MinHeap<Deadline>.self) }
        suppressionExpiries = try reader.value()
    }
}

/// Written in heap order, so it is a heap again when read.
extension MinHeap: SnapshotCodable where Element: SnapshotCodable {
    func write(to writer: inout SnapshotWriter) { writer.array(items) }

    init(reading reader: inout SnapshotReader) throws {
        self.init()
        items = try reader.array(of: Element.self)
        // A corrupt snapshot must not leave a broken heap behind: check the order.
        for index in items.indices.dropFirst() where items[index] < items[(index - 1) / 2] {
            throw SnapshotError("aggregate snapshot invalid (heap order)")
        }
    }
}

extension WindowAggregator.State: SnapshotCodable {
    func write(to writer: inout SnapshotWriter) {
        writer.optional(watermark) { $0.int($1) }
        writer.int(lateRecords)
        writer.int(unknownRuleRecords)
        writer.int(valuelessRecords)
        writer.int(suppressedAlerts)
        writer.dictionary(suppressedAlertsByRule, key: { $0.string($1) }, value: { $0.int($1) })
        writer.dictionary(keys, key: { $0.value($1) }, value: { $0.value($1) })
        writer.value(finalizations)
        writer.value(deadlines)
        writer.dictionary(suppressions, key: { $0.value($1) }, value: { $0.value($1) })
        writer.array(ruleKeys)
        writer.int(trackedRules)
    }

    init(reading reader: inout SnapshotReader) throws {
        watermark = try reader.optional { try $0.int64() }
        lateRecords = try reader.int()
        unknownRuleRecords = try reader.int()
        valuelessRecords = try reader.int()
        suppressedAlerts = try reader.int()
        suppressedAlertsByRule = try reader.dictionary(key: { try $0.string() }, value: { try $0.int() })
        keys = try reader.dictionary(key: { try $0.value(KeyID.self) }, value: { try $0.value(KeyState.self) })
        finalizations = try reader.value()
        deadlines = try reader.value()
        suppressions = try reader.dictionary(key: { try $0.value(KeyID.self) }, value: { try $0.value(Suppression.self) })
        ruleKeys = try reader.array(of: RuleKeys.self)
        trackedRules = try reader.int()
    }
}
