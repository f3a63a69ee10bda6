import Foundation
import Kafka
import Logging
import ServiceLifecycle
import Synchronization

/// Why an input record could not be processed. It goes to the dead-letter topic with these
/// reasons in headers; the stage moves on.
public struct DeadLetter: Error, Sendable, Equatable {
    /// Stable machine code (`invalid_json`, `unknown_source`, `produce_failed`, ...).
    public var code: String
    /// Human reason; never payload contents.
    public var reason: String
    /// The bytes to dead-letter; `nil` means the input record's own value.
    public var bytes: [UInt8]?
    /// Index of the bad entry inside a multi-entry input, when only that entry failed.
    public var entryIndex: Int?

    /// A dead letter.
    public init(code: String, reason: String, bytes: [UInt8]? = nil, entryIndex: Int? = nil) {
        self.code = code
        self.reason = reason
        self.bytes = bytes
        self.entryIndex = entryIndex
    }
}

/// What a processor made of one input (or of an idle tick).
public struct StageOutput: Sendable {
    /// Records to produce.
    public var records: [OutgoingRecord]
    /// Inputs (or parts of inputs) that could not be processed.
    public var deadLetters: [DeadLetter]

    /// An output.
    public init(records: [OutgoingRecord] = [], deadLetters: [DeadLetter] = []) {
        self.records = records
        self.deadLetters = deadLetters
    }

    /// Nothing to produce.
    public static let empty = StageOutput()
}

/// A stage's transform: one input record to zero or more outputs, on any topics.
///
/// Called sequentially by one runner (never concurrently), so implementations may keep
/// state in plain stored properties. Must not trap on any input: bad input is a dead letter.
public protocol StageProcessor: Sendable {
    /// Transforms one record.
    mutating func process(_ record: ConsumedRecord) -> StageOutput
    /// Called when a poll found nothing; `now` is the wall clock in epoch ms.
    mutating func idle(now: Int64) -> StageOutput
    /// What the runner calls: `process(_:)` unless the processor itself waits on I/O (the
    /// response executor calls AWS and webhooks), in which case it implements this instead.
    mutating func processAsync(_ record: ConsumedRecord) async -> StageOutput
    /// What the runner calls on an empty poll: `idle(now:)` unless overridden.
    mutating func idleAsync(now: Int64) async -> StageOutput
    /// Partitions this copy now owns.
    mutating func partitionsAssigned(_ partitions: [TopicPartition])
    /// What the runner calls on assignment, before any record of `partitions` is processed:
    /// `partitionsAssigned(_:)` unless the processor loads state (detect aggregate restores
    /// its snapshots).
    mutating func partitionsAssignedAsync(_ partitions: [TopicPartition]) async
    /// Called after a batch's outputs are all acknowledged, before its offsets are stored:
    /// records that save the processor's state (detect aggregate snapshots), if any are due.
    mutating func checkpoint(now: Int64) -> [OutgoingRecord]
    /// Every record of the last ``checkpoint(now:)`` was acknowledged (`true`), or some was
    /// not (`false`: the checkpoint does not count).
    mutating func checkpointDelivered(_ delivered: Bool)
    /// Partitions this copy no longer owns; drop their state.
    mutating func partitionsRevoked(_ partitions: [TopicPartition])
    /// The lowest offset of `partition` whose record the processor still holds in state
    /// (for example in an open window). The runner never commits past it, so a restart
    /// re-reads what the state needed.
    func retainedOffset(for partition: TopicPartition) -> Int64?
}

extension StageProcessor {
    public mutating func idle(now: Int64) -> StageOutput { .empty }
    public mutating func processAsync(_ record: ConsumedRecord) async -> StageOutput { process(record) }
    public mutating func idleAsync(now: Int64) async -> StageOutput { idle(now: now) }
    public mutating func partitionsAssigned(_ partitions: [TopicPartition]) {}
    public mutating func partitionsAssignedAsync(_ partitions: [TopicPartition]) async { partitionsAssigned(partitions) }
    public mutating func checkpoint(now: Int64) -> [OutgoingRecord] { [] }
    public mutating func checkpointDelivered(_ delivered: Bool) {}
    public mutating func partitionsRevoked(_ partitions: [TopicPartition]) {}
    public func retainedOffset(for partition: TopicPartition) -> Int64? { nil }
}

