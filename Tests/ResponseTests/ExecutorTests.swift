import AWS
import Foundation
import OCSF
import Response
import Testing
import TestSupport

func executorConfig(_ environment: [String: String] = [:]) -> ExecutorConfig {
    var config = ExecutorConfig()
    config.backoff = .milliseconds(10)
    config.environment = environment
    return config
}

/// The commands a playbook plans for an alert, as records the executor reads.
func plan(_ yaml: String, _ alerts: [JSON]) throws -> [JSON] {
    let responder = Responder(playbooks: try PlaybookSet(playbooks: PlaybookSet.parse(yaml: yaml, file: "test.yaml")))
    var state = GuardState()
    return alerts.flatMap { responder.commands(for: $0, state: &state) }
}

@Suite("Ledger")
struct LedgerTests {
    @Test("records once, keeps the first prior state, and keeps the history in order")
    func recordAndUpdate() throws {
        let ledger = try Ledger(path: ":memory:")
        let command = try ResponseCommand(json: try plan("id: p\nmatch: {min_severity: low}\nactions: [{action: notify, params: {channel: soc}}]\n",
                                                         [alert(id: "a1")])[0])
        let first = try ledger.record(command, status: "planned", now: 1)
        #expect(first.inserted)
        let again = try ledger.record(command, status: "pending", now: 2)
        #expect(!again.inserted)
        #expect(again.entry.status == "planned")
        try ledger.update(command.id, status: "started", now: 3, change: .init(addAttempt: true, priorState: ["groups": ["sg-1"]]))
        let updated = try ledger.update(command.id, status: "started", now: 4, change: .init(addAttempt: true, priorState: ["groups": ["sg-iso"]]))
        #expect(updated.priorState == ["groups": ["sg-1"]])
        #expect(updated.attempts == 2)
        try ledger.update(command.id, status: "succeeded", now: 5, note: "done", change: .init(detail: ["ok": true]))
        #expect(try ledger.history(command.id).map(\.status) == ["planned", "started", "started", "succeeded"])
        #expect(try ledger.list(status: "succeeded").map(\.commandID) == [command.id])
        #expect(throws: ResponseError.self) { try ledger.update("missing", status: "x", now: 6) }
    }

    @Test("a ledger file survives reopening")
    func reopen() throws {
        let path = NSTemporaryDirectory() + "vigil-ledger-\(UInt64.random(in: 0...UInt64.max)).sqlite"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let command = try ResponseCommand(json: try plan("id: p\nmatch: {min_severity: low}\nactions: [{action: notify, params: {channel: soc}}]\n",
                                                         [alert(id: "a1")])[0])
        do { try Ledger(path: path).record(command, status: "pending", now: 1) }
        #expect(try Ledger(path: path).entry(command.id)?.status == "pending")
    }
}

@Suite("Executor: webhooks", .timeLimit(.minutes(6)))
struct WebhookExecutorTests {
    static let playbook = """
        id: page
        match: {min_severity: low}
        actions:
          - action: notify
            mode: enforce
            params: {channel: security-team, attempts: "3"}
        """

    @Test("notify delivers the alert's facts with the command id as idempotency key")
    func delivers() async throws {
        let receiver = try await WebhookReceiver()
        let executor = Executor(ledger: try Ledger(path: ":memory:"), cloud: nil,
                                config: executorConfig(["VIGIL_WEBHOOK_SECURITY_TEAM": receiver.url]))
        let command = try plan(Self.playbook, [alert(id: "a1")])[0]
        let results = try await executor.handle(command)
        await receiver.stop()
        #expect(results.map { $0["status"] } == ["succeeded"])
        #expect(receiver.requests.count == 1)
        let request = try #require(receiver.requests.first)
        #expect(request.method == "POST")
        #expect(request.headers["idempotency-key"] == command["command_id"]?.stringValue)
        let body = try JSON.parse(request.body)
        #expect(body["alert_id"] == "a1")
        #expect(body["rule_id"] == "aws.cloudtrail.logging_disabled")
        #expect(try await executor.handle(command).isEmpty, "a repeat is a no-op")
        #expect(receiver.requests.count == 1)
    }

