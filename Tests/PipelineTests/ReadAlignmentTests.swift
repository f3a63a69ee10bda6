import Foundation
import Kafka
import Pipeline
import Synchronization
import TestSupport
import Testing

/// The bookkeeping of read alignment, fed by hand.
struct ReadAlignmentTests {
    let p0 = TopicPartition(topic: "in", partition: 0)
    let p1 = TopicPartition(topic: "in", partition: 1)

    func record(_ tp: TopicPartition, _ offset: Int64, _ time: Int64?) -> ConsumedRecord {
        ConsumedRecord(topic: tp.topic, partition: tp.partition, offset: offset, value: [1, 2, 3], timestamp: time)
    }

    func ids(_ records: [ConsumedRecord]) -> [String] { records.map { "\($0.partition):\($0.offset)" } }

    /// Alignment (500 ms skew, 2 s idle) over p0 and p1, both heard from at 1,000 ms.
    func started(pauseAfterBytes: Int = 8 << 20) -> ReadAlignment {
        var alignment = ReadAlignment(maxSkewMillis: 500, idleMillis: 2_000, pauseAfterBytes: pauseAfterBytes)
        alignment.assigned([p0, p1], now: 0)
        let first = alignment.take([record(p0, 0, 1_000), record(p1, 0, 1_000)], now: 0)
        #expect(first.count == 2)
        return alignment
    }

    @Test func recordsTooFarAheadWaitForTheSlowestPartition() {
        var alignment = ReadAlignment(maxSkewMillis: 500, idleMillis: 2_000)
        alignment.assigned([p0, p1], now: 0)
        let first = alignment.take([record(p0, 0, 1_000), record(p0, 1, 1_500), record(p0, 2, 1_501), record(p0, 3, 1_200)], now: 0)
        #expect(first.isEmpty, "p1 not heard from yet: its position is unknown")
        let second = alignment.take([record(p1, 0, 1_000)], now: 1)
        #expect(ids(second) == ["0:0", "1:0", "0:1"], "oldest first, then p0 up to the skew ahead of p1's 1,000")
        #expect(alignment.queuedCount == 2, "1,501 is more than 500 ms ahead; 1,200 waits behind it")
        let third = alignment.take([record(p1, 1, 1_001)], now: 2)
        #expect(ids(third) == ["1:1", "0:2", "0:3"])
        #expect(alignment.queuedCount == 0)
    }

    @Test func aPartitionNotHeardFromHoldsTheOthersOnlyForTheIdleTime() {
        var alignment = ReadAlignment(maxSkewMillis: 500, idleMillis: 2_000)
        alignment.assigned([p0, p1], now: 0)
        let early = alignment.take([record(p0, 0, 9_000)], now: 100)
        #expect(early.isEmpty)
        let waiting = alignment.take([], now: 1_900)
        #expect(waiting.isEmpty)
        let late = alignment.take([], now: 2_001)
        #expect(ids(late) == ["0:0"], "p1 silent since its assignment 2 s ago")
    }

    @Test func aPartitionAtItsEndOrIdleHoldsNothingBack() {
        var alignment = started()
        alignment.reachedEnd([TopicPartitionOffset(p1, offset: 1)])
        let ahead = alignment.take([record(p0, 1, 60_000)], now: 10)
        #expect(ids(ahead) == ["0:1"], "p1 has nothing more to read")
        let reopened = alignment.take([record(p1, 1, 1_100), record(p0, 2, 70_000)], now: 11)
        #expect(ids(reopened) == ["1:1"], "a record after the end makes p1 active again, and it is behind")
        let stillWaiting = alignment.take([], now: 11 + 2_000)
        #expect(stillWaiting.isEmpty)
        let idle = alignment.take([], now: 11 + 2_001)
        #expect(ids(idle) == ["0:2"], "p1 delivered nothing for the idle time")
    }

    @Test func aSilentPartitionIsWaitedForWhilePollsBringOtherRecords() {
        var alignment = started()
        // p1's next records may sit in librdkafka's queue behind p0's: polls are not empty.
        let busy = alignment.take([record(p0, 1, 9_000)], now: 3_000)
        #expect(busy.isEmpty)
        let stillBusy = alignment.take([record(p0, 2, 9_001)], now: 20_000)
        #expect(stillBusy.isEmpty, "silent for 20 s, but no poll came back empty")
        let empty = alignment.take([], now: 20_100)
        #expect(ids(empty) == ["0:1", "0:2"], "an empty poll: nothing of p1 is waiting")
    }

