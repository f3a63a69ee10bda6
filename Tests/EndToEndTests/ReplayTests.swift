import Foundation
import Inventory
import Kafka
import OCSF
import Pipeline
@testable import Stages
import TestSupport
import Testing

/// `vigil replay` and `vigil dlq replay` through the built binary against a real broker.
@Suite(.enabled(if: Binaries.available, "broker or built executables missing (run make test)"), .timeLimit(.minutes(10)))
struct ReplayTests {
    static let t1 = Timestamp.parseISO8601("2026-11-20T10:00:00Z")!
    static let t2 = Timestamp.parseISO8601("2026-11-20T11:00:00Z")!
    static let minute: Int64 = 60_000

    /// A CloudTrail delivery of one event, shipped a minute after it happened.
    struct Raw {
        var key: String
        var time: Int64
        var json: String
    }

    static func consoleFailure(user: String, at time: Int64, id: String) -> Raw {
        Raw(key: "console/\(id)", time: time, json: """
            {"Records":[{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","principalId":"AIDA\(user.uppercased())","arn":"arn:aws:iam::111122223333:user/\(user)","accountId":"111122223333","userName":"\(user)"},"eventTime":"\(Timestamp.formatISO8601(time))","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","awsRegion":"us-east-1","sourceIPAddress":"203.0.113.50","userAgent":"Mozilla/5.0","errorMessage":"Failed authentication","requestParameters":null,"responseElements":{"ConsoleLogin":"Failure"},"additionalEventData":{"MFAUsed":"No"},"eventID":"\(id)","readOnly":false,"eventType":"AwsConsoleSignIn","managementEvent":true,"recipientAccountId":"111122223333"}]}
            """)
    }

    static func stopLogging(role: String, instance: String, at time: Int64, id: String) -> Raw {
        Raw(key: "trail/\(id)", time: time, json: """
            {"Records":[{"eventVersion":"1.08","userIdentity":{"type":"AssumedRole","principalId":"AROAEXAMPLE:\(instance)","arn":"arn:aws:sts::111122223333:assumed-role/\(role)/\(instance)","accountId":"111122223333","accessKeyId":"ASIAEXAMPLE\(id.count)","sessionContext":{"sessionIssuer":{"type":"Role","principalId":"AROAEXAMPLE","arn":"arn:aws:iam::111122223333:role/\(role)","accountId":"111122223333","userName":"\(role)"}}},"eventTime":"\(Timestamp.formatISO8601(time))","eventSource":"cloudtrail.amazonaws.com","eventName":"StopLogging","awsRegion":"us-east-1","sourceIPAddress":"198.51.100.20","userAgent":"aws-cli/2.15.30","requestParameters":{"name":"management-trail"},"responseElements":null,"requestID":"req-\(id)","eventID":"\(id)","readOnly":false,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"111122223333"}]}
            """)
    }

    /// Inside [t1, t2]: a trail stopped by the CI runner and five failed logins for alice.
    /// Before and after: the same for other principals, which a replay of the range must not see.
    static var dataset: [(Raw, partition: Int32)] {
        var rows: [(Raw, Int32)] = []
        rows.append((stopLogging(role: "ci-runner-role", instance: "i-0a1b2c3d4e5f60003", at: t1 + 20 * minute, id: "in-stop"), 0))
        for index in 0..<5 {
            rows.append((consoleFailure(user: "alice", at: t1 + 30 * minute + Int64(index) * 20_000, id: "in-alice-\(index)"), Int32(index % 4)))
        }
        // Partition 0 gets records older than t1 after in-range ones: a seek by time lands before
        // them on any broker, so only the time filter keeps them out.
        rows.append((stopLogging(role: "early-role", instance: "i-0000000000000dead", at: t1 - 10 * minute, id: "early-stop"), 0))
        for index in 0..<5 {
            rows.append((consoleFailure(user: "bob", at: t1 - 8 * minute + Int64(index) * 10_000, id: "early-bob-\(index)"), Int32(index % 4)))
        }
        rows.append((stopLogging(role: "late-role", instance: "i-0000000000000beef", at: t2 + 5 * minute, id: "late-stop"), 1))
        for index in 0..<5 {
            rows.append((consoleFailure(user: "carol", at: t2 + 10 * minute + Int64(index) * 10_000, id: "late-carol-\(index)"), Int32(index % 4)))
        }
        return rows
    }

