import OCSF
import YAMLFiles
import Yams

/// The rules a detection stage runs, with unique ids.
public struct RuleSet: Sendable {
    /// The rules, in load order (files sorted by path, documents in file order).
    public private(set) var rules: [Rule]
    private var indexByID: [String: Int]

    /// A rule set from rules already built; rejects duplicate ids.
    public init(rules: [Rule]) throws(RuleError) {
        var index: [String: Int] = [:]
        for (position, rule) in rules.enumerated() {
            if let first = index[rule.id] {
                let firstFile = rules[first].file.map { " (first defined in \($0))" } ?? ""
                throw RuleError(code: .duplicateRuleID, file: rule.file, line: nil,
                                reason: "rule id '\(rule.id)' is defined twice\(firstFile)")
            }
            index[rule.id] = position
        }
        self.rules = rules
        self.indexByID = index
    }

    /// The rule with `id`.
    public func rule(id: String) -> Rule? { indexByID[id].map { rules[$0] } }

    /// Loads every `*.yaml` / `*.yml` file under `directory` (recursively, hidden entries
    /// skipped, in path order). One file may hold several rules as YAML documents. Files in a
    /// directory named `tests` are rule test fixtures (`RuleFixture`), not rules, and are skipped.
    ///
    /// - Throws: `RuleError` naming the file (and line) of the first problem.
    public static func load(directory: String) throws(RuleError) -> RuleSet {
        let files: [(path: String, text: String)]
        do throws(YAMLProblem) { files = try YAMLDirectory.files(in: directory) } catch { throw RuleError(error) }
        var rules: [Rule] = []
        for file in files where !isFixturePath(file.path, under: directory) {
            rules.append(contentsOf: try parse(yaml: file.text, file: file.path))
        }
        return try RuleSet(rules: rules)
    }

    /// Whether `path` (a file found under `directory`) lies in a `tests` directory below it.
    static func isFixturePath(_ path: String, under directory: String) -> Bool {
        let relative = path.dropFirst(directory.count)
        return relative.split(separator: "/").dropLast().contains("tests")
    }

    /// Parses the rules in one YAML text (one rule per document); `file` is named in errors
    /// and recorded in each rule. Duplicate ids within the text are rejected.
    public static func parse(yaml: String, file: String) throws(RuleError) -> [Rule] {
        let reader = YAMLReader(file: file)
        let documents: [Node]
        do throws(YAMLProblem) { documents = try reader.documents(yaml) } catch { throw RuleError(error) }
        var rules: [Rule] = []
        var seen: Set<String> = []
        for document in documents {
            let rule: Rule
            do throws(YAMLProblem) { rule = try reader.rule(document) } catch { throw RuleError(error) }
            guard seen.insert(rule.id).inserted else {
                throw RuleError(code: .duplicateRuleID, file: file, line: document.mark?.line,
                                reason: "rule id '\(rule.id)' is defined twice")
            }
            rules.append(rule)
        }
        return rules
    }
}

extension RuleError {
    /// The error for a problem met while reading rule files: unreadable files and
    /// directories, malformed YAML, and well-formed YAML that is not a valid rule.
    init(_ problem: YAMLProblem) {
        self.init(code: problem.code(unreadable: .unreadableFile, syntax: .invalidYAML, invalid: .invalidRule),
                  file: problem.file, line: problem.line, reason: problem.reason)
    }
}

/// The rule parser: reads one YAML document into a `Rule`.
extension YAMLReader {
    static let ruleKeys = ["id", "version", "title", "description", "severity", "attack", "tags", "match", "window",
                           "sequence", "absence", "first_seen", "baseline", "suppress", "max_keys"]
    static let windowKeys = ["group_by", "type", "size", "advance", "gap", "max_size", "aggregate", "threshold", "lateness", "grace"]
    static let sequenceKeys = ["group_by", "steps", "within", "lateness", "grace"]
    static let stepKeys = ["match", "count"]
    static let absenceKeys = ["group_by", "trigger", "expected", "within", "lateness", "grace"]
    static let firstSeenKeys = ["group_by", "field", "lookback", "min_history", "min_events", "lateness", "grace"]
    static let baselineKeys = ["group_by", "interval", "aggregate", "method", "history", "min_history", "threshold",
                               "min_value", "min_stddev", "lateness", "grace"]

