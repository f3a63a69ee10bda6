import OCSF

/// One raw input to normalization: a Kafka record from `vigil.raw`, or one file or line read offline.
public struct RawRecord: Sendable {
    /// The payload exactly as received.
    public var bytes: [UInt8]
    /// The `vigil-source` header (`cloudtrail`, ...), `nil` when the record carried none.
    public var source: String?
    /// When the record was produced (its Kafka timestamp, epoch ms), if known. Formats whose
    /// times lack a year (RFC 3164 syslog) resolve them against it; it is fixed when the record
    /// is produced, so a replay gives the same events.
    public var recordTime: Int64?

    /// A record with its payload and, when known, its `vigil-source` header and record time.
    public init(bytes: [UInt8], source: String? = nil, recordTime: Int64? = nil) {
        self.bytes = bytes
        self.source = source
        self.recordTime = recordTime
    }
}

/// Why a record, or one entry inside a multi-entry record, could not become an OCSF event.
///
/// The message may name a field but never quotes payload contents: failures end up in logs,
/// metrics and dead-letter headers, and CloudTrail payloads carry session tokens and keys.
public struct NormalizeFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// A stable machine code: `invalid_json`, `unknown_source`, `unrecognized_format`,
    /// `invalid_entry`, `missing_field`, `invalid_time`. Metrics and dead-letter headers use it.
    public var code: String
    /// A human reason, free of payload contents (it may name a field).
    public var message: String
    /// The index of the bad entry inside a multi-entry record (`Records[i]`); `nil` when the
    /// whole record is at fault.
    public var entryIndex: Int?
    /// The bad entry's own bytes (re-serialized JSON), so it can be dead-lettered alone while its
    /// siblings go on; `nil` when the whole record is at fault (dead-letter the record itself).
    public var entryBytes: [UInt8]?

    /// A failure with a code, a payload-free message and, for one entry of many, where it was.
    public init(code: String, message: String, entryIndex: Int? = nil, entryBytes: [UInt8]? = nil) {
        self.code = code
        self.message = message
        self.entryIndex = entryIndex
        self.entryBytes = entryBytes
    }

    /// `code: message`, with the entry index when there is one; never the payload.
    public var description: String {
        if let entryIndex { return "\(code): \(message) (entry \(entryIndex))" }
        return "\(code): \(message)"
    }
}

extension NormalizeFailure {
    /// The stable values of `code`, for code that sets or matches them.
    public enum Code {
        /// The payload is not JSON (or nests deeper than the parser allows).
        public static let invalidJSON = "invalid_json"
        /// A gzip record that is truncated, corrupt, nested or inflates past the cap.
        public static let invalidGzip = "invalid_gzip"
        /// The `vigil-source` header names no known parser.
        public static let unknownSource = "unknown_source"
        /// The JSON is valid but no parser recognizes its shape.
        public static let unrecognizedFormat = "unrecognized_format"
        /// An entry of a multi-entry record is not an object.
        public static let invalidEntry = "invalid_entry"
        /// A field the mapping cannot do without is absent or of the wrong type.
        public static let missingField = "missing_field"
        /// The event time is absent or not a timestamp; the ingest clock is never substituted.
        public static let invalidTime = "invalid_time"
    }
}

/// What normalizing one raw record produced. A record can yield several events (a CloudTrail
/// `Records` file), several failures, or neither (a digest file, counted in `skipped`).
public struct NormalizeResult: Sendable {
    /// OCSF events, in input order.
    public var events: [JSON]
    /// Entries (or the whole record) that could not be normalized, in input order.
    public var failures: [NormalizeFailure]
    /// Entries deliberately ignored, such as CloudTrail digest files; not errors.
    public var skipped: Int
    /// The source name used (`cloudtrail`), or `unknown` when none could be chosen.
    public var source: String
    /// `true` when the record had no `vigil-source` header, so the format was detected
    /// (or detection was attempted, when `source` is `unknown`).
    public var detected: Bool

    /// A result; every part defaults to empty.
    public init(events: [JSON] = [], failures: [NormalizeFailure] = [], skipped: Int = 0,
                source: String, detected: Bool = false) {
        self.events = events
        self.failures = failures
        self.skipped = skipped
        self.source = source
        self.detected = detected
    }
}
