import OCSF

/// A playbook: which alerts it handles and the actions it plans for them (docs/response.md).
public struct Playbook: Sendable, Equatable {
    /// Stable identifier, named in every command's `playbook` and `reason`.
    public var id: String
    /// What the playbook is for.
    public var description: String
    /// Which alerts it handles.
    public var match: PlaybookMatch
    /// What it does for each, in order.
    public var actions: [ActionSpec]
    /// The file it was loaded from, when it came from one.
    public var file: String?

    /// Creates a playbook.
    public init(id: String, description: String = "", match: PlaybookMatch, actions: [ActionSpec], file: String? = nil) {
        self.id = id
        self.description = description
        self.match = match
        self.actions = actions
        self.file = file
    }
}

/// Which alerts a playbook handles: every criterion given must hold.
public struct PlaybookMatch: Sendable, Equatable {
    /// Rule ids; an entry ending in `*` is a prefix (`aws.*`, or `*` for any rule).
    public var rules: [String]?
    /// The lowest alert severity handled.
    public var minSeverity: OCSFSeverity?
    /// ATT&CK technique ids; an alert matches when one of its techniques is listed, or is a
    /// sub-technique of a listed one (`T1562` covers `T1562.008`).
    public var attack: [String]?

    /// Creates a match.
    public init(rules: [String]? = nil, minSeverity: OCSFSeverity? = nil, attack: [String]? = nil) {
        self.rules = rules
        self.minSeverity = minSeverity
        self.attack = attack
    }

    /// Whether an alert with this rule id, severity and techniques is handled.
    public func matches(ruleID: String, severity: OCSFSeverity, techniques: [String]) -> Bool {
        if let rules, !rules.contains(where: { PlaybookMatch.pattern($0, matches: ruleID) }) { return false }
        if let minSeverity, severity < minSeverity { return false }
        if let attack {
            let covered = techniques.contains { technique in
                attack.contains { technique == $0 || technique.hasPrefix($0 + ".") }
            }
            if !covered { return false }
        }
        return true
    }

    static func pattern(_ pattern: String, matches ruleID: String) -> Bool {
        if pattern.hasSuffix("*") { return ruleID.hasPrefix(pattern.dropLast()) }
        return ruleID == pattern
    }
}

/// The response actions Vigil knows. Only `notify` can be planned so far; the others are
/// named so playbooks that use them get a clear "not available yet" error.
public enum ActionKind: String, Sendable, CaseIterable {
    /// Send the alert to a channel (webhook; Slack-compatible payload).
    case notify
    /// Swap the instance's security groups for an isolation group.
    case quarantineInstance = "quarantine_instance"
    /// Take forensic snapshots of the instance's volumes.
    case snapshotVolumes = "snapshot_volumes"
    /// Deactivate an IAM access key.
    case disableAccessKey = "disable_access_key"
    /// Tag the affected resource.
    case tagResource = "tag_resource"

    /// Whether playbooks may use this action yet.
    public var isAvailable: Bool { self == .notify }

    /// The params an action requires.
    public var requiredParams: [String] {
        switch self {
        case .notify: ["channel"]
        default: []
        }
    }
}

/// Whether a command is carried out or only recorded.
public enum ActionMode: String, Sendable, CaseIterable {
    /// Recorded as what would be done; the default.
    case dryRun = "dry_run"
    /// Carried out by the executor.
    case enforce
}

/// One action of a playbook.
public struct ActionSpec: Sendable, Equatable {
    /// The action.
    public var kind: ActionKind
    /// Its parameters (for `notify`: `channel`, the configured channel or webhook name).
    public var params: [String: String]
    /// Dry run (default) or enforce.
    public var mode: ActionMode

    /// Creates an action.
    public init(kind: ActionKind, params: [String: String] = [:], mode: ActionMode = .dryRun) {
        self.kind = kind
        self.params = params
        self.mode = mode
    }

    /// What the action acts on for an alert: for `notify`, the channel.
    func target(alert: JSON) -> String? {
        switch kind {
        case .notify: params["channel"]
        default: nil
        }
    }
}