    func rule(_ node: Node) throws(YAMLProblem) -> Rule {
        let members = try mapping(node, allowed: Self.ruleKeys, what: "rule")
        let id = try string(required(members, "id", in: node, what: "rule"), what: "id")
        guard Self.isValidID(id) else {
            throw problem(members["id"], "id may hold only letters, digits, '.', '_' and '-'")
        }
        let versionNode = try required(members, "version", in: node, what: "rule")
        let version = try int(versionNode, what: "version")
        guard version >= 1, version <= Int64(Int32.max) else { throw problem(versionNode, "version must be a positive whole number") }
        let title = try string(required(members, "title", in: node, what: "rule"), what: "title")
        let description = try members["description"].map { n throws(YAMLProblem) in try string(n, what: "description") } ?? ""
        let severityNode = try required(members, "severity", in: node, what: "rule")
        guard let severity = OCSFSeverity(name: try string(severityNode, what: "severity")) else {
            throw problem(severityNode, "severity must be one of: \(OCSFSeverity.allCases.map { $0.name.lowercased() }.joined(separator: ", "))")
        }
        var attack: [String] = []
        if let attackNode = members["attack"] {
            attack = try stringList(attackNode, what: "attack")
            for technique in attack where !Self.isTechniqueID(technique) {
                throw problem(attackNode, "attack entries must be ATT&CK technique ids such as T1562 or T1562.008")
            }
        }
        let tags = try members["tags"].map { n throws(YAMLProblem) in try stringList(n, what: "tags") } ?? []
        let kinds = ["window", "sequence", "absence", "first_seen", "baseline"].filter { members[$0] != nil }
        guard kinds.count <= 1 else {
            throw problem(members[kinds[1]], "a rule has at most one of 'window', 'sequence', 'absence', 'first_seen' and 'baseline'")
        }
        // A sequence or absence selects with its steps; a rule-level match then only narrows.
        let match: Condition
        if let matchNode = members["match"] {
            match = try condition(matchNode)
        } else if members["sequence"] != nil || members["absence"] != nil {
            match = .all([])
        } else {
            throw problem(node, "rule is missing 'match'")
        }
        let window = try members["window"].map { n throws(YAMLProblem) in try self.window(n) }
        let sequence = try members["sequence"].map { n throws(YAMLProblem) in try self.sequence(n) }
        let absence = try members["absence"].map { n throws(YAMLProblem) in try self.absence(n) }
        let firstSeen = try members["first_seen"].map { n throws(YAMLProblem) in try self.firstSeen(n) }
        let baseline = try members["baseline"].map { n throws(YAMLProblem) in try self.baseline(n) }
        var suppress: Int64?
        if let suppressNode = members["suppress"] {
            guard kinds.count == 1 else {
                throw problem(suppressNode, "suppress needs a group key: only window, sequence, absence, first_seen and baseline rules take it")
            }
            suppress = try duration(suppressNode, what: "suppress", allowZero: false)
        }
        var maxKeys: Int?
        if let maxKeysNode = members["max_keys"] {
            guard kinds.count == 1 else {
                throw problem(maxKeysNode, "max_keys needs a group key: only window, sequence, absence, first_seen and baseline rules take it")
            }
            let value = try int(maxKeysNode, what: "max_keys")
            guard value >= 1, value <= Int64(Self.maximumMaxKeys) else {
                throw problem(maxKeysNode, "max_keys must be a whole number from 1 to \(Self.maximumMaxKeys)")
            }
            maxKeys = Int(value)
        }
        return Rule(id: id, version: Int(version), title: title, description: description, severity: severity,
                    attack: attack, tags: tags, match: match, window: window, file: file,
                    sequence: sequence, absence: absence, suppressMillis: suppress, firstSeen: firstSeen, baseline: baseline,
                    maxKeys: maxKeys)
    }

    /// The largest `max_keys` a rule may ask for.
    static let maximumMaxKeys = 100_000_000