    @Test("notify retries on 500 and succeeds; a Slack body is {text}")
    func retries() async throws {
        let receiver = try await WebhookReceiver(statuses: [500, 503])
        let executor = Executor(ledger: try Ledger(path: ":memory:"), cloud: nil, config: executorConfig())
        let yaml = "id: page\nmatch: {min_severity: low}\nactions:\n  - action: notify\n    mode: enforce\n    params: {channel: c, format: slack, webhook: \"\(receiver.url)\"}\n"
        let results = try await executor.handle(try plan(yaml, [alert(id: "a1")])[0])
        await receiver.stop()
        #expect(results.first?["status"] == "succeeded")
        #expect(results.first?["attempts"] == 3)
        #expect(receiver.requests.count == 3)
        let body = try JSON.parse(receiver.requests[2].body)
        #expect(body.objectValue?.keys.sorted() == ["text"])
    }

    @Test("notify gives up after the configured attempts and records the failure")
    func givesUp() async throws {
        let receiver = try await WebhookReceiver(statuses: [500, 500, 500, 500])
        let ledger = try Ledger(path: ":memory:")
        let executor = Executor(ledger: ledger, cloud: nil, config: executorConfig(["VIGIL_WEBHOOK_SECURITY_TEAM": receiver.url]))
        let command = try plan(Self.playbook, [alert(id: "a1")])[0]
        let results = try await executor.handle(command)
        await receiver.stop()
        #expect(results.first?["status"] == "failed")
        #expect(results.first?["error"]?.stringValue?.contains("HTTP 500") == true)
        #expect(receiver.requests.count == 3)
        let entry = try #require(try ledger.entry(command["command_id"]!.stringValue!))
        #expect(entry.status == "failed")
        #expect(entry.attempts == 3)
        #expect(entry.error?.contains(receiver.url) == false, "webhook URLs stay out of the ledger")
    }

    @Test("a 4xx is final at once; a missing webhook is not_configured")
    func finalFailures() async throws {
        let receiver = try await WebhookReceiver(statuses: [403])
        let executor = Executor(ledger: try Ledger(path: ":memory:"), cloud: nil,
                                config: executorConfig(["VIGIL_WEBHOOK_SECURITY_TEAM": receiver.url]))
        let results = try await executor.handle(try plan(Self.playbook, [alert(id: "a1")])[0])
        await receiver.stop()
        #expect(results.first?["attempts"] == 1)
        #expect(results.first?["status"] == "failed")
        let unconfigured = Executor(ledger: try Ledger(path: ":memory:"), cloud: nil, config: executorConfig())
        let missing = try await unconfigured.handle(try plan(Self.playbook, [alert(id: "a2")])[0])
        #expect(missing.first?["error"]?.stringValue?.contains("VIGIL_WEBHOOK_SECURITY_TEAM") == true)
    }

    @Test("a dry run is recorded, not sent")
    func dryRun() async throws {
        let receiver = try await WebhookReceiver()
        let ledger = try Ledger(path: ":memory:")
        let executor = Executor(ledger: ledger, cloud: nil, config: executorConfig(["VIGIL_WEBHOOK_SOC": receiver.url]))
        let results = try await executor.handle(try plan("id: p\nmatch: {min_severity: low}\nactions: [{action: notify, params: {channel: soc}}]\n",
                                                         [alert(id: "a1")])[0])
        await receiver.stop()
        #expect(results.first?["status"] == "dry_run")
        #expect(results.first?["detail"]?["would"] == "notify channel soc")
        #expect(receiver.requests.isEmpty)
    }
}

@Suite("Executor: approvals")
struct ApprovalTests {
    static let playbook = """
        id: contain
        match: {rules: [vuln.critical_on_exposed_asset]}
        actions:
          - action: quarantine_instance
            approval: required
            approval_ttl: 1h
        """

