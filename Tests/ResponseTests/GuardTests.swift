import OCSF
import Response
import Testing

/// An alert about an asset, as enrichment and detection leave it.
func assetAlert(id: String, rule: String = "vuln.critical_on_exposed_asset", severity: OCSFSeverity = .critical,
                time: Int64 = 1_714_564_800_000, asset: JSON?) -> JSON {
    var a = alert(id: id, rule: rule, severity: severity, techniques: [], time: time)
    if let asset { a.set("vigil.asset", asset) }
    return a
}

func instance(_ id: String, environment: String = "staging", protected: Bool = false, exposed: Bool = true,
              criticality: String = "high", tags: [String: String] = [:]) -> JSON {
    [
        "id": .string(id), "kind": "instance", "environment": .string(environment), "criticality": .string(criticality),
        "internet_exposed": .bool(exposed), "protected": .bool(protected), "tags": .object(tags.mapValues { .string($0) }),
        "region": "us-east-1",
    ]
}

func guarded(_ actionYAML: String, match: String = "{rules: [vuln.critical_on_exposed_asset]}",
             groupSize: @escaping @Sendable (String, String) -> Int? = { _, _ in nil }) throws -> Responder {
    let yaml = "id: contain\nmatch: \(match)\nactions:\n" + actionYAML
    return Responder(playbooks: try PlaybookSet(playbooks: PlaybookSet.parse(yaml: yaml, file: "guards.yaml")), groupSize: groupSize)
}

func statuses(_ commands: [JSON]) -> [String] {
    commands.map { c in
        let status = c["status"]?.stringValue ?? "?"
        return status == "blocked" ? "blocked:\(c["blocked_by"]?.stringValue ?? "?")" : status
    }
}

@Suite("Guards")
struct GuardTests {
    @Test("destructive actions are dry runs unless the playbook says enforce")
    func dryRunByDefault() throws {
        let dry = try guarded("  - action: quarantine_instance\n")
        let command = try #require(dry.commands(for: assetAlert(id: "a1", asset: instance("i-1"))).first)
        #expect(command["mode"] == "dry_run")
        #expect(command["status"] == "planned")
        #expect(command["target"] == "i-1")
        #expect(command["target_kind"] == "instance")
        let enforce = try guarded("  - action: quarantine_instance\n    mode: enforce\n")
        #expect(enforce.commands(for: assetAlert(id: "a1", asset: instance("i-1"))).first?["mode"] == "enforce")
    }

    @Test("protected assets are never touched (inventory flag or vigil:protected tag), but still notified")
    func protectedAssets() throws {
        let responder = try guarded("""
              - action: quarantine_instance
                mode: enforce
              - action: snapshot_volumes
                mode: enforce
              - action: notify
                params: {channel: soc}
            """)
        let flagged = responder.commands(for: assetAlert(id: "a1", asset: instance("i-1", protected: true)))
        #expect(statuses(flagged) == ["blocked:protected", "blocked:protected", "planned"])
        #expect(flagged[0]["blocked_reason"]?.stringValue?.contains("i-1") == true)
        let tagged = responder.commands(for: assetAlert(id: "a2", asset: instance("i-2", tags: ["vigil:protected": "true"])))
        #expect(statuses(tagged) == ["blocked:protected", "blocked:protected", "planned"])
        let plain = responder.commands(for: assetAlert(id: "a3", asset: instance("i-3")))
        #expect(statuses(plain) == ["planned", "planned", "planned"])
    }

    @Test("environment scope blocks other environments; approval by environment makes production wait")
    func environmentScope() throws {
        let responder = try guarded("""
              - action: quarantine_instance
                mode: enforce
                environments: [staging, production]
                approval: {environments: [production]}
            """)
        #expect(statuses(responder.commands(for: assetAlert(id: "a1", asset: instance("i-1", environment: "staging")))) == ["planned"])
        let production = responder.commands(for: assetAlert(id: "a2", asset: instance("i-2", environment: "production")))
        #expect(statuses(production) == ["pending"])
        #expect(production[0]["approval_ttl_ms"] == .int(86_400_000))
        let dev = responder.commands(for: assetAlert(id: "a3", asset: instance("i-3", environment: "dev")))
        #expect(statuses(dev) == ["blocked:environment_scope"])
        #expect(dev[0]["blocked_reason"]?.stringValue?.contains("'dev'") == true)
    }

    @Test("approval: required makes every command pending, with its own TTL")
    func approvalRequired() throws {
        let responder = try guarded("  - action: disable_access_key\n    mode: enforce\n    approval: required\n    approval_ttl: 2h\n",
                                    match: "{rules: [aws.iam.access_key_leaked]}")
        var a = alert(id: "k1", rule: "aws.iam.access_key_leaked", severity: .high)
        a.set("actor", ["user": ["name": "deploy-bot", "credential_uid": "AKIAEXAMPLE1"]])
        let commands = responder.commands(for: a)
        #expect(statuses(commands) == ["pending"])
        #expect(commands[0]["target"] == "AKIAEXAMPLE1")
        #expect(commands[0]["target_details"]?["user"] == "deploy-bot")
        #expect(commands[0]["approval_ttl_ms"] == .int(7_200_000))
    }