    func firstSeen(_ node: Node) throws(YAMLProblem) -> FirstSeenSpec {
        let members = try mapping(node, allowed: Self.firstSeenKeys, what: "first_seen")
        let groupBy = try groupBy(members, in: node, what: "first_seen")
        let fieldNode = try required(members, "field", in: node, what: "first_seen")
        let field = try string(fieldNode, what: "field")
        guard !field.split(separator: ".", omittingEmptySubsequences: false).contains(where: \.isEmpty) else {
            throw problem(fieldNode, "field must be non-empty dotted names")
        }
        guard !groupBy.contains(field) else { throw problem(fieldNode, "field must not be one of the group_by fields") }
        let lookbackNode = try required(members, "lookback", in: node, what: "first_seen")
        let lookback = try duration(lookbackNode, what: "lookback", allowZero: false)
        let minHistory = try members["min_history"].map { n throws(YAMLProblem) in try duration(n, what: "min_history", allowZero: true) }
            ?? FirstSeenSpec.defaultMinHistoryMillis
        guard minHistory < lookback else {
            throw problem(members["min_history"] ?? lookbackNode, "min_history must be shorter than lookback")
        }
        var minEvents = FirstSeenSpec.defaultMinEvents
        if let eventsNode = members["min_events"] {
            let value = try int(eventsNode, what: "min_events")
            guard value >= 0, value <= 1_000_000 else { throw problem(eventsNode, "min_events must be a whole number from 0 to 1000000") }
            minEvents = Int(value)
        }
        let (lateness, grace) = try latenessAndGrace(members)
        return FirstSeenSpec(groupBy: groupBy, field: field, lookbackMillis: lookback, minHistoryMillis: minHistory,
                             minEvents: minEvents, latenessMillis: lateness, graceMillis: grace)
    }

