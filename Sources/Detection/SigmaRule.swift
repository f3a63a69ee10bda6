import OCSF
import YAMLFiles
import Yams

/// One Sigma YAML document, read but not yet converted: a detection rule or a correlation
/// rule (see the Sigma specification). Only what conversion needs is kept.
public struct SigmaRule: Sendable {
    /// What the document defines.
    public enum Body: Sendable {
        /// A detection rule: searches and a condition over one log source.
        case detection(SigmaDetection)
        /// A correlation over other rules' matches.
        case correlation(SigmaCorrelation)
    }

    /// The file the document came from.
    public var file: String
    /// The 1-based line where the document starts.
    public var line: Int?
    /// `title`.
    public var title: String
    /// `id` (usually a UUID).
    public var id: String?
    /// `name`, by which correlations may refer to the rule.
    public var name: String?
    /// `description`.
    public var description: String
    /// `author`, which the Detection Rule License asks every copy to keep.
    public var author: String?
    /// `level`.
    public var level: String?
    /// `tags` (`attack.t1562.008`, `attack.defense-evasion`).
    public var tags: [String]
    /// What the document defines.
    public var body: Body
}

/// The `logsource` and `detection` of a Sigma detection rule.
public struct SigmaDetection: Sendable {
    /// `logsource.product`, `logsource.service`, `logsource.category`, lower-cased.
    public var product: String?
    /// `logsource.service`.
    public var service: String?
    /// `logsource.category`.
    public var category: String?
    /// The search identifiers in document order.
    public var searchNames: [String]
    /// The searches by identifier.
    public var searches: [String: SigmaSearch]
    /// `condition`: one expression, or several that are OR-ed.
    public var conditions: [String]
    /// The legacy `detection.timeframe` (Sigma 1 aggregations).
    public var timeframe: String?
}

/// One search identifier's definition.
public enum SigmaSearch: Sendable {
    /// A map of field tests (AND), or a list of such maps (OR of the ANDs).
    case fieldMaps([[SigmaFieldItem]])
    /// Values without a field, searched in the whole event (`all`: every one, else any).
    case keywords([JSON], all: Bool)
}

/// One `field|modifier|...: value(s)` entry of a search map.
public struct SigmaFieldItem: Sendable {
    /// The field name (empty for a keyword entry such as `'|all'`).
    public var field: String
    /// The modifiers in the order written.
    public var modifiers: [String]
    /// The values; `.null` for YAML null. One value or several (OR, or AND with `all`).
    public var values: [JSON]
    /// The 1-based line of the entry.
    public var line: Int?
}

/// A Sigma correlation rule's `correlation` section (and `generate`).
public struct SigmaCorrelation: Sendable {
    /// `event_count`, `value_count`, `temporal`, `temporal_ordered`, ...
    public var type: String
    /// The rules correlated, by `id` or `name`.
    public var rules: [String]
    /// `group-by`.
    public var groupBy: [String]
    /// `timespan` as written (`1h`).
    public var timespan: String?
    /// `condition`'s comparisons (`gte` → 100); a range has two.
    public var comparisons: [(op: String, value: Double)]
    /// `condition.field` (value_count and the value aggregations).
    public var field: String?
    /// Whether `aliases` is present.
    public var hasAliases: Bool
    /// `generate`: whether the correlated rules also alert on their own (default false).
    public var generate: Bool
}

extension SigmaRule {
    /// Reads every document of one Sigma YAML file. A document that is not a usable Sigma rule
    /// gives its own error, so one bad rule does not hide its siblings.
    ///
    /// - Returns: per document, the rule or the problem (with file and line).
    /// - Throws: `RuleError` (`invalid_yaml`) when the text is not YAML at all.
    public static func parse(yaml: String, file: String) throws(RuleError) -> [Result<SigmaRule, RuleError>] {
        let reader = YAMLReader(file: file)
        let documents: [Node]
        do throws(YAMLProblem) { documents = try reader.documents(yaml) } catch { throw RuleError(error) }
        guard !documents.isEmpty else {
            throw RuleError(code: .invalidRule, file: file, line: nil, reason: "the file holds no YAML document")
        }
        return documents.map { document in
            do throws(YAMLProblem) { return .success(try reader.sigmaRule(document)) } catch { return .failure(RuleError(error)) }
        }
    }
}

