import Foundation
import OCSF
import YAMLFiles
import Yams

/// The playbooks a response stage runs, with unique ids.
public struct PlaybookSet: Sendable {
    /// The playbooks, in load order (files sorted by path, documents in file order).
    public private(set) var playbooks: [Playbook]

    /// A set from playbooks already built; rejects duplicate ids.
    public init(playbooks: [Playbook]) throws(ResponseError) {
        var seen: Set<String> = []
        for playbook in playbooks where !seen.insert(playbook.id).inserted {
            throw ResponseError(code: .duplicatePlaybookID, file: playbook.file,
                                reason: "playbook id '\(playbook.id)' is defined twice")
        }
        self.playbooks = playbooks
    }

    /// Loads every `*.yaml` / `*.yml` file under `directory` (recursively, hidden entries
    /// skipped, in path order). One file may hold several playbooks as YAML documents.
    ///
    /// - Throws: `ResponseError` naming the file (and line) of the first problem.
    public static func load(directory: String) throws(ResponseError) -> PlaybookSet {
        let files: [(path: String, text: String)]
        do throws(YAMLProblem) { files = try YAMLDirectory.files(in: directory) } catch { throw ResponseError(error) }
        var playbooks: [Playbook] = []
        for file in files { playbooks.append(contentsOf: try parse(yaml: file.text, file: file.path)) }
        return try PlaybookSet(playbooks: playbooks)
    }

    /// Parses the playbooks in one YAML text (one per document); `file` is named in errors
    /// and recorded in each playbook.
    public static func parse(yaml: String, file: String) throws(ResponseError) -> [Playbook] {
        let reader = YAMLReader(file: file)
        let documents: [Node]
        do throws(YAMLProblem) { documents = try reader.documents(yaml) } catch { throw ResponseError(error) }
        var playbooks: [Playbook] = []
        var seen: Set<String> = []
        for document in documents {
            let playbook: Playbook
            do throws(YAMLProblem) { playbook = try reader.playbook(document) } catch { throw ResponseError(error) }
            guard seen.insert(playbook.id).inserted else {
                throw ResponseError(code: .duplicatePlaybookID, file: file, line: document.mark?.line,
                                    reason: "playbook id '\(playbook.id)' is defined twice")
            }
            playbooks.append(playbook)
        }
        return playbooks
    }
}

extension ResponseError {
    /// The error for a problem met while reading playbook files: unreadable files and
    /// directories, malformed YAML, and well-formed YAML that is not a valid playbook.
    init(_ problem: YAMLProblem) {
        self.init(code: problem.code(unreadable: .unreadableFile, syntax: .invalidYAML, invalid: .invalidPlaybook),
                  file: problem.file, line: problem.line, reason: problem.reason)
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
        let members = try mapping(node, allowed: ["rules", "min_severity", "attack", "environments", "criticality",
                                                  "internet_exposed", "asset_kinds", "tags"], what: "match")
        guard !members.isEmpty else { throw problem(node, "match needs at least one criterion (rules, min_severity, attack, ...)") }
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
        if let n = members["environments"] { match.environments = try stringList(n, what: "environments", allowEmptyList: false) }
        if let n = members["criticality"] { match.criticality = try stringList(n, what: "criticality", allowEmptyList: false) }
        if let n = members["internet_exposed"] { match.internetExposed = try bool(n, what: "internet_exposed") }
        if let n = members["asset_kinds"] { match.assetKinds = try stringList(n, what: "asset_kinds", allowEmptyList: false) }
        if let n = members["tags"] { match.tags = try stringMap(n, what: "tags") }
        return match
    }

