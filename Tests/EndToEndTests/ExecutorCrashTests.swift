import AWS
import Foundation
import OCSF
import TestSupport
import Testing

/// The executor killed between an AWS call and the ledger update, then restarted, does not
/// perform the action twice: checked on the target (moto) and in the ledger.
@Suite("Executor crash safety", .enabled(if: MotoServer.isAvailable && FileManager.default.isExecutableFile(atPath: Binaries.directory + "/vigil")),
       .timeLimit(.minutes(10)))
struct ExecutorCrashTests {
    func respond(_ arguments: [String], environment: [String: String]) throws -> Binaries.Outcome {
        try Binaries.run("vigil", ["respond"] + arguments, environment: environment)
    }

    @Test("killed after the snapshot call, restarted: one snapshot per volume, the quarantine done once, the original groups kept")
    func crashBetweenCallAndLedger() async throws {
        let moto = try await MotoServer.start()
        defer { moto.stop() }
        let client = try moto.client()
        let web = try await client.createSecurityGroup(name: "web", description: "web")
        let instanceID = try await client.runInstances(imageID: "ami-12c6146b", securityGroupIDs: [web])[0].instanceID
        let volumes = try #require(try await client.describeInstances(ids: [instanceID]).first).volumeIDs
        #expect(!volumes.isEmpty)

        let work = NSTemporaryDirectory() + "vigil-crash-\(UInt64.random(in: 0...UInt64.max))"
        try FileManager.default.createDirectory(atPath: work + "/playbooks", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        try """
            id: contain
            match: {rules: [vuln.critical_on_exposed_asset]}
            actions:
              - action: snapshot_volumes
                mode: enforce
              - action: quarantine_instance
                mode: enforce
            """.write(toFile: work + "/playbooks/contain.yaml", atomically: true, encoding: .utf8)
        var alert = OCSFEvent.base(class: .detectionFinding, activityID: 1, activityName: "Create", time: 1_714_564_800_000,
                                   severity: .critical, uid: "crash-alert", product: "Vigil", vendor: "Vigil")
        alert.set("finding_info", ["uid": "crash-alert", "analytic": ["uid": "vuln.critical_on_exposed_asset"]])
        alert.set("vigil.asset", ["id": .string(instanceID), "kind": "instance", "internet_exposed": true, "environment": "staging"])
        try alert.jsonText.write(toFile: work + "/alerts.jsonl", atomically: true, encoding: .utf8)
        let arguments = ["--playbooks", work + "/playbooks", "--execute", "--ledger", work + "/ledger.sqlite", work + "/alerts.jsonl"]

        let crashed = try respond(arguments, environment: moto.environment.merging(["VIGIL_FAULT": "crash_after_call"]) { _, new in new })
        #expect(crashed.reason == .uncaughtSignal && crashed.status == SIGKILL, "the fault killed the executor")
        #expect(try await client.describeSnapshots(filters: ["tag:vigil:alert": ["crash-alert"]]).count == volumes.count,
                "the snapshot call was made before the crash")

        let rerun = try respond(arguments, environment: moto.environment)
        #expect(rerun.reason == .exit && rerun.status == 0, "output: \(rerun.output)")
        let results = try rerun.output.split(separator: "\n").map { try JSON.parse(String($0)) }
        #expect(results.map { $0["action"] } == ["snapshot_volumes", "quarantine_instance"])
        #expect(results.map { $0["status"] } == ["succeeded", "succeeded"])
        #expect(results.first?["detail"]?["already_taken"] == .int(Int64(volumes.count)), "the restart found the snapshots and took none")
        #expect(try await client.describeSnapshots(filters: ["tag:vigil:alert": ["crash-alert"]]).count == volumes.count)
        let isolated = try #require(try await client.describeInstances(ids: [instanceID]).first)
        #expect(isolated.securityGroupIDs.count == 1 && isolated.securityGroupIDs != [web])

        // A third run finds everything decided in the ledger and does nothing.
        let third = try respond(arguments, environment: moto.environment)
        #expect(third.status == 0 && third.output.isEmpty)
        #expect(try await client.describeSnapshots(filters: ["tag:vigil:alert": ["crash-alert"]]).count == volumes.count)
    }
}