/// Builds the dead-letter record for an input: original bytes, key and headers, plus headers
/// naming the stage, the error and where the input came from.
public func deadLetterRecord(stage: String, topics: Topics, input: ConsumedRecord, letter: DeadLetter) -> OutgoingRecord {
    var headers = input.headers.filter { !$0.name.hasPrefix("vigil-dlq-") }
    headers.append(KafkaHeader(VigilHeader.dlqStage, stage))
    headers.append(KafkaHeader(VigilHeader.dlqErrorCode, letter.code))
    headers.append(KafkaHeader(VigilHeader.dlqError, String(letter.reason.prefix(1000))))
    headers.append(KafkaHeader(VigilHeader.dlqTopic, input.topic))
    headers.append(KafkaHeader(VigilHeader.dlqPartition, String(input.partition)))
    headers.append(KafkaHeader(VigilHeader.dlqOffset, String(input.offset)))
    if let entry = letter.entryIndex { headers.append(KafkaHeader(VigilHeader.dlqEntry, String(entry))) }
    return OutgoingRecord(topic: topics.deadLetters, key: input.key, value: letter.bytes ?? input.value,
                          headers: headers, timestamp: input.timestamp)
}

/// Consume -> transform -> produce -> store, with at-least-once delivery.
///
/// An input's offset is stored only after every output derived from it (records and dead
/// letters) is acknowledged by the broker; stored offsets are committed in the background,
/// on revoke (inside the rebalance callback, while the partitions are still ours) and on
/// shutdown. On SIGTERM the runner finishes the batch in hand, stores, commits, leaves the
/// group and flushes the producer.
public final class StageRunner: Service, Sendable {
    /// The configuration it runs with.
    public let config: StageConfig
    let inputTopics: [String]
    let processor: Mutex<(any StageProcessor)?>
    let metrics: MetricsRegistry
    let health: HealthState
    let logger: Logger
    private let listener: RunnerRebalanceListener
    private let stopRequested = Atomic<Bool>(false)
    /// Throughput bookkeeping: inputs processed, first input seen, last batch delivered.
    public let stats = Mutex<RunnerStats>(RunnerStats())
    /// Work that must finish before the runner joins its group (enrich loads the inventory
    /// topic); the stage is alive but not ready meanwhile.
    let prepare: (@Sendable () async throws -> Void)?

    /// A runner consuming `inputTopics` in `config.groupID`, after `prepare` (if any) has run.
    public init(config: StageConfig, inputTopics: [String], processor: any StageProcessor,
                metrics: MetricsRegistry, health: HealthState, logger: Logger,
                prepare: (@Sendable () async throws -> Void)? = nil) {
        self.prepare = prepare
        self.config = config
        self.inputTopics = inputTopics
        self.processor = Mutex(processor)
        self.metrics = metrics
        self.health = health
        self.logger = logger
        self.listener = RunnerRebalanceListener(logger: logger)
    }

    /// Asks the loop to stop after the batch in hand (what SIGTERM does).
    public func requestStop() { stopRequested.store(true, ordering: .relaxed) }

