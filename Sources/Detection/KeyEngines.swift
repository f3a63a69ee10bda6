import OCSF

/// What an engine needs to know besides its own state.
struct EngineContext {
    let stateful: StatefulRule
    let key: KeyID
    let groupValues: [String: String]

    /// The rule, read in place from its holder (not copied per partial).
    var rule: Rule { stateful.rule }
}

/// A stateful rule as the aggregate step holds it: behind one reference, with what it reads
/// per partial worked out once, so taking a partial copies nothing of the rule.
final class StatefulRule: Sendable {
    let rule: Rule
    let id: String
    /// `id.hashValue`, for ``KeyID``.
    let idHash: Int
    /// ``Rule/stepCount``.
    let stepCount: Int
    /// ``Rule/graceMillis``.
    let graceMillis: Int64
    /// Whether partials must carry a value, and whether it must be a number (``Rule/valueField``);
    /// `nil` when the rule aggregates no field.
    let valueNumeric: Bool?
    /// The engine a new key of the rule starts with.
    let emptyEngine: KeyEngine

    init(_ rule: Rule) {
        self.rule = rule
        id = rule.id
        idHash = rule.id.hashValue
        stepCount = rule.stepCount
        graceMillis = rule.graceMillis
        valueNumeric = rule.valueField?.numeric
        emptyEngine = KeyEngine(rule: rule)
    }
}

/// An alert an engine fired, with its event time (for suppression) and the oldest input
/// offset behind it.
struct Fired: Sendable {
    let alert: JSON
    let time: Int64
    let offset: Int64
}

/// The per-key state of one kind of stateful rule. Final partials reach `apply` in (event
/// time, uid, step) order; `close(at:)` fires and evicts what the watermark has passed.
enum KeyEngine: Sendable {
    case sliding(SlidingWindowState)
    case buckets(BucketWindows)
    case sessions(SessionWindows)
    case sequence(SequenceMatcher)
    case absence(AbsenceWatch)
    case firstSeen(FirstSeenState)
    case baseline(BaselineState)

    /// Stands in while a case's state is taken out to be mutated, so the state's buffers have
    /// one owner and mutate in place instead of being copied.
    static let empty = KeyEngine.absence(AbsenceWatch())

    init(rule: Rule) {
        if let window = rule.window {
            switch window.kind {
            case .sliding: self = .sliding(SlidingWindowState(aggregate: window.aggregate))
            case .tumbling, .hopping: self = .buckets(BucketWindows())
            case .session: self = .sessions(SessionWindows())
            }
        } else if rule.sequence != nil {
            self = .sequence(SequenceMatcher())
        } else if rule.firstSeen != nil {
            self = .firstSeen(FirstSeenState())
        } else if rule.baseline != nil {
            self = .baseline(BaselineState())
        } else {
            self = .absence(AbsenceWatch())
        }
    }

    /// Applies one final partial.
    mutating func apply(_ held: Held, _ context: EngineContext) -> [Fired] {
        switch self {
        case .sliding(var state):
            self = .empty
            let fired = state.apply(held, context)
            self = .sliding(state)
            return fired.map { [$0] } ?? []
        case .buckets(var state):
            self = .empty
            state.apply(held, window: context.rule.window!)
            self = .buckets(state)
            return []
        case .sessions(var state):
            self = .empty
            let fired = state.apply(held, context)
            self = .sessions(state)
            return fired
        case .sequence(var state):
            self = .empty
            let fired = state.apply(held, context)
            self = .sequence(state)
            return fired.map { [$0] } ?? []
        case .absence(var state):
            self = .empty
            let fired = state.apply(held, context)
            self = .absence(state)
            return fired.map { [$0] } ?? []
        case .firstSeen(var state):
            self = .empty
            let fired = state.apply(held, context)
            self = .firstSeen(state)
            return fired.map { [$0] } ?? []
        case .baseline(var state):
            self = .empty
            state.apply(held, context.rule.baseline!)
            self = .baseline(state)
            return []
        }
    }

