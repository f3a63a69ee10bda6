import Foundation
import Kafka
import Logging
import Pipeline

/// What a range read saw so far (progress reports and the replay summary).
public struct ReplayReadStats: Sendable, Equatable {
    /// Partitions of the topic.
    public var partitions = 0
    /// Records fetched, in range or not.
    public var read = 0
    /// Records inside the range, handed on.
    public var inRange = 0
    /// Records before the range start (the broker's time index landed early, or timestamps
    /// are out of order).
    public var before = 0
    /// Records after the range end.
    public var after = 0
    /// Records without a timestamp (skipped unless the range is everything).
    public var untimed = 0
    /// Timestamp of the last record handed on; `nil` before the first.
    public var position: Int64?
    /// Seconds since the read started.
    public var seconds = 0.0

    /// Records fetched per second.
    public var rate: Double { seconds > 0 ? Double(read) / seconds : 0 }
}

/// Reads one topic over a time range, every partition, without joining a consumer group
/// (nothing is committed), in an order that does not depend on how fetches interleave.
///
/// - Start: each partition is positioned with offsetsForTimes(range start). Brokers with a
///   coarse time index answer an earlier offset (Tansu answers the beginning), so records are
///   still filtered by their own time afterwards.
/// - End: the end of each partition is captured at start, so records written while the replay
///   runs are not read. Some brokers report a wrong high watermark from ListOffsets (Tansu
///   counts batches); the end is therefore the larger of that and the high watermark of the
///   first fetch response, and a partition is also finished at its partition-EOF event,
///   whichever comes first.
/// - Order: records are handed on in a merge of the partitions by (timestamp, partition,
///   offset). A record is released only when every unfinished partition has one buffered, so
///   the order depends on the partitions' contents alone, never on fetch timing; a partition
///   whose buffer is full is paused until the others catch up.
public enum ReplayTopicReader {
    /// Tuning of a read.
    public struct Settings: Sendable {
        /// Most records buffered for one partition before it is paused. Default 10,000.
        public var bufferLimit = 10_000
        /// Give up when no partition made progress (no record, no end) for this long. Default 60 s.
        public var stallTimeout: Duration = .seconds(60)
        /// How often `progress` is called. Default 1 s.
        public var progressInterval: Duration = .seconds(1)

        /// Default settings.
        public init() {}
    }

