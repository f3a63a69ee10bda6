// The S3 shipper: key layout and settings (pure), the checkpoint (a real SQLite file), and the
// whole poll against a real moto server and a real broker, both started by the tests.
import AWS
import Foundation
import Kafka
import Pipeline
import Shipping
import Synchronization
import Testing
import TestSupport

@Suite("S3 key layout and settings")
struct S3KeyLayoutTests {
    @Test("the source is inferred from the AWS delivery layout")
    func inferredSources() {
        let cases: [(String, S3KeyDisposition)] = [
            ("AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/20/111122223333_CloudTrail_us-east-1_20261120T0000Z_a.json.gz",
             .ship(source: "cloudtrail")),
            // Organization trail, and a trail with its own prefix before AWSLogs.
            ("AWSLogs/o-abc123/111122223333/CloudTrail/eu-west-1/2026/11/20/x.json.gz", .ship(source: "cloudtrail")),
            ("my-trail/AWSLogs/111122223333/CloudTrail/eu-west-1/2026/11/20/x.json.gz", .ship(source: "cloudtrail")),
            ("AWSLogs/111122223333/CloudTrail-Insight/us-east-1/2026/11/20/x.json.gz", .ship(source: "cloudtrail")),
            ("AWSLogs/111122223333/vpcflowlogs/us-east-1/2026/11/20/111122223333_vpcflowlogs_us-east-1_fl-1_20261120T0000Z_h.log.gz",
             .ship(source: "vpcflow")),
            ("AWSLogs/111122223333/Config/us-east-1/2026/11/20/ConfigHistory/111122223333_Config_us-east-1_ConfigHistory_x.json.gz",
             .ship(source: "awsconfig")),
            ("AWSLogs/111122223333/Config/us-east-1/2026/11/20/ConfigSnapshot/x.json.gz", .ship(source: "awsconfig")),
            // A trail prefix called Config is not AWS Config: the folder after AWSLogs decides.
            ("Config/AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/20/x.json.gz", .ship(source: "cloudtrail")),
        ]
        for (key, expected) in cases {
            #expect(S3KeyLayout.disposition(ofKey: key) == expected, "\(key)")
        }
    }

    @Test("digests, the writability check and folder markers are ignored; other keys are unrecognized")
    func ignoredAndUnrecognized() {
        #expect(S3KeyLayout.disposition(ofKey: "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2026/11/20/d.json.gz") == .ignore)
        #expect(S3KeyLayout.disposition(ofKey: "AWSLogs/111122223333/Config/ConfigWritabilityCheckFile") == .ignore)
        #expect(S3KeyLayout.disposition(ofKey: "AWSLogs/") == .ignore)
        #expect(S3KeyLayout.disposition(ofKey: "AWSLogs/111122223333/CloudTrail/") == .ignore)
        #expect(S3KeyLayout.disposition(ofKey: "AWSLogs/111122223333/elasticloadbalancing/us-east-1/x.log.gz") == .unrecognized)
        #expect(S3KeyLayout.disposition(ofKey: "AWSLogs/111122223333/vpcflowlogs/us-east-1/2026/11/20/x.parquet") == .unrecognized)
        #expect(S3KeyLayout.disposition(ofKey: "exports/okta/2026-11-20.json") == .unrecognized)
        // Case matters: AWS writes the folders exactly so.
        #expect(S3KeyLayout.disposition(ofKey: "AWSLogs/1/cloudtrail/us-east-1/x.json.gz") == .unrecognized)
    }

    @Test("a fallback source applies only outside the known layouts")
    func fallbackSource() {
        #expect(S3KeyLayout.disposition(ofKey: "exports/okta/2026-11-20.json", fallbackSource: "okta") == .ship(source: "okta"))
        #expect(S3KeyLayout.disposition(ofKey: "AWSLogs/1/vpcflowlogs/us-east-1/x.log.gz", fallbackSource: "okta") == .ship(source: "vpcflow"))
        #expect(S3KeyLayout.disposition(ofKey: "AWSLogs/1/CloudTrail-Digest/us-east-1/d.json.gz", fallbackSource: "okta") == .ignore)
        #expect(S3KeyLayout.disposition(ofKey: "AWSLogs/1/vpcflowlogs/us-east-1/x.parquet", fallbackSource: "okta") == .unrecognized)
    }

