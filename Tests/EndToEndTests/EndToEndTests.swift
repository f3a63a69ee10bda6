import Foundation
import Kafka
import OCSF
import Pipeline
import TestSupport
import Testing

/// The built executables (`vigil`, `vigil-ingest`, ...) live next to the test bundle.
enum Binaries {
    static let directory: String = {
        var candidates: [String] = []
        if let url = Bundle.main.executableURL { candidates.append(url.deletingLastPathComponent().path) }
        candidates.append(URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path)
        candidates.append(repository + "/.build/debug")
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0 + "/vigil-ingest") } ?? candidates[0]
    }()

    static var available: Bool {
        TestBroker.isAvailable && FileManager.default.isExecutableFile(atPath: directory + "/vigil")
    }

    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    /// What `run` returns: how the process ended and what it printed.
    struct Outcome {
        var status: Int32
        var reason: Process.TerminationReason
        var output: String
    }

    /// Runs `executable` (a name in `directory`, or an absolute path) to completion from the
    /// repository root; stdout (and stderr when `mergeErrors`) is captured. Polls `isRunning`
    /// rather than `waitUntilExit()`, which can spin forever on Linux.
    static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                    mergeErrors: Bool = false) throws -> Outcome {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable.hasPrefix("/") ? executable : directory + "/" + executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        process.currentDirectoryURL = URL(fileURLWithPath: repository)
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = mergeErrors ? pipe : FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        while process.isRunning { usleep(20_000) }
        return Outcome(status: process.terminationStatus, reason: process.terminationReason, output: output)
    }

    static func launch(_ name: String, _ arguments: [String], environment: [String: String], log: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: directory + "/" + name)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        process.currentDirectoryURL = URL(fileURLWithPath: repository)
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let handle = FileHandle(forWritingAtPath: log)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        return process
    }
}

/// A CloudTrail event with a known eventID.
func cloudTrailEvent(_ index: Int) -> [UInt8] {
    let second = index % 60
    let minute = (index / 60) % 60
    let text = """
        {"eventVersion":"1.08","userIdentity":{"type":"IAMUser","principalId":"AIDAEXAMPLE\(index % 17)","arn":"arn:aws:iam::111122223333:user/u\(index % 17)","accountId":"111122223333","userName":"u\(index % 17)"},"eventTime":"2026-11-20T10:\(minute < 10 ? "0" : "")\(minute):\(second < 10 ? "0" : "")\(second)Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"us-east-1","sourceIPAddress":"192.0.2.\(index % 200)","userAgent":"aws-cli/2.15.30","requestParameters":{"bucketName":"b","key":"k\(index)"},"responseElements":null,"requestID":"req-\(index)","eventID":"evt-\(index)","readOnly":true,"eventType":"AwsApiCall","managementEvent":false,"recipientAccountId":"111122223333"}
        """
    return Array(text.utf8)
}