    func baseline(_ node: Node) throws(YAMLProblem) -> BaselineSpec {
        let members = try mapping(node, allowed: Self.baselineKeys, what: "baseline")
        let groupBy = try groupBy(members, in: node, what: "baseline")
        let interval = try duration(required(members, "interval", in: node, what: "baseline"), what: "interval", allowZero: false)
        let aggregate = try members["aggregate"].map { n throws(YAMLProblem) in try self.aggregate(n) } ?? .count
        if let aggregateNode = members["aggregate"], aggregate.name != "count", aggregate.name != "sum" {
            throw problem(aggregateNode, "a baseline aggregates 'count' or {sum: FIELD}")
        }
        var method = BaselineSpec.Method.zscore
        if let methodNode = members["method"] {
            guard let named = BaselineSpec.Method(rawValue: try string(methodNode, what: "method")) else {
                throw problem(methodNode, "method must be one of: \(BaselineSpec.Method.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            method = named
        }
        func count(_ key: String, range: ClosedRange<Int64>) throws(YAMLProblem) -> Int {
            let countNode = try required(members, key, in: node, what: "baseline")
            let value = try int(countNode, what: key)
            guard range.contains(value) else {
                throw problem(countNode, "\(key) must be a whole number from \(range.lowerBound) to \(range.upperBound)")
            }
            return Int(value)
        }
        let history = try count("history", range: 2...1000)
        let minHistory = try count("min_history", range: 1...Int64(history))
        func number(_ key: String, default value: Double?, positive: Bool) throws(YAMLProblem) -> Double {
            guard let numberNode = members[key] else {
                if let value { return value }
                throw problem(node, "baseline is missing '\(key)'")
            }
            guard let number = try scalarJSON(numberNode, what: key).doubleValue, number.isFinite, abs(number) < 1e15,
                  !positive || number > 0 else {
                throw problem(numberNode, "\(key) must be a\(positive ? " positive" : "") number")
            }
            return number
        }
        let threshold = try number("threshold", default: nil, positive: true)
        let minValue = try number("min_value", default: 0, positive: false)
        let minStddev = try number("min_stddev", default: 1, positive: true)
        let (lateness, grace) = try latenessAndGrace(members)
        return BaselineSpec(groupBy: groupBy, intervalMillis: interval, aggregate: aggregate, method: method, history: history,
                            minHistory: minHistory, threshold: threshold, minValue: minValue, minStddev: minStddev,
                            latenessMillis: lateness, graceMillis: grace)
    }

    /// `group_by`: one field or a non-empty list.
    func groupBy(_ members: [String: Node], in node: Node, what: String) throws(YAMLProblem) -> [String] {
        let groupNode = try required(members, "group_by", in: node, what: what)
        let groupBy = try stringList(groupNode, what: "group_by")
        guard !groupBy.isEmpty else { throw problem(groupNode, "group_by needs at least one field") }
        return groupBy
    }

    /// The optional `lateness` and `grace` of a stateful block, with their defaults.
    func latenessAndGrace(_ members: [String: Node]) throws(YAMLProblem) -> (lateness: Int64, grace: Int64) {
        let lateness = try members["lateness"].map { n throws(YAMLProblem) in try duration(n, what: "lateness", allowZero: true) }
            ?? WindowSpec.defaultLatenessMillis
        let grace = try members["grace"].map { n throws(YAMLProblem) in try duration(n, what: "grace", allowZero: true) }
            ?? WindowSpec.defaultGraceMillis
        return (lateness, grace)
    }

    func sequence(_ node: Node) throws(YAMLProblem) -> SequenceSpec {
        let members = try mapping(node, allowed: Self.sequenceKeys, what: "sequence")
        let groupBy = try groupBy(members, in: node, what: "sequence")
        let stepsNode = try required(members, "steps", in: node, what: "sequence")
        guard let items = stepsNode.sequence, items.count >= 2, items.count <= 20 else {
            throw problem(stepsNode, "steps must be a list of 2 to 20 steps, each {match: CONDITION, count: N}")
        }
        var steps: [SequenceSpec.Step] = []
        for item in items {
            let stepMembers = try mapping(item, allowed: Self.stepKeys, what: "step")
            let match = try condition(required(stepMembers, "match", in: item, what: "step"))
            var count = 1
            if let countNode = stepMembers["count"] {
                let value = try int(countNode, what: "count")
                guard value >= 1, value <= 1000 else { throw problem(countNode, "a step count must be a whole number from 1 to 1000") }
                count = Int(value)
            }
            steps.append(SequenceSpec.Step(match: match, count: count))
        }
        let within = try duration(required(members, "within", in: node, what: "sequence"), what: "within", allowZero: false)
        let (lateness, grace) = try latenessAndGrace(members)
        return SequenceSpec(groupBy: groupBy, steps: steps, withinMillis: within, latenessMillis: lateness, graceMillis: grace)
    }

    func absence(_ node: Node) throws(YAMLProblem) -> AbsenceSpec {
        let members = try mapping(node, allowed: Self.absenceKeys, what: "absence")
        let groupBy = try groupBy(members, in: node, what: "absence")
        let trigger = try condition(required(members, "trigger", in: node, what: "absence"))
        let expected = try condition(required(members, "expected", in: node, what: "absence"))
        guard trigger != expected else {
            throw problem(members["expected"], "an absence's expected event must differ from its trigger")
        }
        let within = try duration(required(members, "within", in: node, what: "absence"), what: "within", allowZero: false)
        let (lateness, grace) = try latenessAndGrace(members)
        return AbsenceSpec(groupBy: groupBy, trigger: trigger, expected: expected, withinMillis: within,
                           latenessMillis: lateness, graceMillis: grace)
    }

    /// A condition node: exactly one of `all`, `any`, `not`, or `field` with one operator.
    func condition(_ node: Node) throws(YAMLProblem) -> Condition {
        let allowed = ["all", "any", "not", "field", "case_insensitive"] + FieldTest.Op.allCases.map(\.rawValue)
        let members = try mapping(node, allowed: allowed, what: "condition")
        if members["field"] == nil {
            guard members.count == 1, let (key, value) = members.first, ["all", "any", "not"].contains(key) else {
                throw problem(node, "a condition is one of 'all', 'any', 'not', or 'field' with an operator")
            }
            if key == "not" { return .not(try condition(value)) }
            guard let sequence = value.sequence, !sequence.isEmpty else {
                throw problem(value, "'\(key)' must be a non-empty list of conditions")
            }
            var conditions: [Condition] = []
            for item in sequence { conditions.append(try condition(item)) }
            return key == "all" ? .all(conditions) : .any(conditions)
        }
        let fieldNode = members["field"]!
        let path = try string(fieldNode, what: "field")
        let ops = FieldTest.Op.allCases.filter { members[$0.rawValue] != nil }
        guard ops.count == 1, let op = ops.first, members.keys.allSatisfy({ $0 == "field" || $0 == "case_insensitive" || $0 == op.rawValue }) else {
            throw problem(node, "a field test needs exactly one operator (\(FieldTest.Op.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        let valueNode = members[op.rawValue]!
        let values: [JSON]
        switch op {
        case .equals, .gt, .gte, .lt, .lte, .exists:
            values = [try scalarJSON(valueNode, what: "'\(op.rawValue)'")]
        case .in:
            guard valueNode.sequence != nil else { throw problem(valueNode, "'in' must be a list of values") }
            values = try scalarList(valueNode, what: "'in'")
        default:
            values = try scalarList(valueNode, what: "'\(op.rawValue)'")
        }
        let caseInsensitive = try members["case_insensitive"].map { n throws(YAMLProblem) in try bool(n, what: "case_insensitive") } ?? false
        do {
            return .field(try FieldTest(path: path, op: op, values: values, caseInsensitive: caseInsensitive))
        } catch {
            throw problem(valueNode, error.reason)
        }
    }

    func window(_ node: Node) throws(YAMLProblem) -> WindowSpec {
        let members = try mapping(node, allowed: Self.windowKeys, what: "window")
        let groupBy = try groupBy(members, in: node, what: "window")
        let typeNode = try required(members, "type", in: node, what: "window")
        guard let kind = WindowSpec.Kind(rawValue: try string(typeNode, what: "type")) else {
            throw problem(typeNode, "window type must be one of: \(WindowSpec.Kind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        // Each type takes its own length keys; the others are mistakes worth naming.
        let lengthKeys: [WindowSpec.Kind: [String]] = [
            .sliding: ["size"], .tumbling: ["size"], .hopping: ["size", "advance"], .session: ["gap", "max_size"],
        ]
        for key in ["size", "advance", "gap", "max_size"] where members[key] != nil && !lengthKeys[kind]!.contains(key) {
            throw problem(members[key], "a \(kind.rawValue) window takes \(lengthKeys[kind]!.joined(separator: " and ")), not \(key)")
        }
        var size: Int64 = 0
        var advance: Int64?
        var gap: Int64?
        switch kind {
        case .sliding, .tumbling:
            size = try duration(required(members, "size", in: node, what: "window"), what: "size", allowZero: false)
        case .hopping:
            size = try duration(required(members, "size", in: node, what: "window"), what: "size", allowZero: false)
            let advanceNode = try required(members, "advance", in: node, what: "window")
            let step = try duration(advanceNode, what: "advance", allowZero: false)
            guard step <= size else { throw problem(advanceNode, "a hopping window's advance must not exceed its size") }
            // Every event belongs to size / advance windows; keep that bounded.
            guard (size + step - 1) / step <= 100 else {
                throw problem(advanceNode, "a hopping window's size may be at most 100 advances")
            }
            advance = step
        case .session:
            gap = try duration(required(members, "gap", in: node, what: "window"), what: "gap", allowZero: false)
            if let maxNode = members["max_size"] {
                size = try duration(maxNode, what: "max_size", allowZero: false)
                guard size >= gap! else { throw problem(maxNode, "a session window's max_size must be at least its gap") }
            }
        }
        let aggregate = try members["aggregate"].map { n throws(YAMLProblem) in try self.aggregate(n) } ?? .count
        let thresholdNode = try required(members, "threshold", in: node, what: "window")
        guard let threshold = Threshold(parsing: try string(thresholdNode, what: "threshold")) else {
            throw problem(thresholdNode, "threshold must look like \">= 5\" (operators >, >=, <, <=, ==, then a number) or \"between 3 and 10\"")
        }
        if kind == .sliding {
            // A sliding window is checked as events arrive and fires on a burst, so only
            // thresholds that growth can reach make sense; "< 3" would fire on every first event.
            guard [.greaterThan, .greaterThanOrEqual, .equal].contains(threshold.op) else {
                throw problem(thresholdNode, "a sliding window threshold must use >, >= or ==")
            }
        }
        if threshold.op == .between, let upper = threshold.upper, upper < threshold.value {
            throw problem(thresholdNode, "a between threshold needs the lower bound first")
        }
        let bounds = [threshold.value] + (threshold.upper.map { [$0] } ?? [])
        if aggregate.isNumeric {
            guard bounds.allSatisfy({ abs($0) < 1e15 }) else {
                throw problem(thresholdNode, "a \(aggregate.name) threshold must be a number below 1e15 in size")
            }
        } else {
            // Some count of one or more events must satisfy it; a window never holds none.
            let reachable = [1, threshold.value, threshold.value + 1, threshold.upper ?? 1].contains {
                $0 >= 1 && threshold.isSatisfied(by: $0)
            }
            guard bounds.allSatisfy({ $0.rounded() == $0 && $0 < 1e9 }), reachable,
                  kind != .sliding || !threshold.isSatisfied(by: 0) else {
                throw problem(thresholdNode, "a \(aggregate.name) threshold must compare with a whole number that one or more events reach")
            }
        }
        let (lateness, grace) = try latenessAndGrace(members)
        return WindowSpec(groupBy: groupBy, kind: kind, sizeMillis: size, aggregate: aggregate, threshold: threshold,
                          latenessMillis: lateness, graceMillis: grace, advanceMillis: advance, gapMillis: gap)
    }

    /// `count`, or a mapping of one aggregate name to a field path: `{distinct: dst_endpoint.port}`.
    func aggregate(_ node: Node) throws(YAMLProblem) -> WindowSpec.Aggregate {
        let names = ["count"] + WindowSpec.Aggregate.fieldAggregateNames
        let expected = "aggregate must be 'count' or one of {distinct|sum|min|max|avg: FIELD}"
        if node.scalar != nil {
            let name = try string(node, what: "aggregate")
            if name == "count" { return .count }
            if WindowSpec.Aggregate.fieldAggregateNames.contains(name) {
                throw problem(node, "aggregate '\(name)' needs a field: {\(name): FIELD}")
            }
            throw problem(node, "unknown aggregate '\(name)'; \(expected)")
        }
        guard let mapping = node.mapping else { throw problem(node, expected) }
        guard mapping.count == 1, let (key, value) = mapping.first else { throw problem(node, expected) }
        guard let name = key.scalar?.string, names.contains(name) else {
            throw problem(key, "unknown aggregate '\(key.scalar?.string ?? "")'; \(expected)")
        }
        guard name != "count" else { throw problem(key, "aggregate 'count' takes no field; write 'aggregate: count'") }
        guard value.scalar != nil, let field = try? string(value, what: "aggregate field") else {
            throw problem(value, "aggregate '\(name)' needs a field path")
        }
        guard !field.split(separator: ".", omittingEmptySubsequences: false).contains(where: \.isEmpty) else {
            throw problem(value, "aggregate field must be non-empty dotted names")
        }
        return WindowSpec.Aggregate(name: name, field: field)!
    }

    static func isValidID(_ id: String) -> Bool {
        id.count <= 200 && id.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "." || $0 == "_" || $0 == "-"
        }
    }

    static func isTechniqueID(_ text: String) -> Bool {
        let scalars = Array(text.unicodeScalars)
        func digits(_ range: Range<Int>) -> Bool { range.allSatisfy { ("0"..."9").contains(scalars[$0]) } }
        if scalars.count == 5 { return scalars[0] == "T" && digits(1..<5) }
        if scalars.count == 9 { return scalars[0] == "T" && digits(1..<5) && scalars[5] == "." && digits(6..<9) }
        return false
    }
}
