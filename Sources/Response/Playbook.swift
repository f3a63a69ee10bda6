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

/// What a playbook and its guards read from an alert: the rule, severity, techniques and the
/// enriched asset (`vigil.asset`) when the alert carries one.
public struct AlertFacts: Sendable, Equatable {
    /// The alert id (`metadata.uid`).
    public var alertID: String
    /// The rule that fired.
    public var ruleID: String
    /// The alert's severity.
    public var severity: OCSFSeverity
    /// ATT&CK technique ids of the rule.
    public var techniques: [String]
    /// The alert's event time (epoch ms): guards count periods in event time, so a replay
    /// plans the same commands.
    public var time: Int64
    /// The asset the alert is about, when enrichment found one.
    public var asset: AssetFacts?

    /// Reads the facts of an alert; `nil` without an id, a rule id or an integer `time`
    /// (command ids could not be deterministic).
    public init?(alert: JSON) {
        guard let alertID = alert.value(at: "metadata.uid")?.stringValue ?? alert.value(at: "finding_info.uid")?.stringValue,
              let ruleID = alert.value(at: "finding_info.analytic.uid")?.stringValue ?? alert.value(at: "vigil.rule.id")?.stringValue,
              let time = alert["time"]?.intValue
        else { return nil }
        self.alertID = alertID
        self.ruleID = ruleID
        self.time = time
        severity = alert["severity_id"]?.intValue.flatMap(OCSFSeverity.init(rawValue:)) ?? .unknown
        techniques = (alert.value(at: "finding_info.attacks")?.arrayValue ?? []).compactMap {
            $0.value(at: "technique.uid")?.stringValue
        }
        asset = alert.value(at: "vigil.asset").flatMap(AssetFacts.init(summary:))
    }

    /// Facts given directly (tests, tools).
    public init(alertID: String, ruleID: String, severity: OCSFSeverity, techniques: [String] = [], time: Int64,
                asset: AssetFacts? = nil) {
        self.alertID = alertID
        self.ruleID = ruleID
        self.severity = severity
        self.techniques = techniques
        self.time = time
        self.asset = asset
    }
}

/// The inventory's view of an asset, as enrichment wrote it into `vigil.asset`.
public struct AssetFacts: Sendable, Equatable {
    /// Asset id (`i-...`, `AKIA...`, an ARN).
    public var id: String
    /// Asset kind (`instance`, `access_key`, ...).
    public var kind: String
    /// Environment (`production`, `staging`, ...), when known.
    public var environment: String?
    /// Criticality (`low` ... `critical`), when known.
    public var criticality: String?
    /// Reachable from the internet.
    public var internetExposed: Bool
    /// Marked protected in the inventory.
    public var protected: Bool
    /// Tags.
    public var tags: [String: String]
    /// The IAM user owning an access key, when known.
    public var user: String?
    /// Region, when known.
    public var region: String?

    /// Reads a `vigil.asset` summary; `nil` without an id.
    public init?(summary: JSON) {
        guard let id = summary["id"]?.stringValue, !id.isEmpty else { return nil }
        self.id = id
        kind = summary["kind"]?.stringValue ?? ""
        environment = summary["environment"]?.stringValue
        criticality = summary["criticality"]?.stringValue
        internetExposed = summary["internet_exposed"]?.boolValue ?? false
        protected = summary["protected"]?.boolValue ?? false
        tags = (summary["tags"]?.objectValue ?? [:]).compactMapValues(\.stringValue)
        user = summary["user"]?.stringValue
        region = summary["region"]?.stringValue
    }

    /// Facts given directly (tests, tools).
    public init(id: String, kind: String, environment: String? = nil, criticality: String? = nil, internetExposed: Bool = false,
                protected: Bool = false, tags: [String: String] = [:], user: String? = nil, region: String? = nil) {
        self.id = id
        self.kind = kind
        self.environment = environment
        self.criticality = criticality
        self.internetExposed = internetExposed
        self.protected = protected
        self.tags = tags
        self.user = user
        self.region = region
    }
}

/// Which alerts a playbook handles: every criterion given must hold. Asset criteria never
/// hold for an alert without a known asset.
public struct PlaybookMatch: Sendable, Equatable {
    /// Rule ids; an entry ending in `*` is a prefix (`aws.*`, or `*` for any rule).
    public var rules: [String]?
    /// The lowest alert severity handled.
    public var minSeverity: OCSFSeverity?
    /// ATT&CK technique ids; an alert matches when one of its techniques is listed, or is a
    /// sub-technique of a listed one (`T1562` covers `T1562.008`).
    public var attack: [String]?
    /// Asset environments handled.
    public var environments: [String]?
    /// Asset criticalities handled.
    public var criticality: [String]?
    /// Only internet-exposed (`true`) or only internal (`false`) assets.
    public var internetExposed: Bool?
    /// Asset kinds handled (`instance`, `access_key`, ...).
    public var assetKinds: [String]?
    /// Tags the asset must carry with these values.
    public var tags: [String: String]?

