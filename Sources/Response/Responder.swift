import OCSF

/// Turns alerts into commands according to the playbooks, applying each action's guards.
///
/// Deterministic: the same alerts in the same order give the same commands, byte for byte
/// (guard periods are counted in alert time; nothing reads the wall clock).
public struct Responder: Sendable {
    /// The playbooks consulted, in order.
    public let playbooks: PlaybookSet
    /// The size of a blast-radius group (for `max_percent`), when known; `nil` otherwise.
    public let groupSize: @Sendable (_ tag: String, _ value: String) -> Int?

    /// A responder for `playbooks`.
    public init(playbooks: PlaybookSet, groupSize: @escaping @Sendable (_ tag: String, _ value: String) -> Int? = { _, _ in nil }) {
        self.playbooks = playbooks
        self.groupSize = groupSize
    }

    /// The commands for `alert` with a fresh guard state (tests and one-off planning).
    public func commands(for alert: JSON) -> [JSON] {
        var state = GuardState()
        return commands(for: alert, state: &state)
    }

    /// The commands for `alert`, in playbook then action order. A command planned before
    /// (same alert, action and target; by this or an earlier playbook, or for an earlier
    /// delivery of the same alert) is not repeated. An alert without an id, a rule id or an
    /// integer `time` gets no commands: their ids could not be deterministic.
    ///
    /// Every planned command comes out, also the refused ones: `status` is `planned`,
    /// `pending` (waits for `vigil approve`) or `blocked` (with `blocked_by` and the reason),
    /// so the audit trail shows what the guards stopped.
    public func commands(for alert: JSON, state: inout GuardState) -> [JSON] {
        guard let facts = AlertFacts(alert: alert) else { return [] }
        var commands: [JSON] = []
        for playbook in playbooks.playbooks where playbook.match.matches(facts) {
            for action in playbook.actions {
                let target = action.target(alert: alert, facts: facts)
                let targetID = target?.id ?? ""
                let commandID = StableID.hash([facts.alertID, action.kind.rawValue, targetID])
                guard state.firstTime(commandID) else { continue }
                let decision: GuardDecision = target == nil
                    ? .blocked(.noTarget, "the alert names no \(action.kind == .disableAccessKey ? "access key" : "asset") for \(action.kind.rawValue)")
                    : state.decide(playbook: playbook.id, action: action, target: targetID, facts: facts, groupSize: groupSize)
                var command: JSON = [
                    "command_id": .string(commandID),
                    "action": .string(action.kind.rawValue),
                    "target": .string(targetID),
                    "mode": .string(action.mode.rawValue),
                    "alert_id": .string(facts.alertID),
                    "rule_id": .string(facts.ruleID),
                    "severity": .string(facts.severity.name),
                    "severity_id": .int(facts.severity.rawValue),
                    "playbook": .string(playbook.id),
                    "params": .object(action.params.mapValues { .string($0) }),
                    "created_time": .int(facts.time),
                    "reason": .string("playbook \(playbook.id) matched rule \(facts.ruleID)"),
                ]
                if let target {
                    command["target_kind"] = .string(target.kind)
                    if !target.details.isEmpty { command["target_details"] = .object(target.details.mapValues { .string($0) }) }
                }
                if let revert = action.revertAfterMillis { command["revert_after_ms"] = .int(revert) }
                switch decision {
                case .allow:
                    command["status"] = "planned"
                case .pending:
                    command["status"] = "pending"
                    command["approval_ttl_ms"] = .int(action.approvalTTLMillis)
                case .blocked(let guardBlock, let reason):
                    command["status"] = "blocked"
                    command["blocked_by"] = .string(guardBlock.rawValue)
                    command["blocked_reason"] = .string(reason)
                }
                commands.append(command)
            }
        }
        return commands
    }
}
