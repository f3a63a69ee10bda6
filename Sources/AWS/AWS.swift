// AWS over plain HTTP(S): SigV4 signing, credentials, and the few APIs Vigil calls (S3 for the
// shippers). No SDK: Vigil needs a handful of calls, and an SDK would dwarf the rest of the build.

/// The one error type of the AWS module.
///
/// The description carries the AWS error code, the HTTP status and AWS's own short message; it
/// never carries credentials, signatures, request bodies or the canonical request AWS echoes
/// back on `SignatureDoesNotMatch`.
public struct AWSError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The AWS error code (`NoSuchKey`, `SlowDown`, `AccessDenied`, ...) or one of ours
    /// (`transport_failed`, `invalid_response`, `missing_credentials`, `credentials_file_unreadable`,
    /// `invalid_endpoint`, `http_error`).
    public var code: String
    /// The HTTP status of the response, when there was one.
    public var status: Int?
    /// AWS's message for the error (trimmed to 200 characters), or our reason.
    public var message: String?
    /// The request id AWS returned, for support tickets.
    public var requestID: String?

    /// Makes an error.
    public init(code: String, status: Int? = nil, message: String? = nil, requestID: String? = nil) {
        self.code = code
        self.status = status
        self.message = message.map { String($0.prefix(200)) }
        self.requestID = requestID
    }

    /// Codes AWS uses for throttling and transient faults across services.
    static let retriableCodes: Set<String> = [
        "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled",
        "RequestThrottledException", "TooManyRequestsException", "RequestLimitExceeded",
        "ProvisionedThroughputExceededException", "SlowDown", "BandwidthLimitExceeded",
        "RequestTimeout", "RequestTimeoutException", "InternalError", "InternalFailure",
        "ServiceUnavailable", "ServiceUnavailableException", "PriorRequestNotComplete",
        "EC2ThrottledException", "transport_failed",
    ]

    /// Whether the same request may succeed later: throttling, timeouts, 5xx, network failures.
    public var isRetriable: Bool {
        if Self.retriableCodes.contains(code) { return true }
        if let status, status >= 500 || status == 429 { return true }
        return false
    }

    /// `aws error NoSuchKey (HTTP 404): The specified key does not exist. [request 1234]`.
    public var description: String {
        var text = "aws error \(code)"
        if let status { text += " (HTTP \(status))" }
        if let message, !message.isEmpty { text += ": \(message)" }
        if let requestID { text += " [request \(requestID)]" }
        return text
    }
}