    struct Setup {
        var broker: EmbeddedBroker
        var config: KafkaConfig
        var topics: Topics
        var work: String
        var inventory: String
        var environment: [String: String]
    }

    static func setUp(_ name: String) async throws -> Setup {
        let broker = try await TestBroker.start()
        let topics = Topics()
        let config = TestBroker.config(broker)
        try await KafkaAdmin(config: config, logger: TestBroker.logger).createTopics(topics.specs(partitions: 4, replicationFactor: 1))
        // One send: records of different times share batches, as they do in production.
        let producer = try KafkaProducer(config: config, logger: TestBroker.logger)
        try await producer.send(dataset.map { raw, partition in
            OutgoingRecord(topic: topics.raw, partition: partition, key: Array(raw.key.utf8), value: Array(raw.json.utf8),
                           headers: [KafkaHeader(VigilHeader.source, "cloudtrail")], timestamp: raw.time + minute)
        })
        await producer.close()
        let work = NSTemporaryDirectory() + "vigil-replay-\(name)-\(broker.port)"
        try? FileManager.default.removeItem(atPath: work)
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let inventory = work + "/inventory.sqlite"
        let store = try InventoryStore(path: inventory)
        _ = try store.importCSV(path: Binaries.repository + "/samples/inventory.csv", at: 0)
        return Setup(broker: broker, config: config, topics: topics, work: work, inventory: inventory,
                     environment: ["VIGIL_KAFKA_SESSION_TIMEOUT_MS": "6000"])
    }

    static func replay(_ setup: Setup, _ extra: [String]) throws -> (summary: JSON, output: String) {
        let outcome = try Binaries.run("vigil", ["replay", "--brokers", setup.broker.bootstrapServers,
                                                 "--from", "2026-11-20T10:00:00Z", "--to", "2026-11-20T11:00:00Z",
                                                 "--topic", "vigil.raw", "--inventory", setup.inventory, "--quiet"] + extra,
                                       environment: setup.environment)
        #expect(outcome.status == 0, "vigil replay failed:\n\(outcome.output)")
        let last = try #require(outcome.output.split(separator: "\n").last.map(String.init))
        return (try JSON.parse(last), outcome.output)
    }

