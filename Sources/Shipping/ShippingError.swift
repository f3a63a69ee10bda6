import AWS
import Kafka

/// The one error type of the Shipping module: syslog framing, the S3 shipper, file following.
///
/// The description names what failed, a stable code and the underlying error's code; never
/// object or file contents, record payloads or credentials. Object keys and file paths appear
/// in it (they are names an operator needs, not data).
public struct ShippingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A stable code: `bad_framing` (syslog over TCP), `invalid_config`, `list_failed`,
    /// `fetch_failed`, `produce_failed`, `checkpoint_failed`, `read_failed`.
    public var code: String
    /// Whether the same operation may succeed later (throttling, network, broker, busy database).
    public var isRetriable: Bool
    /// The code of the underlying error (an AWS error code, a librdkafka error name, a SQLite
    /// result code, an errno name), when there is one.
    public var underlying: String?
    /// A short reason free of payloads and secrets.
    public var reason: String

    /// Makes an error.
    public init(code: String, isRetriable: Bool = false, underlying: String? = nil, reason: String) {
        self.code = code
        self.isRetriable = isRetriable
        self.underlying = underlying
        self.reason = reason
    }

    /// `shipping error fetch_failed (SlowDown, retriable): ...`.
    public var description: String {
        var text = "shipping error \(code)"
        var notes: [String] = []
        if let underlying { notes.append(underlying) }
        if isRetriable { notes.append("retriable") }
        if !notes.isEmpty { text += " (\(notes.joined(separator: ", ")))" }
        return text + ": " + reason
    }

    /// A syslog TCP stream that cannot be framed.
    static func badFraming(_ reason: String) -> ShippingError {
        ShippingError(code: "bad_framing", reason: reason)
    }

    /// An AWS call failed; `AWSError`'s description carries no credentials or bodies.
    static func aws(_ code: String, _ error: AWSError, _ reason: String) -> ShippingError {
        ShippingError(code: code, isRetriable: error.isRetriable, underlying: error.code, reason: "\(reason): \(error)")
    }

    /// Producing failed; librdkafka has already retried for `message.timeout.ms`, but a broker
    /// that comes back makes the next attempt succeed unless the client is unusable.
    static func kafka(_ error: KafkaError, _ reason: String) -> ShippingError {
        ShippingError(code: "produce_failed", isRetriable: !error.isFatal && error.isRetriable, underlying: error.name,
                      reason: "\(reason): \(error)")
    }
}