    @Test func aPartitionSilentForTwelveIdleTimesHoldsNothingBackEvenWhenPollsAreBusy() {
        var alignment = started()
        let early = alignment.take([record(p0, 1, 9_000)], now: 24_000)
        #expect(early.isEmpty)
        let late = alignment.take([record(p0, 2, 9_001)], now: 24_001)
        #expect(ids(late) == ["0:1", "0:2"])
    }

    @Test func recordsWithoutTimestampsAreNeitherHeldNorHoldOthersBack() {
        var alignment = ReadAlignment(maxSkewMillis: 500, idleMillis: 2_000)
        alignment.assigned([p0, p1], now: 0)
        let untimed = alignment.take([record(p0, 0, nil)], now: 0)
        #expect(ids(untimed) == ["0:0"], "cannot be placed in time: processed at once")
        let timed = alignment.take([record(p1, 0, 5_000), record(p0, 1, nil)], now: 1)
        #expect(Set(ids(timed)) == ["1:0", "0:1"], "p0 cannot be placed in time and holds nothing back")
    }

    @Test func topicsAreAlignedSeparately() {
        var alignment = ReadAlignment(maxSkewMillis: 500, idleMillis: 2_000)
        let other = TopicPartition(topic: "other", partition: 0)
        alignment.assigned([p0, p1, other], now: 0)
        _ = alignment.take([record(p0, 0, 1_000), record(p1, 0, 1_000)], now: 0)
        let alone = alignment.take([record(other, 0, 900_000), record(p0, 1, 1_400)], now: 0)
        #expect(Set(ids(alone)) == ["0:0", "0:1"], "other is alone in its topic; p0 is within the skew")
    }

    @Test func aPartitionIsPausedOnceItQueuesTooMuchAndResumedAtHalf() {
        var alignment = started(pauseAfterBytes: 7)
        _ = alignment.take([record(p0, 1, 5_000), record(p0, 2, 5_000)], now: 1)
        let below = alignment.consumerChanges(now: 1)
        #expect(below == ([], []), "6 bytes queued: p0 keeps being fetched")
        _ = alignment.take([record(p0, 3, 5_000)], now: 2)
        let above = alignment.consumerChanges(now: 2)
        #expect(above == ([p0], []))
        let released = alignment.take([record(p1, 1, 4_600)], now: 3)
        #expect(ids(released) == ["1:1", "0:1", "0:2", "0:3"])
        let drained = alignment.consumerChanges(now: 3)
        #expect(drained == ([], [p0]))
    }

    @Test func revokingDropsQueuedRecords() {
        var alignment = ReadAlignment(maxSkewMillis: 500, idleMillis: 2_000, pauseAfterBytes: 0)
        alignment.assigned([p0, p1], now: 0)
        _ = alignment.take([record(p0, 0, 1_000), record(p1, 0, 1_000), record(p0, 1, 9_000)], now: 0)
        #expect(alignment.consumerChanges(now: 0) == ([p0], []))
        alignment.revoked([p0])
        #expect(alignment.queuedCount == 0)
        #expect(alignment.consumerChanges(now: 1) == ([], []), "a revoked partition is not resumed")
        let alone = alignment.take([record(p1, 1, 9_000)], now: 2)
        #expect(ids(alone) == ["1:1"], "p1 is alone now")
    }
}

/// A stage merging partitions into one, over a real broker: the backlog comes out in about the
/// order it was written, and nothing is lost or repeated.
@Suite(.enabled(if: TestBroker.isAvailable, "tansu broker not installed (run scripts/setup)"))
struct ReadAlignmentRunnerTests {
    /// Copies every record to partition 0 of `t.merged`, keeping its timestamp.
    struct MergingProcessor: StageProcessor {
        mutating func process(_ record: ConsumedRecord) -> StageOutput {
            StageOutput(records: [OutgoingRecord(topic: "t.merged", partition: 0, key: record.key, value: record.value,
                                                 timestamp: record.timestamp)])
        }
    }