    func action(_ node: Node) throws(YAMLProblem) -> ActionSpec {
        let members = try mapping(node, allowed: ["action", "mode", "params", "approval", "approval_ttl", "environments",
                                                  "rate_limit", "target_rate_limit", "blast_radius", "revert_after"],
                                  what: "action")
        let kindNode = try required(members, "action", in: node, what: "action")
        let playbookKinds = ActionKind.allCases.filter { $0 != .revert }
        guard let kind = ActionKind(rawValue: try string(kindNode, what: "action", allowEmpty: true)), kind != .revert else {
            throw problem(kindNode, "action must be one of: \(playbookKinds.map(\.rawValue).joined(separator: ", "))")
        }
        var spec = ActionSpec(kind: kind)
        if let modeNode = members["mode"] {
            guard let parsed = ActionMode(rawValue: try string(modeNode, what: "mode", allowEmpty: true)) else {
                throw problem(modeNode, "mode must be dry_run or enforce")
            }
            spec.mode = parsed
        }
        if let paramsNode = members["params"] {
            spec.params = try stringMap(paramsNode, what: "params")
            for name in spec.params.keys.sorted() where !kind.allowedParams.contains(name) {
                throw problem(paramsNode, "action '\(kind.rawValue)' has no param '\(name)' (expected one of: \(kind.allowedParams.joined(separator: ", ")))")
            }
        }
        for name in kind.requiredParams where (spec.params[name] ?? "").isEmpty {
            throw problem(node, "action '\(kind.rawValue)' needs param '\(name)'")
        }
        if kind == .tagResource, let tags = spec.params["tags"], ActionSpec.parseTags(tags) == nil {
            throw problem(members["params"], "tags must be 'key=value' pairs separated by commas")
        }
        if let format = spec.params["format"], !["json", "slack"].contains(format) {
            throw problem(members["params"], "format must be json or slack")
        }
        if let attempts = spec.params["attempts"], !(Int(attempts).map { (1...20).contains($0) } ?? false) {
            throw problem(members["params"], "attempts must be a whole number from 1 to 20")
        }
        if let approvalNode = members["approval"] {
            if approvalNode.scalar != nil {
                switch try string(approvalNode, what: "approval") {
                case "required": spec.approval = .required
                case "none": spec.approval = .none
                default: throw problem(approvalNode, "approval must be required, none, or {environments: [...]}")
                }
            } else {
                let approval = try mapping(approvalNode, allowed: ["environments"], what: "approval")
                let envs = try stringList(required(approval, "environments", in: approvalNode, what: "approval"),
                                          what: "approval environments", allowEmptyList: false)
                spec.approval = .environments(envs)
            }
        }
        if let n = members["approval_ttl"] { spec.approvalTTLMillis = try duration(n, what: "approval_ttl", allowZero: false) }
        if let n = members["environments"] { spec.environments = try stringList(n, what: "environments", allowEmptyList: false) }
        if let n = members["rate_limit"] { spec.rateLimit = try rateLimit(n, what: "rate_limit") }
        if let n = members["target_rate_limit"] { spec.targetRateLimit = try rateLimit(n, what: "target_rate_limit") }
        if let n = members["blast_radius"] { spec.blastRadius = try blastRadius(n) }
        if let n = members["revert_after"] {
            guard kind.isRevertible else { throw problem(n, "revert_after applies only to quarantine_instance and disable_access_key") }
            spec.revertAfterMillis = try duration(n, what: "revert_after", allowZero: false)
        }
        if kind == .notify, spec.environments != nil || spec.blastRadius != nil {
            throw problem(node, "environments and blast_radius guard actions that touch assets, not notify")
        }
        return spec
    }

    func stringMap(_ node: Node, what: String) throws(YAMLProblem) -> [String: String] {
        guard let mapping = node.mapping else { throw problem(node, "\(what) must be a mapping of names to values") }
        var out: [String: String] = [:]
        for (key, value) in mapping {
            guard let name = key.scalar?.string, !name.isEmpty else { throw problem(key, "\(what) keys must be strings") }
            out[name] = try string(value, what: "\(what) '\(name)'", allowEmpty: true)
        }
        return out
    }

    func rateLimit(_ node: Node, what: String) throws(YAMLProblem) -> RateLimit {
        let members = try mapping(node, allowed: ["max", "per"], what: what)
        let maxNode = try required(members, "max", in: node, what: what)
        let max = try int(maxNode, what: "\(what) max")
        guard max >= 1, max <= 1_000_000 else { throw problem(maxNode, "\(what) max must be from 1 to 1000000") }
        let per = try duration(required(members, "per", in: node, what: what), what: "\(what) per", allowZero: false)
        return RateLimit(max: Int(max), periodMillis: per)
    }

    func blastRadius(_ node: Node) throws(YAMLProblem) -> BlastRadius {
        let members = try mapping(node, allowed: ["max_targets", "max_percent", "group_tag", "per"], what: "blast_radius")
        var radius = BlastRadius()
        if let n = members["max_targets"] {
            let value = try int(n, what: "max_targets")
            guard value >= 1, value <= 1_000_000 else { throw problem(n, "max_targets must be from 1 to 1000000") }
            radius.maxTargets = Int(value)
        }
        if let n = members["max_percent"] {
            let value = try int(n, what: "max_percent")
            guard (1...100).contains(value) else { throw problem(n, "max_percent must be from 1 to 100") }
            radius.maxPercent = Int(value)
        }
        guard radius.maxTargets != nil || radius.maxPercent != nil else {
            throw problem(node, "blast_radius needs max_targets or max_percent")
        }
        if let n = members["group_tag"] { radius.groupTag = try string(n, what: "group_tag") }
        if let n = members["per"] { radius.periodMillis = try duration(n, what: "blast_radius per", allowZero: false) }
        return radius
    }
}

extension ActionSpec {
    /// `"vigil:case=alert,owner=secops"` as a dictionary; `nil` when a pair is malformed.
    static func parseTags(_ text: String) -> [String: String]? {
        var tags: [String: String] = [:]
        for pair in text.split(separator: ",") {
            let parts = pair.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, !parts[0].isEmpty else { return nil }
            tags[parts[0]] = parts[1]
        }
        return tags.isEmpty ? nil : tags
    }
}
