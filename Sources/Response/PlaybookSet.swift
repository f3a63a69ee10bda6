import Foundation
import OCSF
import Yams

/// The playbooks a response stage runs, with unique ids.
public struct PlaybookSet: Sendable {
    /// The playbooks, in load order (files sorted by path, documents in file order).
    public private(set) var playbooks: [Playbook]

    /// A set from playbooks already built; rejects duplicate ids.
    public init(playbooks: [Playbook]) throws(PlaybookError) {
        var seen: Set<String> = []
        for playbook in playbooks where !seen.insert(playbook.id).inserted {
            throw PlaybookError(code: .duplicatePlaybookID, file: playbook.file,
                                reason: "playbook id '\(playbook.id)' is defined twice")
        }
        self.playbooks = playbooks
    }

    /// Loads every `*.yaml` / `*.yml` file under `directory` (recursively, hidden entries
    /// skipped, in path order). One file may hold several playbooks as YAML documents.
    ///
    /// - Throws: `PlaybookError` naming the file (and line) of the first problem.
    public static func load(directory: String) throws(PlaybookError) -> PlaybookSet {
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        guard manager.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue,
              // Resolved so a directory reached through a symlink is still walked.
              let enumerator = manager.enumerator(atPath: URL(fileURLWithPath: directory).resolvingSymlinksInPath().path)
        else {
            throw PlaybookError(code: .unreadableFile, file: directory, reason: "not a readable directory")
        }
        var relativePaths: [String] = []
        while let next = enumerator.nextObject() as? String {
            if next.split(separator: "/").contains(where: { $0.hasPrefix(".") }) { continue }
            if next.hasSuffix(".yaml") || next.hasSuffix(".yml") { relativePaths.append(next) }
        }
        var playbooks: [Playbook] = []
        for relative in relativePaths.sorted() {
            let path = directory.hasSuffix("/") ? directory + relative : directory + "/" + relative
            guard let data = manager.contents(atPath: path) else {
                throw PlaybookError(code: .unreadableFile, file: path, reason: "cannot read the file")
            }
            guard let text = String(validating: data, as: UTF8.self) else {
                throw PlaybookError(code: .unreadableFile, file: path, reason: "not UTF-8 text")
            }
            playbooks.append(contentsOf: try parse(yaml: text, file: path))
        }
        return try PlaybookSet(playbooks: playbooks)
    }

    /// Parses the playbooks in one YAML text (one per document); `file` is named in errors
    /// and recorded in each playbook.
    public static func parse(yaml: String, file: String) throws(PlaybookError) -> [Playbook] {
        let reader = PlaybookYAML(file: file)
        var playbooks: [Playbook] = []
        var seen: Set<String> = []
        for document in try reader.documents(yaml) {
            let playbook = try reader.playbook(document)
            guard seen.insert(playbook.id).inserted else {
                throw reader.error(document, "playbook id '\(playbook.id)' is defined twice", code: .duplicatePlaybookID)
            }
            playbooks.append(playbook)
        }
        return playbooks
    }
}

/// Reads Yams nodes into playbooks, naming the file and line of every problem.
struct PlaybookYAML {
    let file: String?

    func error(_ node: Node?, _ reason: String, code: PlaybookError.Code = .invalidPlaybook) -> PlaybookError {
        PlaybookError(code: code, file: file, line: node?.mark?.line, reason: reason)
    }