    /// Creates a match.
    public init(rules: [String]? = nil, minSeverity: OCSFSeverity? = nil, attack: [String]? = nil,
                environments: [String]? = nil, criticality: [String]? = nil, internetExposed: Bool? = nil,
                assetKinds: [String]? = nil, tags: [String: String]? = nil) {
        self.rules = rules
        self.minSeverity = minSeverity
        self.attack = attack
        self.environments = environments
        self.criticality = criticality
        self.internetExposed = internetExposed
        self.assetKinds = assetKinds
        self.tags = tags
    }

    /// Whether an alert with this rule id, severity and techniques (and no asset) is handled.
    public func matches(ruleID: String, severity: OCSFSeverity, techniques: [String]) -> Bool {
        matches(AlertFacts(alertID: "", ruleID: ruleID, severity: severity, techniques: techniques, time: 0))
    }

    /// Whether the alert is handled.
    public func matches(_ facts: AlertFacts) -> Bool {
        if let rules, !rules.contains(where: { PlaybookMatch.pattern($0, matches: facts.ruleID) }) { return false }
        if let minSeverity, facts.severity < minSeverity { return false }
        if let attack {
            let covered = facts.techniques.contains { technique in
                attack.contains { technique == $0 || technique.hasPrefix($0 + ".") }
            }
            if !covered { return false }
        }
        let needsAsset = environments != nil || criticality != nil || internetExposed != nil || assetKinds != nil || tags != nil
        guard needsAsset else { return true }
        guard let asset = facts.asset else { return false }
        if let environments, !environments.contains(asset.environment ?? "") { return false }
        if let criticality, !criticality.contains(asset.criticality ?? "") { return false }
        if let internetExposed, asset.internetExposed != internetExposed { return false }
        if let assetKinds, !assetKinds.contains(asset.kind) { return false }
        if let tags, !tags.allSatisfy({ asset.tags[$0.key] == $0.value }) { return false }
        return true
    }

    static func pattern(_ pattern: String, matches ruleID: String) -> Bool {
        if pattern.hasSuffix("*") { return ruleID.hasPrefix(pattern.dropLast()) }
        return ruleID == pattern
    }
}

/// The response actions Vigil knows.
public enum ActionKind: String, Sendable, CaseIterable {
    /// Send the alert to a channel (HTTP webhook; JSON or Slack-compatible body).
    case notify
    /// Swap the instance's security groups for an isolation group of its VPC.
    case quarantineInstance = "quarantine_instance"
    /// Take forensic snapshots of every volume attached to the instance.
    case snapshotVolumes = "snapshot_volumes"
    /// Set an IAM access key inactive.
    case disableAccessKey = "disable_access_key"
    /// Add tags to the affected resource.
    case tagResource = "tag_resource"
    /// Undo an earlier quarantine or key disable (planned by `vigil revert` or a TTL, never by
    /// a playbook).
    case revert

    /// Whether the action changes or reads the asset itself (all but `notify`): such actions
    /// are subject to the protected, environment-scope and blast-radius guards.
    public var touchesAsset: Bool { self != .notify }

    /// Whether the action can be undone by `revert`.
    public var isRevertible: Bool { self == .quarantineInstance || self == .disableAccessKey }

    /// The params an action requires.
    public var requiredParams: [String] {
        switch self {
        case .notify: ["channel"]
        case .tagResource: ["tags"]
        default: []
        }
    }