    public func run() async throws {
        guard var processor = self.processor.withLock({ $0.take() }) else {
            throw ConfigError("a StageRunner can run only once")
        }
        if let prepare {
            health.markNotReady("preparing")
            do { try await prepare() } catch {
                health.markDead("\(error)")
                throw error
            }
        }
        // End-of-partition events tell read alignment which partitions are caught up.
        let consumer = try KafkaConsumer(config: config.kafka, groupID: config.groupID, logger: logger,
                                         rebalanceListener: listener, partitionEOF: config.maxReadSkew != nil)
        var producer = try KafkaProducer(config: config.kafka, logger: logger)
        try consumer.subscribe(inputTopics)
        logger.info("stage started", metadata: ["group": .string(config.groupID), "inputs": .string(inputTopics.joined(separator: ","))])
        do {
            try await withGracefulShutdownHandler {
                try await loop(consumer: consumer, producer: &producer, processor: &processor)
            } onGracefulShutdown: { [self] in
                requestStop()
            }
        } catch {
            health.markDead("\(error)")
            await consumer.close()
            await producer.close(timeout: .seconds(5))
            throw error
        }
        health.markNotReady("stopping")
        // Everything processed is stored; commit it, then leave the group (which commits again
        // from the revoke callback) and flush anything still queued.
        do { try await consumer.commit() } catch { logger.warning("final commit failed", metadata: ["error": "\(error)"]) }
        await consumer.close()
        await producer.close()
        logger.info("stage stopped")
    }

    private func loop(consumer: KafkaConsumer, producer: inout KafkaProducer, processor: inout any StageProcessor) async throws {
        let stage = config.stage
        var alignment = config.maxReadSkew.map {
            ReadAlignment(maxSkewMillis: Int64($0.components.seconds) * 1000 + $0.components.attoseconds / 1_000_000_000_000_000,
                          idleMillis: config.readIdle.components.seconds * 1000
                              + config.readIdle.components.attoseconds / 1_000_000_000_000_000,
                          pauseAfterBytes: config.maxHeldBytesPerPartition)
        }
        while !stopRequested.load(ordering: .relaxed) && !Task.isCancelled {
            let batch: ConsumerBatch
            do {
                batch = try await consumer.poll(maxRecords: config.batchSize, timeout: .milliseconds(200))
            } catch {
                if error.isFatal { throw error }
                logger.warning("poll failed; retrying", metadata: ["error": .string(error.description)])
                try? await Task.sleep(for: .seconds(1))
                continue
            }
            health.markReady()
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            for change in listener.drain() {
                switch change {
                case .assigned(let partitions):
                    await processor.partitionsAssignedAsync(partitions)
                    if alignment != nil {
                        alignment!.assigned(partitions, now: now)
                        // A partition paused by an earlier owner of this process's consumer
                        // may still be paused in librdkafka; alignment starts fresh.
                        try? consumer.resume(partitions)
                    }
                case .revoked(let partitions):
                    processor.partitionsRevoked(partitions)
                    alignment?.revoked(partitions)
                }
            }
            // Records to process now: with read alignment, those of the batch and of earlier
            // ones that are not too far ahead of their topic's slowest partition (the rest wait
            // in memory, unstored).
            var inputs = batch.records
            // Taken out while it changes: a copy left behind would make every queue it appends to
            // copy itself once per batch.
            if var aligned = alignment.take() {
                aligned.reachedEnd(batch.endOfPartition)
                inputs = aligned.take(batch.records, now: now)
                try applyAlignment(&aligned, consumer: consumer, now: now)
                alignment = aligned
            }
            if inputs.isEmpty {
                // Records read alignment holds are input waiting for a slower partition, not
                // idleness: no idle tick (a watermark must not follow the wall clock past them).
                if (alignment?.queuedCount ?? 0) > 0 { continue }
                if let idleExit = config.exitWhenIdle, let last = stats.withLock({ $0.lastDelivered }),
                   ContinuousClock.now - last >= idleExit {
                    logger.info("input idle; exiting as asked")
                    return
                }
                let output = await processor.idleAsync(now: Int64(Date().timeIntervalSince1970 * 1000))
                if !output.records.isEmpty {
                    let items = output.records.map { PendingOutput(record: $0, inputIndex: nil) }
                    guard try await deliver(items, inputs: [], producer: &producer) else { return }
                }
                continue
            }
            stats.withLock { $0.firstInput = $0.firstInput ?? ContinuousClock.now }
            var pending: [PendingOutput] = []
            // Counted per topic once per batch, not per record (a labelled series is a hashed
            // lookup under a lock).
            var inputsByTopic: [(topic: String, count: Int)] = []
            for (index, record) in inputs.enumerated() {
                let output = await processor.processAsync(record)
                if let last = inputsByTopic.indices.last, inputsByTopic[last].topic == record.topic {
                    inputsByTopic[last].count += 1
                } else if let known = inputsByTopic.firstIndex(where: { $0.topic == record.topic }) {
                    inputsByTopic[known].count += 1
                } else {
                    inputsByTopic.append((record.topic, 1))
                }
                for out in output.records { pending.append(PendingOutput(record: out, inputIndex: index)) }
                for letter in output.deadLetters {
                    pending.append(PendingOutput(record: deadLetterRecord(stage: stage, topics: config.topics, input: record, letter: letter),
                                                 inputIndex: index))
                    metrics.increment("vigil_records_dead_lettered_total", labels: ["stage": stage, "code": letter.code],
                                      help: "Inputs (or entries of inputs) sent to the dead-letter topic, by error code.")
                    logger.warning("dead-lettered", metadata: [
                        "code": .string(letter.code), "reason": .string(letter.reason),
                        "topic": .string(record.topic), "partition": .stringConvertible(record.partition),
                        "offset": .stringConvertible(record.offset),
                    ])
                }
            }
            for (topic, count) in inputsByTopic {
                metrics.increment("vigil_records_in_total", by: Double(count), labels: ["stage": stage, "topic": topic],
                                  help: "Records consumed by the stage.")
            }
            // Not delivered (shutdown during retries): store nothing; the batch is re-read later.
            guard try await deliver(pending, inputs: inputs, producer: &producer) else { return }
            let checkpoint = processor.checkpoint(now: Int64(Date().timeIntervalSince1970 * 1000))
            if !checkpoint.isEmpty { processor.checkpointDelivered(await deliverCheckpoint(checkpoint, producer: producer)) }
            try storeOffsets(for: inputs, consumer: consumer, processor: processor)
            stats.withLock {
                $0.inputs += inputs.count
                $0.lastDelivered = ContinuousClock.now
            }
        }
    }

