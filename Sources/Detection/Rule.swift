import OCSF

/// A detection rule: which events it selects (`match`) and, for aggregating rules, how many of
/// them per group and time span make an alert (`window`). Loaded from YAML (see docs/rules.md).
public struct Rule: Sendable, Equatable {
    /// Stable identifier such as `aws.cloudtrail.logging_disabled`; part of every alert id.
    public var id: String
    /// Bumped when the rule's meaning changes; part of every alert id, so a changed rule's
    /// alerts never collide with the old ones.
    public var version: Int
    /// One line for people.
    public var title: String
    /// What the rule detects and why it matters.
    public var description: String
    /// Severity of the alerts it raises.
    public var severity: OCSFSeverity
    /// MITRE ATT&CK technique ids (`T1562.008`).
    public var attack: [String]
    /// Free-form labels (`aws`, `defense-evasion`); copied to the alert's `finding_info.types`.
    public var tags: [String]
    /// Which events the rule selects.
    public var match: Condition
    /// Aggregation over selected events; `nil` for single-event rules, which alert per event.
    public var window: WindowSpec?
    /// Ordered steps within a span per group ("five failures then a success"); `nil` unless a
    /// sequence rule.
    public var sequence: SequenceSpec?
    /// An event not followed by another within a span; `nil` unless an absence rule.
    public var absence: AbsenceSpec?
    /// A value never seen for the group key within a look-back; `nil` unless a first-seen rule.
    public var firstSeen: FirstSeenSpec?
    /// A per-key count or sum per interval far above the key's own history; `nil` unless a
    /// baseline rule.
    public var baseline: BaselineSpec?
    /// At most one alert per (rule, group key) per this many milliseconds of event time;
    /// `nil` for no suppression. Only rules with a group key (window, sequence, absence) have it.
    public var suppressMillis: Int64?
    /// At most this many group keys of the rule hold state in one aggregator (and, separately,
    /// at most this many keys are inside a `suppress` period); a new key beyond it evicts the
    /// least recently active one. `nil`: the stage's default
    /// (``WindowAggregator/defaultMaxKeysPerRule`` unless the stage is told otherwise). Only
    /// stateful rules have it.
    public var maxKeys: Int?
    /// The file the rule was loaded from, when it came from one.
    public var file: String?

    /// Creates a rule.
    public init(
        id: String, version: Int, title: String, description: String = "", severity: OCSFSeverity,
        attack: [String] = [], tags: [String] = [], match: Condition, window: WindowSpec? = nil, file: String? = nil,
        sequence: SequenceSpec? = nil, absence: AbsenceSpec? = nil, suppressMillis: Int64? = nil,
        firstSeen: FirstSeenSpec? = nil, baseline: BaselineSpec? = nil, maxKeys: Int? = nil
    ) {
        self.id = id
        self.version = version
        self.title = title
        self.description = description
        self.severity = severity
        self.attack = attack
        self.tags = tags
        self.match = match
        self.window = window
        self.sequence = sequence
        self.absence = absence
        self.firstSeen = firstSeen
        self.baseline = baseline
        self.suppressMillis = suppressMillis
        self.maxKeys = maxKeys
        self.file = file
    }

    /// Whether the rule keeps state per group key in the aggregate step (window, sequence,
    /// absence, first seen, baseline); single-event rules alert from the select step.
    public var isStateful: Bool { groupBy != nil }

    /// The `group_by` fields of a stateful rule; `nil` for single-event rules.
    public var groupBy: [String]? {
        window?.groupBy ?? sequence?.groupBy ?? absence?.groupBy ?? firstSeen?.groupBy ?? baseline?.groupBy
    }

    /// The allowed lateness of a stateful rule; `nil` for single-event rules.
    public var latenessMillis: Int64? {
        window?.latenessMillis ?? sequence?.latenessMillis ?? absence?.latenessMillis ?? firstSeen?.latenessMillis
            ?? baseline?.latenessMillis
    }

