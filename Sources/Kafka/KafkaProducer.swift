import CRdKafka
import Dispatch
import Foundation
import Logging
import Synchronization

/// Produces records and reports when the broker has acknowledged them.
///
/// `send` returns only after every record's delivery report, which is what lets a stage store
/// its input offset safely (at-least-once). Idempotence is on by default, so retries inside
/// librdkafka never duplicate or reorder records in a partition.
public final class KafkaProducer: Sendable {
    private let client: NativeClient
    private let poller: PollLoop
    private let closed = Atomic<Bool>(false)

    /// Vigil's producer defaults; `config.properties` override them.
    public static let defaults: [String: String] = [
        "enable.idempotence": "true",
        // A stage enqueues a whole batch's outputs and then waits for them, so waiting longer
        // to fill produce requests only adds latency to every batch that has outputs.
        "linger.ms": "0",
        "batch.num.messages": "10000",
        "queue.buffering.max.kbytes": "262144",
        "compression.type": "lz4",
    ]

    /// Consumer-only librdkafka properties. One configuration (say from `VIGIL_KAFKA_*`) serves
    /// a stage's consumer and producer; these are left out of the producer, which would only
    /// warn that it ignores them.
    static let consumerOnlyProperties: Set<String> = [
        "group.id", "group.instance.id", "session.timeout.ms", "heartbeat.interval.ms", "max.poll.interval.ms",
        "partition.assignment.strategy", "group.protocol", "group.remote.assignor", "enable.auto.commit",
        "auto.commit.interval.ms", "enable.auto.offset.store", "auto.offset.reset", "enable.partition.eof",
        "fetch.wait.max.ms", "fetch.min.bytes", "fetch.max.bytes", "max.partition.fetch.bytes",
        "queued.min.messages", "queued.max.messages.kbytes", "fetch.queue.backoff.ms", "isolation.level", "check.crcs",
    ]

    /// Connects a producer (the connection is made lazily by librdkafka).
    public init(config: KafkaConfig, logger: Logger) throws(KafkaError) {
        let context = ClientContext(logger: logger, rebalanceListener: nil)
        var config = config
        config.properties = config.properties.filter { !KafkaProducer.consumerOnlyProperties.contains($0.key) }
        client = try NativeClient(type: RD_KAFKA_PRODUCER, config: config, defaults: KafkaProducer.defaults,
                                  context: context) { conf in
            rd_kafka_conf_set_dr_msg_cb(conf, deliveryReportCallback)
        }
        poller = PollLoop(client: client)
    }

    deinit {
        poller.stop()
    }

    /// The fatal error librdkafka raised for this instance, if any (an idempotent producer whose
    /// sequence numbers the broker no longer agrees with, say after a broker lost its producer
    /// state): every later send fails and the instance must be replaced.
    public var fatalError: KafkaError? { client.context.fatal.withLock { $0 } }

    /// Produces one record and waits for its delivery report.
    @discardableResult
    public func send(_ record: OutgoingRecord) async throws(KafkaError) -> DeliveryReport {
        try await send([record])[0]
    }

    /// Produces records (librdkafka batches them) and waits for every delivery report.
    /// Throws the first delivery error; records that did succeed stay written.
    @discardableResult
    public func send(_ records: [OutgoingRecord]) async throws(KafkaError) -> [DeliveryReport] {
        var reports: [DeliveryReport] = []
        reports.reserveCapacity(records.count)
        for result in try await sendEach(records) { reports.append(try result.get()) }
        return reports
    }

    /// ``sendEach(_:)``, but a fatal producer error comes back as every record's failure instead
    /// of being thrown, so a caller that replaces the producer (see ``fatalError``) can send the
    /// same records again.
    public func sendEachReportingFatal(_ records: [OutgoingRecord]) async throws(KafkaError) -> [Result<DeliveryReport, KafkaError>] {
        do {
            return try await sendEach(records)
        } catch where error.isFatal {
            return records.map { _ in .failure(error) }
        }
    }

    /// Produces records and waits for every delivery report, returning each record's outcome
    /// in input order, so a caller can retry or dead-letter exactly the records that failed.
    public func sendEach(_ records: [OutgoingRecord]) async throws(KafkaError) -> [Result<DeliveryReport, KafkaError>] {
        if records.isEmpty { return [] }
        guard !closed.load(ordering: .relaxed) else { throw .closed("send") }
        try client.checkFatal()
        let batch = DeliveryBatch(count: records.count)
        return await withCheckedContinuation { continuation in
            batch.setContinuation(continuation)
            for (index, record) in records.enumerated() {
                enqueue(record, slot: DeliverySlot(batch: batch, index: index))
            }
        }
    }

    private func enqueue(_ record: OutgoingRecord, slot: DeliverySlot) {
        let headers: OpaquePointer? = record.headers.isEmpty ? nil : makeHeaders(record.headers)
        let opaque = Unmanaged.passRetained(slot).toOpaque()
        var attempts = 0
        while true {
            let error = record.value.withUnsafeBytes { value in
                withOptionalBytes(record.key) { key in
                    vigil_produce(client.handle, record.topic, record.partition ?? RD_KAFKA_PARTITION_UA,
                                  value.baseAddress, value.count, key?.baseAddress, key?.count ?? 0,
                                  record.timestamp ?? 0, headers, opaque)
                }
            }
            if error == RD_KAFKA_RESP_ERR_NO_ERROR { return }
            // The local queue is full: the poll thread drains it as deliveries complete.
            // This sleeps the calling thread briefly; it only happens under sustained overload.
            if error == RD_KAFKA_RESP_ERR__QUEUE_FULL && attempts < 30_000 {
                attempts += 1
                usleep(1000)
                continue
            }
            if let headers { rd_kafka_headers_destroy(headers) }
            Unmanaged<DeliverySlot>.fromOpaque(opaque).release()
            slot.batch.complete(index: slot.index, report: nil,
                                error: KafkaError(code: error, reason: "produce to \(record.topic)"))
            return
        }
    }

