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
    /// The file the rule was loaded from, when it came from one.
    public var file: String?

    /// Creates a rule.
    public init(
        id: String, version: Int, title: String, description: String = "", severity: OCSFSeverity,
        attack: [String] = [], tags: [String] = [], match: Condition, window: WindowSpec? = nil, file: String? = nil
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
        self.file = file
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
    }

    /// Tests compare what the rule says, not the compiled form.
    public static func == (lhs: FieldTest, rhs: FieldTest) -> Bool {
        lhs.path == rhs.path && lhs.op == rhs.op && lhs.values == rhs.values && lhs.caseInsensitive == rhs.caseInsensitive
    }
}

/// How a rule aggregates the events it selects. Only sliding windows exist so far; the shape
/// leaves room for tumbling, hopping and session windows.
public struct WindowSpec: Sendable, Equatable {
    /// The kind of window.
    public enum Kind: String, Sendable, CaseIterable {
        /// Any span of `size` ending at an event: "5 failures in any 5 minutes".
        case sliding
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
    /// The window length in milliseconds of event time.
    public var sizeMillis: Int64
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
        graceMillis: Int64 = WindowSpec.defaultGraceMillis
    ) {
        self.groupBy = groupBy
        self.kind = kind
        self.sizeMillis = sizeMillis
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
    }

    /// The comparison operator.
    public var op: Op
    /// The constant compared with.
    public var value: Double

    /// Creates a threshold.
    public init(op: Op, value: Double) {
        self.op = op
        self.value = value
    }

    /// Parses `">= 5"`, `"> 100"`, `"== 3"`; `nil` for anything else.
    public init?(parsing text: String) {
        let trimmed = text.trimmingWhitespace()
        for op in [Op.greaterThanOrEqual, .lessThanOrEqual, .equal, .greaterThan, .lessThan]
        where trimmed.hasPrefix(op.rawValue) {
            let number = String(trimmed.dropFirst(op.rawValue.count)).trimmingWhitespace()
            guard let value = Double(number), value.isFinite, number.contains(where: \.isNumber) else { return nil }
            self.init(op: op, value: value)
            return
        }
        return nil
    }

    /// Whether `aggregate` satisfies the threshold.
    public func isSatisfied(by aggregate: Double) -> Bool {
        switch op {
        case .greaterThan: aggregate > value
        case .greaterThanOrEqual: aggregate >= value
        case .lessThan: aggregate < value
        case .lessThanOrEqual: aggregate <= value
        case .equal: aggregate == value
        }
    }

    /// `>= 5`.
    public var description: String { "\(op.rawValue) \(JSON.double(value).scalarText ?? "")" }
}

extension String {
    func trimmingWhitespace() -> String {
        var scalars = Substring(self)
        while let first = scalars.first, first.isWhitespace { scalars.removeFirst() }
        while let last = scalars.last, last.isWhitespace { scalars.removeLast() }
        return String(scalars)
    }
}