    @Test("pending waits; approved runs with who approved; rejected never runs; a repeat decision changes nothing")
    func decisions() async throws {
        let ledger = try Ledger(path: ":memory:")
        let executor = Executor(ledger: ledger, cloud: nil, config: executorConfig())
        let commands = try plan(Self.playbook, [assetAlert(id: "a1", asset: instance("i-1")), assetAlert(id: "a2", asset: instance("i-2"))])
        #expect(commands.map { $0["status"] } == ["pending", "pending"])
        for command in commands { #expect(try await executor.handle(command).first?["status"] == "pending") }

        let approved = ResponseCommand.decision(on: commands[0], approve: true, by: "alice", at: 1)
        let done = try await executor.handle(approved)
        #expect(done.first?["status"] == "dry_run")
        #expect(done.first?["decided_by"] == "alice")
        let rejected = ResponseCommand.decision(on: commands[1], approve: false, by: "bob", at: 1)
        #expect(try await executor.handle(rejected).first?["status"] == "rejected")
        #expect(try await executor.handle(approved).isEmpty)
        #expect(try await executor.handle(ResponseCommand.decision(on: commands[1], approve: true, by: "eve", at: 2)).isEmpty)
        #expect(try ledger.entry(commands[1]["command_id"]!.stringValue!)?.status == "rejected")
        #expect(try ledger.history(commands[0]["command_id"]!.stringValue!).map(\.status) == ["pending", "approved", "dry_run"])
    }

    @Test("a pending command expires after its approval window")
    func expiry() async throws {
        let ledger = try Ledger(path: ":memory:")
        let executor = Executor(ledger: ledger, cloud: nil, config: executorConfig())
        var command = try plan(Self.playbook, [assetAlert(id: "a1", asset: instance("i-1"))])[0]
        command["approval_ttl_ms"] = 50
        _ = try await executor.handle(command)
        try await Task.sleep(for: .milliseconds(120))
        #expect(try await executor.sweep().map { $0["status"] } == ["expired"])
        #expect(try await executor.handle(ResponseCommand.decision(on: command, approve: true, by: "alice", at: 1)).isEmpty)
        #expect(try ledger.entry(command["command_id"]!.stringValue!)?.status == "expired")
    }

    @Test("guard-blocked commands are recorded as blocked with the guard's reason")
    func blocked() async throws {
        let ledger = try Ledger(path: ":memory:")
        let executor = Executor(ledger: ledger, cloud: nil, config: executorConfig())
        let command = try plan(Self.playbook, [assetAlert(id: "a1", asset: instance("i-1", protected: true))])[0]
        let results = try await executor.handle(command)
        #expect(results.first?["status"] == "blocked")
        #expect(try ledger.entry(command["command_id"]!.stringValue!)?.reason.contains("protected") == true)
    }
}

/// A moto server with a running instance (two security groups, its root volume) and an IAM
/// user with an access key.
struct MotoEstate {
    let moto: MotoServer
    let client: AWSClient
    let instanceID: String
    let originalGroups: [String]
    let volumes: [String]

    static func start(tags: [String: String] = [:]) async throws -> MotoEstate {
        let moto = try await MotoServer.start()
        let client = try moto.client()
        let web = try await client.createSecurityGroup(name: "web", description: "web")
        let ssh = try await client.createSecurityGroup(name: "ssh", description: "ssh")
        let launched = try await client.runInstances(imageID: "ami-12c6146b", securityGroupIDs: [web, ssh], tags: tags)
        let instance = try #require(try await client.describeInstances(ids: [launched[0].instanceID]).first)
        return MotoEstate(moto: moto, client: client, instanceID: instance.instanceID, originalGroups: instance.securityGroupIDs,
                          volumes: instance.volumeIDs)
    }

    func executor(_ ledger: Ledger) -> Executor {
        Executor(ledger: ledger, cloud: CloudActions(client: client), config: executorConfig())
    }
}

@Suite("Executor against moto", .enabled(if: MotoServer.isAvailable), .timeLimit(.minutes(10)))
struct MotoExecutorTests {
    static let contain = """
        id: contain-exposed-critical
        match: {rules: [vuln.critical_on_exposed_asset], internet_exposed: true}
        actions:
          - action: quarantine_instance
            mode: enforce
          - action: snapshot_volumes
            mode: enforce
        """