@Suite(.enabled(if: Binaries.available, "broker or built executables missing (run make test)"), .serialized)
struct EndToEndTests {
    @Test func ingestKilledMidStreamAndRestartedLosesNothing() async throws {
        let broker = try await TestBroker.start()
        let topics = Topics(prefix: "e2e.")
        let config = TestBroker.config(broker)
        let admin = try KafkaAdmin(config: config, logger: TestBroker.logger)
        try await admin.createTopics(topics.specs(partitions: 4, replicationFactor: 1))
        let total = 20_000
        let producer = try KafkaProducer(config: config, logger: TestBroker.logger)
        try await producer.send((0..<total).map { OutgoingRecord(topic: topics.raw, key: Array("k\($0)".utf8), value: cloudTrailEvent($0),
                                                                 headers: [KafkaHeader(VigilHeader.source, "cloudtrail")]) })
        await producer.close()

        let environment = ["VIGIL_BROKERS": broker.bootstrapServers, "VIGIL_TOPIC_PREFIX": topics.prefix, "VIGIL_METRICS_PORT": "0",
                           "VIGIL_KAFKA_SESSION_TIMEOUT_MS": "6000", "VIGIL_KAFKA_HEARTBEAT_INTERVAL_MS": "500"]
        let log = NSTemporaryDirectory() + "vigil-e2e-ingest-\(broker.port).log"
        let first = try Binaries.launch("vigil-ingest", [], environment: environment, log: log)

        // Watch the output; kill -9 once part of it is there.
        let watcher = try KafkaConsumer(config: config, groupID: nil, logger: TestBroker.logger)
        try watcher.assign((0..<4).map { TopicPartitionOffset(TopicPartition(topic: topics.events, partition: $0), offset: KafkaConsumer.beginning) })
        var events: [ConsumedRecord] = []
        _ = await TestBroker.eventually(timeout: .seconds(60)) {
            events += (try? await watcher.poll(maxRecords: 5000, timeout: .milliseconds(100)).records) ?? []
            return events.count >= 2000
        }
        kill(first.processIdentifier, SIGKILL)
        while first.isRunning { usleep(20_000) }
        #expect(events.count < total, "the stage was killed mid-stream")

        let second = try Binaries.launch("vigil-ingest", [], environment: environment, log: log)
        defer { if second.isRunning { second.terminate(); while second.isRunning { usleep(20_000) } } }
        var uids = Set(events.compactMap { try? JSON.parse($0.value) }.compactMap(OCSFEvent.uid))
        let complete = await TestBroker.eventually(timeout: .seconds(120)) {
            let batch = (try? await watcher.poll(maxRecords: 5000, timeout: .milliseconds(200)).records) ?? []
            events += batch
            for record in batch { if let uid = (try? JSON.parse(record.value)).flatMap(OCSFEvent.uid) { uids.insert(uid) } }
            return uids.count >= total
        }
        #expect(complete, "every input's event arrived after the restart")
        #expect(uids == Set((0..<total).map { "evt-\($0)" }))
        // Duplicates are allowed only as the same event again (same id, same content but processing time).
        var byUID: [String: JSON] = [:]
        for record in events {
            var event = try JSON.parse(record.value)
            event.set("metadata.processed_time", nil)
            let uid = try #require(OCSFEvent.uid(event))
            if let previous = byUID[uid] { #expect(previous == event) } else { byUID[uid] = event }
        }
        // The killed copy may have emitted events whose offsets it never committed; the new copy
        // re-reads those. A marker at the end of each partition shows when it has caught up.
        let markers = try KafkaProducer(config: config, logger: TestBroker.logger)
        try await markers.send((0..<4).map { partition in
            OutgoingRecord(topic: topics.raw, partition: Int32(partition), value: cloudTrailEvent(total + partition),
                           headers: [KafkaHeader(VigilHeader.source, "cloudtrail")])
        })
        await markers.close()
        let markerIDs = Set((0..<4).map { "evt-\(total + $0)" })
        var seenMarkers = Set<String>()
        let caughtUp = await TestBroker.eventually(timeout: .seconds(60)) {
            let batch = (try? await watcher.poll(maxRecords: 5000, timeout: .milliseconds(200)).records) ?? []
            for record in batch {
                if let uid = (try? JSON.parse(record.value)).flatMap(OCSFEvent.uid), markerIDs.contains(uid) { seenMarkers.insert(uid) }
            }
            return seenMarkers == markerIDs
        }
        #expect(caughtUp, "the restarted copy processed every partition to its end")
        await watcher.close()

        // SIGTERM: the stage stops cleanly and leaves nothing processed uncommitted.
        second.terminate()
        while second.isRunning { usleep(20_000) }
        #expect(second.terminationStatus == 0)
        let probe = try KafkaConsumer(config: config, groupID: "vigil-ingest", logger: TestBroker.logger)
        let committed = try await probe.committed((0..<4).map { TopicPartition(topic: topics.raw, partition: $0) })
        #expect(committed.values.reduce(0, +) == Int64(total + 4), "committed offsets cover every raw record")
        await probe.close()
    }

    @Test func demoRunsEndToEndAndAccountsForEveryRecord() async throws {
        let log = NSTemporaryDirectory() + "vigil-e2e-demo-\(ProcessInfo.processInfo.processIdentifier).log"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Binaries.directory + "/vigil")
        process.arguments = ["demo", "--once", "--work-dir", NSTemporaryDirectory() + "vigil-e2e-demo-\(ProcessInfo.processInfo.processIdentifier)"]
        process.currentDirectoryURL = URL(fileURLWithPath: Binaries.repository)
        let pipe = Pipe()
        process.standardOutput = pipe
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        process.standardError = FileHandle(forWritingAtPath: log)
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        while process.isRunning { usleep(20_000) }
        #expect(process.terminationStatus == 0, "demo output:\n\(output)")
        let last = try #require(output.split(separator: "\n").last.map(String.init))
        let summary = try JSON.parse(last)
        #expect(summary["raw"] == 5)
        #expect(summary["events"] == 13)
        #expect(summary["enriched"] == 13)
        // Logging disabled, the console brute force, and the brute force followed by a success.
        #expect(summary["alerts"] == 3)
        // Three dry-run notifications and, for the logging-disabled alert on ci-runner-1, a
        // snapshot and a quarantine waiting for approval; the executor records all five.
        #expect(summary["commands"] == 5)
        #expect(summary["results"] == 5)
        #expect(summary["dlq"] == 1)
        #expect(output.contains("RESULT   notify -> security-team: dry_run"))
        #expect(output.contains("RESULT   quarantine_instance -> i-0a1b2c3d4e5f60003: pending"))
        #expect(output.contains("aws.cloudtrail.logging_disabled"))
        #expect(output.contains("aws.console.bruteforce"))
        #expect(output.contains("aws.console.bruteforce_then_success"))
        // Alerts carry what the inventory knows: owner, environment, exposure.
        #expect(output.contains("asset ci-runner-1 (owner team-devex, staging, internet-exposed)"))
    }
}
