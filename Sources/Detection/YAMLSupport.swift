import OCSF
import Yams

/// Reads Yams nodes into rule parts, turning every problem into a `RuleError` that names the
/// file and the line of the offending node.
struct RuleYAML {
    /// The file named in errors.
    let file: String?

    func error(_ node: Node?, _ reason: String, code: RuleError.Code = .invalidRule) -> RuleError {
        RuleError(code: code, file: file, line: node?.mark?.line, reason: reason)
    }

    /// Every document in `text`, composed with marks so later errors can name lines.
    func documents(_ text: String) throws(RuleError) -> [Node] {
        do {
            var sequence = try Yams.compose_all(yaml: text)
            var nodes: [Node] = []
            while let node = sequence.next() { nodes.append(node) }
            if let failure = sequence.error { throw failure }
            return nodes
        } catch {
            throw yamlError(error)
        }
    }

    /// Maps a Yams error to the position it names, keeping libyaml's problem text (which
    /// describes syntax, not content) and dropping the snippet of the document.
    private func yamlError(_ error: any Error) -> RuleError {
        guard let yaml = error as? YamlError else {
            return RuleError(code: .invalidYAML, file: file, reason: "not valid YAML")
        }
        switch yaml {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _),
            .composer(_, let problem, let mark, _):
            return RuleError(code: .invalidYAML, file: file, line: mark.line, reason: "not valid YAML: \(problem)")
        case .duplicatedKeysInMapping(_, let context):
            return RuleError(code: .invalidYAML, file: file, line: context.mark.line, reason: "duplicate key in a mapping")
        case .reader:
            return RuleError(code: .invalidYAML, file: file, reason: "not valid UTF-8 text")
        default:
            return RuleError(code: .invalidYAML, file: file, reason: "not valid YAML")
        }
    }

    /// The members of a mapping, rejecting keys outside `allowed` at their own line.
    func mapping(_ node: Node, allowed: [String], what: String) throws(RuleError) -> [String: Node] {
        guard let mapping = node.mapping else { throw error(node, "\(what) must be a mapping") }
        var members: [String: Node] = [:]
        for (key, value) in mapping {
            guard let name = key.scalar?.string else { throw error(key, "\(what) keys must be plain strings") }
            guard allowed.contains(name) else {
                throw error(key, "unknown key '\(name)' in \(what) (expected one of: \(allowed.joined(separator: ", ")))")
            }
            members[name] = value
        }
        return members
    }

    /// A required member; the error points at the mapping that lacks it.
    func required(_ members: [String: Node], _ key: String, in parent: Node, what: String) throws(RuleError) -> Node {
        guard let value = members[key] else { throw error(parent, "\(what) is missing '\(key)'") }
        return value
    }

    /// A non-empty string scalar.
    func string(_ node: Node, what: String) throws(RuleError) -> String {
        guard let scalar = node.scalar, scalar.style != .plain || !Self.isNull(scalar.string) else {
            throw error(node, "\(what) must be a string")
        }
        let text = scalar.string
        guard !text.isEmpty else { throw error(node, "\(what) must not be empty") }
        return text
    }

    /// A whole number.
    func int(_ node: Node, what: String) throws(RuleError) -> Int64 {
        guard let scalar = node.scalar, scalar.style == .plain, let value = Int64(scalar.string) else {
            throw error(node, "\(what) must be a whole number")
        }
        return value
    }

    /// `true` or `false`.
    func bool(_ node: Node, what: String) throws(RuleError) -> Bool {
        guard let scalar = node.scalar, scalar.style == .plain else { throw error(node, "\(what) must be true or false") }
        switch scalar.string {
        case "true", "True", "TRUE": return true
        case "false", "False", "FALSE": return false
        default: throw error(node, "\(what) must be true or false")
        }
    }

    /// A sequence of non-empty strings; a single scalar is accepted as a one-item list.
    func stringList(_ node: Node, what: String) throws(RuleError) -> [String] {
        if node.scalar != nil { return [try string(node, what: what)] }
        guard let sequence = node.sequence else { throw error(node, "\(what) must be a list of strings") }
        var items: [String] = []
        for item in sequence { items.append(try string(item, what: "each item of \(what)")) }
        return items
    }

    /// A scalar as a JSON value. Quoted scalars are strings; plain ones are typed by their
    /// spelling: `true`/`false`, `null`/`~`, integers, decimals, else strings. (YAML 1.1's
    /// `yes`/`no`/`on`/`off` and `0x1F` stay strings: in match values they are usually meant
    /// literally.)
    func scalarJSON(_ node: Node, what: String) throws(RuleError) -> JSON {
        guard let scalar = node.scalar else { throw error(node, "\(what) must be a single value") }
        let text = scalar.string
        guard scalar.style == .plain else { return .string(text) }
        switch text {
        case "true", "True", "TRUE": return .bool(true)
        case "false", "False", "FALSE": return .bool(false)
        default: break
        }
        if Self.isNull(text) { return .null }
        if let integer = Int64(text) { return .int(integer) }
        if text.contains(where: \.isNumber), let double = Double(text), double.isFinite { return .double(double) }
        return .string(text)
    }

    /// Scalars of a value that may be one scalar or a list of them.
    func scalarList(_ node: Node, what: String) throws(RuleError) -> [JSON] {
        if node.scalar != nil { return [try scalarJSON(node, what: what)] }
        guard let sequence = node.sequence else { throw error(node, "\(what) must be a value or a list of values") }
        var items: [JSON] = []
        for item in sequence { items.append(try scalarJSON(item, what: "each item of \(what)")) }
        guard !items.isEmpty else { throw error(node, "\(what) must not be an empty list") }
        return items
    }

    static func isNull(_ text: String) -> Bool {
        text == "~" || text == "null" || text == "Null" || text == "NULL" || text.isEmpty
    }
}