    /// Largest amount by which a record's timestamp is behind one written before it.
    static func disorder(_ records: [ConsumedRecord]) -> Int64 {
        var newest = records.first?.timestamp ?? 0
        var worst: Int64 = 0
        for record in records {
            let t = record.timestamp ?? 0
            worst = max(worst, newest - t)
            newest = max(newest, t)
        }
        return worst
    }

    /// Four partitions of 2,000 records (700 bytes, 100 ms of record time apart: 200 s each) and
    /// an empty fifth, all written before the stage starts; returns the merged output.
    func merge(skew: Duration?, heldBytes: Int = 8 << 20, group: String) async throws -> [ConsumedRecord] {
        let broker = try await TestBroker.start()
        var config = StageConfig(stage: "vigil-test")
        config.kafka = TestBroker.config(broker)
        config.groupID = group
        config.metricsPort = 0
        config.topics = Topics(prefix: "t.")
        config.maxReadSkew = skew
        config.maxHeldBytesPerPartition = heldBytes
        // Every partition of the backlog reaches its end (the empty one at once), so none needs
        // to be given up as idle. In the parallel suite a stage can get no CPU for seconds:
        // with the default 5 s a partition resumed after a pause could then count as idle and
        // let the others run ahead.
        config.readIdle = .seconds(120)
        let admin = try KafkaAdmin(config: config.kafka, logger: TestBroker.logger)
        try await admin.createTopics([TopicSpec(name: "t.in", partitions: 5, replicationFactor: 1),
                                      TopicSpec(name: "t.merged", partitions: 1, replicationFactor: 1),
                                      TopicSpec(name: config.topics.deadLetters, partitions: 1, replicationFactor: 1)])
        let producer = try KafkaProducer(config: config.kafka, logger: TestBroker.logger)
        let start = Int64(Date().timeIntervalSince1970 * 1000) - 3_600_000
        let padding = String(repeating: "x", count: 680)
        for partition in 0..<4 {
            try await producer.send((0..<2_000).map { i in
                OutgoingRecord(topic: "t.in", partition: Int32(partition), value: Array("\(partition)-\(i)-\(padding)".utf8),
                               timestamp: start + Int64(i) * 100)
            })
        }
        await producer.close()
        let runner = StageRunner(config: config, inputTopics: ["t.in"], processor: MergingProcessor(),
                                 metrics: MetricsRegistry(), health: HealthState(), logger: TestBroker.logger)
        let task = Task { try await runner.run() }
        let done = await TestBroker.eventually(timeout: .seconds(90)) { runner.stats.withLock { $0.inputs } >= 8_000 }
        runner.requestStop()
        try await task.value
        #expect(done, "processed \(runner.stats.withLock { $0.inputs }) of 8,000")
        return try await TestBroker.readAll(broker, topic: "t.merged", partitions: 1, atLeast: 8_000, timeout: .seconds(60))
    }

    /// Held in memory (each partition's 1.4 MB stays under the pause threshold), or with the
    /// consumer pausing partitions that hold more than 64 kB (records fetched again on resume).
    @Test(arguments: [8 << 20, 64 << 10])
    func aBacklogIsMergedWithinTheSkewAndNothingIsLostOrRepeated(heldBytes: Int) async throws {
        let merged = try await merge(skew: .seconds(1), heldBytes: heldBytes, group: "aligned-\(heldBytes)")
        let values = merged.map { String(decoding: $0.value.prefix(12), as: UTF8.self).split(separator: "-").prefix(2).joined(separator: "-") }
        #expect(merged.count == 8_000, "every input exactly once (got \(merged.count))")
        #expect(Set(values).count == 8_000)
        let disorder = Self.disorder(merged)
        #expect(disorder <= 1_000, "records came out at most the skew behind an earlier one (worst \(disorder) ms)")
    }

    @Test func withoutAlignmentTheSameBacklogComesOutFarOutOfOrder() async throws {
        // The control for the test above: the load does exercise the skew.
        let merged = try await merge(skew: nil, group: "unaligned")
        #expect(merged.count >= 8_000)
        #expect(Self.disorder(merged) > 10_000, "worst \(Self.disorder(merged)) ms")
    }
}