    @Test("settings are validated")
    func validation() throws {
        let good = S3ShipperConfig(bucket: "logs", checkpointPath: "/tmp/x.sqlite")
        try good.validate()
        #expect(good.prefix == "AWSLogs/")
        #expect(good.maxRecordSize == 1_000_000)
        var bad: [S3ShipperConfig] = []
        bad.append(S3ShipperConfig(bucket: "", checkpointPath: "/tmp/x"))
        bad.append(S3ShipperConfig(bucket: "a/b", checkpointPath: "/tmp/x"))
        bad.append(S3ShipperConfig(bucket: "logs", checkpointPath: ""))
        let changes: [(inout S3ShipperConfig) -> Void] = [
            { $0.maxRecordSize = 0 }, { $0.pageSize = 1001 }, { $0.parallelFetches = 0 }, { $0.source = " " },
        ]
        for change in changes {
            var config = good
            change(&config)
            bad.append(config)
        }
        for config in bad {
            #expect(throws: ConfigError.self) { try config.validate() }
        }
    }

    @Test("errors carry a code and no secrets")
    func errors() {
        let error = ShippingError(code: "fetch_failed", isRetriable: true, underlying: "SlowDown", reason: "cannot fetch")
        #expect(error.description == "shipping error fetch_failed (SlowDown, retriable): cannot fetch")
        #expect(S3Shipper.recordKey(bucket: "b", key: "AWSLogs/a b.json") == "s3://b/AWSLogs/a b.json")
    }
}

@Suite("S3 checkpoint")
struct S3CheckpointTests {
    @Test("records survive reopening; a second record of a key replaces the first")
    func survivesReopening() async throws {
        let path = temporaryPath("s3-checkpoint")
        defer { removeDatabase(path) }
        do {
            let checkpoint = try S3Checkpoint(path: path)
            try await checkpoint.record(bucket: "b", [
                S3CheckpointEntry(key: "k1", etag: "e1", size: 10, outcome: .shipped),
                S3CheckpointEntry(key: "k2", etag: "e2", size: 2_000_000, outcome: .skippedTooLarge),
            ])
            try await checkpoint.record(bucket: "other", [S3CheckpointEntry(key: "k1", etag: "x", size: 1, outcome: .shipped)])
        }
        let reopened = try S3Checkpoint(path: path)
        #expect(try await reopened.count() == 3)
        #expect(try await reopened.count(bucket: "b", outcome: .skippedTooLarge) == 1)
        let found = try await reopened.entries(bucket: "b", keys: ["k1", "k2", "k3"])
        #expect(found == ["k1": S3CheckpointEntry(key: "k1", etag: "e1", size: 10, outcome: .shipped),
                          "k2": S3CheckpointEntry(key: "k2", etag: "e2", size: 2_000_000, outcome: .skippedTooLarge)])
        try await reopened.record(bucket: "b", [S3CheckpointEntry(key: "k1", etag: "e1b", size: 11, outcome: .shipped)])
        #expect(try await reopened.entry(bucket: "b", key: "k1")?.etag == "e1b")
        #expect(try await reopened.count(bucket: "b") == 2)
        // More keys than one SQL statement takes parameters for a page.
        let many = (0..<1200).map { "key-\($0)" }
        try await reopened.record(bucket: "b", many.map { S3CheckpointEntry(key: $0, etag: "e", size: 1, outcome: .shipped) })
        #expect(try await reopened.entries(bucket: "b", keys: many).count == 1200)
    }

    @Test("a file that is not a database fails with checkpoint_failed")
    func notADatabase() throws {
        let path = temporaryPath("s3-garbage")
        defer { removeDatabase(path) }
        try Data(repeating: 0x41, count: 4096).write(to: URL(fileURLWithPath: path))
        let error = #expect(throws: ShippingError.self) { try S3Checkpoint(path: path) }
        #expect(error?.code == "checkpoint_failed")
    }
}

@Suite("S3 shipper against moto and a broker", .enabled(if: MotoServer.isAvailable && TestBroker.isAvailable),
       .timeLimit(.minutes(10)))
struct S3ShipperIntegrationTests {
    static let account = "111122223333"