    @Test("rate limit per action counts in alert time and frees up after the period")
    func rateLimitPerAction() throws {
        let responder = try guarded("  - action: quarantine_instance\n    mode: enforce\n    rate_limit: {max: 2, per: 1h}\n")
        var state = GuardState()
        let t0: Int64 = 1_714_564_800_000
        var seen: [String] = []
        for (index, offset) in [0, 60_000, 120_000, 3_700_000].enumerated() {
            let a = assetAlert(id: "a\(index)", time: t0 + Int64(offset), asset: instance("i-\(index)"))
            seen += statuses(responder.commands(for: a, state: &state))
        }
        #expect(seen == ["planned", "planned", "blocked:rate_limit", "planned"])
    }

    @Test("rate limit per target leaves other targets alone")
    func rateLimitPerTarget() throws {
        let responder = try guarded("  - action: snapshot_volumes\n    mode: enforce\n    target_rate_limit: {max: 1, per: 1d}\n")
        var state = GuardState()
        let first = responder.commands(for: assetAlert(id: "a1", asset: instance("i-1")), state: &state)
        let again = responder.commands(for: assetAlert(id: "a2", time: 1_714_568_400_000, asset: instance("i-1")), state: &state)
        let other = responder.commands(for: assetAlert(id: "a3", asset: instance("i-2")), state: &state)
        #expect(statuses(first + again + other) == ["planned", "blocked:target_rate_limit", "planned"])
    }

    @Test("blast radius: at most N distinct targets per period; the same target again does not count twice")
    func blastRadiusTargets() throws {
        let responder = try guarded("  - action: quarantine_instance\n    mode: enforce\n    blast_radius: {max_targets: 2, per: 1h}\n")
        var state = GuardState()
        var seen: [String] = []
        for (index, target) in ["i-1", "i-2", "i-1", "i-3"].enumerated() {
            seen += statuses(responder.commands(for: assetAlert(id: "a\(index)", asset: instance(target)), state: &state))
        }
        #expect(seen == ["planned", "planned", "planned", "blocked:blast_radius"])
    }

    @Test("blast radius: at most P% of an auto-scaling group")
    func blastRadiusPercent() throws {
        let responder = try guarded("  - action: quarantine_instance\n    mode: enforce\n    blast_radius: {max_percent: 25}\n",
                                    groupSize: { tag, value in tag == "aws:autoscaling:groupName" && value == "web" ? 8 : nil })
        var state = GuardState()
        var seen: [String] = []
        for index in 1...3 {
            let asset = instance("i-\(index)", tags: ["aws:autoscaling:groupName": "web"])
            seen += statuses(responder.commands(for: assetAlert(id: "a\(index)", asset: asset), state: &state))
        }
        // 2 of 8 is 25%; a third would be 37.5%.
        #expect(seen == ["planned", "planned", "blocked:blast_radius"])
        let elsewhere = responder.commands(for: assetAlert(id: "a9", asset: instance("i-9", tags: ["aws:autoscaling:groupName": "api"])), state: &state)
        #expect(statuses(elsewhere) == ["planned"])
    }

    @Test("the same alert twice yields one command and uses up no limit")
    func redeliveredAlert() throws {
        let responder = try guarded("  - action: quarantine_instance\n    mode: enforce\n    rate_limit: {max: 1, per: 1h}\n")
        var state = GuardState()
        let a = assetAlert(id: "a1", asset: instance("i-1"))
        let first = responder.commands(for: a, state: &state)
        #expect(statuses(first) == ["planned"])
        #expect(responder.commands(for: a, state: &state).isEmpty)
        #expect(first[0]["command_id"] == .string(StableID.hash(["a1", "quarantine_instance", "i-1"])))
    }

    @Test("an alert naming no instance gets a blocked no_target command, not silence")
    func noTarget() throws {
        let responder = try guarded("  - action: quarantine_instance\n    mode: enforce\n", match: "{min_severity: low}")
        let commands = responder.commands(for: alert(id: "a1"))
        #expect(statuses(commands) == ["blocked:no_target"])
        #expect(commands[0]["target"] == "")
    }

    @Test("match on environment, criticality, exposure, kind and tags")
    func assetCriteria() throws {
        let responder = try guarded("  - action: notify\n    params: {channel: c}\n", match: """

              environments: [production]
              criticality: [high, critical]
              internet_exposed: true
              asset_kinds: [instance]
              tags: {team: payments}
            """)
        let hit = instance("i-1", environment: "production", tags: ["team": "payments"])
        #expect(responder.commands(for: assetAlert(id: "a1", asset: hit)).count == 1)
        #expect(responder.commands(for: assetAlert(id: "a2", asset: nil)).isEmpty)
        #expect(responder.commands(for: assetAlert(id: "a3", asset: instance("i-1", environment: "staging", tags: ["team": "payments"]))).isEmpty)
        #expect(responder.commands(for: assetAlert(id: "a4", asset: instance("i-1", environment: "production", exposed: false, tags: ["team": "payments"]))).isEmpty)
        #expect(responder.commands(for: assetAlert(id: "a5", asset: instance("i-1", environment: "production", criticality: "low", tags: ["team": "payments"]))).isEmpty)
        #expect(responder.commands(for: assetAlert(id: "a6", asset: instance("i-1", environment: "production", tags: ["team": "web"]))).isEmpty)
    }
}