    /// Pauses the partitions alignment queues too much of and resumes those it drained.
    private func applyAlignment(_ alignment: inout ReadAlignment, consumer: KafkaConsumer, now: Int64) throws {
        let (pause, resume) = alignment.consumerChanges(now: now)
        if !pause.isEmpty {
            try consumer.pause(pause)
            for tp in pause {
                metrics.increment("vigil_input_pauses_total", labels: ["stage": config.stage, "topic": tp.topic],
                                  help: "Input partitions paused because read alignment queued too much of them while a slower partition of their topic caught up.")
            }
        }
        if !resume.isEmpty { try consumer.resume(resume) }
        if !pause.isEmpty || !resume.isEmpty {
            logger.debug("read alignment", metadata: ["paused": .string(pause.map(\.description).joined(separator: ",")),
                                                      "resumed": .string(resume.map(\.description).joined(separator: ","))])
        }
        metrics.set("vigil_input_queued_records", Double(alignment.queuedCount), labels: ["stage": config.stage],
                    help: "Input records read but queued by read alignment until the slowest partition of their topic catches up.")
    }

    private struct PendingOutput {
        var record: OutgoingRecord
        var inputIndex: Int?
    }

    /// Produces until every output is acknowledged. Retriable failures are retried with
    /// backoff; a non-retriable failure dead-letters the input it came from. Returns false
    /// when a stop was requested before everything was delivered.
    private func deliver(_ outputs: [PendingOutput], inputs: [ConsumedRecord], producer: inout KafkaProducer) async throws -> Bool {
        var toSend = outputs
        var attempt = 0
        while !toSend.isEmpty {
            let results = try await producer.sendEachReportingFatal(toSend.map(\.record))
            // A fatal producer error (librdkafka's idempotence state no longer matches the
            // broker's, e.g. a broker restarted without its producer state) is not the records'
            // fault: replace the producer and send what failed again; inputs stay unstored
            // until then, so at worst outputs are duplicated under their deterministic ids.
            let fatal = producer.fatalError
            if let fatal {
                logger.error("producer failed fatally; replacing it", metadata: ["error": .string(fatal.description)])
                metrics.increment("vigil_producer_replaced_total", labels: ["stage": config.stage],
                                  help: "Producers replaced after a fatal error (outputs not acknowledged are sent again).")
                await producer.close(timeout: .seconds(1))
                producer = try KafkaProducer(config: config.kafka, logger: logger)
            }
            var retry: [PendingOutput] = []
            for (item, result) in zip(toSend, results) {
                switch result {
                case .success:
                    metrics.increment("vigil_records_out_total", labels: ["stage": config.stage, "topic": item.record.topic],
                                      help: "Records produced by the stage and acknowledged by the broker.")
                case .failure(let error) where error.isRetriable || fatal != nil:
                    retry.append(item)
                case .failure(let error):
                    if item.record.topic == config.topics.deadLetters {
                        // Too big for the dead-letter topic (the input was accepted where it came
                        // from, the letter adds headers): keep the reason, the headers and the
                        // first bytes; the whole input stays at its topic/partition/offset.
                        if Self.isTooLarge(error), let cut = Self.truncated(item.record) {
                            retry.append(PendingOutput(record: cut, inputIndex: item.inputIndex))
                            metrics.increment("vigil_dead_letters_truncated_total", labels: ["stage": config.stage],
                                              help: "Dead letters too large for the dead-letter topic, written with only their first bytes.")
                            continue
                        }
                        // Nowhere left to put it: stop rather than lose it silently.
                        throw error
                    }
                    if let index = item.inputIndex {
                        let letter = DeadLetter(code: "produce_failed", reason: "output to \(item.record.topic) rejected: \(error.description)")
                        retry.append(PendingOutput(record: deadLetterRecord(stage: config.stage, topics: config.topics, input: inputs[index], letter: letter),
                                                   inputIndex: index))
                        metrics.increment("vigil_records_dead_lettered_total", labels: ["stage": config.stage, "code": letter.code])
                    } else {
                        let input = ConsumedRecord(topic: item.record.topic, partition: -1, offset: -1, key: item.record.key,
                                                   value: item.record.value, headers: item.record.headers, timestamp: item.record.timestamp)
                        let letter = DeadLetter(code: "produce_failed", reason: "output rejected: \(error.description)")
                        retry.append(PendingOutput(record: deadLetterRecord(stage: config.stage, topics: config.topics, input: input, letter: letter),
                                                   inputIndex: nil))
                    }
                    logger.error("output rejected by broker", metadata: ["topic": .string(item.record.topic), "error": .string(error.description)])
                }
            }
            toSend = retry
            if !toSend.isEmpty {
                attempt += 1
                metrics.increment("vigil_produce_retries_total", by: Double(toSend.count), labels: ["stage": config.stage],
                                  help: "Outputs produced again after a retriable failure.")
                if stopRequested.load(ordering: .relaxed) { return false }
                let delay = min(100 * (1 << min(attempt, 6)), 5000)
                logger.warning("retrying outputs", metadata: ["count": .stringConvertible(toSend.count), "delay_ms": .stringConvertible(delay)])
                try? await Task.sleep(for: .milliseconds(delay))
            }
        }
        return true
    }