    static func cloudTrailKey(_ index: Int) -> String {
        "AWSLogs/\(account)/CloudTrail/us-east-1/2026/11/20/\(account)_CloudTrail_us-east-1_20261120T10\(index)0Z_abc\(index).json.gz"
    }

    static func cloudTrailBody(_ index: Int) -> [UInt8] {
        storedGzip(Array(#"{"Records":[{"eventVersion":"1.08","eventID":"e-\#(index)","eventName":"ListBuckets","eventSource":"s3.amazonaws.com","eventTime":"2026-11-20T10:00:00Z"}]}"#.utf8))
    }

    static func flowKey(_ index: Int) -> String {
        "AWSLogs/\(account)/vpcflowlogs/us-east-1/2026/11/20/\(account)_vpcflowlogs_us-east-1_fl-0abc_20261120T10\(index)0Z_h\(index).log.gz"
    }

    static func flowBody(_ index: Int) -> [UInt8] {
        storedGzip(Array("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n2 \(account) eni-1 10.0.0.\(index) 10.0.1.1 443 5000\(index) 6 10 840 1763632800 1763632860 ACCEPT OK\n".utf8))
    }

    static let digestKey = "AWSLogs/\(account)/CloudTrail-Digest/us-east-1/2026/11/20/\(account)_CloudTrail-Digest_us-east-1_x.json.gz"
    static let writabilityKey = "AWSLogs/\(account)/Config/ConfigWritabilityCheckFile"

    struct Fixture {
        let moto: MotoServer
        let broker: EmbeddedBroker
        let client: AWSClient
        let producer: KafkaProducer
        let topics: Topics
        let checkpointPath: String

        func config(bucket: String) -> S3ShipperConfig {
            var config = S3ShipperConfig(bucket: bucket, checkpointPath: checkpointPath)
            config.topics = topics
            return config
        }

        func shipper(_ config: S3ShipperConfig) throws -> S3Shipper {
            try S3Shipper(config: config, client: client, producer: producer, logger: TestBroker.logger)
        }

        func raw(atLeast count: Int) async throws -> [ConsumedRecord] {
            try await TestBroker.readAll(broker, topic: topics.raw, partitions: 2, atLeast: count, timeout: .seconds(60))
        }

        func finish() async {
            await producer.close()
            removeDatabase(checkpointPath)
            moto.stop()
            broker.stop()
        }
    }

    static func start() async throws -> Fixture {
        async let motoStart = MotoServer.start()
        async let brokerStart = TestBroker.start()
        let moto = try await motoStart
        let broker = try await brokerStart
        let client = try moto.client()
        let topics = Topics(prefix: "s3test.")
        let admin = try KafkaAdmin(config: TestBroker.config(broker), logger: TestBroker.logger)
        _ = try await admin.createTopics([TopicSpec(name: topics.raw, partitions: 2, replicationFactor: 1)])
        let producer = try KafkaProducer(config: TestBroker.config(broker), logger: TestBroker.logger)
        return Fixture(moto: moto, broker: broker, client: client, producer: producer, topics: topics,
                       checkpointPath: temporaryPath("s3-ship"))
    }

    @Test("ships CloudTrail and flow logs once, skips digests, and after a restart sends only new objects")
    func shipsOnceAndOnlyNewObjects() async throws {
        let fixture = try await Self.start()
        let bucket = "trail-bucket"
        try await fixture.client.createBucket(bucket)
        for index in 1...3 { try await fixture.client.putObject(bucket: bucket, key: Self.cloudTrailKey(index), body: Self.cloudTrailBody(index)) }
        for index in 1...2 { try await fixture.client.putObject(bucket: bucket, key: Self.flowKey(index), body: Self.flowBody(index)) }
        try await fixture.client.putObject(bucket: bucket, key: Self.digestKey, body: storedGzip(Array("{}".utf8)))
        try await fixture.client.putObject(bucket: bucket, key: Self.writabilityKey, body: [])
        try await fixture.client.putObject(bucket: bucket, key: "AWSLogs/\(Self.account)/elasticloadbalancing/x.log", body: [1])
        try await fixture.client.putObject(bucket: bucket, key: "outside/prefix.json.gz", body: Self.cloudTrailBody(9))

        var config = fixture.config(bucket: bucket)
        config.pageSize = 3  // several listing pages
        let first = try fixture.shipper(config)
        let summary = try await first.pollOnce()
        #expect(summary.listed == 8)
        #expect(summary.shipped == 5)
        #expect(summary.ignored == 2)
        #expect(summary.unrecognized == 1)
        #expect(summary.failed == 0 && summary.skippedTooLarge == 0 && summary.alreadyDone == 0)
        let bodies: [[UInt8]] = (1...3).map(Self.cloudTrailBody) + (1...2).map(Self.flowBody)
        let expectedBytes = bodies.reduce(0) { $0 + $1.count }
        #expect(summary.shippedBytes == expectedBytes)

        var records = try await fixture.raw(atLeast: 5)
        #expect(records.count == 5)
        var byKey: [String: ConsumedRecord] = [:]
        for record in records { byKey[String(decoding: record.key ?? [], as: UTF8.self)] = record }
        for index in 1...3 {
            let record = try #require(byKey["s3://\(bucket)/\(Self.cloudTrailKey(index))"])
            #expect(record.headers.text(VigilHeader.source) == "cloudtrail")
            #expect(record.value == Self.cloudTrailBody(index))  // gzip bytes as stored
        }
        for index in 1...2 {
            let record = try #require(byKey["s3://\(bucket)/\(Self.flowKey(index))"])
            #expect(record.headers.text(VigilHeader.source) == "vpcflow")
            #expect(record.value == Self.flowBody(index))
        }

        // Nothing new: nothing sent.
        let again = try await first.pollOnce()
        #expect(again.shipped == 0)
        #expect(again.alreadyDone == 5)

        // A new object, seen by a new shipper on the same checkpoint file (a restart).
        let newKey = Self.cloudTrailKey(4)
        try await fixture.client.putObject(bucket: bucket, key: newKey, body: Self.cloudTrailBody(4))
        let restarted = try fixture.shipper(config)
        let polls = PollLog()
        try await restarted.run(once: true, onPoll: { polls.append($0) })
        #expect(polls.all.map(\.shipped) == [1])
        #expect(polls.all.first?.alreadyDone == 5)
        records = try await fixture.raw(atLeast: 6)
        #expect(records.count == 6)
        #expect(records.filter { $0.key == Array("s3://\(bucket)/\(newKey)".utf8) }.count == 1)

        // A rewritten object (new etag) is new again.
        try await fixture.client.putObject(bucket: bucket, key: Self.flowKey(1), body: Self.flowBody(7))
        #expect(try await restarted.pollOnce().shipped == 1)

        let checkpoint = try S3Checkpoint(path: fixture.checkpointPath)
        #expect(try await checkpoint.count(bucket: bucket, outcome: .shipped) == 6)
        #expect(try await checkpoint.entry(bucket: bucket, key: Self.digestKey) == nil)
        await fixture.finish()
    }

    @Test("an object over the record size is recorded as skipped, and shipped once the limit allows it")
    func oversizedObjects() async throws {
        let fixture = try await Self.start()
        let bucket = "big-bucket"
        try await fixture.client.createBucket(bucket)
        let big = Array(repeating: UInt8(ascii: "x"), count: 8192)
        try await fixture.client.putObject(bucket: bucket, key: Self.cloudTrailKey(1), body: big)
        try await fixture.client.putObject(bucket: bucket, key: Self.cloudTrailKey(2), body: Self.cloudTrailBody(2))

        var config = fixture.config(bucket: bucket)
        config.maxRecordSize = 4096
        let shipper = try fixture.shipper(config)
        let summary = try await shipper.pollOnce()
        #expect(summary.skippedTooLarge == 1)
        #expect(summary.shipped == 1)
        let entry = try await S3Checkpoint(path: fixture.checkpointPath).entry(bucket: bucket, key: Self.cloudTrailKey(1))
        #expect(entry?.outcome == .skippedTooLarge)
        #expect(entry?.size == 8192)
        // Skipped stays skipped while the limit is the same...
        let again = try await shipper.pollOnce()
        #expect(again.alreadyDone == 2 && again.skippedTooLarge == 0 && again.shipped == 0)
        // ...and is shipped once it fits.
        config.maxRecordSize = 100_000
        let raised = try await fixture.shipper(config).pollOnce()
        #expect(raised.shipped == 1)
        #expect(raised.alreadyDone == 1)
        let records = try await fixture.raw(atLeast: 2)
        #expect(records.count == 2)
        #expect(Set(records.map(\.value.count)) == [8192, Self.cloudTrailBody(2).count])
        await fixture.finish()
    }

    @Test("a listing failure records nothing; the polling loop picks up new objects and stops when asked")
    func listingFailureAndLoop() async throws {
        let fixture = try await Self.start()
        // A bucket that does not exist: listing fails, nothing is recorded.
        let missing = try fixture.shipper(fixture.config(bucket: "no-such-bucket"))
        let error = await #expect(throws: ShippingError.self) { try await missing.pollOnce() }
        #expect(error?.code == "list_failed")
        #expect(error?.underlying == "NoSuchBucket")
        #expect(try await missing.checkpoint.count() == 0)

        // The loop: a poll every 200 ms sees an object added while it runs.
        let bucket = "loop-bucket"
        try await fixture.client.createBucket(bucket)
        try await fixture.client.putObject(bucket: bucket, key: Self.cloudTrailKey(1), body: Self.cloudTrailBody(1))
        let looping = try fixture.shipper(fixture.config(bucket: bucket))
        let polls = PollLog()
        let running = Task { try await looping.run(once: false, interval: .milliseconds(200), onPoll: { polls.append($0) }) }
        #expect(await TestBroker.eventually(timeout: .seconds(90)) { polls.all.contains { $0.shipped == 1 } })
        try await fixture.client.putObject(bucket: bucket, key: Self.cloudTrailKey(2), body: Self.cloudTrailBody(2))
        #expect(await TestBroker.eventually(timeout: .seconds(90)) { polls.all.map(\.shipped).reduce(0, +) == 2 })
        looping.stop()
        try await running.value
        #expect(polls.all.map(\.shipped).reduce(0, +) == 2)
        #expect(try await fixture.raw(atLeast: 2).count == 2)

        // Stopped before a poll: nothing is listed or sent, and the loop returns at once.
        try await fixture.client.putObject(bucket: bucket, key: Self.cloudTrailKey(3), body: Self.cloudTrailBody(3))
        let summary = try await looping.pollOnce()
        #expect(summary.interrupted)
        #expect(summary.listed == 0 && summary.shipped == 0)
        try await looping.run(once: false, interval: .seconds(60))
        await fixture.finish()
    }
}

/// Poll summaries collected from a `@Sendable` callback.
final class PollLog: Sendable {
    private let items = Mutex<[S3ShipSummary]>([])
    func append(_ summary: S3ShipSummary) { items.withLock { $0.append(summary) } }
    var all: [S3ShipSummary] { items.withLock { $0 } }
}

/// A unique path in the temporary directory.
func temporaryPath(_ name: String) -> String {
    NSTemporaryDirectory() + "vigil-\(name)-\(UUID().uuidString).sqlite"
}

/// Removes a SQLite file and its journal files.
func removeDatabase(_ path: String) {
    for suffix in ["", "-journal", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
}

/// Valid gzip of `data` using stored (uncompressed) deflate blocks: enough to check that the
/// shipper sends gzip objects byte for byte, without a compressor.
func storedGzip(_ data: [UInt8]) -> [UInt8] {
    var out: [UInt8] = [0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 0xFF]
    var offset = 0
    repeat {
        let length = min(65_535, data.count - offset)
        let last: UInt8 = offset + length == data.count ? 1 : 0
        out += [last, UInt8(length & 0xFF), UInt8(length >> 8), UInt8(~length & 0xFF), UInt8((~length >> 8) & 0xFF)]
        out += data[offset..<offset + length]
        offset += length
    } while offset < data.count
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in data {
        crc ^= UInt32(byte)
        for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
    }
    crc = ~crc
    for value in [crc, UInt32(truncatingIfNeeded: data.count)] {
        out += [UInt8(value & 0xFF), UInt8((value >> 8) & 0xFF), UInt8((value >> 16) & 0xFF), UInt8(value >> 24)]
    }
    return out
}
