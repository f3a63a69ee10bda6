import OCSF
import Response
import Testing

/// The repository root, found from this file's path (Tests/ResponseTests/ResponderTests.swift).
func repositoryRoot(_ file: String = #filePath) -> String {
    var parts = file.split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)
    return parts.joined(separator: "/")
}

/// An alert as Detection builds it, reduced to what Response reads.
func alert(id: String = "a1b2", rule: String = "aws.cloudtrail.logging_disabled", severity: OCSFSeverity = .high,
           techniques: [String] = ["T1562.008"], time: Int64 = 1_714_564_800_000) -> JSON {
    var alert = OCSFEvent.base(
        class: .detectionFinding, activityID: 1, activityName: "Create", time: time,
        severity: severity, uid: id, product: "Vigil", vendor: "Vigil")
    alert.set("finding_info", [
        "uid": .string(id),
        "analytic": ["uid": .string(rule), "type_id": 1],
        "attacks": .array(techniques.map { ["technique": ["uid": .string($0)]] }),
    ])
    return alert
}

func playbooks(_ yaml: String) throws -> Responder {
    Responder(playbooks: try PlaybookSet(playbooks: PlaybookSet.parse(yaml: yaml, file: "test.yaml")))
}

@Suite("Responder")
struct ResponderTests {
    @Test func defaultPlaybookNotifiesSecurityTeamInDryRun() throws {
        let set = try PlaybookSet.load(directory: repositoryRoot() + "/playbooks")
        #expect(set.playbooks.map(\.id) == ["contain.logging-tampering", "contain.exposed-critical", "default.notify"])
        let responder = Responder(playbooks: set)
        let commands = responder.commands(for: alert(id: "alert-1"))
        try #require(commands.count == 1)
        let expected: JSON = [
            "command_id": .string(StableID.hash(["alert-1", "notify", "security-team"])),
            "action": "notify",
            "target": "security-team",
            "target_kind": "channel",
            "mode": "dry_run",
            "status": "planned",
            "alert_id": "alert-1",
            "rule_id": "aws.cloudtrail.logging_disabled",
            "severity": "High",
            "severity_id": 4,
            "playbook": "default.notify",
            "params": ["channel": "security-team"],
            "created_time": 1_714_564_800_000,
            "reason": "playbook default.notify matched rule aws.cloudtrail.logging_disabled",
        ]
        #expect(commands[0] == expected)
        #expect(responder.commands(for: alert(severity: .low)).count == 1)
        #expect(responder.commands(for: alert(severity: .informational)).isEmpty)
    }

    @Test func sameAlertGivesIdenticalCommands() throws {
        let responder = Responder(playbooks: try PlaybookSet.load(directory: repositoryRoot() + "/playbooks"))
        let first = responder.commands(for: alert()).map(\.jsonText)
        let second = try responder.commands(for: JSON.parse(alert().serialized())).map(\.jsonText)
        #expect(!first.isEmpty)
        #expect(first == second)
        #expect(responder.commands(for: alert(id: "other")).map(\.jsonText) != first)
    }

    @Test func matchesByRuleIDAndPrefix() throws {
        let responder = try playbooks("""
            id: exact
            match: {rules: [aws.console.bruteforce]}
            actions: [{action: notify, params: {channel: exact-channel}}]
            ---
            id: prefix
            match: {rules: ["aws.cloudtrail.*"]}
            actions: [{action: notify, params: {channel: prefix-channel}}]
            ---
            id: any
            match: {rules: ["*"], min_severity: critical}
            actions: [{action: notify, mode: enforce, params: {channel: pager}}]
            """)
        #expect(responder.commands(for: alert(rule: "aws.console.bruteforce")).map { $0["target"] } == ["exact-channel"])
        #expect(responder.commands(for: alert(rule: "aws.console.bruteforce.v2")).isEmpty)
        #expect(responder.commands(for: alert(rule: "aws.cloudtrail.logging_disabled")).map { $0["target"] } == ["prefix-channel"])
        #expect(responder.commands(for: alert(rule: "gcp.audit.x")).isEmpty)
        let critical = responder.commands(for: alert(rule: "gcp.audit.x", severity: .critical))
        #expect(critical.map { $0["target"] } == ["pager"])
        #expect(critical.first?["mode"] == "enforce")
    }

    @Test func matchesBySeverityAndAttack() throws {
        let responder = try playbooks("""
            id: evasion
            match:
              min_severity: medium
              attack: [T1562]
            actions:
              - action: notify
                params: {channel: soc}
            """)
        #expect(responder.commands(for: alert(severity: .high, techniques: ["T1562.008"])).count == 1)
        #expect(responder.commands(for: alert(severity: .medium, techniques: ["T1110", "T1562"])).count == 1)
        #expect(responder.commands(for: alert(severity: .low, techniques: ["T1562.008"])).isEmpty)
        #expect(responder.commands(for: alert(severity: .high, techniques: ["T15620"])).isEmpty)
        #expect(responder.commands(for: alert(severity: .high, techniques: [])).isEmpty)
    }

    @Test func noMatchOrUnusableAlertGivesNoCommands() throws {
        let responder = try playbooks("id: p\nmatch: {rules: [nothing.matches]}\nactions: [{action: notify, params: {channel: c}}]\n")
        #expect(responder.commands(for: alert()).isEmpty)
        let all = try playbooks("id: p\nmatch: {min_severity: unknown}\nactions: [{action: notify, params: {channel: c}}]\n")
        var noTime = alert()
        noTime["time"] = nil
        #expect(all.commands(for: noTime).isEmpty)
        #expect(all.commands(for: ["time": 1]).isEmpty)
        #expect(all.commands(for: alert()).count == 1)
    }

