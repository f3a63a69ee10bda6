import Foundation
import Kafka
import OCSF
import Pipeline
import TestSupport
import Testing

/// Through a real broker: vigil-respond --execute plans a command that needs approval, records
/// it as pending, and carries it out only after `vigil approve`; a second approval is refused.
@Suite(.enabled(if: Binaries.available, "broker or built executables missing (run make test)"), .timeLimit(.minutes(8)))
struct ApprovalFlowTests {
    func vigil(_ arguments: [String], environment: [String: String]) throws -> Binaries.Outcome {
        try Binaries.run("vigil", arguments, environment: environment, mergeErrors: true)
    }

    @Test("pending until approved; the approved notify is delivered once and recorded with the approver")
    func approveThroughTheBroker() async throws {
        let broker = try await TestBroker.start()
        defer { broker.stop() }
        let receiver = try await WebhookReceiver()
        let topics = Topics(prefix: "appr.")
        let config = TestBroker.config(broker)
        try await KafkaAdmin(config: config, logger: TestBroker.logger).createTopics(topics.specs(partitions: 2, replicationFactor: 1))

        let work = NSTemporaryDirectory() + "vigil-approve-\(broker.port)"
        try FileManager.default.createDirectory(atPath: work + "/playbooks", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        try """
            id: page-on-call
            match: {min_severity: high}
            actions:
              - action: notify
                mode: enforce
                approval: required
                params: {channel: on-call}
            """.write(toFile: work + "/playbooks/page.yaml", atomically: true, encoding: .utf8)
        let environment = ["VIGIL_BROKERS": broker.bootstrapServers, "VIGIL_TOPIC_PREFIX": topics.prefix, "VIGIL_METRICS_PORT": "0",
                           "VIGIL_KAFKA_SESSION_TIMEOUT_MS": "6000", "VIGIL_KAFKA_HEARTBEAT_INTERVAL_MS": "500",
                           "VIGIL_WEBHOOK_ON_CALL": receiver.url]
        let respond = try Binaries.launch("vigil-respond", ["--playbooks", work + "/playbooks", "--execute", "--ledger", work + "/ledger.sqlite"],
                                          environment: environment, log: work + "/respond.log")
        defer { if respond.isRunning { kill(respond.processIdentifier, SIGKILL) } }

        var alert = OCSFEvent.base(class: .detectionFinding, activityID: 1, activityName: "Create", time: 1_714_564_800_000,
                                   severity: .high, uid: "alert-approve", product: "Vigil", vendor: "Vigil")
        alert.set("finding_info", ["uid": "alert-approve", "analytic": ["uid": "aws.root.usage"]])
        let producer = try KafkaProducer(config: config, logger: TestBroker.logger)
        try await producer.send([OutgoingRecord(topic: topics.alerts, key: Array("alert-approve".utf8), value: alert.serialized())])
        await producer.close()

        let watcher = try KafkaConsumer(config: config, groupID: nil, logger: TestBroker.logger)
        try watcher.assign((0..<2).map { TopicPartitionOffset(TopicPartition(topic: topics.commandResults, partition: $0), offset: KafkaConsumer.beginning) })
        var results: [JSON] = []
        func waitFor(_ status: String) async -> Bool {
            await TestBroker.eventually(timeout: .seconds(60)) {
                results += ((try? await watcher.poll(maxRecords: 100, timeout: .milliseconds(200)).records) ?? []).compactMap { try? JSON.parse($0.value) }
                return results.contains { $0["status"]?.stringValue == status }
            }
        }
        #expect(await waitFor("pending"), "the executor recorded the command as pending")
        #expect(receiver.requests.isEmpty, "nothing is sent before approval")
        let id = try #require(results.first?["command_id"]?.stringValue)

        let approved = try vigil(["approve", id, "--by", "alice", "--note", "on-call confirmed"], environment: environment)
        #expect(approved.status == 0, "\(approved.output)")
        #expect(approved.output.contains("approved \(id)"))
        #expect(await waitFor("succeeded"), "the approved command was carried out")
        let done = try #require(results.first { $0["status"] == "succeeded" })
        #expect(done["decided_by"] == "alice")
        #expect(receiver.requests.count == 1)

        let again = try vigil(["approve", id], environment: environment)
        #expect(again.status != 0)
        #expect(again.output.contains("not pending"))
        await watcher.close()
        await receiver.stop()

        respond.terminate()
        while respond.isRunning { usleep(50_000) }
        let ledger = try vigil(["ledger", id, "--ledger", work + "/ledger.sqlite"], environment: [:])
        #expect(ledger.output.contains("decided by: alice"), "\(ledger.output)")
        #expect(ledger.output.contains("approved") && ledger.output.contains("succeeded"))
    }
}