    /// Fires what closes at `watermark` (everything that can close when `nil`: end of input)
    /// and drops what no later partial can reach.
    mutating func close(at watermark: Int64?, _ context: EngineContext) -> [Fired] {
        switch self {
        case .sliding(var state):
            self = .empty
            if let watermark, let window = context.rule.window {
                state.removeOldest(state.window.prefix { $0.expiry(window) <= watermark }.count)
            }
            self = .sliding(state)
            return []
        case .buckets(var state):
            self = .empty
            let fired = state.close(at: watermark, context)
            self = .buckets(state)
            return fired
        case .sessions(var state):
            self = .empty
            let fired = state.close(at: watermark, context)
            self = .sessions(state)
            return fired
        case .sequence(var state):
            self = .empty
            if let watermark { state.expire(at: watermark, context.rule) }
            self = .sequence(state)
            return []
        case .absence(var state):
            self = .empty
            let fired = state.close(at: watermark, context)
            self = .absence(state)
            return fired.map { [$0] } ?? []
        case .firstSeen(var state):
            self = .empty
            if let watermark { state.expire(at: watermark, context.rule.firstSeen!) }
            self = .firstSeen(state)
            return []
        case .baseline(var state):
            self = .empty
            let fired = state.close(at: watermark, context)
            self = .baseline(state)
            return fired
        }
    }

    /// The watermark at which `close(at:)` next has something to do.
    func nextDeadline(_ context: EngineContext) -> Int64? {
        let grace = context.rule.graceMillis
        switch self {
        case .sliding(let state): return context.rule.window.flatMap { state.window.first?.expiry($0) }
        case .buckets(let state): return state.windows.keys.min().map { $0.addingClamped(context.rule.window!.sizeMillis).addingClamped(grace) }
        case .sessions(let state): return state.sessions.first.map { $0.end.addingClamped(grace) }
        case .sequence(let state):
            return state.runs.map(\.start).min().map { $0.addingClamped(context.rule.sequence!.withinMillis).addingClamped(grace) }
        case .absence(let state): return state.open.map { $0.start.addingClamped(context.rule.absence!.withinMillis).addingClamped(grace) }
        case .firstSeen(let state):
            return state.values.values.map(\.time).min().map { $0.addingClamped(context.rule.firstSeen!.lookbackMillis).addingClamped(grace) }
        case .baseline(let state): return state.nextDeadline(context.rule.baseline!)
        }
    }

    /// The oldest input offset the engine holds.
    var oldestOffset: Int64? {
        switch self {
        case .sliding(let state): state.window.map(\.offset).min()
        case .buckets(let state): state.windows.values.map(\.oldestOffset).min()
        case .sessions(let state): state.sessions.map(\.contents.oldestOffset).min()
        case .sequence(let state): state.runs.map(\.oldestOffset).min()
        case .absence(let state): state.open?.oldestOffset
        case .firstSeen(let state): state.values.values.map(\.offset).min()
        case .baseline(let state): state.open.values.map(\.oldestOffset).min()
        }
    }

    /// Whether the engine holds nothing.
    var isEmpty: Bool {
        switch self {
        case .sliding(let state): state.window.isEmpty
        case .buckets(let state): state.windows.isEmpty
        case .sessions(let state): state.sessions.isEmpty
        case .sequence(let state): state.runs.isEmpty
        case .absence(let state): state.open == nil
        case .firstSeen(let state): state.values.isEmpty
        case .baseline(let state): state.isEmpty
        }
    }
}

/// The events of one closed-form window (tumbling, hopping, session) and their aggregate,
/// built only by adding events in order, so every aggregate is exact and order-independent.
struct WindowContents: Sendable {
    private(set) var count = 0
    private(set) var first: Int64
    private(set) var last: Int64
    private(set) var oldestOffset: Int64
    private(set) var eventUIDs: [String] = []
    private(set) var context: JSON
    private var occurrences: Set<String> = []
    private var sum: Double = 0
    private var minimum: Double?
    private var maximum: Double?

    init(_ held: Held) {
        first = held.eventTime
        last = held.eventTime
        oldestOffset = held.offset
        context = held.context
        add(held)
    }

    mutating func add(_ held: Held) {
        count += 1
        last = held.eventTime
        oldestOffset = min(oldestOffset, held.offset)
        context = held.context
        if eventUIDs.count < AlertBuilder.maximumEventUIDs { eventUIDs.append(held.eventUID) }
        if let value = held.value {
            occurrences.insert(value.text)
            if let number = value.number {
                sum += number
                minimum = Swift.min(minimum ?? number, number)
                maximum = Swift.max(maximum ?? number, number)
            }
        }
    }

    func value(_ aggregate: WindowSpec.Aggregate) -> Double {
        switch aggregate {
        case .count: Double(count)
        case .distinct: Double(occurrences.count)
        case .sum: sum
        case .avg: count == 0 ? 0 : sum / Double(count)
        case .min: minimum ?? 0
        case .max: maximum ?? 0
        }
    }

