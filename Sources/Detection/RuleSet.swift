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
    static let ruleKeys = ["id", "version", "title", "description", "severity", "attack", "tags", "match", "window"]
    static let windowKeys = ["group_by", "type", "size", "aggregate", "threshold", "lateness", "grace"]

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
        let match = try condition(required(members, "match", in: node, what: "rule"))
        let window = try members["window"].map { n throws(YAMLProblem) in try self.window(n) }
        return Rule(id: id, version: Int(version), title: title, description: description, severity: severity,
                    attack: attack, tags: tags, match: match, window: window, file: file)
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
        let groupNode = try required(members, "group_by", in: node, what: "window")
        let groupBy = try stringList(groupNode, what: "group_by")
        guard !groupBy.isEmpty else { throw problem(groupNode, "group_by needs at least one field") }
        let typeNode = try required(members, "type", in: node, what: "window")
        guard let kind = WindowSpec.Kind(rawValue: try string(typeNode, what: "type")) else {
            throw problem(typeNode, "window type must be one of: \(WindowSpec.Kind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let size = try duration(required(members, "size", in: node, what: "window"), what: "size", allowZero: false)
        let aggregate = try members["aggregate"].map { n throws(YAMLProblem) in try self.aggregate(n) } ?? .count
        let thresholdNode = try required(members, "threshold", in: node, what: "window")
        guard let threshold = Threshold(parsing: try string(thresholdNode, what: "threshold")) else {
            throw problem(thresholdNode, "threshold must look like \">= 5\" (operators >, >= or ==, then a number)")
        }
        // A sliding window is checked as events arrive and fires on a burst, so only
        // thresholds that growth can reach make sense; "< 3" would fire on every first event.
        guard [.greaterThan, .greaterThanOrEqual, .equal].contains(threshold.op) else {
            throw problem(thresholdNode, "a sliding window threshold must use >, >= or ==")
        }
        if aggregate.isNumeric {
            guard abs(threshold.value) < 1e15 else {
                throw problem(thresholdNode, "a \(aggregate.name) threshold must be a number below 1e15 in size")
            }
        } else {
            guard threshold.value.rounded() == threshold.value, !threshold.isSatisfied(by: 0), threshold.value < 1e9 else {
                throw problem(thresholdNode, "a \(aggregate.name) threshold must be >, >= or == a whole number that one or more events reach")
            }
        }
        let lateness = try members["lateness"].map { n throws(YAMLProblem) in try duration(n, what: "lateness", allowZero: true) }
            ?? WindowSpec.defaultLatenessMillis
        let grace = try members["grace"].map { n throws(YAMLProblem) in try duration(n, what: "grace", allowZero: true) }
            ?? WindowSpec.defaultGraceMillis
        return WindowSpec(groupBy: groupBy, kind: kind, sizeMillis: size, aggregate: aggregate, threshold: threshold,
                          latenessMillis: lateness, graceMillis: grace)
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
