// `vigil ship files` without --follow, resuming from a checkpoint: real files, a real broker.
import Foundation
import Kafka
import Pipeline
import Shipping
import Synchronization
import Testing
import TestSupport

/// A broker with one single-partition topic, a producer, and a scratch directory.
private struct ShipmentBench {
    let broker: EmbeddedBroker
    let producer: KafkaProducer
    let logs: LogDirectory
    let topic: String

    static func start(topic: String) async throws -> ShipmentBench {
        let logs = try LogDirectory()
        let broker = try await TestBroker.start()
        let admin = try KafkaAdmin(config: TestBroker.config(broker), logger: TestBroker.logger)
        _ = try await admin.createTopics([TopicSpec(name: topic, partitions: 1, replicationFactor: 1)])
        let producer = try KafkaProducer(config: TestBroker.config(broker), logger: TestBroker.logger)
        return ShipmentBench(broker: broker, producer: producer, logs: logs, topic: topic)
    }

    func settings(_ files: [String]) -> FileShipConfig {
        var config = FileShipConfig(files: files, topic: topic)
        config.source = "syslog"
        return config
    }

    func ship(_ config: FileShipConfig, shouldStop: @escaping @Sendable () -> Bool = { false }) async throws -> FileShipSummary {
        let checkpoint = try FileCheckpoint(path: logs.checkpointPath)
        return try await FileShipper(config: config).ship(producer: producer, checkpoint: checkpoint, shouldStop: shouldStop)
    }

    /// Every record on the topic, waiting for at least `count` (and briefly for more).
    func records(atLeast count: Int, settle: Duration = .seconds(2)) async throws -> [ConsumedRecord] {
        try await TestBroker.readAll(broker, topic: topic, partitions: 1, atLeast: count, timeout: settle)
    }

    func stop() async {
        await producer.close()
        broker.stop()
        logs.remove()
    }
}

private func values(_ records: [ConsumedRecord]) -> [String] {
    records.map { String(decoding: $0.value, as: UTF8.self) }
}

private func keys(_ records: [ConsumedRecord]) -> [String] {
    records.map { String(decoding: $0.key ?? [], as: UTF8.self) }
}

@Suite("Shipping files once, resuming from a checkpoint", .enabled(if: TestBroker.isAvailable), .timeLimit(.minutes(8)))
struct FileShipperTests {
    @Test("a second run sends nothing and says how many files it skipped")
    func secondRunSendsNothing() async throws {
        let bench = try await ShipmentBench.start(topic: "once.raw")
        let whole = bench.logs.directory + "/trail.json"
        try #require(FileManager.default.createFile(atPath: whole, contents: Data(#"{"Records":[]}"#.utf8)))
        try bench.logs.append("one\ntwo\n\nthree\n")
        let config = bench.settings([whole, bench.logs.log])

        let first = try await bench.ship(config)
        #expect(first.records == 4 && first.files == 2 && first.skippedUnchanged == 0 && first.resumed == 0)
        let sent = try await bench.records(atLeast: 4, settle: .seconds(60))
        #expect(values(sent) == [#"{"Records":[]}"#, "one", "two", "three"])
        #expect(keys(sent) == [whole, bench.logs.log + ":1", bench.logs.log + ":2", bench.logs.log + ":3"])
        #expect(sent.allSatisfy { $0.headers.text(VigilHeader.source) == "syslog" })

        let second = try await bench.ship(config)
        #expect(second.records == 0 && second.files == 0)
        #expect(second.skippedUnchanged == 2)
        #expect(try await bench.records(atLeast: 5).count == 4)

        // A whole-file record rewritten (new size and time) is sent again, whole.
        try Data(#"{"Records":[{}]}"#.utf8).write(to: URL(fileURLWithPath: whole))
        let third = try await bench.ship(config)
        #expect(third.records == 1 && third.skippedUnchanged == 1)
        #expect(values(try await bench.records(atLeast: 5, settle: .seconds(60))).last == #"{"Records":[{}]}"#)
        await bench.stop()
    }

    @Test("an appended file sends only its new lines, numbered on from the old ones")
    func appendedFile() async throws {
        let bench = try await ShipmentBench.start(topic: "append.raw")
        try bench.logs.append((1...5).map { "line \($0)\n" }.joined())
        let config = bench.settings([bench.logs.log])
        #expect(try await bench.ship(config).records == 5)

        try bench.logs.append((6...8).map { "line \($0)\n" }.joined())
        let second = try await bench.ship(config)
        #expect(second.records == 3 && second.resumed == 1 && second.skippedUnchanged == 0)
        let sent = try await bench.records(atLeast: 8, settle: .seconds(60))
        #expect(values(sent) == (1...8).map { "line \($0)" })
        #expect(keys(sent) == (1...8).map { bench.logs.log + ":\($0)" })

        // A file replaced by another under the same name is sent from its start.
        try FileManager.default.removeItem(atPath: bench.logs.log)
        try bench.logs.append("fresh 1\nfresh 2\n")
        let third = try await bench.ship(config)
        #expect(third.records == 2 && third.resumed == 0)
        #expect(values(try await bench.records(atLeast: 10, settle: .seconds(60))).suffix(2) == ["fresh 1", "fresh 2"])
        await bench.stop()
    }

    @Test("a run interrupted between batches resumes after the last acknowledged record: nothing lost, nothing twice")
    func interruptedRunResumes() async throws {
        let bench = try await ShipmentBench.start(topic: "resume.raw")
        try bench.logs.append((1...100).map { "line \($0)\n" }.joined())
        let other = bench.logs.directory + "/other.log"
        try bench.logs.append("other 1\nother 2\n", to: other)
        var config = bench.settings([bench.logs.log, other])
        config.maxBatchRecords = 10

        // Stop once three batches are acknowledged, as Ctrl-C would.
        let batches = Atomic<Int>(0)
        let checkpoint = try FileCheckpoint(path: bench.logs.checkpointPath)
        let first = try await FileShipper(config: config).ship(producer: bench.producer, checkpoint: checkpoint,
                                                               shouldStop: { batches.load(ordering: .relaxed) >= 3 },
                                                               progress: { _ in batches.add(1, ordering: .relaxed) })
        #expect(first.interrupted)
        #expect(first.records == 30)
        #expect(try await checkpoint.shippedFiles()[bench.logs.log]?.lines == 30)
        #expect(try await checkpoint.shippedFiles()[other] == nil)

        let second = try await bench.ship(config)
        #expect(!second.interrupted)
        #expect(second.records == 72 && second.resumed == 1 && second.files == 2)
        let sent = try await bench.records(atLeast: 102, settle: .seconds(60))
        #expect(values(sent) == (1...100).map { "line \($0)" } + ["other 1", "other 2"])
        #expect(Set(keys(sent)).count == 102)

        let third = try await bench.ship(config)
        #expect(third.records == 0 && third.skippedUnchanged == 2)
        await bench.stop()
    }
}