    static func lines(_ path: String) throws -> [JSON] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return try text.split(separator: "\n").map { try JSON.parse(String($0)) }
    }

    @Test("a raw range replays to the built-in rules' alerts, dry-run commands, and excludes records outside the range")
    func rawRangeGivesTheExpectedAlerts() async throws {
        let setup = try await Self.setUp("alerts")
        defer { setup.broker.stop(); try? FileManager.default.removeItem(atPath: setup.work) }
        // The seek by time cannot exclude partition 0's older records (they follow in-range ones).
        let probe = try KafkaConsumer(config: setup.config, groupID: nil, logger: TestBroker.logger)
        let starts = try await probe.offsetsForTimes([TopicPartition(topic: setup.topics.raw, partition: 0): Self.t1])
        await probe.close()
        #expect(starts[TopicPartition(topic: setup.topics.raw, partition: 0)] == 0)

        let file = setup.work + "/alerts.jsonl"
        let (summary, _) = try Self.replay(setup, ["--out", file])
        #expect(summary["in_range"] == 6)
        #expect(summary["skipped_before"] == 6)
        #expect(summary["skipped_after"] == 6)
        #expect(summary["events"] == 6)
        #expect(summary["alerts"] == 2)

        let lines = try Self.lines(file)
        let alerts = lines.filter { $0["kind"] == "alert" }.compactMap { $0["alert"] }
        let commands = lines.filter { $0["kind"] == "command" }.compactMap { $0["command"] }
        #expect(alerts.map { $0.value(at: "vigil.rule.id")?.stringValue ?? "" } == ["aws.cloudtrail.logging_disabled", "aws.console.bruteforce"])
        #expect(alerts[0].value(at: "vigil.asset.name") == "ci-runner-1", "enriched from the inventory")
        #expect(alerts[1].value(at: "vigil.group_key") == "alice")
        #expect(alerts[1].value(at: "vigil.count") == 5)
        let everything = try String(contentsOfFile: file, encoding: .utf8)
        for outside in ["bob", "carol", "early-role", "late-role"] { #expect(!everything.contains(outside)) }
        // The containment playbook enforces a quarantine of ci-runner-1: in a replay it is a dry run.
        #expect(commands.contains { $0["action"] == "quarantine_instance" && $0["target"] == "i-0a1b2c3d4e5f60003" })
        #expect(!commands.isEmpty && commands.allSatisfy { $0["mode"] == "dry_run" })
        #expect(summary["commands"] == .int(Int64(commands.count)))

        // Nothing reached production's topics or groups.
        let alertsTopic = try await TestBroker.readAll(setup.broker, topic: setup.topics.alerts, partitions: 4, atLeast: 1, timeout: .seconds(2))
        #expect(alertsTopic.isEmpty)
    }

    @Test("two runs over the same input and rules give byte-identical files; --namespace writes the namespaced topics")
    func runsAreByteIdentical() async throws {
        let setup = try await Self.setUp("identical")
        defer { setup.broker.stop(); try? FileManager.default.removeItem(atPath: setup.work) }
        let first = setup.work + "/first.jsonl"
        let second = setup.work + "/second.jsonl"
        _ = try Self.replay(setup, ["--out", first])
        _ = try Self.replay(setup, ["--out", second])
        let a = try #require(FileManager.default.contents(atPath: first))
        let b = try #require(FileManager.default.contents(atPath: second))
        #expect(!a.isEmpty)
        #expect(a == b)

        let (summary, _) = try Self.replay(setup, ["--namespace", "case-42"])
        #expect(summary["namespace"] == "case-42")
        let alerts = try await TestBroker.readAll(setup.broker, topic: "case-42.vigil.alerts", partitions: 4, atLeast: 2)
        #expect(Set(alerts.compactMap { try? JSON.parse($0.value) }.compactMap { $0.value(at: "vigil.rule.id")?.stringValue })
                == ["aws.cloudtrail.logging_disabled", "aws.console.bruteforce"])
        let events = try await TestBroker.readAll(setup.broker, topic: "case-42.vigil.events", partitions: 4, atLeast: 6)
        #expect(events.count == 6)
        let commands = try await TestBroker.readAll(setup.broker, topic: "case-42.vigil.commands", partitions: 4, atLeast: 1)
        #expect(!commands.isEmpty)
        #expect(commands.allSatisfy { (try? JSON.parse($0.value))?["mode"] == "dry_run" })
    }

    @Test("--diff reports a new alert when a rule is added and a missing one when a rule is removed")
    func diffShowsAddedAndRemovedRules() async throws {
        let setup = try await Self.setUp("diff")
        defer { setup.broker.stop(); try? FileManager.default.removeItem(atPath: setup.work) }
        // Production's alerts for the range: the built-in rules, written to base.vigil.alerts.
        _ = try Self.replay(setup, ["--namespace", "base"])

        let fileManager = FileManager.default
        let added = setup.work + "/rules-added"
        try fileManager.copyItem(atPath: Binaries.repository + "/rules", toPath: added)
        try """
            id: test.trail.stopped_by_role
            version: 1
            title: A role stopped a trail
            description: Added for the replay diff test.
            severity: low
            match:
              all:
                - field: api.operation
                  equals: StopLogging
            """.write(toFile: added + "/aws/test_added.yaml", atomically: true, encoding: .utf8)
        let (withAdded, report) = try Self.replay(setup, ["--rules", added, "--diff", "--diff-topic", "base.vigil.alerts"])
        #expect(withAdded["diff"]?["new"] == 1)
        #expect(withAdded["diff"]?["missing"] == 0)
        #expect(withAdded["diff"]?["changed"] == 0)
        #expect(withAdded["diff"]?["same"] == 2)
        #expect(report.contains("NEW      test.trail.stopped_by_role v1 [Low]"))

        let removed = setup.work + "/rules-removed"
        try fileManager.copyItem(atPath: Binaries.repository + "/rules", toPath: removed)
        try fileManager.removeItem(atPath: removed + "/aws/cloudtrail_logging_disabled.yaml")
        try fileManager.removeItem(atPath: removed + "/tests/aws.cloudtrail.logging_disabled.yaml")
        let (withRemoved, removedReport) = try Self.replay(setup, ["--rules", removed, "--diff", "--diff-topic", "base.vigil.alerts"])
        #expect(withRemoved["diff"]?["new"] == 0)
        #expect(withRemoved["diff"]?["missing"] == 1)
        #expect(withRemoved["diff"]?["same"] == 1)
        #expect(removedReport.contains("MISSING  aws.cloudtrail.logging_disabled v1 [High]"))

        // Same id, other severity: changed.
        let edited = setup.work + "/rules-edited"
        try fileManager.copyItem(atPath: Binaries.repository + "/rules", toPath: edited)
        let path = edited + "/aws/console_bruteforce.yaml"
        try String(contentsOfFile: path, encoding: .utf8).replacing("severity: medium", with: "severity: high")
            .write(toFile: path, atomically: true, encoding: .utf8)
        let (withEdited, editedReport) = try Self.replay(setup, ["--rules", edited, "--diff", "--diff-topic", "base.vigil.alerts"])
        #expect(withEdited["diff"]?["changed"] == 1)
        #expect(editedReport.contains("severity Medium -> High"))
    }

    @Test("the reader hands records on in (time, partition, offset) order, pausing partitions that run ahead, and stops at the captured end")
    func readerMergesPartitionsInTimeOrder() async throws {
        let broker = try await TestBroker.start()
        defer { broker.stop() }
        let config = TestBroker.config(broker)
        try await KafkaAdmin(config: config, logger: TestBroker.logger).createTopics([TopicSpec(name: "merge.in", partitions: 3, replicationFactor: 1)])
        // Partition 0 holds the early half, partitions 1 and 2 the late half: partition 0 must be
        // drained first while the others are paused with full buffers.
        var records: [OutgoingRecord] = []
        for index in 0..<600 {
            let partition: Int32 = index < 300 ? 0 : Int32(1 + index % 2)
            records.append(OutgoingRecord(topic: "merge.in", partition: partition, value: Array("r\(index)".utf8), timestamp: Self.t1 + Int64(index) * 1000))
        }
        let producer = try KafkaProducer(config: config, logger: TestBroker.logger)
        try await producer.send(records)
        await producer.close()
        var settings = ReplayTopicReader.Settings()
        settings.bufferLimit = 20
        var seen: [ConsumedRecord] = []
        let range = try ReplayRange(from: Self.t1 + 10_000, to: Self.t1 + 589_000)
        let late = try KafkaProducer(config: config, logger: TestBroker.logger)
        var injected = false
        let stats = try await ReplayTopicReader.read(topic: "merge.in", range: range, config: config, logger: TestBroker.logger,
                                                     settings: settings) { batch in
            seen += batch
            // Records written while the replay runs (in range) are past the captured end.
            if !injected && Set(seen.map(\.partition)).count == 3 {
                injected = true
                try await late.send((0..<3).map { OutgoingRecord(topic: "merge.in", partition: Int32($0), value: Array("late".utf8),
                                                                 timestamp: Self.t1 + 100_000) })
            }
        }
        await late.close()
        #expect(injected)
        #expect(stats.read == 600)
        #expect(stats.before == 10)
        #expect(stats.after == 10)
        #expect(seen.map { String(decoding: $0.value, as: UTF8.self) } == (10..<590).map { "r\($0)" })
    }

    @Test("dlq replay re-sends a dead letter's original bytes, key and headers to its stage's input topic")
    func dlqReplayResendsOriginals() async throws {
        let broker = try await TestBroker.start()
        defer { broker.stop() }
        let topics = Topics()
        let config = TestBroker.config(broker)
        try await KafkaAdmin(config: config, logger: TestBroker.logger).createTopics(topics.specs(partitions: 2, replicationFactor: 1))
        let original = ConsumedRecord(topic: topics.raw, partition: 1, offset: 7, key: Array("bad/file.json".utf8),
                                      value: Array(#"{"Records":[{"eventTime":"#.utf8),
                                      headers: [KafkaHeader(VigilHeader.source, "cloudtrail"), KafkaHeader("x-shipper", "host-1")],
                                      timestamp: Self.t1)
        let enrichInput = ConsumedRecord(topic: topics.events, partition: 0, offset: 3, key: Array("k".utf8), value: Array("nope".utf8),
                                         timestamp: Self.t1 - 86_400_000)
        let producer = try KafkaProducer(config: config, logger: TestBroker.logger)
        try await producer.send([
            deadLetterRecord(stage: "vigil-ingest", topics: topics, input: original,
                             letter: DeadLetter(code: "invalid_json", reason: "unexpected end of input")),
            deadLetterRecord(stage: "vigil-enrich", topics: topics, input: enrichInput,
                             letter: DeadLetter(code: "invalid_event", reason: "event is not a JSON object")),
        ])
        await producer.close()
        let environment = ["VIGIL_BROKERS": broker.bootstrapServers]

        let dry = try Binaries.run("vigil", ["dlq", "replay", "--stage", "ingest", "--dry-run"], environment: environment)
        #expect(dry.status == 0, "\(dry.output)")
        #expect(dry.output.contains("WOULD    vigil-ingest invalid_json (from vigil.raw[1]@7"))
        let drySummary = try JSON.parse(String(dry.output.split(separator: "\n").last ?? ""))
        #expect(drySummary["sent"] == 1)
        #expect(drySummary["dry_run"] == true)
        #expect(try await TestBroker.readAll(broker, topic: topics.raw, partitions: 2, atLeast: 1, timeout: .seconds(2)).isEmpty)

        let run = try Binaries.run("vigil", ["dlq", "replay", "--stage", "ingest", "--since", "2026-11-20T00:00:00Z"], environment: environment)
        #expect(run.status == 0, "\(run.output)")
        let summary = try JSON.parse(String(run.output.split(separator: "\n").last ?? ""))
        #expect(summary["read"] == 1, "the enrich letter is older than --since")
        #expect(summary["stages"]?["vigil-ingest"]?["sent"] == 1)
        #expect(summary["topics"]?["vigil.raw"] == 1)
        let resent = try await TestBroker.readAll(broker, topic: topics.raw, partitions: 2, atLeast: 1)
        #expect(resent.count == 1)
        let record = try #require(resent.first)
        #expect(record.value == original.value)
        #expect(record.key == original.key)
        #expect(record.headers == original.headers)
        #expect(record.timestamp == original.timestamp)
        #expect(try await TestBroker.readAll(broker, topic: topics.events, partitions: 2, atLeast: 1, timeout: .seconds(2)).isEmpty,
                "letters of other stages stay where they are")

        let help = try Binaries.run("vigil", ["dlq", "replay", "--help"])
        #expect(help.output.contains("Examples:"))
        let replayHelp = try Binaries.run("vigil", ["replay", "--help"])
        #expect(replayHelp.output.contains("vigil replay --from"))
    }
}

