import OCSF
import Yams

/// Reads Yams nodes into plain values, turning every problem into a `YAMLProblem` that names
/// the file and the line of the offending node.
///
/// Modules build their own readers on top of it (typically in an extension): a rule or
/// playbook parser calls `mapping`, `required`, `string` and the like, and throws
/// `problem(_:_:)` for checks of its own.
public struct YAMLReader: Sendable {
    /// The file named in problems.
    public let file: String?

    /// A reader whose problems name `file`.
    public init(file: String?) {
        self.file = file
    }

    /// An `.invalid` problem at the line of `node` (no line when `node` is `nil`).
    public func problem(_ node: Node?, _ reason: String) -> YAMLProblem {
        YAMLProblem(kind: .invalid, file: file, line: node?.mark?.line, reason: reason)
    }

    /// Every document in `text`, composed with marks so later problems can name lines.
    ///
    /// - Throws: a `.syntax` problem at the line libyaml names, with libyaml's description
    ///   of the syntax error but without its snippet of the document.
    public func documents(_ text: String) throws(YAMLProblem) -> [Node] {
        do {
            var sequence = try Yams.compose_all(yaml: text)
            var nodes: [Node] = []
            while let node = sequence.next() { nodes.append(node) }
            if let failure = sequence.error { throw failure }
            return nodes
        } catch {
            throw syntaxProblem(error)
        }
    }

    /// Maps a Yams error to the position it names, keeping libyaml's problem text (which
    /// describes syntax, not content) and dropping the snippet of the document.
    private func syntaxProblem(_ error: any Error) -> YAMLProblem {
        func syntax(_ reason: String, line: Int? = nil) -> YAMLProblem {
            YAMLProblem(kind: .syntax, file: file, line: line, reason: reason)
        }
        guard let yaml = error as? YamlError else { return syntax("not valid YAML") }
        switch yaml {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _),
            .composer(_, let problem, let mark, _):
            return syntax("not valid YAML: \(problem)", line: mark.line)
        case .duplicatedKeysInMapping(_, let context):
            return syntax("duplicate key in a mapping", line: context.mark.line)
        case .reader:
            return syntax("not valid UTF-8 text")
        default:
            return syntax("not valid YAML")
        }
    }

    /// The members of a mapping, rejecting keys outside `allowed` at their own line.
    /// `what` names the mapping in problems ("rule", "window").
    public func mapping(_ node: Node, allowed: [String], what: String) throws(YAMLProblem) -> [String: Node] {
        guard let mapping = node.mapping else { throw problem(node, "\(what) must be a mapping") }
        var members: [String: Node] = [:]
        for (key, value) in mapping {
            guard let name = key.scalar?.string else { throw problem(key, "\(what) keys must be plain strings") }
            guard allowed.contains(name) else {
                throw problem(key, "unknown key '\(name)' in \(what) (expected one of: \(allowed.joined(separator: ", ")))")
            }
            members[name] = value
        }
        return members
    }

    /// A required member of `members`; the problem points at `parent`, the mapping that
    /// lacks it.
    public func required(_ members: [String: Node], _ key: String, in parent: Node, what: String) throws(YAMLProblem) -> Node {
        guard let value = members[key] else { throw problem(parent, "\(what) is missing '\(key)'") }
        return value
    }

    /// A string scalar. Plain `null`, `~` and an empty plain value are not strings; a quoted
    /// empty string is rejected too unless `allowEmpty`.
    public func string(_ node: Node, what: String, allowEmpty: Bool = false) throws(YAMLProblem) -> String {
        guard let scalar = node.scalar, scalar.style != .plain || !Self.isNull(scalar.string) else {
            throw problem(node, "\(what) must be a string")
        }
        let text = scalar.string
        guard allowEmpty || !text.isEmpty else { throw problem(node, "\(what) must not be empty") }
        return text
    }

    /// A whole number (a plain scalar).
    public func int(_ node: Node, what: String) throws(YAMLProblem) -> Int64 {
        guard let scalar = node.scalar, scalar.style == .plain, let value = Int64(scalar.string) else {
            throw problem(node, "\(what) must be a whole number")
        }
        return value
    }

    /// `true` or `false` (plain, in lower, title or upper case).
    public func bool(_ node: Node, what: String) throws(YAMLProblem) -> Bool {
        guard let scalar = node.scalar, scalar.style == .plain else { throw problem(node, "\(what) must be true or false") }
        switch scalar.string {
        case "true", "True", "TRUE": return true
        case "false", "False", "FALSE": return false
        default: throw problem(node, "\(what) must be true or false")
        }
    }

    /// A sequence of strings, each read by `string(_:what:allowEmpty:)`; a single scalar is
    /// accepted as a one-item list. An empty sequence is rejected unless `allowEmptyList`.
    public func stringList(_ node: Node, what: String, allowEmpty: Bool = false,
                           allowEmptyList: Bool = true) throws(YAMLProblem) -> [String] {
        if node.scalar != nil { return [try string(node, what: what, allowEmpty: allowEmpty)] }
        guard let sequence = node.sequence, allowEmptyList || !sequence.isEmpty else {
            throw problem(node, "\(what) must be a \(allowEmptyList ? "" : "non-empty ")list of strings")
        }
        var items: [String] = []
        for item in sequence { items.append(try string(item, what: "each item of \(what)", allowEmpty: allowEmpty)) }
        return items
    }

    /// `500ms`, `30s`, `5m`, `1h`, `1d` in milliseconds, at most 366 days.
    public func duration(_ node: Node, what: String, allowZero: Bool) throws(YAMLProblem) -> Int64 {
        let text = try string(node, what: what)
        let units: [(String, Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)]
        let digits = text.prefix { $0.isASCII && $0.isNumber }
        let unit = text.dropFirst(digits.count)
        guard !digits.isEmpty, digits.count <= 12, let amount = Int64(digits),
              let scale = units.first(where: { $0.0 == unit })?.1
        else {
            throw problem(node, "\(what) must be a duration such as 500ms, 30s, 5m, 1h or 1d")
        }
        let millis = amount * scale
        guard millis <= 366 * 86_400_000 else { throw problem(node, "\(what) must be at most 366d") }
        guard allowZero || millis > 0 else { throw problem(node, "\(what) must be longer than zero") }
        return millis
    }

    /// A scalar as a JSON value. Quoted scalars are strings; plain ones are typed by their
    /// spelling: `true`/`false`, `null`/`~`, integers, decimals, else strings. (YAML 1.1's
    /// `yes`/`no`/`on`/`off` and `0x1F` stay strings: in match values they are usually meant
    /// literally.)
    public func scalarJSON(_ node: Node, what: String) throws(YAMLProblem) -> JSON {
        guard let scalar = node.scalar else { throw problem(node, "\(what) must be a single value") }
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

    /// The scalars of a value that may be one scalar or a non-empty list of them, each read
    /// by `scalarJSON(_:what:)`.
    public func scalarList(_ node: Node, what: String) throws(YAMLProblem) -> [JSON] {
        if node.scalar != nil { return [try scalarJSON(node, what: what)] }
        guard let sequence = node.sequence else { throw problem(node, "\(what) must be a value or a list of values") }
        var items: [JSON] = []
        for item in sequence { items.append(try scalarJSON(item, what: "each item of \(what)")) }
        guard !items.isEmpty else { throw problem(node, "\(what) must not be an empty list") }
        return items
    }

    /// Whether a plain scalar spells null.
    static func isNull(_ text: String) -> Bool {
        text == "~" || text == "null" || text == "Null" || text == "NULL" || text.isEmpty
    }
}
