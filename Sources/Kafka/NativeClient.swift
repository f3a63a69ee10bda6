import CRdKafka
import Dispatch
import Foundation
import Logging
import Synchronization

/// Per-client state that librdkafka's C callbacks reach through the configuration opaque.
///
/// Ownership: `NativeClient` retains it once (`Unmanaged.passRetained`) before `rd_kafka_new`
/// and releases it in `deinit`, after `rd_kafka_destroy` has returned, so no callback can
/// run against a freed context.
final class ClientContext: Sendable {
    let logger: Logger
    let rebalanceListener: (any RebalanceListener)?
    /// A fatal error reported by librdkafka's error callback; later calls fail with it.
    let fatal = Mutex<KafkaError?>(nil)

    init(logger: Logger, rebalanceListener: (any RebalanceListener)?) {
        self.logger = logger
        self.rebalanceListener = rebalanceListener
    }

    static func from(_ opaque: UnsafeMutableRawPointer?) -> ClientContext? {
        guard let opaque else { return nil }
        return Unmanaged<ClientContext>.fromOpaque(opaque).takeUnretainedValue()
    }
}

/// Owns one `rd_kafka_t` and destroys it in `deinit`.
///
/// `@unchecked Sendable`: the handle is only an address; librdkafka documents `rd_kafka_t` as
/// thread-safe for every call this module makes from several threads (produce, poll, store,
/// commit, metadata), and consumer polls are serialized on one dispatch queue by `KafkaConsumer`.
final class NativeClient: @unchecked Sendable {
    let handle: OpaquePointer
    let context: ClientContext
    private let retainedContext: Unmanaged<ClientContext>

    init(type: rd_kafka_type_t, config: KafkaConfig, defaults: [String: String],
         context: ClientContext, configure: (OpaquePointer) -> Void = { _ in }) throws(KafkaError) {
        let conf = try config.makeNativeConfig(defaults: defaults)
        let retained = Unmanaged.passRetained(context)
        rd_kafka_conf_set_opaque(conf, retained.toOpaque())
        rd_kafka_conf_set_log_cb(conf, kafkaLogCallback)
        rd_kafka_conf_set_error_cb(conf, kafkaErrorCallback)
        configure(conf)
        var errstr = [CChar](repeating: 0, count: 512)
        // On success rd_kafka_new owns `conf`; on failure the caller still does.
        guard let handle = rd_kafka_new(type, conf, &errstr, errstr.count) else {
            rd_kafka_conf_destroy(conf)
            retained.release()
            throw .configuration("cannot create client: \(cString(errstr))")
        }
        self.handle = handle
        self.context = context
        self.retainedContext = retained
    }

    deinit {
        rd_kafka_destroy(handle)
        retainedContext.release()
    }

    /// Throws the fatal error recorded by the error callback, if any.
    func checkFatal() throws(KafkaError) {
        if let error = context.fatal.withLock({ $0 }) { throw error }
    }
}

/// librdkafka's log lines go to swift-log with the client's logger.
private let kafkaLogCallback: @convention(c) (OpaquePointer?, Int32, UnsafePointer<CChar>?, UnsafePointer<CChar>?) -> Void = {
    rk, level, facility, message in
    guard let rk, let context = ClientContext.from(rd_kafka_opaque(rk)) else { return }
    let text = message.map { String(cString: $0) } ?? ""
    let fac = facility.map { String(cString: $0) } ?? ""
    let logLevel: Logger.Level =
        switch level {
        case ...3: .error
        case 4: .warning
        case 5, 6: .info
        default: .debug
        }
    context.logger.log(level: logLevel, "librdkafka: \(text)", metadata: ["facility": .string(fac)])
}

/// Errors that are not tied to a request: brokers down, authentication, fatal idempotence errors.
private let kafkaErrorCallback: @convention(c) (OpaquePointer?, Int32, UnsafePointer<CChar>?, UnsafeMutableRawPointer?) -> Void = {
    rk, code, reason, opaque in
    guard let context = ClientContext.from(opaque) else { return }
    let text = reason.map { String(cString: $0) } ?? ""
    let error = rd_kafka_resp_err_t(rawValue: code)
    if error == RD_KAFKA_RESP_ERR__FATAL, let rk {
        var errstr = [CChar](repeating: 0, count: 512)
        let original = rd_kafka_fatal_error(rk, &errstr, errstr.count)
        let fatal = KafkaError(code: original, reason: cString(errstr), isRetriable: false, isFatal: true)
        context.fatal.withLock { $0 = fatal }
        context.logger.critical("kafka fatal error", metadata: ["error": .string(fatal.description)])
    } else if error == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || error == RD_KAFKA_RESP_ERR__TRANSPORT {
        context.logger.warning("kafka connection problem", metadata: ["reason": .string(text)])
    } else {
        context.logger.error("kafka error", metadata: ["code": .string(String(cString: rd_kafka_err2name(error))), "reason": .string(text)])
    }
}

/// Runs blocking librdkafka calls off Swift's cooperative thread pool.
enum Blocking {
    static let queue = DispatchQueue(label: "vigil.kafka.blocking", attributes: .concurrent)

    static func run<T: Sendable>(on queue: DispatchQueue = Blocking.queue, _ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            queue.async { continuation.resume(returning: body()) }
        }
    }
}

/// Partition-list conversions.
enum PartitionList {
    static func make(_ entries: [(TopicPartition, Int64?)]) -> UnsafeMutablePointer<rd_kafka_topic_partition_list_t> {
        let list = rd_kafka_topic_partition_list_new(Int32(max(entries.count, 1)))!
        for (tp, offset) in entries {
            let element = rd_kafka_topic_partition_list_add(list, tp.topic, tp.partition)!
            if let offset { element.pointee.offset = offset }
        }
        return list
    }

    static func read(_ list: UnsafePointer<rd_kafka_topic_partition_list_t>?) -> [(TopicPartition, offset: Int64, error: rd_kafka_resp_err_t)] {
        guard let list else { return [] }
        var result: [(TopicPartition, offset: Int64, error: rd_kafka_resp_err_t)] = []
        for index in 0..<Int(list.pointee.cnt) {
            let element = list.pointee.elems[index]
            result.append((TopicPartition(topic: String(cString: element.topic), partition: element.partition),
                           element.offset, element.err))
        }
        return result
    }
}

/// Text of a NUL-terminated C buffer filled by librdkafka.
func cString(_ buffer: [CChar]) -> String {
    buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
}