    /// The grace of a stateful rule; 0 for single-event rules.
    public var graceMillis: Int64 {
        window?.graceMillis ?? sequence?.graceMillis ?? absence?.graceMillis ?? firstSeen?.graceMillis ?? baseline?.graceMillis ?? 0
    }

    /// The event field whose value a partial of the rule carries, and whether it must be a
    /// JSON number: a window's or baseline's aggregated field, a first-seen rule's field.
    public var valueField: (path: String, numeric: Bool)? {
        if let aggregate = window?.aggregate ?? baseline?.aggregate, let field = aggregate.field {
            return (field, aggregate.isNumeric)
        }
        return firstSeen.map { ($0.field, false) }
    }

    /// The number of `match` steps a sequence or absence rule selects with (partials carry
    /// the step index); 0 otherwise.
    public var stepCount: Int { sequence?.steps.count ?? (absence == nil ? 0 : 2) }

    /// The condition of step `index` of a sequence (or of an absence: 0 the trigger, 1 the
    /// expected follow-up).
    public func stepCondition(_ index: Int) -> Condition? {
        if let sequence, sequence.steps.indices.contains(index) { return sequence.steps[index].match }
        if let absence { return index == 0 ? absence.trigger : index == 1 ? absence.expected : nil }
        return nil
    }
}

/// Ordered steps per group within a span: a match when, for each step in order, at least
/// `count` events match it after the previous step was complete, all within `within`.
public struct SequenceSpec: Sendable, Equatable {
    /// One step of a sequence.
    public struct Step: Sendable, Equatable {
        /// Which events the step takes.
        public var match: Condition
        /// How many matching events complete the step (at least 1).
        public var count: Int

        /// A step.
        public init(match: Condition, count: Int = 1) {
            self.match = match
            self.count = count
        }
    }

    /// Event fields whose values form the group key.
    public var groupBy: [String]
    /// The steps, in order (at least two).
    public var steps: [Step]
    /// The span, first to last event, is less than this many milliseconds.
    public var withinMillis: Int64
    /// Allowed lateness, as for windows.
    public var latenessMillis: Int64
    /// Grace, as for windows.
    public var graceMillis: Int64

    /// A sequence specification.
    public init(groupBy: [String], steps: [Step], withinMillis: Int64,
                latenessMillis: Int64 = WindowSpec.defaultLatenessMillis, graceMillis: Int64 = WindowSpec.defaultGraceMillis) {
        self.groupBy = groupBy
        self.steps = steps
        self.withinMillis = withinMillis
        self.latenessMillis = latenessMillis
        self.graceMillis = graceMillis
    }
}

/// A value of a field never seen for the group key within a look-back ("a new region for this
/// principal"), judged only once the key has enough history.
public struct FirstSeenSpec: Sendable, Equatable {
    /// Event fields whose values form the group key.
    public var groupBy: [String]
    /// The field whose values are tracked (compared as text).
    public var field: String
    /// A value last seen this long ago or longer is new again.
    public var lookbackMillis: Int64
    /// The key must have been seen for this long before a new value fires.
    public var minHistoryMillis: Int64
    /// The key must have had this many events before a new value fires.
    public var minEvents: Int
    /// Allowed lateness, as for windows.
    public var latenessMillis: Int64
    /// Grace, as for windows.
    public var graceMillis: Int64

    /// Default minimum history: 1 day.
    public static let defaultMinHistoryMillis: Int64 = 86_400_000
    /// Default minimum number of events: 10.
    public static let defaultMinEvents = 10

    /// A first-seen specification.
    public init(groupBy: [String], field: String, lookbackMillis: Int64,
                minHistoryMillis: Int64 = FirstSeenSpec.defaultMinHistoryMillis, minEvents: Int = FirstSeenSpec.defaultMinEvents,
                latenessMillis: Int64 = WindowSpec.defaultLatenessMillis, graceMillis: Int64 = WindowSpec.defaultGraceMillis) {
        self.groupBy = groupBy
        self.field = field
        self.lookbackMillis = lookbackMillis
        self.minHistoryMillis = minHistoryMillis
        self.minEvents = minEvents
        self.latenessMillis = latenessMillis
        self.graceMillis = graceMillis
    }
}