/// The pure parts of replay: times, the partition merge, the diff, dead-letter re-sends.
@Suite struct ReplayUnitTests {
    @Test func timesOnTheCommandLine() throws {
        let now = Timestamp.parseISO8601("2026-11-20T12:00:00Z")!
        #expect(ReplayRange.parseTime("2026-11-20T10:00:00Z", now: now) == now - 7_200_000)
        #expect(ReplayRange.parseTime("1795600000000", now: now) == 1_795_600_000_000)
        #expect(ReplayRange.parseTime("now", now: now) == now)
        #expect(ReplayRange.parseTime("now-2h", now: now) == now - 7_200_000)
        #expect(ReplayRange.parseTime("now-15m", now: now) == now - 900_000)
        #expect(ReplayRange.parseTime("now-7d", now: now) == now - 7 * 86_400_000)
        #expect(ReplayRange.parseTime("yesterday", now: now) == nil)
        #expect(ReplayRange.parseTime("now-2w", now: now) == nil)
        #expect(throws: ConfigError.self) { try ReplayRange(from: now, to: now - 1) }
        let range = try ReplayRange(from: 0, to: 100)
        #expect(range.contains(0) && range.contains(100) && !range.contains(101))
        #expect(range.fraction(50) == 0.5)
    }

    @Test func theMergeOrderDoesNotDependOnFetchInterleaving() {
        func record(_ partition: Int32, _ offset: Int64, _ time: Int64) -> ConsumedRecord {
            ConsumedRecord(topic: "t", partition: partition, offset: offset, value: [], timestamp: time)
        }
        let p0 = [record(0, 0, 10), record(0, 1, 30), record(0, 2, 31)]
        let p1 = [record(1, 0, 20), record(1, 1, 5), record(1, 2, 40)]
        // Two fetch interleavings of the same partitions.
        func merged(_ deliveries: [[ConsumedRecord]]) -> [String] {
            var merge = PartitionMerge(partitions: [0, 1])
            var out: [ConsumedRecord] = []
            for delivery in deliveries {
                for item in delivery { merge.append(item, time: item.timestamp!) }
                out += merge.release()
            }
            merge.finish(0)
            merge.finish(1)
            out += merge.release()
            #expect(merge.isComplete)
            return out.map { "\($0.partition)@\($0.offset)" }
        }
        let first = merged([p0, p1])
        let second = merged([[p1[0]], [p0[0], p0[1]], [p1[1], p1[2]], [p0[2]]])
        #expect(first == second)
        #expect(first == ["0@0", "1@0", "1@1", "0@1", "0@2", "1@2"])
        // Nothing is released while a partition that may still deliver has nothing buffered.
        var merge = PartitionMerge(partitions: [0, 1])
        merge.append(p0[0], time: 10)
        #expect(merge.release().isEmpty)
        merge.finish(1)
        #expect(merge.release().count == 1)
    }

