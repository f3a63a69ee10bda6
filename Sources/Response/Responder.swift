import OCSF

/// Turns alerts into planned commands according to the playbooks. Pure: the same alert and
/// playbooks always give the same commands, byte for byte.
public struct Responder: Sendable {
    /// The playbooks consulted, in order.
    public let playbooks: PlaybookSet

    /// A responder for `playbooks`.
    public init(playbooks: PlaybookSet) { self.playbooks = playbooks }

    /// The commands for `alert`, in playbook then action order. A command already planned by an
    /// earlier playbook (same action and target) is not repeated. An alert without an id, a
    /// rule id or an integer `time` gets no commands: their ids could not be deterministic.
    public func commands(for alert: JSON) -> [JSON] {
        guard let alertID = alert.value(at: "metadata.uid")?.stringValue ?? alert.value(at: "finding_info.uid")?.stringValue,
              let ruleID = alert.value(at: "finding_info.analytic.uid")?.stringValue ?? alert.value(at: "vigil.rule.id")?.stringValue,
              let time = alert["time"]?.intValue
        else { return [] }
        let severity = alert["severity_id"]?.intValue.flatMap(OCSFSeverity.init(rawValue:)) ?? .unknown
        let techniques = (alert.value(at: "finding_info.attacks")?.arrayValue ?? []).compactMap {
            $0.value(at: "technique.uid")?.stringValue
        }

        var commands: [JSON] = []
        var planned: Set<String> = []
        for playbook in playbooks.playbooks
        where playbook.match.matches(ruleID: ruleID, severity: severity, techniques: techniques) {
            for action in playbook.actions {
                guard let target = action.target(alert: alert) else { continue }
                let commandID = StableID.hash([alertID, action.kind.rawValue, target])
                guard planned.insert(commandID).inserted else { continue }
                commands.append([
                    "command_id": .string(commandID),
                    "action": .string(action.kind.rawValue),
                    "target": .string(target),
                    "mode": .string(action.mode.rawValue),
                    "status": "planned",
                    "alert_id": .string(alertID),
                    "rule_id": .string(ruleID),
                    "severity": .string(severity.name),
                    "severity_id": .int(severity.rawValue),
                    "playbook": .string(playbook.id),
                    "params": .object(action.params.mapValues { .string($0) }),
                    "created_time": .int(time),
                    "reason": .string("playbook \(playbook.id) matched rule \(ruleID)"),
                ])
            }
        }
        return commands
    }
}