/// A per-key count or sum per epoch-aligned interval compared with the key's own history: an
/// interval fires when its score, (value − mean) / max(stddev, min_stddev), reaches the threshold.
public struct BaselineSpec: Sendable, Equatable {
    /// How the history's mean and standard deviation are computed.
    public enum Method: String, Sendable, CaseIterable {
        /// Mean and population standard deviation of the last `history` intervals.
        case zscore
        /// Exponentially weighted mean and variance, alpha = 2 / (history + 1).
        case ewma
    }

    /// Event fields whose values form the group key.
    public var groupBy: [String]
    /// The interval length in milliseconds (epoch-aligned, like tumbling windows).
    public var intervalMillis: Int64
    /// `count` or `sum` of a field per interval.
    public var aggregate: WindowSpec.Aggregate
    /// How the history is summarized.
    public var method: Method
    /// How many past intervals the history spans (zscore) or weighs (ewma).
    public var history: Int
    /// How many past intervals a key needs before an interval can fire.
    public var minHistory: Int
    /// The score at or above which an interval fires.
    public var threshold: Double
    /// An interval whose value is below this never fires.
    public var minValue: Double
    /// The smallest standard deviation used, so a flat history does not make every change infinite.
    public var minStddev: Double
    /// Allowed lateness, as for windows.
    public var latenessMillis: Int64
    /// Grace, as for windows.
    public var graceMillis: Int64

    /// A baseline specification.
    public init(groupBy: [String], intervalMillis: Int64, aggregate: WindowSpec.Aggregate = .count, method: Method = .zscore,
                history: Int, minHistory: Int, threshold: Double, minValue: Double = 0, minStddev: Double = 1,
                latenessMillis: Int64 = WindowSpec.defaultLatenessMillis, graceMillis: Int64 = WindowSpec.defaultGraceMillis) {
        self.groupBy = groupBy
        self.intervalMillis = intervalMillis
        self.aggregate = aggregate
        self.method = method
        self.history = history
        self.minHistory = minHistory
        self.threshold = threshold
        self.minValue = minValue
        self.minStddev = minStddev
        self.latenessMillis = latenessMillis
        self.graceMillis = graceMillis
    }
}

/// An event (the trigger) not followed, for the same group, by another (the expected one)
/// within a span: "StopLogging not followed by StartLogging within 15 minutes".
public struct AbsenceSpec: Sendable, Equatable {
    /// Event fields whose values form the group key.
    public var groupBy: [String]
    /// The event that opens an expectation.
    public var trigger: Condition
    /// The event that must follow.
    public var expected: Condition
    /// How long, in milliseconds after the trigger, the expected event may take.
    public var withinMillis: Int64
    /// Allowed lateness, as for windows.
    public var latenessMillis: Int64
    /// Grace, as for windows.
    public var graceMillis: Int64

    /// An absence specification.
    public init(groupBy: [String], trigger: Condition, expected: Condition, withinMillis: Int64,
                latenessMillis: Int64 = WindowSpec.defaultLatenessMillis, graceMillis: Int64 = WindowSpec.defaultGraceMillis) {
        self.groupBy = groupBy
        self.trigger = trigger
        self.expected = expected
        self.withinMillis = withinMillis
        self.latenessMillis = latenessMillis
        self.graceMillis = graceMillis
    }
}

/// A boolean condition over the fields of one event.
public indirect enum Condition: Sendable, Equatable {
    /// True when every member is true (and for an empty list).
    case all([Condition])
    /// True when at least one member is true (false for an empty list).
    case any([Condition])
    /// True when the member is false.
    case not(Condition)
    /// A test of one field.
    case field(FieldTest)
}

