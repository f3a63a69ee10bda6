import OCSF
import YAMLFiles
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
        let files: [(path: String, text: String)]
        do throws(YAMLProblem) { files = try YAMLDirectory.files(in: directory) } catch { throw PlaybookError(error) }
        var playbooks: [Playbook] = []
        for file in files { playbooks.append(contentsOf: try parse(yaml: file.text, file: file.path)) }
        return try PlaybookSet(playbooks: playbooks)
    }

    /// Parses the playbooks in one YAML text (one per document); `file` is named in errors
    /// and recorded in each playbook.
    public static func parse(yaml: String, file: String) throws(PlaybookError) -> [Playbook] {
        let reader = YAMLReader(file: file)
        let documents: [Node]
        do throws(YAMLProblem) { documents = try reader.documents(yaml) } catch { throw PlaybookError(error) }
        var playbooks: [Playbook] = []
        var seen: Set<String> = []
        for document in documents {
            let playbook: Playbook
            do throws(YAMLProblem) { playbook = try reader.playbook(document) } catch { throw PlaybookError(error) }
            guard seen.insert(playbook.id).inserted else {
                throw PlaybookError(code: .duplicatePlaybookID, file: file, line: document.mark?.line,
                                    reason: "playbook id '\(playbook.id)' is defined twice")
            }
            playbooks.append(playbook)
        }
        return playbooks
    }
}

extension PlaybookError {
    /// The error for a problem met while reading playbook files: unreadable files and
    /// directories, malformed YAML, and well-formed YAML that is not a valid playbook.
    init(_ problem: YAMLProblem) {
        let code: Code = switch problem.kind {
        case .unreadable: .unreadableFile
        case .syntax: .invalidYAML
        case .invalid: .invalidPlaybook
        }
        self.init(code: code, file: problem.file, line: problem.line, reason: problem.reason)
    }
}

/// The playbook parser: reads one YAML document into a `Playbook`. Its strings may be empty
/// where the parser checks them itself (ids, rule patterns, required params), and its lists
/// of strings must not be empty.
extension YAMLReader {
    func playbook(_ node: Node) throws(YAMLProblem) -> Playbook {
        let members = try mapping(node, allowed: ["id", "description", "match", "actions"], what: "playbook")
        let idNode = try required(members, "id", in: node, what: "playbook")
        let id = try string(idNode, what: "id", allowEmpty: true)
        guard !id.isEmpty, id.unicodeScalars.allSatisfy({
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || "._-".unicodeScalars.contains($0)
        }) else {
            throw problem(idNode, "id may hold only letters, digits, '.', '_' and '-'")
        }
        let description = try members["description"].map { n throws(YAMLProblem) in
            try string(n, what: "description", allowEmpty: true)
        } ?? ""
        let match = try self.match(required(members, "match", in: node, what: "playbook"))
        let actionsNode = try required(members, "actions", in: node, what: "playbook")
        guard let sequence = actionsNode.sequence, !sequence.isEmpty else {
            throw problem(actionsNode, "actions must be a non-empty list")
        }
        var actions: [ActionSpec] = []
        for item in sequence { actions.append(try action(item)) }
        return Playbook(id: id, description: description, match: match, actions: actions, file: file)
    }

    func match(_ node: Node) throws(YAMLProblem) -> PlaybookMatch {
        let members = try mapping(node, allowed: ["rules", "min_severity", "attack"], what: "match")
        guard !members.isEmpty else { throw problem(node, "match needs at least one of rules, min_severity, attack") }
        var match = PlaybookMatch()
        if let rulesNode = members["rules"] {
            match.rules = try stringList(rulesNode, what: "rules", allowEmpty: true, allowEmptyList: false)
            if match.rules!.contains(where: { $0.isEmpty || $0.dropLast().contains("*") }) {
                throw problem(rulesNode, "rules entries are ids, with '*' allowed only at the end")
            }
        }
        if let severityNode = members["min_severity"] {
            guard let severity = OCSFSeverity(name: try string(severityNode, what: "min_severity", allowEmpty: true)) else {
                throw problem(severityNode, "min_severity must be one of: \(OCSFSeverity.allCases.map { $0.name.lowercased() }.joined(separator: ", "))")
            }
            match.minSeverity = severity
        }
        if let attackNode = members["attack"] {
            match.attack = try stringList(attackNode, what: "attack", allowEmpty: true, allowEmptyList: false)
        }
        return match
    }

    func action(_ node: Node) throws(YAMLProblem) -> ActionSpec {
        let members = try mapping(node, allowed: ["action", "mode", "params"], what: "action")
        let kindNode = try required(members, "action", in: node, what: "action")
        guard let kind = ActionKind(rawValue: try string(kindNode, what: "action", allowEmpty: true)) else {
            throw problem(kindNode, "action must be one of: \(ActionKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard kind.isAvailable else { throw problem(kindNode, "action '\(kind.rawValue)' is not available yet") }
        var mode = ActionMode.dryRun
        if let modeNode = members["mode"] {
            guard let parsed = ActionMode(rawValue: try string(modeNode, what: "mode", allowEmpty: true)) else {
                throw problem(modeNode, "mode must be dry_run or enforce")
            }
            mode = parsed
        }
        var params: [String: String] = [:]
        if let paramsNode = members["params"] {
            guard let mapping = paramsNode.mapping else { throw problem(paramsNode, "params must be a mapping of names to values") }
            for (key, value) in mapping {
                guard let name = key.scalar?.string, !name.isEmpty else { throw problem(key, "params keys must be strings") }
                params[name] = try string(value, what: "param '\(name)'", allowEmpty: true)
            }
        }
        for name in kind.requiredParams where (params[name] ?? "").isEmpty {
            throw problem(node, "action '\(kind.rawValue)' needs param '\(name)'")
        }
        return ActionSpec(kind: kind, params: params, mode: mode)
    }
}
