import Kafka

/// Keeps the partitions of each input topic within a bounded skew of record time while a
/// runner catches up on a backlog.
///
/// A consumer catching up reads long runs of one partition before the next. A stage that
/// merges several input partitions into one output partition (ingest re-keys raw records;
/// detect re-keys events into partials) would then write each output partition far out of
/// event-time order, and detect would count the stragglers late. With alignment, every record
/// polled joins its partition's queue, and records leave the queues (to be processed) oldest
/// first, each only while it is no more than `maxSkewMillis` ahead of every other *active*
/// partition of its topic. A backlog is thereby processed in about the order it was written.
/// Queued records are never stored, so a restart reads them again.
///
/// A partition is active (may hold others back) while it has queued records, or until it is
/// at its end (the consumer's partition-EOF event), or is idle: not paused, silent for
/// `idleMillis` (5 s by default), and a poll came back empty after that (so none of its records
/// wait in librdkafka's queue behind other partitions'), or silent for 12 times as long.
/// A partition not heard from since its assignment holds the others back (its position is
/// unknown) for at most `idleMillis`. Live input is never slowed by a partition that is
/// caught up.
///
/// Once a partition queues more than `pauseAfterBytes`, the consumer pauses it: memory stays
/// bounded and the partitions behind it get the fetches. It is resumed when its queue is down
/// to half of that (librdkafka then fetches from after the last record it delivered).
///
/// Pure bookkeeping: the runner feeds it records, end-of-partition events and assignment
/// changes, and applies the pauses and resumes it asks for.
public struct ReadAlignment: Sendable {
    /// Largest allowed lead, in record-timestamp milliseconds, over the slowest active partition.
    public let maxSkewMillis: Int64
    /// How long a partition that delivers nothing is still waited for.
    public let idleMillis: Int64
    /// Queued bytes of one partition beyond which it is paused.
    public let pauseAfterBytes: Int

    struct Partition: Sendable {
        let tp: TopicPartition
        /// Largest record timestamp processed.
        var time: Int64?
        /// Largest offset delivered by the consumer (processed or queued); -1 before any.
        var lastOffset: Int64 = -1
        /// Offset reported by the last end-of-partition event, while nothing newer arrived.
        var endOffset: Int64?
        /// When it was assigned or resumed, or last delivered a record (epoch ms).
        var lastActivity: Int64
        /// Records delivered but not yet processed, in offset order, from `head` on.
        var queue: [ConsumedRecord] = []
        var head = 0
        /// Bytes (values and keys) of the records queued.
        var queuedBytes = 0
        /// Whether the consumer has been asked to pause it.
        var consumerPaused = false

        var isEmpty: Bool { head == queue.count }
        var atEnd: Bool { endOffset.map { $0 > lastOffset } ?? false }
        /// Where its processing stands in record time: its next record's timestamp, else the
        /// largest processed.
        var position: Int64? { isEmpty ? time : (queue[head].timestamp ?? time) }

        mutating func push(_ record: ConsumedRecord) {
            queue.append(record)
            queuedBytes += Self.size(record)
        }

        mutating func pop() -> ConsumedRecord {
            let record = queue[head]
            head += 1
            queuedBytes -= Self.size(record)
            if let t = record.timestamp { time = max(time ?? t, t) }
            if head == queue.count {
                queue.removeAll(keepingCapacity: true)
                head = 0
            }
            return record
        }

        static func size(_ record: ConsumedRecord) -> Int { record.value.count + (record.key?.count ?? 0) }
    }

    /// Every partition's state, found through `slots` (records are looked up once each; the
    /// per-record merge then works on indices).
    private var states: [Partition] = []
    private var slots: [TopicPartition: Int] = [:]
    /// When a poll last returned no record (epoch ms).
    private var lastEmptyPoll = Int64.min

    /// Alignment with the given skew, idle time and pause threshold.
    public init(maxSkewMillis: Int64, idleMillis: Int64 = 5_000, pauseAfterBytes: Int = 8 << 20) {
        self.maxSkewMillis = maxSkewMillis
        self.idleMillis = idleMillis
        self.pauseAfterBytes = pauseAfterBytes
    }

    /// Records queued, over every partition.
    public var queuedCount: Int { states.reduce(0) { $0 + $1.queue.count - $1.head } }

    /// Partitions now owned; their state starts fresh.
    public mutating func assigned(_ tps: [TopicPartition], now: Int64) {
        for tp in tps {
            if let index = slots[tp] {
                states[index] = Partition(tp: tp, lastActivity: now)
            } else {
                slots[tp] = states.count
                states.append(Partition(tp: tp, lastActivity: now))
            }
        }
    }

    /// Partitions no longer owned: their queued records are dropped (they were never stored;
    /// the next owner reads them).
    public mutating func revoked(_ tps: [TopicPartition]) {
        let gone = Set(tps)
        states.removeAll { gone.contains($0.tp) }
        slots = Dictionary(uniqueKeysWithValues: states.enumerated().map { ($1.tp, $0) })
    }