/// A test of the value at one dotted path of an event (`actor.user.name`, `resources.0.uid`).
///
/// Built only through the throwing initializer, which validates the values and compiles the
/// expensive parts (regular expressions, networks) once, so evaluation per event is cheap.
public struct FieldTest: Sendable, Equatable {
    /// The comparison a field test makes.
    public enum Op: String, Sendable, CaseIterable {
        /// The field equals one value.
        case equals
        /// The field equals one of the values.
        case `in`
        /// The field's text starts with one of the values.
        case prefix
        /// The field's text ends with one of the values.
        case suffix
        /// The field's text contains one of the values.
        case contains
        /// One of the regular expressions matches somewhere in the field's text.
        case regex
        /// The field is an IP address inside one of the networks (IPv4 or IPv6 CIDR).
        case cidr
        /// The field is a number greater than the value.
        case gt
        /// The field is a number greater than or equal to the value.
        case gte
        /// The field is a number less than the value.
        case lt
        /// The field is a number less than or equal to the value.
        case lte
        /// The field is present and not null (value `true`), or absent or null (value `false`).
        case exists

        /// Whether `case_insensitive` applies to this operator.
        public var isTextual: Bool {
            switch self {
            case .equals, .in, .prefix, .suffix, .contains, .regex: true
            default: false
            }
        }

        /// Whether the operator compares numbers.
        public var isNumeric: Bool {
            switch self {
            case .gt, .gte, .lt, .lte: true
            default: false
            }
        }
    }

    /// The dotted path of the field.
    public let path: String
    /// The comparison.
    public let op: Op
    /// The operand(s): one for `equals`, numeric ops and `exists`; one or more otherwise.
    public let values: [JSON]
    /// Compare text ignoring case (textual operators only).
    public let caseInsensitive: Bool

    let compiled: CompiledTest
    /// `path` split at its dots, once, so evaluation walks the event without re-scanning it.
    let components: [String]

    /// Validates and compiles a field test.
    ///
    /// - Throws: `RuleError` (`invalid_rule`, without file or line; the rule loader adds them)
    ///   when the path is empty, the values do not suit the operator, a regular expression does
    ///   not compile or a network is not a valid CIDR.
    public init(path: String, op: Op, values: [JSON], caseInsensitive: Bool = false) throws(RuleError) {
        func invalid(_ reason: String) -> RuleError { RuleError(code: .invalidRule, reason: reason) }
        guard !path.isEmpty, !path.split(separator: ".", omittingEmptySubsequences: false).contains(where: \.isEmpty) else {
            throw invalid("field path must be non-empty dotted names")
        }
        guard !values.isEmpty else { throw invalid("'\(op.rawValue)' needs a value") }
        if caseInsensitive, !op.isTextual {
            throw invalid("case_insensitive does not apply to '\(op.rawValue)'")
        }
        if op == .equals || op.isNumeric || op == .exists, values.count != 1 {
            throw invalid("'\(op.rawValue)' takes exactly one value")
        }
        self.path = path
        self.op = op
        self.values = values
        self.caseInsensitive = caseInsensitive
        self.compiled = try CompiledTest(op: op, values: values, caseInsensitive: caseInsensitive)
        self.components = path.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
    }

    /// Tests compare what the rule says, not the compiled form.
    public static func == (lhs: FieldTest, rhs: FieldTest) -> Bool {
        lhs.path == rhs.path && lhs.op == rhs.op && lhs.values == rhs.values && lhs.caseInsensitive == rhs.caseInsensitive
    }
}

/// How a rule aggregates the events it selects: sliding, tumbling, hopping or session windows.
public struct WindowSpec: Sendable, Equatable {
    /// The kind of window.
    public enum Kind: String, Sendable, CaseIterable {
        /// Any span of `size` ending at an event: "5 failures in any 5 minutes".
        case sliding
        /// Fixed, adjacent windows of `size` aligned to the epoch: [k·size, (k+1)·size).
        case tumbling
        /// Windows of `size` starting every `advance`, aligned to the epoch; they overlap.
        case hopping
        /// Runs of events no more than `gap` apart, optionally cut at `max_size`.
        case session
    }

