import OCSF

/// Chooses the parser for a raw record and runs it: by the `vigil-source` header when present,
/// else by format detection over the built-in parsers in order.
public struct Normalizer: Sendable {
    /// The parsers Vigil ships, in detection order: JSON sources first (their recognizers are
    /// strict and do not overlap; tests check each pair both ways), then text sources. File
    /// integrity comes before syslog and flow logs because it also reads AIDE's text reports.
    public static let builtIn: [any SourceParser] = [
        CloudTrailParser(), AWSConfigParser(), InspectorParser(), ASFFParser(),
        AzureActivityParser(), GCPAuditParser(), OktaParser(), FileIntegrityParser(),
        VPCFlowParser(), SyslogParser(), NessusParser(), QualysParser(),
    ]

    /// The cap on a gzip record's inflated size (see `Gzip.defaultLimit`).
    public var gzipLimit = Gzip.defaultLimit

    /// Told every result `normalize` returns, for accounting (`NormalizeTally.record` behind
    /// `vigil normalize --summary`); `nil`, the default, costs nothing.
    public var observer: (@Sendable (NormalizeResult) -> Void)?

    /// The source name reported when no parser could be chosen; kept fixed (never the header
    /// value) so a metric labelled by source cannot grow without bound from bad headers.
    static let unknownSource = "unknown"

    private let parsers: [any SourceParser]

    /// A normalizer over `parsers`; when two share a source name, the first wins.
    public init(parsers: [any SourceParser] = Normalizer.builtIn) {
        self.parsers = parsers
    }

    /// The source names this normalizer accepts in the `vigil-source` header.
    public var sourceNames: [String] { parsers.map(\.sourceName) }

    /// Dispatches by `source` header, else detects (JSON sources first, then text sources);
    /// an unknown header value, an undetectable format or a JSON source's invalid JSON yields a
    /// result with no events and one failure (never throws, never traps).
    ///
    /// The header is matched case-insensitively, ignoring surrounding whitespace; an empty
    /// header counts as absent.
    public func normalize(_ record: RawRecord) -> NormalizeResult {
        let result = route(record)
        observer?(result)
        return result
    }

    /// `normalize` without the observer.
    private func route(_ record: RawRecord) -> NormalizeResult {
        // Log deliveries are often gzip files (CloudTrail, flow logs, S3 objects): inflate first.
        // One level only: a gzip inside a gzip is refused, so nesting cannot recurse.
        var record = record
        if Gzip.isCompressed(record.bytes) {
            do throws(GzipError) {
                record.bytes = try Gzip.decompress(record.bytes, limit: gzipLimit)
                if Gzip.isCompressed(record.bytes) { throw GzipError(code: "nested", reason: "a gzip stream inside a gzip stream") }
            } catch {
                return NormalizeResult(failures: [NormalizeFailure(code: NormalizeFailure.Code.invalidGzip, message: error.description)],
                                       source: Self.unknownSource, detected: record.source == nil)
            }
        }
        let header = record.source.map(Self.canonicalHeader).flatMap { $0.isEmpty ? nil : $0 }
        var chosen: (any SourceParser)?
        if let header {
            // Check the header before parsing: a record we cannot route is not worth parsing.
            guard let parser = parsers.first(where: { $0.sourceName == header }) else {
                return NormalizeResult(failures: [NormalizeFailure(
                    code: NormalizeFailure.Code.unknownSource,
                    message: "no parser for vigil-source \(Self.quoted(header)); known: \(sourceNames.joined(separator: ", "))"
                )], source: Self.unknownSource)
            }
            chosen = parser
        }
        let detected = header == nil
        // Detection needs the JSON up front (parsed once, here); a parser chosen by header parses
        // its record itself, when and how it likes (CloudTrail log files entry by entry).
        let document: Result<JSON, JSONParseError>? = chosen == nil ? SourceInput(raw: record.bytes).json() : nil
        let input = SourceInput(raw: record.bytes, document: document, recordTime: record.recordTime)
        if chosen == nil {
            chosen = parsers.first(where: { $0.recognizes(input) })
        }
        guard let parser = chosen else {
            if case .failure(let error) = document {
                return NormalizeResult(failures: [NormalizeFailure(
                    code: NormalizeFailure.Code.invalidJSON, message: error.description
                )], source: Self.unknownSource, detected: true)
            }
            return NormalizeResult(failures: [NormalizeFailure(
                code: NormalizeFailure.Code.unrecognizedFormat,
                message: "no vigil-source header and no parser recognizes the document"
            )], source: Self.unknownSource, detected: true)
        }
        var result = parser.normalize(input)
        result.source = parser.sourceName
        result.detected = detected
        return result
    }

    /// Lower-cased with ASCII whitespace trimmed: headers are typed by people and shell scripts.
    static func canonicalHeader(_ value: String) -> String {
        // The usual header (`cloudtrail`): printable ASCII with no space, already lower-case.
        if value.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && !($0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z")) }) {
            return value
        }
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" }
        let trimmed = value.drop(while: isSpace).reversed().drop(while: isSpace).reversed()
        return String(trimmed).lowercased()
    }

    /// The header value as a short JSON string: it is operator-supplied routing, not payload,
    /// but it is still escaped and capped so a hostile header cannot forge or flood log lines.
    static func quoted(_ header: String) -> String {
        let capped = header.count > 40 ? String(header.prefix(40)) + "…" : header
        return JSON.string(capped).jsonText
    }
}