    @Test func samePlannedCommandFromTwoPlaybooksIsEmittedOnce() throws {
        let responder = try playbooks("""
            id: first
            match: {min_severity: low}
            actions: [{action: notify, params: {channel: soc}}]
            ---
            id: second
            match: {rules: ["aws.*"]}
            actions: [{action: notify, params: {channel: soc}}, {action: notify, params: {channel: cloud-team}}]
            """)
        let commands = responder.commands(for: alert())
        #expect(commands.map { $0["playbook"] } == ["first", "second"])
        #expect(commands.map { $0["target"] } == ["soc", "cloud-team"])
    }

    static let invalidCases: [(name: String, yaml: String, line: Int, reason: String)] = [
        ("unknown key", "id: p\nmatch: {min_severity: low}\nowner: me\nactions: [{action: notify, params: {channel: c}}]\n", 3, "unknown key 'owner'"),
        ("unknown match key", "id: p\nmatch:\n  severity: low\nactions: [{action: notify, params: {channel: c}}]\n", 3, "unknown key 'severity'"),
        ("unknown action", "id: p\nmatch: {min_severity: low}\nactions:\n  - action: page\n    params: {channel: c}\n", 4, "action must be one of"),
        ("revert is not a playbook action", "id: p\nmatch: {min_severity: low}\nactions:\n  - action: revert\n", 4, "action must be one of"),
        ("unknown param", "id: p\nmatch: {min_severity: low}\nactions:\n  - action: quarantine_instance\n    params: {group: x}\n", 5, "has no param 'group'"),
        ("bad tags", "id: p\nmatch: {min_severity: low}\nactions:\n  - action: tag_resource\n    params: {tags: novalue}\n", 5, "key=value"),
        ("bad approval", "id: p\nmatch: {min_severity: low}\nactions:\n  - action: quarantine_instance\n    approval: maybe\n", 5, "approval must be"),
        ("bad rate limit", "id: p\nmatch: {min_severity: low}\nactions:\n  - action: quarantine_instance\n    rate_limit: {max: 0, per: 1h}\n", 5, "max must be"),
        ("bad period", "id: p\nmatch: {min_severity: low}\nactions:\n  - action: quarantine_instance\n    rate_limit: {max: 2, per: soon}\n", 5, "duration"),
        ("empty blast radius", "id: p\nmatch: {min_severity: low}\nactions:\n  - action: quarantine_instance\n    blast_radius: {per: 1h}\n", 5, "max_targets or max_percent"),
        ("percent over 100", "id: p\nmatch: {min_severity: low}\nactions:\n  - action: quarantine_instance\n    blast_radius:\n      max_percent: 150\n", 6, "from 1 to 100"),
        ("revert_after on snapshot", "id: p\nmatch: {min_severity: low}\nactions:\n  - action: snapshot_volumes\n    revert_after: 1h\n", 5, "revert_after applies only"),
        ("scope on notify", "id: p\nmatch: {min_severity: low}\nactions:\n  - action: notify\n    environments: [dev]\n    params: {channel: c}\n", 4, "not notify"),
        ("bad exposure", "id: p\nmatch:\n  internet_exposed: sometimes\nactions: [{action: notify, params: {channel: c}}]\n", 3, "true or false"),
        ("missing channel", "id: p\nmatch: {min_severity: low}\nactions:\n  - action: notify\n    mode: dry_run\n", 4, "needs param 'channel'"),
        ("bad mode", "id: p\nmatch: {min_severity: low}\nactions:\n  - action: notify\n    mode: yolo\n    params: {channel: c}\n", 5, "mode"),
        ("bad severity", "id: p\nmatch:\n  min_severity: urgent\nactions: [{action: notify, params: {channel: c}}]\n", 3, "min_severity"),
        ("empty match", "id: p\nmatch: {}\nactions: [{action: notify, params: {channel: c}}]\n", 2, "at least one"),
        ("missing id", "description: x\nmatch: {min_severity: low}\nactions: [{action: notify, params: {channel: c}}]\n", 1, "missing 'id'"),
        ("no actions", "id: p\nmatch: {min_severity: low}\nactions: []\n", 3, "non-empty"),
        ("inner star", "id: p\nmatch: {rules: [\"aws.*.x\"]}\nactions: [{action: notify, params: {channel: c}}]\n", 2, "'*'"),
        ("broken yaml", "id: p\nmatch: {min_severity: low\nactions: []\n", 3, "not valid YAML"),
    ]

    @Test(arguments: invalidCases.indices)
    func invalidPlaybookNamesFileAndLine(_ index: Int) {
        let sample = Self.invalidCases[index]
        do {
            let parsed = try PlaybookSet.parse(yaml: sample.yaml, file: "playbooks/bad.yaml")
            Issue.record("\(sample.name): parsed \(parsed.count) playbook(s)")
        } catch {
            #expect(error.file == "playbooks/bad.yaml", "\(sample.name)")
            #expect(error.line == sample.line, "\(sample.name): \(error)")
            #expect(error.reason.contains(sample.reason), "\(sample.name): \(error)")
            #expect(error.description.hasPrefix("playbooks/bad.yaml:\(sample.line): "), "\(sample.name)")
            #expect(!error.isRetriable)
        }
    }

    @Test func duplicatePlaybookIDsAreRejected() {
        let yaml = "id: p\nmatch: {min_severity: low}\nactions: [{action: notify, params: {channel: c}}]\n"
        #expect {
            try PlaybookSet.parse(yaml: yaml + "---\n" + yaml, file: "dup.yaml")
        } throws: { error in
            (error as? ResponseError)?.code == .duplicatePlaybookID && (error as? ResponseError)?.line == 5
        }
    }
}