    static func alert(rule: String, version: Int64, group: String, severity: String, count: Int64, start: Int64, end: Int64) -> JSON {
        let id = StableID.hash([rule, String(version), group, String(start), String(end)])
        return ["metadata": ["uid": .string(id)], "time": .int(end), "severity": .string(severity),
                "vigil": ["rule": ["id": .string(rule), "version": .int(version)], "group_key": .string(group), "count": .int(count),
                          "window": ["start": .int(start), "end": .int(end)]]]
    }

    @Test func diffMatchesByIDThenByFinding() {
        let kept = Self.alert(rule: "r.kept", version: 1, group: "a", severity: "Medium", count: 5, start: 1, end: 2)
        let dropped = Self.alert(rule: "r.dropped", version: 1, group: "b", severity: "High", count: 1, start: 3, end: 3)
        let bumped = Self.alert(rule: "r.bumped", version: 1, group: "c", severity: "Low", count: 5, start: 4, end: 5)
        let bumpedNext = Self.alert(rule: "r.bumped", version: 2, group: "c", severity: "Low", count: 5, start: 4, end: 5)
        let added = Self.alert(rule: "r.added", version: 1, group: "d", severity: "Low", count: 1, start: 6, end: 6)
        var louder = kept
        louder["severity"] = "High"
        let diff = ReplayDiff(production: [kept, dropped, bumped, kept], replay: [louder, bumpedNext, added])
        #expect(diff.new.map { $0.value(at: "vigil.rule.id") } == ["r.added"])
        #expect(diff.missing.map { $0.value(at: "vigil.rule.id") } == ["r.dropped"])
        #expect(diff.changed.map(\.differences) == [["severity Medium -> High"], ["rule version 1 -> 2"]])
        #expect(diff.same == 0)
        #expect(diff.productionCount == 3)
        #expect(diff.counts["changed"] == 2)
        let report = diff.report(topic: "vigil.alerts", range: try! ReplayRange(from: 0, to: 10))
        #expect(report.contains { $0.hasPrefix("NEW      r.added v1 [Low] group d") })
    }