    /// End-of-partition events from a poll.
    public mutating func reachedEnd(_ ends: [TopicPartitionOffset]) {
        for end in ends {
            guard let index = slots[end.topicPartition] else { continue }
            states[index].endOffset = end.offset
        }
    }

    /// Queues a poll's records and returns those that may be processed now, oldest first
    /// within each topic: a record leaves its queue only while it is no more than the skew
    /// ahead of every other active partition of its topic.
    public mutating func take(_ records: [ConsumedRecord], now: Int64) -> [ConsumedRecord] {
        if records.isEmpty { lastEmptyPoll = now }
        var last: (tp: TopicPartition, index: Int)?
        for record in records {
            let index: Int
            if let last, last.tp.partition == record.partition, last.tp.topic == record.topic {
                index = last.index
            } else {
                let tp = TopicPartition(topic: record.topic, partition: record.partition)
                if let known = slots[tp] {
                    index = known
                } else {
                    index = states.count
                    slots[tp] = index
                    states.append(Partition(tp: tp, lastActivity: now))
                }
                last = (tp, index)
            }
            states[index].lastActivity = now
            states[index].lastOffset = max(states[index].lastOffset, record.offset)
            if let end = states[index].endOffset, record.offset >= end { states[index].endOffset = nil }
            states[index].push(record)
        }
        var topics: [String] = []
        for state in states where !state.isEmpty && !topics.contains(state.tp.topic) { topics.append(state.tp.topic) }
        var out: [ConsumedRecord] = []
        out.reserveCapacity(records.count)
        for topic in topics.sorted() { drain(topic: topic, now: now, into: &out) }
        return out
    }

    /// Moves records of `topic` out of their queues, always the oldest next, while allowed.
    private mutating func drain(topic: String, now: Int64, into out: inout [ConsumedRecord]) {
        let members = states.indices.filter { states[$0].tp.topic == topic }.sorted { states[$0].tp < states[$1].tp }
        while true {
            // The queued partition whose next record is oldest; a record without a timestamp
            // cannot be placed and goes first.
            var next: Int?
            var nextTime = Int64.max
            for index in members where !states[index].isEmpty {
                let t = states[index].queue[states[index].head].timestamp ?? Int64.min
                if next == nil || t < nextTime { next = index; nextTime = t }
            }
            guard let index = next else { return }
            if nextTime != Int64.min, let bound = bound(members: members, now: now, excluding: index), nextTime > bound { return }
            out.append(states[index].pop())
        }
    }

    /// What the consumer must do now: pause partitions queuing more than `pauseAfterBytes`,
    /// resume paused ones whose queue is down to half of it. Marks them done.
    public mutating func consumerChanges(now: Int64) -> (pause: [TopicPartition], resume: [TopicPartition]) {
        var pause: [TopicPartition] = []
        var resume: [TopicPartition] = []
        for index in states.indices {
            if !states[index].consumerPaused && states[index].queuedBytes > pauseAfterBytes {
                states[index].consumerPaused = true
                pause.append(states[index].tp)
            } else if states[index].consumerPaused && states[index].queuedBytes <= pauseAfterBytes / 2 {
                states[index].consumerPaused = false
                states[index].lastActivity = now
                resume.append(states[index].tp)
            }
        }
        return (pause.sorted(), resume.sorted())
    }

    /// Whether a partition with nothing queued stopped delivering (rather than waiting behind
    /// other partitions' records in librdkafka's queue, or paused by us).
    private func isIdle(_ p: Partition, now: Int64) -> Bool {
        guard !p.consumerPaused, now - p.lastActivity > idleMillis else { return false }
        if lastEmptyPoll != Int64.min && lastEmptyPoll - p.lastActivity > idleMillis { return true }
        return now - p.lastActivity > 12 * idleMillis
    }

    /// The largest record time a partition of the topic other than `excluding` may process now:
    /// the slowest other active partition's position plus the skew; `nil` means no bound.
    /// A partition not heard from within its idle time bounds the others at `Int64.min`.
    private func bound(members: [Int], now: Int64, excluding: Int) -> Int64? {
        var slowest: Int64?
        for index in members where index != excluding {
            let p = states[index]
            if p.isEmpty {
                if p.atEnd || isIdle(p, now: now) { continue }
            }
            guard let time = p.position else {
                // Never heard from: its position is unknown. Heard from, but its records carry
                // no timestamps: it cannot be placed and holds nothing back.
                if p.lastOffset < 0 { return Int64.min }
                continue
            }
            slowest = min(slowest ?? time, time)
        }
        return slowest.map { $0 > Int64.max - maxSkewMillis ? Int64.max : $0 + maxSkewMillis }
    }
}
