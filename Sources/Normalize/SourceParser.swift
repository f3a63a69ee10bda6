import OCSF

/// Turns one parsed document of a given log source into OCSF events.
///
/// Parsers are pure values: no I/O and no clock, so the same document always gives the same
/// events (event ids are deterministic and re-processing after a crash must produce duplicates
/// that downstream consumers can drop). A parser never throws: everything it cannot map becomes
/// a `NormalizeFailure` in the result, so one poison entry never stops a partition.
public protocol SourceParser: Sendable {
    /// The `vigil-source` header value this parser serves (`cloudtrail`).
    var sourceName: String { get }
    /// Whether `document` has this source's shape; used only when the header is absent, so it
    /// should be strict enough not to claim other sources' documents.
    func recognizes(_ document: JSON) -> Bool
    /// Normalizes a document already parsed from `raw` (the record's bytes, for parsers that need
    /// the original form). `detected` in the result is left `false`; the `Normalizer` sets it.
    func normalize(_ document: JSON, raw: [UInt8]) -> NormalizeResult
}