    /// The alert for the window [start, end) when its aggregate meets the threshold.
    func fire(start: Int64, end: Int64, _ context: EngineContext) -> Fired? {
        let window = context.rule.window!
        let value = value(window.aggregate)
        guard window.threshold.isSatisfied(by: value) else { return nil }
        let alert = AlertBuilder.window(
            rule: context.rule, groupKey: context.key.groupKey, groupValues: context.groupValues,
            windowStart: start, windowEnd: end, count: count, eventUIDs: eventUIDs, context: self.context,
            aggregateValue: value)
        return Fired(alert: alert, time: end, offset: oldestOffset)
    }
}

/// Tumbling and hopping windows of one key: epoch-aligned windows [start, start + size) that
/// start every `advance` (every `size` for tumbling), by start; a window closes when the
/// watermark reaches its end plus grace.
struct BucketWindows: Sendable {
    private(set) var windows: [Int64: WindowContents] = [:]

    mutating func apply(_ held: Held, window: WindowSpec) {
        let advance = window.advanceMillis ?? window.sizeMillis
        // Starts k·advance with start <= t < start + size.
        var start = floorDivide(held.eventTime, advance) * advance
        while start > held.eventTime.addingClamped(-window.sizeMillis) {
            if windows[start] == nil { windows[start] = WindowContents(held) } else { windows[start]!.add(held) }
            guard start > Int64.min + advance else { break }
            start -= advance
        }
    }

    mutating func close(at watermark: Int64?, _ context: EngineContext) -> [Fired] {
        let window = context.rule.window!
        // Nothing to close unless the earliest window has ended (no sorting then).
        guard let earliest = windows.keys.min(),
              watermark.map({ earliest.addingClamped(window.sizeMillis).addingClamped(window.graceMillis) <= $0 }) ?? true
        else { return [] }
        var fired: [Fired] = []
        for start in windows.keys.sorted() {
            let end = start.addingClamped(window.sizeMillis)
            if let watermark, end.addingClamped(window.graceMillis) > watermark { break }
            if let alert = windows[start]!.fire(start: start, end: end, context) { fired.append(alert) }
            windows[start] = nil
        }
        return fired
    }
}

/// Session windows of one key: a session takes events less than `gap` after its last one
/// (and less than `max_size` after its first); it spans [first, min(last + gap, first +
/// max_size)) and closes when the watermark reaches that end plus grace. Events arrive in
/// event-time order, so an event that bridges two sessions reaches them before either closes
/// and they are one session from the start.
struct SessionWindows: Sendable {
    struct Session: Sendable {
        var contents: WindowContents
        var end: Int64
    }

    private(set) var sessions: [Session] = []

    mutating func apply(_ held: Held, _ context: EngineContext) -> [Fired] {
        let window = context.rule.window!
        if var session = sessions.last, held.eventTime < session.end {
            session.contents.add(held)
            session.end = Self.end(first: session.contents.first, last: held.eventTime, window: window)
            sessions[sessions.count - 1] = session
            return []
        }
        var fired: [Fired] = []
        // Only at end of input (flush) can a closed session still be here; close it first so
        // alerts leave in order.
        while let session = sessions.first, session.end <= held.eventTime {
            if let alert = session.contents.fire(start: session.contents.first, end: session.end, context) { fired.append(alert) }
            sessions.removeFirst()
        }
        sessions.append(Session(contents: WindowContents(held), end: Self.end(first: held.eventTime, last: held.eventTime, window: window)))
        return fired
    }

    mutating func close(at watermark: Int64?, _ context: EngineContext) -> [Fired] {
        var fired: [Fired] = []
        while let session = sessions.first {
            if let watermark, session.end.addingClamped(context.rule.graceMillis) > watermark { break }
            if let alert = session.contents.fire(start: session.contents.first, end: session.end, context) { fired.append(alert) }
            sessions.removeFirst()
        }
        return fired
    }

    static func end(first: Int64, last: Int64, window: WindowSpec) -> Int64 {
        let end = last.addingClamped(window.gapMillis ?? 0)
        return window.sizeMillis > 0 ? min(end, first.addingClamped(window.sizeMillis)) : end
    }
}