    /// What is computed over the events of a window. Every aggregate but `count` reads one
    /// field of each selected event; the select step carries its value in the partial.
    public enum Aggregate: Sendable, Equatable {
        /// The number of events.
        case count
        /// The number of different values (compared as text) of the field.
        case distinct(field: String)
        /// The sum of the field's numbers.
        case sum(field: String)
        /// The smallest of the field's numbers.
        case min(field: String)
        /// The largest of the field's numbers.
        case max(field: String)
        /// The mean of the field's numbers.
        case avg(field: String)

        /// The names of the aggregates that read a field, as written in YAML.
        public static let fieldAggregateNames = ["distinct", "sum", "min", "max", "avg"]

        /// The aggregate `name` (`distinct`, `sum`, `min`, `max`, `avg`) over `field`; `nil`
        /// for an unknown name.
        public init?(name: String, field: String) {
            switch name {
            case "distinct": self = .distinct(field: field)
            case "sum": self = .sum(field: field)
            case "min": self = .min(field: field)
            case "max": self = .max(field: field)
            case "avg": self = .avg(field: field)
            default: return nil
            }
        }

        /// `count`, `distinct`, `sum`, `min`, `max` or `avg`.
        public var name: String {
            switch self {
            case .count: "count"
            case .distinct: "distinct"
            case .sum: "sum"
            case .min: "min"
            case .max: "max"
            case .avg: "avg"
            }
        }

        /// The dotted path of the field read; `nil` for `count`.
        public var field: String? {
            switch self {
            case .count: nil
            case .distinct(let field), .sum(let field), .min(let field), .max(let field), .avg(let field): field
            }
        }

        /// Whether the aggregate computes over numbers (`sum`, `min`, `max`, `avg`).
        public var isNumeric: Bool {
            switch self {
            case .count, .distinct: false
            case .sum, .min, .max, .avg: true
            }
        }
    }

    /// Event fields whose values form the group key (`actor.user.name`); events lacking one
    /// of them are not selected.
    public var groupBy: [String]
    /// The kind of window.
    public var kind: Kind
    /// The window length in milliseconds of event time; for a session window the maximum
    /// session length, 0 for none.
    public var sizeMillis: Int64
    /// Hopping windows: how far apart window starts are (at most `sizeMillis`); tumbling
    /// windows behave as `sizeMillis`; `nil` otherwise.
    public var advanceMillis: Int64?
    /// Session windows: the largest gap between two events of one session; `nil` otherwise.
    public var gapMillis: Int64?
    /// What is computed.
    public var aggregate: Aggregate
    /// When the aggregate makes an alert.
    public var threshold: Threshold
    /// How far behind the newest event time a record may arrive and still count. An
    /// aggregator applies the largest lateness among its rules to every partial.
    public var latenessMillis: Int64
    /// Extra wait after the watermark passes an event before it is final.
    public var graceMillis: Int64

    /// Default allowed lateness: 30 s, enough for shippers that batch by the minute-ish.
    public static let defaultLatenessMillis: Int64 = 30_000
    /// Default grace: none; the lateness already delays every decision.
    public static let defaultGraceMillis: Int64 = 0

    /// Creates a window specification.
    public init(
        groupBy: [String], kind: Kind = .sliding, sizeMillis: Int64, aggregate: Aggregate = .count,
        threshold: Threshold, latenessMillis: Int64 = WindowSpec.defaultLatenessMillis,
        graceMillis: Int64 = WindowSpec.defaultGraceMillis, advanceMillis: Int64? = nil, gapMillis: Int64? = nil
    ) {
        self.groupBy = groupBy
        self.kind = kind
        self.sizeMillis = sizeMillis
        self.advanceMillis = advanceMillis
        self.gapMillis = gapMillis
        self.aggregate = aggregate
        self.threshold = threshold
        self.latenessMillis = latenessMillis
        self.graceMillis = graceMillis
    }
}

