import OCSF

/// A command as it travels on `<prefix>commands` (planned by the responder, or a decision by
/// `vigil approve` / `vigil reject`, or a revert), read back for the executor.
public struct ResponseCommand: Sendable, Equatable {
    /// hash(alert id, action, target): the idempotency key.
    public var id: String
    /// The action.
    public var action: ActionKind
    /// What it acts on (instance id, access key id, channel).
    public var target: String
    /// Dry run or enforce.
    public var mode: ActionMode
    /// `planned`, `pending`, `blocked`, `approved`, `rejected`.
    public var status: String
    /// The alert that caused it.
    public var alertID: String
    /// The rule of that alert.
    public var ruleID: String
    /// The playbook that planned it.
    public var playbook: String
    /// The action's params.
    public var params: [String: String]
    /// Details the executor needs (`region`, `user` of an access key).
    public var targetDetails: [String: String]
    /// How long a pending command may wait for approval.
    public var approvalTTLMillis: Int64?
    /// Undo the action this long after it succeeded.
    public var revertAfterMillis: Int64?
    /// Who approved or rejected it (decision records).
    public var decidedBy: String?
    /// For a revert: the command it undoes.
    public var revertOf: String?
    /// The whole record as received.
    public var json: JSON

    /// Reads a command record; throws `invalid_command` when a required field is missing.
    public init(json: JSON) throws(ResponseError) {
        func text(_ key: String) throws(ResponseError) -> String {
            guard let value = json[key]?.stringValue else {
                throw ResponseError(code: .invalidCommand, reason: "command has no string '\(key)'")
            }
            return value
        }
        id = try text("command_id")
        guard !id.isEmpty else { throw ResponseError(code: .invalidCommand, reason: "command_id is empty") }
        let actionName = try text("action")
        guard let action = ActionKind(rawValue: actionName) else {
            throw ResponseError(code: .invalidCommand, reason: "unknown action '\(actionName.prefix(40))'")
        }
        self.action = action
        target = try text("target")
        mode = ActionMode(rawValue: json["mode"]?.stringValue ?? "") ?? .dryRun
        status = try text("status")
        alertID = json["alert_id"]?.stringValue ?? ""
        ruleID = json["rule_id"]?.stringValue ?? ""
        playbook = json["playbook"]?.stringValue ?? ""
        params = (json["params"]?.objectValue ?? [:]).compactMapValues(\.stringValue)
        targetDetails = (json["target_details"]?.objectValue ?? [:]).compactMapValues(\.stringValue)
        approvalTTLMillis = json["approval_ttl_ms"]?.intValue
        revertAfterMillis = json["revert_after_ms"]?.intValue
        decidedBy = json["decided_by"]?.stringValue
        revertOf = json["revert_of"]?.stringValue
        self.json = json
    }

    /// The decision record `vigil approve` / `vigil reject` publishes for a pending command:
    /// the command itself with `status` `approved` or `rejected`, who decided and when.
    public static func decision(on pending: JSON, approve: Bool, by person: String, at time: Int64, note: String? = nil) -> JSON {
        var record = pending
        record["status"] = .string(approve ? "approved" : "rejected")
        record["decided_by"] = .string(person)
        record["decided_time"] = .int(time)
        if let note, !note.isEmpty { record["decision_note"] = .string(note) }
        return record
    }

    /// The command that undoes `original` (a succeeded quarantine or key disable), requested
    /// by `person` (or `ttl` for an automatic revert). Its id is hash(original id, "revert").
    public static func revert(of original: ResponseCommand, by person: String, at time: Int64) -> JSON {
        [
            "command_id": .string(StableID.hash([original.id, "revert"])),
            "action": .string(ActionKind.revert.rawValue),
            "target": .string(original.target),
            "target_details": .object(original.targetDetails.mapValues { .string($0) }),
            "mode": .string(ActionMode.enforce.rawValue),
            "status": "planned",
            "alert_id": .string(original.alertID),
            "rule_id": .string(original.ruleID),
            "playbook": .string(original.playbook),
            "params": [:],
            "revert_of": .string(original.id),
            "decided_by": .string(person),
            "created_time": .int(time),
            "reason": .string("revert of \(original.action.rawValue) \(original.id) requested by \(person)"),
        ]
    }
}