    @Test("a critical vulnerability on an exposed instance quarantines it and snapshots its volumes; the same alert again changes nothing; revert restores the groups")
    func quarantineSnapshotRevert() async throws {
        let estate = try await MotoEstate.start()
        defer { estate.moto.stop() }
        #expect(estate.originalGroups.count == 2)
        #expect(!estate.volumes.isEmpty)
        let ledger = try Ledger(path: ":memory:")
        let executor = estate.executor(ledger)
        let a = assetAlert(id: "alert-1", asset: instance(estate.instanceID))
        let commands = try plan(Self.contain, [a])
        var results: [JSON] = []
        for command in commands { results += try await executor.handle(command) }
        #expect(results.map { $0["status"] } == ["succeeded", "succeeded"])

        let after = try #require(try await estate.client.describeInstances(ids: [estate.instanceID]).first)
        let isolation = try #require(try await estate.client.describeSecurityGroups(filters: ["group-name": ["vigil-isolation"]]).first)
        #expect(after.securityGroupIDs == [isolation.groupID])
        #expect(isolation.egressPermissionCount == 0 && isolation.ingressPermissionCount == 0)
        let snapshots = try await estate.client.describeSnapshots(filters: ["tag:vigil:alert": ["alert-1"]])
        #expect(Set(snapshots.compactMap(\.volumeID)) == Set(estate.volumes))
        #expect(snapshots.allSatisfy { $0.tags["vigil:case"] == "alert-1" })

        // The same alert again: same command ids, nothing performed.
        for command in try plan(Self.contain, [a]) { #expect(try await executor.handle(command).isEmpty) }
        #expect(try await estate.client.describeSnapshots(filters: ["tag:vigil:alert": ["alert-1"]]).count == snapshots.count)

        let quarantineID = commands[0]["command_id"]!.stringValue!
        #expect(try ledger.entry(quarantineID)?.priorState?["security_groups"] == .array(estate.originalGroups.map { .string($0) }))
        let reverted = try await executor.revert(quarantineID, by: "alice")
        #expect(reverted.first?["status"] == "succeeded")
        let restored = try #require(try await estate.client.describeInstances(ids: [estate.instanceID]).first)
        #expect(restored.securityGroupIDs == estate.originalGroups)
        #expect(try ledger.entry(quarantineID)?.status == "reverted")
        await #expect(throws: ResponseError.self) { _ = try await executor.revert(commands[1]["command_id"]!.stringValue!, by: "alice") }
    }

    @Test("an instance tagged vigil:protected is untouched even when the inventory does not know it")
    func protectedInstance() async throws {
        let estate = try await MotoEstate.start(tags: ["vigil:protected": "true"])
        defer { estate.moto.stop() }
        let executor = estate.executor(try Ledger(path: ":memory:"))
        var results: [JSON] = []
        for command in try plan(Self.contain, [assetAlert(id: "alert-2", asset: instance(estate.instanceID))]) {
            results += try await executor.handle(command)
        }
        #expect(results.map { $0["status"] } == ["blocked", "blocked"])
        let after = try #require(try await estate.client.describeInstances(ids: [estate.instanceID]).first)
        #expect(after.securityGroupIDs == estate.originalGroups)
        #expect(try await estate.client.describeSnapshots(filters: ["tag:vigil:alert": ["alert-2"]]).isEmpty)
    }

    @Test("a dry-run playbook only records")
    func dryRun() async throws {
        let estate = try await MotoEstate.start()
        defer { estate.moto.stop() }
        let ledger = try Ledger(path: ":memory:")
        let executor = estate.executor(ledger)
        let yaml = Self.contain.replacingOccurrences(of: "mode: enforce", with: "mode: dry_run")
        var results: [JSON] = []
        for command in try plan(yaml, [assetAlert(id: "alert-3", asset: instance(estate.instanceID))]) {
            results += try await executor.handle(command)
        }
        #expect(results.map { $0["status"] } == ["dry_run", "dry_run"])
        let after = try #require(try await estate.client.describeInstances(ids: [estate.instanceID]).first)
        #expect(after.securityGroupIDs == estate.originalGroups)
        #expect(try await estate.client.describeSnapshots(filters: ["tag:vigil:alert": ["alert-3"]]).isEmpty)
        #expect(try ledger.list(status: "dry_run").count == 2)
    }

    @Test("an access-key alert disables the key; revert makes it active again")
    func accessKey() async throws {
        let estate = try await MotoEstate.start()
        defer { estate.moto.stop() }
        try await estate.client.createUser(name: "deploy-bot")
        let key = try await estate.client.createAccessKey(userName: "deploy-bot")
        let ledger = try Ledger(path: ":memory:")
        let executor = estate.executor(ledger)
        let yaml = "id: leaked-key\nmatch: {rules: [aws.iam.key_leaked]}\nactions:\n  - action: disable_access_key\n    mode: enforce\n"
        var a = alert(id: "alert-4", rule: "aws.iam.key_leaked", severity: .high)
        // No user name in the alert: the executor asks IAM who owns the key.
        a.set("actor", ["user": ["credential_uid": .string(key.accessKeyID)]])
        let command = try plan(yaml, [a])[0]
        #expect(try await executor.handle(command).first?["status"] == "succeeded")
        #expect(try await estate.client.listAccessKeys(userName: "deploy-bot").first?.status == "Inactive")
        let reverted = try await executor.revert(command["command_id"]!.stringValue!, by: "alice")
        #expect(reverted.first?["status"] == "succeeded")
        #expect(try await estate.client.listAccessKeys(userName: "deploy-bot").first?.status == "Active")
    }

    @Test("revert_after undoes a key disable once its time has come")
    func automaticRevert() async throws {
        let estate = try await MotoEstate.start()
        defer { estate.moto.stop() }
        try await estate.client.createUser(name: "ci")
        let key = try await estate.client.createAccessKey(userName: "ci")
        let ledger = try Ledger(path: ":memory:")
        let executor = estate.executor(ledger)
        let yaml = "id: k\nmatch: {rules: [aws.iam.key_leaked]}\nactions:\n  - action: disable_access_key\n    mode: enforce\n    revert_after: 300ms\n"
        var a = alert(id: "alert-6", rule: "aws.iam.key_leaked", severity: .high)
        a.set("actor", ["user": ["name": "ci", "credential_uid": .string(key.accessKeyID)]])
        let command = try plan(yaml, [a])[0]
        #expect(try await executor.handle(command).first?["status"] == "succeeded")
        #expect(try await executor.sweep().isEmpty, "not due yet")
        #expect(try await estate.client.listAccessKeys(userName: "ci").first?.status == "Inactive")
        try await Task.sleep(for: .milliseconds(400))
        let reverts = try await executor.sweep()
        #expect(reverts.map { $0["action"] } == ["revert"])
        #expect(reverts.first?["status"] == "succeeded")
        #expect(reverts.first?["decided_by"] == "revert_after")
        #expect(try await estate.client.listAccessKeys(userName: "ci").first?.status == "Active")
        #expect(try ledger.entry(command["command_id"]!.stringValue!)?.status == "reverted")
        #expect(try await executor.sweep().isEmpty, "a revert runs once")
    }

    @Test("a missing instance fails with the AWS error code, not retried")
    func missingInstance() async throws {
        let estate = try await MotoEstate.start()
        defer { estate.moto.stop() }
        let executor = estate.executor(try Ledger(path: ":memory:"))
        let results = try await executor.handle(try plan(Self.contain, [assetAlert(id: "alert-5", asset: instance("i-0000000000000dead"))])[0])
        #expect(results.first?["status"] == "failed")
        #expect(results.first?["attempts"] == 1)
        #expect(results.first?["error"]?.stringValue?.contains("InvalidInstanceID.NotFound") == true)
    }
}