/// Reading Sigma documents from Yams nodes. Unknown top-level keys are ignored: Sigma allows
/// custom attributes.
extension YAMLReader {
    func sigmaRule(_ node: Node) throws(YAMLProblem) -> SigmaRule {
        guard let mapping = node.mapping else { throw problem(node, "a Sigma rule must be a mapping") }
        var members: [String: Node] = [:]
        for (key, value) in mapping {
            guard let name = key.scalar?.string else { throw problem(key, "Sigma rule keys must be plain strings") }
            members[name] = value
        }
        if members["action"] != nil {
            throw problem(members["action"], "Sigma 1 rule collections ('action: global/reset/repeat') are not supported")
        }
        if members["filter"] != nil, members["detection"] == nil {
            throw problem(members["filter"], "Sigma filters (meta rules that amend other rules) are not supported")
        }
        func text(_ key: String) throws(YAMLProblem) -> String? {
            guard let value = members[key] else { return nil }
            if let scalar = value.scalar, scalar.style == .plain, ["", "~", "null", "Null", "NULL"].contains(scalar.string) { return nil }
            return try string(value, what: key, allowEmpty: true)
        }
        guard let title = try text("title"), !title.isEmpty else { throw problem(node, "the Sigma rule has no 'title'") }
        var author = try text("author")
        if author == nil, let authors = members["author"]?.sequence {
            author = authors.compactMap { $0.scalar?.string }.joined(separator: ", ")
        }
        let tags = try members["tags"].map { n throws(YAMLProblem) in try stringList(n, what: "tags") } ?? []
        let body: SigmaRule.Body
        if let correlation = members["correlation"] {
            var generate = false
            if let generateNode = members["generate"] { generate = try bool(generateNode, what: "generate") }
            body = .correlation(try sigmaCorrelation(correlation, generate: generate))
        } else if let detection = members["detection"] {
            body = .detection(try sigmaDetection(detection, logsource: members["logsource"]))
        } else {
            throw problem(node, "the Sigma rule has neither 'detection' nor 'correlation'")
        }
        return SigmaRule(file: file ?? "", line: node.mark?.line, title: title, id: try text("id"), name: try text("name"),
                         description: try text("description") ?? "", author: author, level: try text("level")?.lowercased(),
                         tags: tags, body: body)
    }

    func sigmaDetection(_ node: Node, logsource: Node?) throws(YAMLProblem) -> SigmaDetection {
        var product: String?, service: String?, category: String?
        if let logsource {
            guard let mapping = logsource.mapping else { throw problem(logsource, "logsource must be a mapping") }
            for (key, value) in mapping {
                let text = value.scalar?.string.lowercased()
                switch key.scalar?.string {
                case "product": product = text
                case "service": service = text
                case "category": category = text
                default: break
                }
            }
        }
        guard let mapping = node.mapping else { throw problem(node, "detection must be a mapping") }
        var names: [String] = []
        var searches: [String: SigmaSearch] = [:]
        var conditions: [String] = []
        var timeframe: String?
        for (key, value) in mapping {
            guard let name = key.scalar?.string, !name.isEmpty else { throw problem(key, "detection keys must be plain strings") }
            switch name {
            case "condition":
                conditions = try stringList(value, what: "condition", allowEmptyList: false)
            case "timeframe":
                timeframe = try string(value, what: "timeframe")
            default:
                names.append(name)
                searches[name] = try sigmaSearch(value, name: name)
            }
        }
        guard !conditions.isEmpty else { throw problem(node, "detection has no 'condition'") }
        guard !names.isEmpty else { throw problem(node, "detection defines no search identifier") }
        return SigmaDetection(product: product, service: service, category: category, searchNames: names,
                              searches: searches, conditions: conditions, timeframe: timeframe)
    }