    /// Reads `topic` over `range`, calling `visit` with the records in range in merge order
    /// (one call per fetched batch) and `progress` about once per `settings.progressInterval`.
    /// `timeOf` gives a record's time (default: its Kafka timestamp); records it gives no
    /// time for are skipped unless the range is `everything`.
    @discardableResult
    public static func read(
        topic: String, range: ReplayRange, config: KafkaConfig, logger: Logger, settings: Settings = Settings(),
        timeOf: (ConsumedRecord) -> Int64? = { $0.timestamp },
        progress: (ReplayReadStats) -> Void = { _ in },
        visit: ([ConsumedRecord]) async throws -> Void
    ) async throws -> ReplayReadStats {
        let started = ContinuousClock.now
        let admin = try KafkaAdmin(config: config, logger: logger)
        guard let metadata = try await admin.listTopics().first(where: { $0.name == topic }) else {
            throw ConfigError("topic \(topic) does not exist")
        }
        var stats = ReplayReadStats()
        stats.partitions = metadata.partitions.count
        // No group: nothing is ever committed, and no other reader of the topic is disturbed.
        let consumer = try KafkaConsumer(config: config, groupID: nil, logger: logger, partitionEOF: true)
        var merge = PartitionMerge(partitions: metadata.partitions)
        var listedEnd: [Int32: Int64] = [:]
        var end: [Int32: Int64] = [:]
        var positions: [TopicPartitionOffset] = []
        do {
            var times: [TopicPartition: Int64] = [:]
            for partition in metadata.partitions {
                let tp = TopicPartition(topic: topic, partition: partition)
                listedEnd[partition] = try await consumer.watermarks(tp).high
                times[tp] = range.from
            }
            let starts = range.isOpenStart ? [:] : try await consumer.offsetsForTimes(times)
            for partition in metadata.partitions {
                let tp = TopicPartition(topic: topic, partition: partition)
                let start = range.isOpenStart ? KafkaConsumer.beginning : (starts[tp] ?? KafkaConsumer.beginning)
                if start < 0 && start != KafkaConsumer.beginning {
                    // -1: no record at or after the range start.
                    merge.finish(partition)
                } else {
                    positions.append(TopicPartitionOffset(tp, offset: start))
                }
            }
            if !positions.isEmpty { try consumer.assign(positions) }
            logger.debug("replay read assigned", metadata: [
                "topic": .string(topic),
                "starts": .string(positions.map { "\($0.topicPartition.partition)@\($0.offset)" }.joined(separator: ",")),
            ])

            var paused: Set<Int32> = []
            var lastProgress = ContinuousClock.now
            var lastChange = ContinuousClock.now
            while !merge.isComplete {
                let batch = try await consumer.poll(maxRecords: 2000, timeout: .milliseconds(200))
                if !batch.records.isEmpty || !batch.endOfPartition.isEmpty { lastChange = ContinuousClock.now }
                for record in batch.records where !merge.isFinished(record.partition) {
                    let partition = record.partition
                    if end[partition] == nil {
                        // The first fetch response's high watermark corrects a ListOffsets answer
                        // that counts batches instead of records. Until it is known, only the
                        // partition-EOF event ends the partition.
                        let fetched = consumer.cachedHighWatermark(TopicPartition(topic: topic, partition: partition))
                        if fetched >= 0 { end[partition] = max(listedEnd[partition] ?? -1, fetched) }
                    }
                    if let last = end[partition], record.offset >= last {
                        merge.finish(partition)
                        continue
                    }
                    stats.read += 1
                    if let time = timeOf(record) {
                        if time < range.from { stats.before += 1 } else if time > range.to { stats.after += 1 } else {
                            merge.append(record, time: time)
                        }
                    } else if range == .everything {
                        merge.append(record, time: .min)
                    } else {
                        stats.untimed += 1
                    }
                    if let last = end[partition], record.offset + 1 >= last { merge.finish(partition) }
                }
                for eof in batch.endOfPartition where eof.topicPartition.topic == topic {
                    merge.finish(eof.topicPartition.partition)
                }
                let released = merge.release()
                if !released.isEmpty {
                    stats.inRange += released.count
                    stats.position = merge.lastReleasedTime
                    try await visit(released)
                }
                // Flow control: pause partitions that are done or far ahead of the others.
                var toPause: [TopicPartition] = []
                var toResume: [TopicPartition] = []
                for partition in metadata.partitions {
                    let shouldPause = merge.isFinished(partition) || merge.buffered(partition) >= settings.bufferLimit
                    if shouldPause && !paused.contains(partition) {
                        paused.insert(partition)
                        toPause.append(TopicPartition(topic: topic, partition: partition))
                    } else if !shouldPause && paused.contains(partition) && merge.buffered(partition) < settings.bufferLimit / 2 {
                        paused.remove(partition)
                        toResume.append(TopicPartition(topic: topic, partition: partition))
                    }
                }
                let assigned = Set(positions.map(\.topicPartition))
                let pauseNow = toPause.filter(assigned.contains)
                if !pauseNow.isEmpty { try consumer.pause(pauseNow) }
                if !toResume.isEmpty { try consumer.resume(toResume) }

                let now = ContinuousClock.now
                if now - lastProgress >= settings.progressInterval {
                    lastProgress = now
                    stats.seconds = Self.seconds(now - started)
                    progress(stats)
                }
                if now - lastChange > settings.stallTimeout {
                    throw ConfigError("reading \(topic): partitions \(merge.unfinished.map(String.init).joined(separator: ",")) made no progress for \(settings.stallTimeout)")
                }
            }
        } catch {
            await consumer.close()
            throw error
        }
        await consumer.close()
        stats.seconds = Self.seconds(ContinuousClock.now - started)
        return stats
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}

/// The deterministic merge of a topic's partitions by (time, partition, offset). Pure.
struct PartitionMerge: Sendable {
    private struct Queue: Sendable {
        var items: [(time: Int64, record: ConsumedRecord)] = []
        var head = 0
        var count: Int { items.count - head }

        mutating func pop() -> ConsumedRecord {
            let record = items[head].record
            head += 1
            if head > 4096 && head * 2 > items.count {
                items.removeFirst(head)
                head = 0
            }
            return record
        }
    }

    private var queues: [Int32: Queue] = [:]
    private var finished: Set<Int32> = []
    private let partitions: [Int32]
    /// Time of the last record released.
    private(set) var lastReleasedTime: Int64?

    init(partitions: [Int32]) {
        self.partitions = partitions.sorted()
        for partition in partitions { queues[partition] = Queue() }
    }

    mutating func append(_ record: ConsumedRecord, time: Int64) {
        queues[record.partition, default: Queue()].items.append((time, record))
    }

    /// No more records will come for `partition`.
    mutating func finish(_ partition: Int32) { finished.insert(partition) }

    func isFinished(_ partition: Int32) -> Bool { finished.contains(partition) }

    func buffered(_ partition: Int32) -> Int { queues[partition]?.count ?? 0 }

    /// Partitions still being read.
    var unfinished: [Int32] { partitions.filter { !finished.contains($0) } }

    /// Every partition is finished and every buffered record released.
    var isComplete: Bool { finished.count >= partitions.count && queues.values.allSatisfy { $0.count == 0 } }

    /// Releases records while the smallest head is certain: every unfinished partition has
    /// a record buffered (a finished one needs none).
    mutating func release() -> [ConsumedRecord] {
        var out: [ConsumedRecord] = []
        while true {
            var best: Int32?
            var bestKey: (Int64, Int32, Int64)?
            for partition in partitions {
                guard let queue = queues[partition], queue.count > 0 else {
                    if finished.contains(partition) { continue }
                    return out
                }
                let head = queue.items[queue.head]
                let key = (head.time, partition, head.record.offset)
                if bestKey == nil || key < bestKey! {
                    bestKey = key
                    best = partition
                }
            }
            guard let partition = best else { return out }
            lastReleasedTime = bestKey!.0
            out.append(queues[partition]!.pop())
        }
    }
}