/// The partial matches of a sequence for one key. A run has completed some steps and counts
/// events of the next; of two runs at the same step and count only the one that started
/// later is kept (it has more time left and needs the same events), so at most the sum of
/// the step counts runs are held. When a run completes the last step the alert fires and
/// every run of the key is dropped: one alert per completed sequence, then matching starts over.
struct SequenceMatcher: Sendable {
    struct Run: Sendable {
        let start: Int64
        var step: Int
        var countInStep: Int
        var stepCounts: [Int]
        var eventUIDs: [String]
        var lastUID: String
        var oldestOffset: Int64
    }

    private(set) var runs: [Run] = []

    mutating func apply(_ held: Held, _ context: EngineContext) -> Fired? {
        let spec = context.rule.sequence!
        guard let step = held.step, step < spec.steps.count else { return nil }
        runs.removeAll { held.eventTime - $0.start >= spec.withinMillis }
        var completed: Run?
        func take(_ run: inout Run) {
            run.countInStep += 1
            run.stepCounts[run.step] += 1
            if run.eventUIDs.count < AlertBuilder.maximumEventUIDs { run.eventUIDs.append(held.eventUID) }
            run.lastUID = held.eventUID
            run.oldestOffset = min(run.oldestOffset, held.offset)
            if run.countInStep == spec.steps[run.step].count {
                run.step += 1
                run.countInStep = 0
            }
        }
        // One event advances a run by at most one event (a run it just advanced on another
        // step is left alone).
        for index in runs.indices where runs[index].step == step && runs[index].lastUID != held.eventUID {
            take(&runs[index])
        }
        if step == 0 {
            var run = Run(start: held.eventTime, step: 0, countInStep: 0, stepCounts: Array(repeating: 0, count: spec.steps.count),
                          eventUIDs: [], lastUID: "", oldestOffset: held.offset)
            take(&run)
            runs.append(run)
        }
        // The latest start wins (runs are in start order, later ones appended).
        if let index = runs.lastIndex(where: { $0.step == spec.steps.count }) { completed = runs[index] }
        if let completed {
            runs.removeAll()
            let alert = AlertBuilder.sequence(
                rule: context.rule, groupKey: context.key.groupKey, groupValues: context.groupValues, start: completed.start,
                end: held.eventTime, eventUIDs: completed.eventUIDs, stepCounts: completed.stepCounts, context: held.context)
            return Fired(alert: alert, time: held.eventTime, offset: completed.oldestOffset)
        }
        // Keep the latest-started run per (step, count). A run this event just advanced does
        // not replace one it did not: the event's partial for a later step may need the latter.
        // Runs are few: compared pairwise, and the list rebuilt only when one is superseded.
        // Field by field on the buffer: copying a run would retain and release its arrays.
        let superseded = runs.withUnsafeBufferPointer { runs -> [Bool]? in
            var superseded: [Bool]?
            for index in runs.indices {
                let advanced = runs[index].lastUID == held.eventUID
                for later in (index + 1)..<runs.count
                where runs[later].step == runs[index].step && runs[later].countInStep == runs[index].countInStep
                    && (runs[later].lastUID == held.eventUID) == advanced {
                    if superseded == nil { superseded = Array(repeating: false, count: runs.count) }
                    superseded![index] = true
                    break
                }
            }
            return superseded
        }
        if let superseded {
            var kept = 0
            for index in runs.indices where !superseded[index] {
                runs.swapAt(kept, index)
                kept += 1
            }
            runs.removeLast(runs.count - kept)
        }
        return nil
    }

    /// Drops runs that no partial still to come can complete.
    mutating func expire(at watermark: Int64, _ rule: Rule) {
        let spec = rule.sequence!
        runs.removeAll { $0.start.addingClamped(spec.withinMillis).addingClamped(spec.graceMillis) <= watermark }
    }
}

/// An absence of one key: the open expectation after a trigger. Triggers while one is open
/// fold into it; the expected event before the deadline (trigger time + within) closes it
/// silently; the watermark reaching the deadline plus grace (or end of input) fires it.
struct AbsenceWatch: Sendable {
    struct Expectation: Sendable {
        let start: Int64
        var count: Int
        var eventUIDs: [String]
        var context: JSON
        var oldestOffset: Int64
    }

    private(set) var open: Expectation?