    func sigmaSearch(_ node: Node, name: String) throws(YAMLProblem) -> SigmaSearch {
        if node.mapping != nil {
            let items = try sigmaFieldItems(node)
            // A map holding only a keyword entry ('|all': [...]) is a keyword search.
            if items.count == 1, items[0].field.isEmpty {
                return .keywords(items[0].values, all: items[0].modifiers == ["all"])
            }
            return .fieldMaps([items])
        }
        guard let sequence = node.sequence, !sequence.isEmpty else {
            throw problem(node, "search '\(name)' must be a map of fields, a list of maps, or a list of keywords")
        }
        if sequence.allSatisfy({ $0.mapping != nil }) {
            var maps: [[SigmaFieldItem]] = []
            for item in sequence { maps.append(try sigmaFieldItems(item)) }
            return .fieldMaps(maps)
        }
        guard sequence.allSatisfy({ $0.scalar != nil }) else {
            throw problem(node, "search '\(name)' mixes maps and plain values")
        }
        var values: [JSON] = []
        for item in sequence { values.append(try scalarJSON(item, what: "keyword")) }
        return .keywords(values, all: false)
    }

    func sigmaFieldItems(_ node: Node) throws(YAMLProblem) -> [SigmaFieldItem] {
        guard let mapping = node.mapping, !mapping.isEmpty else { throw problem(node, "a search map must not be empty") }
        var items: [SigmaFieldItem] = []
        for (key, value) in mapping {
            guard let spec = key.scalar?.string else { throw problem(key, "field names must be plain strings") }
            let parts = spec.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            let values: [JSON]
            if let sequence = value.sequence {
                guard !sequence.isEmpty else { throw problem(value, "'\(spec)' has an empty list of values") }
                var list: [JSON] = []
                for item in sequence { list.append(try scalarJSON(item, what: "each value of '\(spec)'")) }
                values = list
            } else {
                values = [try scalarJSON(value, what: "the value of '\(spec)'")]
            }
            items.append(SigmaFieldItem(field: parts[0], modifiers: Array(parts.dropFirst()), values: values,
                                        line: key.mark?.line))
        }
        return items
    }

    func sigmaCorrelation(_ node: Node, generate: Bool) throws(YAMLProblem) -> SigmaCorrelation {
        guard let mapping = node.mapping else { throw problem(node, "correlation must be a mapping") }
        var members: [String: Node] = [:]
        for (key, value) in mapping {
            guard let name = key.scalar?.string else { throw problem(key, "correlation keys must be plain strings") }
            members[name] = value
        }
        let type = try string(required(members, "type", in: node, what: "correlation"), what: "correlation type")
        let rules = try stringList(required(members, "rules", in: node, what: "correlation"), what: "rules",
                                   allowEmptyList: false)
        let groupBy = try members["group-by"].map { n throws(YAMLProblem) in try stringList(n, what: "group-by") } ?? []
        let timespan = try members["timespan"].map { n throws(YAMLProblem) in try string(n, what: "timespan") }
        var comparisons: [(op: String, value: Double)] = []
        var field: String?
        if let conditionNode = members["condition"] {
            guard let condition = conditionNode.mapping else {
                throw problem(conditionNode, "correlation condition must be a mapping such as {gte: 10}")
            }
            for (key, value) in condition {
                guard let name = key.scalar?.string else { throw problem(key, "condition keys must be plain strings") }
                if name == "field" {
                    field = try string(value, what: "condition field")
                    continue
                }
                guard ["gt", "gte", "lt", "lte", "eq", "neq"].contains(name) else {
                    throw problem(key, "unknown correlation condition '\(name)' (expected gt, gte, lt, lte, eq)")
                }
                guard let number = try scalarJSON(value, what: name).doubleValue, number.isFinite else {
                    throw problem(value, "correlation condition '\(name)' needs a number")
                }
                comparisons.append((name, number))
            }
        }
        return SigmaCorrelation(type: type, rules: rules, groupBy: groupBy, timespan: timespan, comparisons: comparisons,
                                field: field, hasAliases: members["aliases"] != nil, generate: generate)
    }
}