    func documents(_ text: String) throws(PlaybookError) -> [Node] {
        do {
            var sequence = try Yams.compose_all(yaml: text)
            var nodes: [Node] = []
            while let node = sequence.next() { nodes.append(node) }
            if let failure = sequence.error { throw failure }
            return nodes
        } catch let yaml as YamlError {
            // libyaml's problem text describes syntax; the document snippet is left out.
            switch yaml {
            case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _),
                .composer(_, let problem, let mark, _):
                throw PlaybookError(code: .invalidYAML, file: file, line: mark.line, reason: "not valid YAML: \(problem)")
            case .duplicatedKeysInMapping(_, let context):
                throw PlaybookError(code: .invalidYAML, file: file, line: context.mark.line, reason: "duplicate key in a mapping")
            default:
                throw PlaybookError(code: .invalidYAML, file: file, reason: "not valid YAML")
            }
        } catch {
            throw PlaybookError(code: .invalidYAML, file: file, reason: "not valid YAML")
        }
    }

    func mapping(_ node: Node, allowed: [String], what: String) throws(PlaybookError) -> [String: Node] {
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

    func required(_ members: [String: Node], _ key: String, in parent: Node, what: String) throws(PlaybookError) -> Node {
        guard let value = members[key] else { throw error(parent, "\(what) is missing '\(key)'") }
        return value
    }

    func string(_ node: Node, what: String) throws(PlaybookError) -> String {
        guard let scalar = node.scalar, !(scalar.style == .plain && ["", "~", "null", "Null", "NULL"].contains(scalar.string)) else {
            throw error(node, "\(what) must be a string")
        }
        return scalar.string
    }

    func stringList(_ node: Node, what: String) throws(PlaybookError) -> [String] {
        if node.scalar != nil { return [try string(node, what: what)] }
        guard let sequence = node.sequence, !sequence.isEmpty else { throw error(node, "\(what) must be a non-empty list of strings") }
        var items: [String] = []
        for item in sequence { items.append(try string(item, what: "each item of \(what)")) }
        return items
    }

    func playbook(_ node: Node) throws(PlaybookError) -> Playbook {
        let members = try mapping(node, allowed: ["id", "description", "match", "actions"], what: "playbook")
        let idNode = try required(members, "id", in: node, what: "playbook")
        let id = try string(idNode, what: "id")
        guard !id.isEmpty, id.unicodeScalars.allSatisfy({
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || "._-".unicodeScalars.contains($0)
        }) else {
            throw error(idNode, "id may hold only letters, digits, '.', '_' and '-'")
        }
        let description = try members["description"].map { n throws(PlaybookError) in try string(n, what: "description") } ?? ""
        let match = try self.match(required(members, "match", in: node, what: "playbook"))
        let actionsNode = try required(members, "actions", in: node, what: "playbook")
        guard let sequence = actionsNode.sequence, !sequence.isEmpty else {
            throw error(actionsNode, "actions must be a non-empty list")
        }
        var actions: [ActionSpec] = []
        for item in sequence { actions.append(try action(item)) }
        return Playbook(id: id, description: description, match: match, actions: actions, file: file)
    }

    func match(_ node: Node) throws(PlaybookError) -> PlaybookMatch {
        let members = try mapping(node, allowed: ["rules", "min_severity", "attack"], what: "match")
        guard !members.isEmpty else { throw error(node, "match needs at least one of rules, min_severity, attack") }
        var match = PlaybookMatch()
        if let rulesNode = members["rules"] {
            match.rules = try stringList(rulesNode, what: "rules")
            if match.rules!.contains(where: { $0.isEmpty || $0.dropLast().contains("*") }) {
                throw error(rulesNode, "rules entries are ids, with '*' allowed only at the end")
            }
        }
        if let severityNode = members["min_severity"] {
            guard let severity = OCSFSeverity(name: try string(severityNode, what: "min_severity")) else {
                throw error(severityNode, "min_severity must be one of: \(OCSFSeverity.allCases.map { $0.name.lowercased() }.joined(separator: ", "))")
            }
            match.minSeverity = severity
        }
        if let attackNode = members["attack"] { match.attack = try stringList(attackNode, what: "attack") }
        return match
    }

    func action(_ node: Node) throws(PlaybookError) -> ActionSpec {
        let members = try mapping(node, allowed: ["action", "mode", "params"], what: "action")
        let kindNode = try required(members, "action", in: node, what: "action")
        guard let kind = ActionKind(rawValue: try string(kindNode, what: "action")) else {
            throw error(kindNode, "action must be one of: \(ActionKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard kind.isAvailable else { throw error(kindNode, "action '\(kind.rawValue)' is not available yet") }
        var mode = ActionMode.dryRun
        if let modeNode = members["mode"] {
            guard let parsed = ActionMode(rawValue: try string(modeNode, what: "mode")) else {
                throw error(modeNode, "mode must be dry_run or enforce")
            }
            mode = parsed
        }
        var params: [String: String] = [:]
        if let paramsNode = members["params"] {
            guard let mapping = paramsNode.mapping else { throw error(paramsNode, "params must be a mapping of names to values") }
            for (key, value) in mapping {
                guard let name = key.scalar?.string, !name.isEmpty else { throw error(key, "params keys must be strings") }
                params[name] = try string(value, what: "param '\(name)'")
            }
        }
        for name in kind.requiredParams where (params[name] ?? "").isEmpty {
            throw error(node, "action '\(kind.rawValue)' needs param '\(name)'")
        }
        return ActionSpec(kind: kind, params: params, mode: mode)
    }
}