/// A comparison of an aggregate with a constant, written `">= 5"` in YAML.
public struct Threshold: Sendable, Equatable, CustomStringConvertible {
    /// The comparison operator.
    public enum Op: String, Sendable, CaseIterable {
        /// `>`
        case greaterThan = ">"
        /// `>=`
        case greaterThanOrEqual = ">="
        /// `<`
        case lessThan = "<"
        /// `<=`
        case lessThanOrEqual = "<="
        /// `==`
        case equal = "=="
        /// `between A and B`, both included.
        case between = "between"
    }

    /// The comparison operator.
    public var op: Op
    /// The constant compared with (the lower bound of `between`).
    public var value: Double
    /// The upper bound of `between`; `nil` for the other operators.
    public var upper: Double?

    /// Creates a threshold.
    public init(op: Op, value: Double, upper: Double? = nil) {
        self.op = op
        self.value = value
        self.upper = upper
    }

    /// Parses `">= 5"`, `"> 100"`, `"== 3"`, `"< 2"`, `"<= 0.5"`, `"between 3 and 10"`; `nil`
    /// for anything else.
    public init?(parsing text: String) {
        let trimmed = text.trimmingWhitespace()
        if trimmed.hasPrefix("between ") {
            let words = trimmed.split(whereSeparator: \.isWhitespace)
            guard words.count == 4, words[2] == "and", let low = Self.number(words[1]), let high = Self.number(words[3]) else {
                return nil
            }
            self.init(op: .between, value: low, upper: high)
            return
        }
        for op in [Op.greaterThanOrEqual, .lessThanOrEqual, .equal, .greaterThan, .lessThan]
        where trimmed.hasPrefix(op.rawValue) {
            guard let value = Self.number(Substring(trimmed.dropFirst(op.rawValue.count))) else { return nil }
            self.init(op: op, value: value)
            return
        }
        return nil
    }

    private static func number(_ text: Substring) -> Double? {
        let number = String(text).trimmingWhitespace()
        guard let value = Double(number), value.isFinite, number.contains(where: \.isNumber) else { return nil }
        return value
    }

    /// Whether `aggregate` satisfies the threshold.
    public func isSatisfied(by aggregate: Double) -> Bool {
        switch op {
        case .greaterThan: aggregate > value
        case .greaterThanOrEqual: aggregate >= value
        case .lessThan: aggregate < value
        case .lessThanOrEqual: aggregate <= value
        case .equal: aggregate == value
        case .between: aggregate >= value && aggregate <= (upper ?? value)
        }
    }

    /// `>= 5`, `between 3 and 10`.
    public var description: String {
        let text = { (number: Double) in JSON.double(number).scalarText ?? "" }
        if op == .between { return "between \(text(value)) and \(text(upper ?? value))" }
        return "\(op.rawValue) \(text(value))"
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var scalars = Substring(self)
        while let first = scalars.first, first.isWhitespace { scalars.removeFirst() }
        while let last = scalars.last, last.isWhitespace { scalars.removeLast() }
        return String(scalars)
    }
}

extension Rule {
    /// What the aggregate state of the rule depends on, as text: its window, sequence, absence,
    /// first_seen or baseline parameters and its suppress period, without the conditions (the
    /// select step applies those). State saved under another signature is not restored, even
    /// when the version is the same.
    var stateSignature: String {
        var parts: [String] = []
        if let window { parts.append("window \(window)") }
        if let sequence {
            parts.append("sequence \(sequence.groupBy) \(sequence.steps.map(\.count)) \(sequence.withinMillis) \(sequence.latenessMillis) \(sequence.graceMillis)")
        }
        if let absence { parts.append("absence \(absence.groupBy) \(absence.withinMillis) \(absence.latenessMillis) \(absence.graceMillis)") }
        if let firstSeen { parts.append("first_seen \(firstSeen)") }
        if let baseline { parts.append("baseline \(baseline)") }
        parts.append("suppress \(suppressMillis.map { String($0) } ?? "none")")
        return parts.joined(separator: "; ")
    }
}