    mutating func apply(_ held: Held, _ context: EngineContext) -> Fired? {
        let within = context.rule.absence!.withinMillis
        var fired: Fired?
        if let current = open, held.eventTime >= current.start.addingClamped(within) {
            // Its deadline passed before this event: it fires (only seen at end of input or
            // when grace held this partial back).
            fired = Self.fire(current, context)
            open = nil
        }
        switch held.step {
        case 0:
            if var current = open {
                current.count += 1
                if current.eventUIDs.count < AlertBuilder.maximumEventUIDs { current.eventUIDs.append(held.eventUID) }
                current.oldestOffset = min(current.oldestOffset, held.offset)
                open = current
            } else {
                open = Expectation(start: held.eventTime, count: 1, eventUIDs: [held.eventUID], context: held.context,
                                   oldestOffset: held.offset)
            }
        case 1:
            open = nil
        default:
            break
        }
        return fired
    }

    mutating func close(at watermark: Int64?, _ context: EngineContext) -> Fired? {
        guard let current = open else { return nil }
        let spec = context.rule.absence!
        if let watermark, current.start.addingClamped(spec.withinMillis).addingClamped(spec.graceMillis) > watermark { return nil }
        open = nil
        return Self.fire(current, context)
    }

    static func fire(_ expectation: Expectation, _ context: EngineContext) -> Fired {
        let deadline = expectation.start.addingClamped(context.rule.absence!.withinMillis)
        let alert = AlertBuilder.absence(
            rule: context.rule, groupKey: context.key.groupKey, groupValues: context.groupValues, start: expectation.start,
            deadline: deadline, eventUIDs: expectation.eventUIDs, count: expectation.count, context: expectation.context)
        return Fired(alert: alert, time: deadline, offset: expectation.oldestOffset)
    }
}

/// The values a first-seen rule has seen for one key, each with the time and input offset of
/// its latest event, and the key's history (first event time, number of events). A value's
/// entry goes when the watermark passes its time + lookback + grace; when none is left the key
/// starts over, history included.
struct FirstSeenState: Sendable {
    struct Seen: Sendable {
        var time: Int64
        var offset: Int64
    }

    private(set) var values: [String: Seen] = [:]
    private var firstTime: Int64?
    private var latest: Int64?
    private var events = 0

    mutating func apply(_ held: Held, _ context: EngineContext) -> Fired? {
        let spec = context.rule.firstSeen!
        guard let value = held.value?.text else { return nil }
        // Decided by event time, as `expire(at:)` would have by the watermark: a key whose
        // every value is older than the look-back starts over.
        if let latest, held.eventTime - latest >= spec.lookbackMillis { self = FirstSeenState() }
        let first = firstTime ?? held.eventTime
        let isNew = values[value].map { held.eventTime - $0.time >= spec.lookbackMillis } ?? true
        let mature = held.eventTime - first >= spec.minHistoryMillis && events >= spec.minEvents
        var fired: Fired?
        if isNew, mature {
            let alert = AlertBuilder.firstSeen(
                rule: context.rule, groupKey: context.key.groupKey, groupValues: context.groupValues, time: held.eventTime,
                eventUID: held.eventUID, value: value,
                // Counted by event time: the watermark may or may not have dropped the older ones yet.
                knownValues: values.values.count { held.eventTime - $0.time < spec.lookbackMillis },
                keyEvents: events, context: held.context)
            fired = Fired(alert: alert, time: held.eventTime, offset: held.offset)
        }
        firstTime = first
        latest = held.eventTime
        events += 1
        values[value] = Seen(time: held.eventTime, offset: held.offset)
        return fired
    }

    mutating func expire(at watermark: Int64, _ spec: FirstSeenSpec) {
        func kept(_ time: Int64) -> Bool { time.addingClamped(spec.lookbackMillis).addingClamped(spec.graceMillis) > watermark }
        // Scanned first: the table is rebuilt only when a value actually expires.
        guard values.values.contains(where: { !kept($0.time) }) else { return }
        values = values.filter { kept($0.value.time) }
        if values.isEmpty { self = FirstSeenState() }
    }
}

/// The intervals of a baseline key: those still open (by start), and the history of closed
/// ones — the last `history` values (zscore) or the running weighted mean and variance (ewma).
/// Intervals without events between two with events count as 0. After `history` empty
/// intervals the key starts over.
struct BaselineState: Sendable {
    private(set) var open: [Int64: WindowContents] = [:]
    private var values: [Double] = []
    private var mean: Double = 0
    private var variance: Double = 0
    private var seen = 0
    private var lastClosedEnd: Int64?

    var isEmpty: Bool { open.isEmpty && seen == 0 }

