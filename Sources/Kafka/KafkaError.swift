import CRdKafka

/// Every failure of the Kafka layer. The description names librdkafka's code and reason,
/// never a record's payload or a credential.
public struct KafkaError: Error, Sendable, Equatable, CustomStringConvertible {
    /// librdkafka's `rd_kafka_resp_err_t` value (negative for local errors, positive for broker errors).
    public let code: Int32
    /// librdkafka's name for the code, e.g. `_TRANSPORT` or `UNKNOWN_TOPIC_OR_PART`.
    public let name: String
    /// What was being done and why it failed.
    public let reason: String
    /// Retrying the same operation may succeed (a broker down, a leader moving).
    public let isRetriable: Bool
    /// The client instance is unusable and must be recreated.
    public let isFatal: Bool

    /// An error from a librdkafka response code.
    public init(code: rd_kafka_resp_err_t, reason: String, isRetriable: Bool? = nil, isFatal: Bool = false) {
        self.code = code.rawValue
        self.name = String(cString: rd_kafka_err2name(code))
        self.reason = reason
        self.isRetriable = isRetriable ?? KafkaError.defaultRetriable(code)
        self.isFatal = isFatal || code == RD_KAFKA_RESP_ERR__FATAL
    }

    /// An error from a librdkafka `rd_kafka_error_t`, which it destroys.
    init(consuming error: OpaquePointer, context: String) {
        let code = rd_kafka_error_code(error)
        self.code = code.rawValue
        self.name = String(cString: rd_kafka_err2name(code))
        self.reason = "\(context): \(String(cString: rd_kafka_error_string(error)))"
        self.isRetriable = rd_kafka_error_is_retriable(error) != 0 || KafkaError.defaultRetriable(code)
        self.isFatal = rd_kafka_error_is_fatal(error) != 0
        rd_kafka_error_destroy(error)
    }

    /// A configuration problem found before librdkafka was called.
    public static func configuration(_ reason: String) -> KafkaError {
        KafkaError(code: RD_KAFKA_RESP_ERR__INVALID_ARG, reason: reason, isRetriable: false)
    }

    /// The client was closed while the operation waited.
    public static func closed(_ what: String) -> KafkaError {
        KafkaError(code: RD_KAFKA_RESP_ERR__DESTROY, reason: "\(what): client is closed", isRetriable: false)
    }

    public var description: String { "kafka error \(name) (\(code)): \(reason)" }

    private static func defaultRetriable(_ code: rd_kafka_resp_err_t) -> Bool {
        switch code {
        case RD_KAFKA_RESP_ERR__TRANSPORT, RD_KAFKA_RESP_ERR__TIMED_OUT, RD_KAFKA_RESP_ERR__MSG_TIMED_OUT,
             RD_KAFKA_RESP_ERR__QUEUE_FULL, RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN,
             RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
             RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
             RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND, RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION,
             RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS, RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
             RD_KAFKA_RESP_ERR_NOT_COORDINATOR, RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS:
            return true
        default:
            return false
        }
    }
}