    @Test func aDeadLetterGoesBackAsItCame() {
        let topics = Topics()
        let input = ConsumedRecord(topic: topics.events, partition: 2, offset: 9, key: Array("k".utf8), value: Array("v".utf8),
                                   headers: [KafkaHeader(VigilHeader.source, "syslog")], timestamp: 42)
        let letter = deadLetterRecord(stage: "vigil-enrich", topics: topics, input: input,
                                      letter: DeadLetter(code: "invalid_json", reason: "bad"))
        let stored = ConsumedRecord(topic: topics.deadLetters, partition: 0, offset: 0, key: letter.key, value: letter.value,
                                    headers: letter.headers, timestamp: letter.timestamp)
        let resent = DeadLetterReplay.resend(stored, topics: topics)
        #expect(resent == OutgoingRecord(topic: topics.events, key: input.key, value: input.value, headers: input.headers, timestamp: 42))
        // Without the topic header, the stage's input topic.
        var bare = stored
        bare.headers.removeAll { $0.name == VigilHeader.dlqTopic }
        #expect(DeadLetterReplay.resend(bare, topics: topics)?.topic == topics.events)
        bare.headers.removeAll { $0.name == VigilHeader.dlqStage }
        #expect(DeadLetterReplay.resend(bare, topics: topics) == nil)
        #expect(DeadLetterReplay.inputTopic(stage: "ingest", topics: topics) == topics.raw)
        #expect(ReplayInput(topic: "vigil.raw") == .raw)
        #expect(ReplayInput(topic: "case.vigil.enriched") == .enriched)
        #expect(ReplayInput(topic: "vigil.alerts") == nil)
    }
}