    mutating func apply(_ held: Held, _ spec: BaselineSpec) {
        let start = floorDivide(held.eventTime, spec.intervalMillis) * spec.intervalMillis
        if open[start] == nil { open[start] = WindowContents(held) } else { open[start]!.add(held) }
    }

    func nextDeadline(_ spec: BaselineSpec) -> Int64? {
        if let start = open.keys.min() { return start.addingClamped(spec.intervalMillis).addingClamped(spec.graceMillis) }
        return lastClosedEnd.map { $0.addingClamped(spec.intervalMillis * Int64(spec.history)).addingClamped(spec.graceMillis) }
    }

    mutating func close(at watermark: Int64?, _ context: EngineContext) -> [Fired] {
        let spec = context.rule.baseline!
        var fired: [Fired] = []
        // Nothing to close unless the earliest open interval has ended (no sorting then).
        let due = open.keys.min().map { earliest in
            watermark.map { earliest.addingClamped(spec.intervalMillis).addingClamped(spec.graceMillis) <= $0 } ?? true
        } ?? false
        for start in due ? open.keys.sorted() : [] {
            let end = start.addingClamped(spec.intervalMillis)
            if let watermark, end.addingClamped(spec.graceMillis) > watermark { break }
            let contents = open.removeValue(forKey: start)!
            // Decided by event time, as the watermark would have: a key idle for a whole
            // history starts over.
            if let lastClosedEnd, start - lastClosedEnd >= spec.intervalMillis * Int64(spec.history) { resetHistory() }
            if let lastClosedEnd {
                // Empty intervals since the last closed one weigh in as zeros (at most a history's worth).
                let empty = min((start - lastClosedEnd) / spec.intervalMillis, Int64(spec.history))
                for _ in 0..<max(empty, 0) { record(0, spec) }
            }
            let value = contents.value(spec.aggregate)
            let (center, spread) = summary(spec)
            let score = (value - center) / max(spread, spec.minStddev)
            if seen >= spec.minHistory, value >= spec.minValue, score >= spec.threshold {
                let alert = AlertBuilder.baseline(
                    rule: context.rule, groupKey: context.key.groupKey, groupValues: context.groupValues, start: start, end: end,
                    count: contents.count, eventUIDs: contents.eventUIDs, value: value, mean: center, stddev: spread, score: score,
                    intervals: seen, context: contents.context)
                fired.append(Fired(alert: alert, time: end, offset: contents.oldestOffset))
            }
            record(value, spec)
            lastClosedEnd = end
        }
        // A key idle for a whole history starts over.
        if let watermark, open.isEmpty, let lastClosedEnd,
           lastClosedEnd.addingClamped(spec.intervalMillis * Int64(spec.history)).addingClamped(spec.graceMillis) <= watermark {
            self = BaselineState()
        }
        return fired
    }

    private mutating func resetHistory() {
        values = []
        mean = 0
        variance = 0
        seen = 0
        lastClosedEnd = nil
    }

    /// The history's mean and standard deviation.
    private func summary(_ spec: BaselineSpec) -> (Double, Double) {
        switch spec.method {
        case .ewma:
            return (mean, variance.squareRoot())
        case .zscore:
            guard !values.isEmpty else { return (0, 0) }
            let average = values.reduce(0, +) / Double(values.count)
            let squares = values.reduce(0) { $0 + ($1 - average) * ($1 - average) }
            return (average, (squares / Double(values.count)).squareRoot())
        }
    }

    private mutating func record(_ value: Double, _ spec: BaselineSpec) {
        seen = min(seen + 1, Int.max - 1)
        switch spec.method {
        case .zscore:
            values.append(value)
            if values.count > spec.history { values.removeFirst(values.count - spec.history) }
        case .ewma:
            if seen == 1 {
                mean = value
                variance = 0
            } else {
                let alpha = 2 / (Double(spec.history) + 1)
                let difference = value - mean
                let increment = alpha * difference
                mean += increment
                variance = (1 - alpha) * (variance + difference * increment)
            }
        }
    }
}

/// Division rounding towards negative infinity.
func floorDivide(_ value: Int64, _ divisor: Int64) -> Int64 {
    let quotient = value / divisor
    return (value % divisor != 0 && (value < 0) != (divisor < 0)) ? quotient - 1 : quotient
}