    /// The params an action accepts.
    public var allowedParams: [String] {
        switch self {
        case .notify: ["channel", "webhook", "webhook_env", "format", "attempts"]
        case .quarantineInstance: ["isolation_group", "target_field"]
        case .snapshotVolumes: ["target_field"]
        case .disableAccessKey: ["target_field", "user_field"]
        case .tagResource: ["tags", "target_field"]
        case .revert: []
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

/// When a command must wait for a person's `vigil approve`.
public enum ApprovalPolicy: Sendable, Equatable {
    /// Never: the command goes straight to the executor (the default).
    case none
    /// Always.
    case required
    /// Only when the asset's environment is one of these (or unknown).
    case environments([String])
}

/// At most `max` commands per `periodMillis` of event time.
public struct RateLimit: Sendable, Equatable {
    /// The most commands in one period.
    public var max: Int
    /// The period, in milliseconds.
    public var periodMillis: Int64

    /// Creates a limit.
    public init(max: Int, periodMillis: Int64) {
        self.max = max
        self.periodMillis = periodMillis
    }
}

/// How many distinct targets one action may touch in a period: at most `maxTargets`, and at
/// most `maxPercent` of the target's group (the assets sharing its `groupTag` value, such as an
/// auto-scaling group) when the group's size is known.
public struct BlastRadius: Sendable, Equatable {
    /// The most distinct targets per period.
    public var maxTargets: Int?
    /// The largest share of a group, in percent.
    public var maxPercent: Int?
    /// The tag whose value names a target's group.
    public var groupTag: String
    /// The period, in milliseconds.
    public var periodMillis: Int64

    /// Creates a limit.
    public init(maxTargets: Int? = nil, maxPercent: Int? = nil, groupTag: String = "aws:autoscaling:groupName",
                periodMillis: Int64 = 3_600_000) {
        self.maxTargets = maxTargets
        self.maxPercent = maxPercent
        self.groupTag = groupTag
        self.periodMillis = periodMillis
    }
}

/// One action of a playbook, with its guards.
public struct ActionSpec: Sendable, Equatable {
    /// The action.
    public var kind: ActionKind
    /// Its parameters (docs/response.md lists them per action).
    public var params: [String: String]
    /// Dry run (default) or enforce.
    public var mode: ActionMode
    /// When a person must approve first.
    public var approval: ApprovalPolicy
    /// How long a pending command waits for approval before it expires (default 24 h).
    public var approvalTTLMillis: Int64
    /// The asset environments the action may touch; others are blocked. `nil`: any.
    public var environments: [String]?
    /// At most this many commands of this action (all targets) per period.
    public var rateLimit: RateLimit?
    /// At most this many commands of this action per target per period.
    public var targetRateLimit: RateLimit?
    /// At most this many distinct targets per period.
    public var blastRadius: BlastRadius?
    /// Undo the action this long after it was carried out (quarantine, key disable).
    public var revertAfterMillis: Int64?

    /// Creates an action.
    public init(kind: ActionKind, params: [String: String] = [:], mode: ActionMode = .dryRun,
                approval: ApprovalPolicy = .none, approvalTTLMillis: Int64 = 86_400_000, environments: [String]? = nil,
                rateLimit: RateLimit? = nil, targetRateLimit: RateLimit? = nil, blastRadius: BlastRadius? = nil,
                revertAfterMillis: Int64? = nil) {
        self.kind = kind
        self.params = params
        self.mode = mode
        self.approval = approval
        self.approvalTTLMillis = approvalTTLMillis
        self.environments = environments
        self.rateLimit = rateLimit
        self.targetRateLimit = targetRateLimit
        self.blastRadius = blastRadius
        self.revertAfterMillis = revertAfterMillis
    }

    /// What the action acts on for an alert, and details the executor needs (the key owner's
    /// user name, the region). `nil` when the alert does not name one.
    func target(alert: JSON, facts: AlertFacts) -> (id: String, kind: String, details: [String: String])? {
        func field(_ name: String) -> String? {
            guard let path = params[name], let value = alert.value(at: path)?.stringValue, !value.isEmpty else { return nil }
            return value
        }
        var details: [String: String] = [:]
        if let region = facts.asset?.region ?? alert.value(at: "cloud.region")?.stringValue { details["region"] = region }
        switch kind {
        case .notify:
            return params["channel"].map { ($0, "channel", [:]) }
        case .quarantineInstance, .snapshotVolumes:
            if let id = field("target_field") { return (id, "instance", details) }
            if let asset = facts.asset, asset.kind == "instance" { return (asset.id, "instance", details) }
            return nil
        case .tagResource:
            if let id = field("target_field") { return (id, "resource", details) }
            return facts.asset.map { ($0.id, $0.kind.isEmpty ? "resource" : $0.kind, details) }
        case .disableAccessKey:
            let key = field("target_field") ?? alert.value(at: "actor.user.credential_uid")?.stringValue
                ?? (facts.asset?.kind == "access_key" ? facts.asset?.id : nil)
            guard let key, !key.isEmpty else { return nil }
            if let user = field("user_field") ?? facts.asset?.user ?? alert.value(at: "actor.user.name")?.stringValue, !user.isEmpty {
                details["user"] = user
            }
            return (key, "access_key", details)
        case .revert:
            return nil
        }
    }
}