    /// Produces a checkpoint once, without retries (a later batch makes a newer one); `true`
    /// when every record was acknowledged.
    private func deliverCheckpoint(_ records: [OutgoingRecord], producer: KafkaProducer) async -> Bool {
        do {
            for case .failure(let error) in try await producer.sendEach(records) {
                logger.warning("checkpoint not written", metadata: ["topic": .string(records[0].topic), "error": .string(error.description)])
                metrics.increment("vigil_checkpoint_failures_total", labels: ["stage": config.stage],
                                  help: "State checkpoints (detect aggregate snapshots) that were not written; the previous one stays in use.")
                return false
            }
            return true
        } catch {
            logger.warning("checkpoint not written", metadata: ["error": .string(error.description)])
            return false
        }
    }

    /// Bytes of a payload kept in a truncated dead letter.
    static let truncatedLetterBytes = 64 * 1024

    static func isTooLarge(_ error: KafkaError) -> Bool {
        ["MSG_SIZE_TOO_LARGE", "RECORD_LIST_TOO_LARGE", "MESSAGE_TOO_LARGE"].contains { error.name.contains($0) }
    }

    /// The dead letter with its value cut to ``truncatedLetterBytes`` and a header saying so
    /// (the original size); `nil` when it was already cut.
    static func truncated(_ record: OutgoingRecord) -> OutgoingRecord? {
        guard !record.headers.contains(where: { $0.name == VigilHeader.dlqTruncated }) else { return nil }
        var cut = record
        cut.value = Array(record.value.prefix(truncatedLetterBytes))
        cut.headers = record.headers.map { header in
            guard header.name == VigilHeader.dlqError, let value = header.value else { return header }
            return KafkaHeader(name: header.name, value: Array(value.prefix(200)))
        }
        cut.headers.append(KafkaHeader(VigilHeader.dlqTruncated, String(record.value.count)))
        return cut
    }