/// The state of one key of a sliding window: the final partials within `size` of the newest,
/// with the aggregate kept up to date as they come and go (a value → occurrences table for `distinct`, a running sum for `sum` and `avg`; `min` and
/// `max` rescan the window, which the size bounds).
struct SlidingWindowState: Sendable {
    let aggregate: WindowSpec.Aggregate
    /// Sorted; final, spanning less than the window size. Changed only through `append`,
    /// `removeOldest` and `removeAll`, which keep the aggregate in step.
    private(set) var window: [Held] = []
    private var occurrences: [String: Int] = [:]
    private var sum: Double = 0

    init(aggregate: WindowSpec.Aggregate) {
        self.aggregate = aggregate
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
    mutating func apply(_ held: Held, _ context: EngineContext) -> Fired? {
        guard let sizeMillis = context.rule.window?.sizeMillis else { return nil }
        if window.last == held { return nil }
        // Expired entries go before the new one comes, as eviction by the watermark would have
        // removed them: the running sum sees the same operations in the same order whenever
        // the watermark moved, so floating-point results do not depend on arrival order.
        let expired = window.withUnsafeBufferPointer { window in
            var expired = 0
            while expired < window.count, held.eventTime - window[expired].eventTime >= sizeMillis { expired += 1 }
            return expired
        }
        removeOldest(expired)
        append(held)
        let value = value
        guard context.rule.window?.threshold.isSatisfied(by: value) == true else { return nil }
        let offset = window.map(\.offset).min() ?? held.offset
        let alert = AlertBuilder.window(
            rule: context.rule, groupKey: context.key.groupKey, groupValues: context.groupValues,
            windowStart: window.first!.eventTime, windowEnd: held.eventTime, count: window.count,
            eventUIDs: window.prefix(AlertBuilder.maximumEventUIDs).map(\.eventUID), context: held.context,
            aggregateValue: value)
        removeAll()
        return Fired(alert: alert, time: held.eventTime, offset: offset)
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


// MARK: Snapshot layout (see SnapshotCoding.swift)

extension KeyEngine {
    /// Whether restored state can run under `rule`: the engine the rule would make, and (for a
    /// sequence) runs with as many steps as the rule has. A snapshot that fails this is corrupt
    /// or from another definition; its state of the rule is not used.
    func fits(_ rule: Rule) -> Bool {
        switch (self, KeyEngine(rule: rule)) {
        case (.sliding(let state), .sliding(let fresh)): return state.aggregate == fresh.aggregate
        case (.buckets, .buckets), (.sessions, .sessions), (.absence, .absence), (.firstSeen, .firstSeen), (.baseline, .baseline):
            return true
        case (.sequence(let state), .sequence):
            let steps = rule.sequence?.steps.count ?? 0
            return state.runs.allSatisfy { run in
                run.stepCounts.count == steps && (0..<steps).contains(run.step) && run.countInStep >= 0
            }
        default: return false
        }
    }
}

extension KeyEngine: SnapshotCodable {
    func write(to writer: inout SnapshotWriter) {
        switch self {
        case .sliding(let state): writer.int(0); writer.value(state)
        case .buckets(let state): writer.int(1); writer.value(state)
        case .sessions(let state): writer.int(2); writer.value(state)
        case .sequence(let state): writer.int(3); writer.value(state)
        case .absence(let state): writer.int(4); writer.value(state)
        case .firstSeen(let state): writer.int(5); writer.value(state)
        case .baseline(let state): writer.int(6); writer.value(state)
        }
    }

    init(reading reader: inout SnapshotReader) throws {
        switch try reader.int() {
        case 0: self = .sliding(try reader.value())
        case 1: self = .buckets(try reader.value())
        case 2: self = .sessions(try reader.value())
        case 3: self = .sequence(try reader.value())
        case 4: self = .absence(try reader.value())
        case 5: self = .firstSeen(try reader.value())
        case 6: self = .baseline(try reader.value())
        case let tag: throw SnapshotError("aggregate snapshot invalid (engine kind \(tag))")
        }
    }
}

extension WindowContents: SnapshotCodable {
    func write(to writer: inout SnapshotWriter) {
        writer.int(count)
        writer.int(first)
        writer.int(last)
        writer.int(oldestOffset)
        writer.strings(eventUIDs)
        writer.json(context)
        writer.strings(occurrences)
        writer.double(sum)
        writer.optional(minimum) { $0.double($1) }
        writer.optional(maximum) { $0.double($1) }
    }

    init(reading reader: inout SnapshotReader) throws {
        count = try reader.int()
        first = try reader.int64()
        last = try reader.int64()
        oldestOffset = try reader.int64()
        eventUIDs = try reader.strings()
        context = try reader.json()
        occurrences = Set(try reader.strings())
        sum = try reader.double()
        minimum = try reader.optional { try $0.double() }
        maximum = try reader.optional { try $0.double() }
    }
}

extension BucketWindows: SnapshotCodable {
    func write(to writer: inout SnapshotWriter) {
        writer.dictionary(windows, key: { $0.int($1) }, value: { $0.value($1) })
    }

    init(reading reader: inout SnapshotReader) throws {
        windows = try reader.dictionary(key: { try $0.int64() }, value: { try $0.value(WindowContents.self) })
    }
}

extension SessionWindows: SnapshotCodable {
    func write(to writer: inout SnapshotWriter) {
        writer.array(sessions) { writer, session in
            writer.value(session.contents)
            writer.int(session.end)
        }
    }

    init(reading reader: inout SnapshotReader) throws {
        sessions = try reader.array { Session(contents: try $0.value(), end: try $0.int64()) }
    }
}

extension SequenceMatcher: SnapshotCodable {
    func write(to writer: inout SnapshotWriter) {
        writer.array(runs) { writer, run in
            writer.int(run.start)
            writer.int(run.step)
            writer.int(run.countInStep)
            writer.array(run.stepCounts) { $0.int($1) }
            writer.strings(run.eventUIDs)
            writer.string(run.lastUID)
            writer.int(run.oldestOffset)
        }
    }

    init(reading reader: inout SnapshotReader) throws {
        runs = try reader.array { reader in
            Run(start: try reader.int64(), step: try reader.int(), countInStep: try reader.int(),
                stepCounts: try reader.array { try $0.int() }, eventUIDs: try reader.strings(), lastUID: try reader.string(),
                oldestOffset: try reader.int64())
        }
    }
}

extension AbsenceWatch: SnapshotCodable {
    func write(to writer: inout SnapshotWriter) {
        writer.optional(open) { writer, expectation in
            writer.int(expectation.start)
            writer.int(expectation.count)
            writer.strings(expectation.eventUIDs)
            writer.json(expectation.context)
            writer.int(expectation.oldestOffset)
        }
    }

    init(reading reader: inout SnapshotReader) throws {
        open = try reader.optional { reader in
            Expectation(start: try reader.int64(), count: try reader.int(), eventUIDs: try reader.strings(),
                        context: try reader.json(), oldestOffset: try reader.int64())
        }
    }
}

extension FirstSeenState: SnapshotCodable {
    func write(to writer: inout SnapshotWriter) {
        writer.dictionary(values, key: { $0.string($1) }, value: { writer, seen in
            writer.int(seen.time)
            writer.int(seen.offset)
        })
        writer.optional(firstTime) { $0.int($1) }
        writer.optional(latest) { $0.int($1) }
        writer.int(events)
    }

    init(reading reader: inout SnapshotReader) throws {
        values = try reader.dictionary(key: { try $0.string() }, value: { Seen(time: try $0.int64(), offset: try $0.int64()) })
        firstTime = try reader.optional { try $0.int64() }
        latest = try reader.optional { try $0.int64() }
        events = try reader.int()
    }
}

extension BaselineState: SnapshotCodable {
    func write(to writer: inout SnapshotWriter) {
        writer.dictionary(open, key: { $0.int($1) }, value: { $0.value($1) })
        writer.array(values) { $0.double($1) }
        writer.double(mean)
        writer.double(variance)
        writer.int(seen)
        writer.optional(lastClosedEnd) { $0.int($1) }
    }

    init(reading reader: inout SnapshotReader) throws {
        open = try reader.dictionary(key: { try $0.int64() }, value: { try $0.value(WindowContents.self) })
        values = try reader.array { try $0.double() }
        mean = try reader.double()
        variance = try reader.double()
        seen = try reader.int()
        lastClosedEnd = try reader.optional { try $0.int64() }
    }
}

extension SlidingWindowState: SnapshotCodable {
    func write(to writer: inout SnapshotWriter) {
        writer.value(aggregate)
        writer.array(window)
        writer.dictionary(occurrences, key: { $0.string($1) }, value: { $0.int($1) })
        writer.double(sum)
    }

    init(reading reader: inout SnapshotReader) throws {
        aggregate = try reader.value()
        window = try reader.array(of: Held.self)
        occurrences = try reader.dictionary(key: { try $0.string() }, value: { try $0.int() })
        sum = try reader.double()
    }
}
