import Detection
import Foundation
import Kafka
import Normalize
import OCSF
import Pipeline
import Stages
import TestSupport
import Testing

/// Two `vigil-detect` copies on a real broker, one killed mid-stream and restarted: the alert
/// set equals what one offline detector computes from the same events (ids identical, none
/// missing, none extra).
@Suite(.enabled(if: Binaries.available, "broker or built executables missing (run make test)"), .serialized,
       .timeLimit(.minutes(10)))
struct DetectScaleOutTests {
    static let rules = ["aws/console_bruteforce.yaml", "aws/console_bruteforce_then_success.yaml", "aws/cloudtrail_logging_disabled.yaml"]

    /// One slice of console sign-ins, all within 30 seconds of event time from `start` (so no
    /// partial of a slice is late for another, whatever order the partitions are read in): for
    /// each of `users` users a burst of failures (six for most, three for every fifth user: a
    /// near miss), then for every other user a success; and one StopLogging.
    static func slice(_ index: Int, users: Int, start: Int64) -> [JSON] {
        var out: [JSON] = []
        for user in (index * users)..<((index + 1) * users) {
            let failures = user % 5 == 4 ? 3 : 6
            for attempt in 0..<failures {
                out.append(login(user: user, at: start + Int64(attempt) * 4_000, uid: "u\(user)-f\(attempt)", failed: true))
            }
            if user % 2 == 0 { out.append(login(user: user, at: start + 25_000, uid: "u\(user)-ok", failed: false)) }
        }
        var event = OCSFEvent.base(class: .apiActivity, activityID: 99, activityName: "Other", time: start + 10_000,
                                   status: .success, uid: "stop-\(index)", product: "CloudTrail", vendor: "AWS")
        event.set("api.operation", "StopLogging")
        event.set("api.service.name", "cloudtrail.amazonaws.com")
        event.set("actor.user.name", .string("user-\(index)"))
        out.append(event)
        return out
    }

    static func login(user: Int, at time: Int64, uid: String, failed: Bool) -> JSON {
        var event = OCSFEvent.base(class: .authentication, activityID: 1, activityName: "Logon", time: time,
                                   status: failed ? .failure : .success, uid: uid, product: "CloudTrail", vendor: "AWS")
        event.set("api.operation", "ConsoleLogin")
        event.set("api.service.name", "signin.amazonaws.com")
        event.set("actor.user.name", .string("user-\(user)"))
        event.set("src_endpoint.ip", "203.0.113.7")
        return event
    }