    private func storeOffsets(for records: [ConsumedRecord], consumer: KafkaConsumer, processor: any StageProcessor) throws {
        var next: [TopicPartition: Int64] = [:]
        // Records come in runs of one partition: hashed once per run, not per record.
        var run: (tp: TopicPartition, next: Int64)?
        for record in records {
            if let current = run, current.tp.partition == record.partition, current.tp.topic == record.topic {
                run = (current.tp, max(current.next, record.offset + 1))
                continue
            }
            if let current = run { next[current.tp] = max(next[current.tp] ?? 0, current.next) }
            run = (TopicPartition(topic: record.topic, partition: record.partition), record.offset + 1)
        }
        if let current = run { next[current.tp] = max(next[current.tp] ?? 0, current.next) }
        var offsets: [TopicPartitionOffset] = []
        for (tp, offset) in next {
            let retained = processor.retainedOffset(for: tp)
            offsets.append(TopicPartitionOffset(tp, offset: min(offset, retained ?? offset)))
            let high = consumer.cachedHighWatermark(tp)
            if high >= 0 {
                metrics.set("vigil_consumer_lag", Double(max(0, high - offset)),
                            labels: ["stage": config.stage, "topic": tp.topic, "partition": String(tp.partition)],
                            help: "Records between the last processed offset and the partition's end.")
            }
        }
        try consumer.store(offsets)
    }
}

/// What a runner has done so far.
public struct RunnerStats: Sendable {
    /// Inputs processed and stored.
    public var inputs = 0
    /// When the first input arrived.
    public var firstInput: ContinuousClock.Instant?
    /// When the last batch's outputs were all delivered.
    public var lastDelivered: ContinuousClock.Instant?
}

/// Records rebalances for the runner and commits stored offsets of revoked partitions while
/// they are still owned. Stored offsets are always current: the runner stores after every
/// batch and polls (which is when rebalances run) only between batches.
final class RunnerRebalanceListener: RebalanceListener {
    enum Change: Sendable {
        case assigned([TopicPartition])
        case revoked([TopicPartition])
    }

    private let changes = Mutex<[Change]>([])
    private let logger: Logger

    init(logger: Logger) { self.logger = logger }

    func partitionsAssigned(_ partitions: [TopicPartition], actions: RebalanceActions) {
        changes.withLock { $0.append(.assigned(partitions)) }
    }

    func partitionsRevoked(_ partitions: [TopicPartition], actions: RebalanceActions) {
        do { try actions.commit() } catch {
            logger.warning("commit on revoke failed", metadata: ["error": .string(error.description)])
        }
        changes.withLock { $0.append(.revoked(partitions)) }
    }

    func drain() -> [Change] {
        changes.withLock { changes in
            defer { changes.removeAll() }
            return changes
        }
    }
}