    private func makeHeaders(_ headers: [KafkaHeader]) -> OpaquePointer {
        let list = rd_kafka_headers_new(headers.count)!
        for header in headers {
            if let value = header.value {
                value.withUnsafeBytes { bytes in
                    _ = rd_kafka_header_add(list, header.name, -1, bytes.baseAddress, bytes.count)
                }
            } else {
                _ = rd_kafka_header_add(list, header.name, -1, nil, 0)
            }
        }
        return list
    }

    /// Waits until every queued record is delivered or `timeout` passes.
    public func flush(timeout: Duration = .seconds(30)) async throws(KafkaError) {
        let client = self.client
        let millis = Int32(clamping: timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        let code = await Blocking.run { rd_kafka_flush(client.handle, millis) }
        if code != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError(code: code, reason: "flush: \(rd_kafka_outq_len(client.handle)) records still queued")
        }
    }

    /// Flushes, then stops the delivery-report thread. Later sends fail.
    public func close(timeout: Duration = .seconds(30)) async {
        guard !closed.exchange(true, ordering: .relaxed) else { return }
        do { try await flush(timeout: timeout) } catch {
            client.context.logger.error("producer closed with undelivered records", metadata: ["error": .string(error.description)])
        }
        let poller = self.poller
        await Blocking.run { poller.stop() }
    }

    /// Records queued in librdkafka and not yet acknowledged.
    public var queuedCount: Int { Int(rd_kafka_outq_len(client.handle)) }
}

private func withOptionalBytes<R>(_ bytes: [UInt8]?, _ body: (UnsafeRawBufferPointer?) -> R) -> R {
    guard let bytes else { return body(nil) }
    return bytes.withUnsafeBytes { body($0) }
}

/// Collects the delivery reports of one `send` and resumes its caller after the last one.
final class DeliveryBatch: Sendable {
    typealias Outcome = Result<DeliveryReport, KafkaError>

    private struct State {
        var remaining: Int
        var results: [Outcome?]
        var continuation: CheckedContinuation<[Outcome], Never>?
    }

    private let state: Mutex<State>

    init(count: Int) {
        state = Mutex(State(remaining: count, results: Array(repeating: nil, count: count)))
    }

    func setContinuation(_ continuation: CheckedContinuation<[Outcome], Never>) {
        state.withLock { $0.continuation = continuation }
    }

    func complete(index: Int, report: DeliveryReport?, error: KafkaError?) {
        let finished: (CheckedContinuation<[Outcome], Never>, [Outcome])? = state.withLock { state in
            if let report { state.results[index] = .success(report) } else {
                state.results[index] = .failure(error ?? KafkaError(code: RD_KAFKA_RESP_ERR__FAIL, reason: "delivery"))
            }
            state.remaining -= 1
            guard state.remaining == 0, let continuation = state.continuation else { return nil }
            state.continuation = nil
            return (continuation, state.results.map { $0! })
        }
        if let (continuation, results) = finished { continuation.resume(returning: results) }
    }
}

/// The per-record opaque handed to librdkafka: which batch, which position.
final class DeliverySlot: Sendable {
    let batch: DeliveryBatch
    let index: Int
    init(batch: DeliveryBatch, index: Int) {
        self.batch = batch
        self.index = index
    }
}

/// Called on the poll thread for every produced record, delivered or failed.
private let deliveryReportCallback: @convention(c) (OpaquePointer?, UnsafePointer<rd_kafka_message_t>?, UnsafeMutableRawPointer?) -> Void = {
    _, message, _ in
    guard let message, let opaque = message.pointee._private else { return }
    let slot = Unmanaged<DeliverySlot>.fromOpaque(opaque).takeRetainedValue()
    let topic = message.pointee.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? ""
    if message.pointee.err != RD_KAFKA_RESP_ERR_NO_ERROR {
        slot.batch.complete(index: slot.index, report: nil,
                            error: KafkaError(code: message.pointee.err, reason: "delivery to \(topic)"))
    } else {
        slot.batch.complete(index: slot.index,
                            report: DeliveryReport(topic: topic, partition: message.pointee.partition, offset: message.pointee.offset),
                            error: nil)
    }
}

/// A dedicated thread that serves a producer's callbacks (`rd_kafka_poll`) until stopped.
final class PollLoop: Sendable {
    private final class State: Sendable {
        let running = Atomic<Bool>(true)
        let done = DispatchSemaphore(value: 0)
    }

    private let state = State()

    init(client: NativeClient) {
        let state = self.state
        let thread = Thread {
            while state.running.load(ordering: .relaxed) {
                rd_kafka_poll(client.handle, 100)
            }
            rd_kafka_poll(client.handle, 0)
            state.done.signal()
        }
        thread.name = "vigil-kafka-poll"
        thread.start()
    }

    /// Stops the thread and waits for it (at most one poll interval). Idempotent.
    func stop() {
        if state.running.exchange(false, ordering: .relaxed) { state.done.wait() }
    }
}