    /// A temporary directory holding copies of `rules` (the caller removes it).
    static func ruleDirectory() throws -> String {
        let directory = NSTemporaryDirectory() + "vigil-detect-rules-\(UInt64.random(in: 0...UInt64.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for rule in rules {
            try FileManager.default.copyItem(atPath: Binaries.repository + "/rules/" + rule,
                                             toPath: directory + "/" + (rule as NSString).lastPathComponent)
        }
        return directory
    }

    /// The reference: one offline detector over `events` in order, flushed at the end; alert
    /// id -> rule id.
    static func offlineAlerts(_ events: [JSON], rules: RuleSet, topics: Topics) -> [String: String] {
        var offline = OfflineDetector(rules: rules, topics: topics, metrics: MetricsRegistry())
        var alerts: [String: String] = [:]
        func note(_ out: OutgoingRecord) {
            guard out.topic == topics.alerts, let key = out.key, let alert = try? JSON.parse(out.value) else { return }
            alerts[String(decoding: key, as: UTF8.self)] = alert.value(at: "vigil.rule.id")?.stringValue ?? "?"
        }
        for (index, event) in events.enumerated() {
            let record = ConsumedRecord(topic: topics.enriched, partition: 0, offset: Int64(index), key: nil, value: event.serialized(),
                                        headers: [], timestamp: OCSFEvent.time(event))
            offline.process(record).records.forEach(note)
        }
        offline.finish().forEach(note)
        return alerts
    }

    /// What every copy in these tests runs with: the test broker and fast group joins.
    static func environment(_ broker: EmbeddedBroker, _ topics: Topics) -> [String: String] {
        ["VIGIL_BROKERS": broker.bootstrapServers, "VIGIL_TOPIC_PREFIX": topics.prefix, "VIGIL_METRICS_PORT": "0",
         "VIGIL_KAFKA_SESSION_TIMEOUT_MS": "6000", "VIGIL_KAFKA_HEARTBEAT_INTERVAL_MS": "500"]
    }

    /// Reads the alerts topic until every expected alert id arrived (or 180 s passed) and a
    /// little longer, then checks none is missing and none is extra.
    static func expectAlerts(_ expected: Set<String>, config: KafkaConfig, topics: Topics) async throws {
        let watcher = try KafkaConsumer(config: config, groupID: nil, logger: TestBroker.logger)
        try watcher.assign((0..<4).map { TopicPartitionOffset(TopicPartition(topic: topics.alerts, partition: $0), offset: KafkaConsumer.beginning) })
        var seen: Set<String> = []
        func drain() async {
            for record in (try? await watcher.poll(maxRecords: 5000, timeout: .milliseconds(200)).records) ?? [] {
                if let key = record.key { seen.insert(String(decoding: key, as: UTF8.self)) }
            }
        }
        let complete = await TestBroker.eventually(timeout: .seconds(180)) {
            await drain()
            return seen.isSuperset(of: expected)
        }
        for _ in 0..<10 { await drain() }
        await watcher.close()
        #expect(complete, "missing \(expected.subtracting(seen).count) of \(expected.count) alerts")
        #expect(seen.subtracting(expected).isEmpty, "extra alerts: \(seen.subtracting(expected).count)")
    }

    static func stop(_ process: Process, signal: Int32 = SIGTERM) {
        guard process.isRunning else { return }
        kill(process.processIdentifier, signal)
        while process.isRunning { usleep(20_000) }
    }

    @Test("a detect copy killed mid-stream: the alerts equal a single offline run's, by id")
    func killedCopy() async throws {
        let ruleDir = try Self.ruleDirectory()
        defer { try? FileManager.default.removeItem(atPath: ruleDir) }
        let rules = try RuleSet.load(directory: ruleDir)
        let topics = Topics(prefix: "ds.")
        // Live mode: the copies move idle watermarks to the wall clock, so each slice is stamped
        // with the wall clock when it is sent; the reference is computed from what was sent.
        func wallClock() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
        var events: [JSON] = []

        let broker = try await TestBroker.start()
        let config = TestBroker.config(broker)
        try await KafkaAdmin(config: config, logger: TestBroker.logger).createTopics(topics.specs(partitions: 4, replicationFactor: 1))
        let environment = Self.environment(broker, topics)
        let log = NSTemporaryDirectory() + "vigil-detect-scale-\(broker.port)"
        let arguments = ["--rules", ruleDir, "--idle-advance", "2"]
        let one = try Binaries.launch("vigil-detect", arguments, environment: environment, log: log + "-1.log")
        var two = try Binaries.launch("vigil-detect", arguments, environment: environment, log: log + "-2.log")
        defer { Self.stop(one); Self.stop(two) }

        // Events keyed by user, as enrich would key them; a copy is killed after the first
        // slice, while windows and sequences of the next slices are still to come, and
        // restarted after the second: each time its partitions move, and their new owner resumes
        // from the state snapshots in the state topic.
        let producer = try KafkaProducer(config: config, logger: TestBroker.logger)
        func records(_ slice: [JSON]) -> [OutgoingRecord] {
            slice.map { event in
                OutgoingRecord(topic: topics.enriched, key: event.value(at: "actor.user.name").map { Array(($0.stringValue ?? "").utf8) },
                               value: event.serialized(), timestamp: OCSFEvent.time(event))
            }
        }
        let watcher = try KafkaConsumer(config: config, groupID: nil, logger: TestBroker.logger)
        try watcher.assign((0..<4).map { TopicPartitionOffset(TopicPartition(topic: topics.alerts, partition: $0), offset: KafkaConsumer.beginning) })
        var seen: [String: Set<String>] = [:]
        func drain() async {
            let batch = (try? await watcher.poll(maxRecords: 5000, timeout: .milliseconds(200)).records) ?? []
            for record in batch {
                guard let key = record.key else { continue }
                seen[String(decoding: key, as: UTF8.self), default: []].insert(String(decoding: record.value, as: UTF8.self))
            }
        }
        func send(_ index: Int) async throws {
            let slice = Self.slice(index, users: 20, start: wallClock())
            events += slice
            _ = try await producer.send(records(slice))
        }
        try await send(0)
        _ = await TestBroker.eventually(timeout: .seconds(90)) {
            await drain()
            return seen.count >= 5
        }
        Self.stop(two, signal: SIGKILL)
        try await Task.sleep(for: .seconds(8))  // the survivor takes every partition
        try await send(1)
        try await Task.sleep(for: .seconds(3))
        two = try Binaries.launch("vigil-detect", arguments, environment: environment, log: log + "-3.log")
        try await Task.sleep(for: .seconds(8))  // and gives some back
        try await send(2)
        await producer.close()

        let expectedRules = Self.offlineAlerts(events, rules: rules, topics: topics)
        let expected = Set(expectedRules.keys)
        #expect(expected.count > 40, "the load triggers many alerts (\(expected.count))")

        let complete = await TestBroker.eventually(timeout: .seconds(240)) {
            await drain()
            return Set(seen.keys).isSuperset(of: expected)
        }
        // A little longer, to catch anything extra.
        for _ in 0..<20 { await drain() }
        await watcher.close()
        let missing = expected.subtracting(seen.keys)
        let extra = Set(seen.keys).subtracting(expected)
        func rulesOf(_ ids: Set<String>, _ source: (String) -> String?) -> [String: Int] {
            var counts: [String: Int] = [:]
            for id in ids { counts[source(id) ?? "?", default: 0] += 1 }
            return counts
        }
        #expect(complete, "missing \(missing.count) of \(expected.count): \(rulesOf(missing) { expectedRules[$0] })")
        // Without snapshots this failed in about 2 of 14 runs: a rebuild from the committed
        // offset re-read only the later failures of a sliding window that had already fired,
        // and fired one failure later (RebuildTests). The new owner now resumes from the old
        // owner's snapshot. The lines below print an extra alert's group and window.
        #expect(extra.isEmpty, "extra \(extra.count): \(rulesOf(extra) { id in seen[id]?.first.flatMap { try? JSON.parse(Array($0.utf8)) }?.value(at: "vigil.rule.id")?.stringValue })")
        // What an extra alert was (group, window, count), to tell how its state differed.
        for id in extra {
            guard let body = seen[id]?.first, let alert = try? JSON.parse(Array(body.utf8)) else { continue }
            let group = alert.value(at: "vigil.group_key").map { String(decoding: $0.serialized(), as: UTF8.self) } ?? "-"
            let window = alert.value(at: "vigil.window").map { String(decoding: $0.serialized(), as: UTF8.self) } ?? "-"
            let value = alert.value(at: "vigil.aggregate").map { String(decoding: $0.serialized(), as: UTF8.self) } ?? "-"
            print("extra alert \(id): group \(group) window \(window) aggregate \(value)")
        }
        // The survivor took the killed copy's partitions over from their snapshots.
        let survivorLog = (try? String(contentsOfFile: log + "-1.log", encoding: .utf8)) ?? ""
        #expect(survivorLog.contains("aggregate state restored"), "the survivor restored no snapshot (\(log)-1.log)")
        // A duplicate is the same alert again: one rule, one window, one group per id.
        for (id, bodies) in seen where bodies.count > 1 {
            let identities = Set(bodies.compactMap { try? JSON.parse(Array($0.utf8)) }.map { alert -> String in
                [alert.value(at: "vigil.rule.id"), alert.value(at: "vigil.group_key"), alert.value(at: "vigil.window")]
                    .map { $0.map { String(decoding: $0.serialized(), as: UTF8.self) } ?? "-" }.joined(separator: "|")
            })
            #expect(identities.count == 1, "alert \(id) was emitted with different contents")
        }
    }

    /// A backlog on the enriched topic, written before `vigil-detect` starts: four partitions,
    /// each in event-time order over an hour, which the consumer hands over a partition at a
    /// time. Without the slowest-source watermark most partials of the partitions read later
    /// are late; with it the alerts equal the offline run's.
    @Test("a backlog of enriched events is caught up without late partials")
    func backlogCatchUp() async throws {
        let ruleDir = try Self.ruleDirectory()
        defer { try? FileManager.default.removeItem(atPath: ruleDir) }
        let rules = try RuleSet.load(directory: ruleDir)
        let topics = Topics(prefix: "db.")
        // 160 users, each with a burst of failures (and for every other user a success) at
        // its own moment within an hour that ended a day ago; events in time order.
        let start = Int64(Date().timeIntervalSince1970 * 1000) - 86_400_000
        let events = Self.signInBursts(users: 160, start: start, spacing: 22_500, prefix: "b").map {
            Self.login(user: $0.user, at: $0.time, uid: $0.uid, failed: $0.failed)
        }

        let broker = try await TestBroker.start()
        let config = TestBroker.config(broker)
        try await KafkaAdmin(config: config, logger: TestBroker.logger).createTopics(topics.specs(partitions: 4, replicationFactor: 1))
        let producer = try KafkaProducer(config: config, logger: TestBroker.logger)
        _ = try await producer.send(events.map { event in
            OutgoingRecord(topic: topics.enriched, key: event.value(at: "actor.user.name").map { Array(($0.stringValue ?? "").utf8) },
                           value: event.serialized(), timestamp: OCSFEvent.time(event))
        })
        await producer.close()

        let expected = Set(Self.offlineAlerts(events, rules: rules, topics: topics).keys)
        #expect(expected.count > 150, "the backlog triggers many alerts (\(expected.count))")

        let environment = Self.environment(broker, topics)
        let detect = try Binaries.launch("vigil-detect", ["--rules", ruleDir, "--idle-advance", "2"], environment: environment,
                                         log: NSTemporaryDirectory() + "vigil-detect-backlog-\(broker.port).log")
        defer { Self.stop(detect) }
        try await Self.expectAlerts(expected, config: config, topics: topics)
    }

    /// The console sign-ins of a backlog: `users` users, one every `spacing` ms from `start`,
    /// each with failures 3 s apart (six, or three for every fifth user: a near miss) and, for
    /// every other user, a success 20 s after its first failure; uids `<prefix><user>-f<n>` and
    /// `<prefix><user>-ok`; in time order.
    static func signInBursts(users: Int, start: Int64, spacing: Int64, prefix: String)
        -> [(user: Int, time: Int64, uid: String, failed: Bool)] {
        var out: [(user: Int, time: Int64, uid: String, failed: Bool)] = []
        for user in 0..<users {
            let at = start + Int64(user) * spacing
            for attempt in 0..<(user % 5 == 4 ? 3 : 6) {
                out.append((user, at + Int64(attempt) * 3_000, "\(prefix)\(user)-f\(attempt)", true))
            }
            if user % 2 == 0 { out.append((user, at + 20_000, "\(prefix)\(user)-ok", false)) }
        }
        return out.sorted { ($0.time, $0.uid) < ($1.time, $1.uid) }
    }

    /// One CloudTrail delivery holding one console sign-in.
    static func rawLogin(user: Int, at time: Int64, id: String, failed: Bool) -> [UInt8] {
        let outcome = failed ? #""errorMessage":"Failed authentication","responseElements":{"ConsoleLogin":"Failure"}"#
            : #""responseElements":{"ConsoleLogin":"Success"}"#
        return Array("""
            {"Records":[{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","principalId":"AIDAUSER\(user)","arn":"arn:aws:iam::111122223333:user/user-\(user)","accountId":"111122223333","userName":"user-\(user)"},"eventTime":"\(Timestamp.formatISO8601(time))","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","awsRegion":"us-east-1","sourceIPAddress":"203.0.113.7","userAgent":"Mozilla/5.0",\(outcome),"requestParameters":null,"additionalEventData":{"MFAUsed":"No"},"eventID":"\(id)","readOnly":false,"eventType":"AwsConsoleSignIn","managementEvent":true,"recipientAccountId":"111122223333"}]}
            """.utf8)
    }

    /// A backlog on the raw topic, shipped live over 12 hours (13,000 records; record time =
    /// event time + 30 s) and read only once ingest, enrich and detect start: each raw partition
    /// is in time order, but consumers get runs of one partition at a time. Ingest re-keys the
    /// events, so without read alignment each events partition goes back hours in event time
    /// and detect drops partials as late. With `--max-read-skew-ms 0` this test fails: missing
    /// and partial alerts, an events partition going back 44,000 s.
    @Test("a raw backlog through ingest, enrich and detect: the alerts equal the offline run's")
    func rawBacklogThroughTheWholePipeline() async throws {
        let ruleDir = try Self.ruleDirectory()
        defer { try? FileManager.default.removeItem(atPath: ruleDir) }
        let rules = try RuleSet.load(directory: ruleDir)
        let topics = Topics(prefix: "rb.")
        let start = Int64(Date().timeIntervalSince1970 * 1000) / 1000 * 1000 - 86_400_000
        let raws = Self.signInBursts(users: 2_000, start: start, spacing: 22_000, prefix: "rb").map {
            (time: $0.time, id: $0.uid, bytes: Self.rawLogin(user: $0.user, at: $0.time, id: $0.uid, failed: $0.failed))
        }
        // The reference: the same records normalized in process, detected offline in time order.
        var events: [JSON] = []
        for raw in raws {
            let result = Normalizer().normalize(RawRecord(bytes: raw.bytes, source: "cloudtrail"))
            #expect(result.failures.isEmpty)
            events += result.events
        }
        let expected = Set(Self.offlineAlerts(events, rules: rules, topics: topics).keys)
        #expect(expected.count > 2_000, "the backlog triggers many alerts (\(expected.count))")

        let broker = try await TestBroker.start()
        let config = TestBroker.config(broker)
        try await KafkaAdmin(config: config, logger: TestBroker.logger).createTopics(topics.specs(partitions: 4, replicationFactor: 1))
        let producer = try KafkaProducer(config: config, logger: TestBroker.logger)
        _ = try await producer.send(raws.map { raw in
            OutgoingRecord(topic: topics.raw, key: Array(raw.id.utf8), value: raw.bytes,
                           headers: [KafkaHeader(VigilHeader.source, "cloudtrail")], timestamp: raw.time + 30_000)
        })
        await producer.close()

        let environment = Self.environment(broker, topics)
        let log = NSTemporaryDirectory() + "vigil-raw-backlog-\(broker.port)"
        let inventory = log + "-inventory.sqlite"
        defer { try? FileManager.default.removeItem(atPath: inventory) }
        let ingest = try Binaries.launch("vigil-ingest", [], environment: environment, log: log + "-ingest.log")
        let enrich = try Binaries.launch("vigil-enrich", ["--inventory", inventory], environment: environment, log: log + "-enrich.log")
        let detect = try Binaries.launch("vigil-detect", ["--rules", ruleDir, "--idle-advance", "2"], environment: environment,
                                         log: log + "-detect.log")
        defer { Self.stop(ingest); Self.stop(enrich); Self.stop(detect) }
        try await Self.expectAlerts(expected, config: config, topics: topics)

        // What ingest wrote: each events partition within the read skew (5 s) of event-time order.
        let written = try await TestBroker.readAll(broker, topic: topics.events, partitions: 4, atLeast: events.count)
        #expect(written.count >= events.count)
        var newest: [Int32: Int64] = [:]
        var worst: Int64 = 0
        for record in written {
            let t = record.timestamp ?? 0
            worst = max(worst, (newest[record.partition] ?? t) - t)
            newest[record.partition] = max(newest[record.partition] ?? t, t)
        }
        #expect(worst <= 5_000, "an events partition went back \(worst) ms in event time")
    }
}
