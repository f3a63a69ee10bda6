import OCSF

/// One raw record as a parser sees it: its bytes, and its JSON form when the normalizer
/// parsed it (JSON sources) or `nil` when it did not try (text sources chosen by header).
public struct SourceInput: Sendable {
    /// The record's bytes.
    public let raw: [UInt8]
    /// The JSON parse of `raw`, if attempted.
    public let document: Result<JSON, JSONParseError>?
    /// When the record was produced (epoch ms), if known; see `RawRecord.recordTime`.
    public let recordTime: Int64?

    /// An input; `document` nil means "not parsed yet".
    public init(raw: [UInt8], document: Result<JSON, JSONParseError>? = nil, recordTime: Int64? = nil) {
        self.raw = raw
        self.document = document
        self.recordTime = recordTime
    }

    /// The JSON parse of the record, parsing now if the normalizer did not.
    public func json() -> Result<JSON, JSONParseError> {
        if let document { return document }
        do { return .success(try JSON.parse(raw)) } catch { return .failure(error) }
    }
}

/// Turns one raw record of a given log source into OCSF events.
///
/// Parsers are pure values: no I/O and no clock, so the same record always gives the same
/// events (event ids are deterministic and re-processing after a crash must produce duplicates
/// that downstream consumers can drop). A parser never throws: everything it cannot map becomes
/// a `NormalizeFailure` in the result, so one poison entry never stops a partition.
public protocol SourceParser: Sendable {
    /// The `vigil-source` header value this parser serves (`cloudtrail`).
    var sourceName: String { get }
    /// Whether the parser reads JSON documents rather than text lines, CSV or XML. When the
    /// source must be detected, the normalizer parses the JSON once, up front, and hands the
    /// parse on in `SourceInput.document`; a parser chosen by header parses it itself.
    var readsJSON: Bool { get }
    /// Whether the record has this source's shape; used only when the header is absent, so it
    /// should be strict enough not to claim other sources' records.
    func recognizes(_ input: SourceInput) -> Bool
    /// Normalizes a record. `detected` in the result is left `false`; the `Normalizer` sets it.
    func normalize(_ input: SourceInput) -> NormalizeResult
}

/// A source whose records are JSON documents.
public protocol JSONSourceParser: SourceParser {
    /// Whether `document` has this source's shape.
    func recognizes(_ document: JSON) -> Bool
    /// Normalizes a document already parsed from `raw`.
    func normalize(_ document: JSON, raw: [UInt8]) -> NormalizeResult
}

extension JSONSourceParser {
    public var readsJSON: Bool { true }

    public func recognizes(_ input: SourceInput) -> Bool {
        if case .success(let document) = input.json() { return recognizes(document) }
        return false
    }

    public func normalize(_ input: SourceInput) -> NormalizeResult {
        switch input.json() {
        case .success(let document): return normalize(document, raw: input.raw)
        case .failure(let error):
            return NormalizeResult(failures: [NormalizeFailure(code: NormalizeFailure.Code.invalidJSON, message: error.description)],
                                   source: sourceName)
        }
    }
}
