import Foundation
import Normalize
import OCSF
import Testing

/// Reads a file from `Fixtures/` (copied into the test bundle by the manifest).
func fixture(_ path: String) throws -> [UInt8] {
    let root = try #require(Bundle.module.url(forResource: "Fixtures", withExtension: nil))
    return try [UInt8](Data(contentsOf: root.appendingPathComponent(path)))
}

/// Normalizes bytes through the built-in parsers, as the ingest stage does.
func normalize(_ bytes: [UInt8], source: String? = "cloudtrail") -> NormalizeResult {
    Normalizer().normalize(RawRecord(bytes: bytes, source: source))
}

func normalize(_ text: String, source: String? = "cloudtrail") -> NormalizeResult {
    normalize(Array(text.utf8), source: source)
}

/// The single event of a result that must have exactly one and no failures.
func onlyEvent(_ result: NormalizeResult, sourceLocation: SourceLocation = #_sourceLocation) throws -> JSON {
    #expect(result.failures.isEmpty, "unexpected failures: \(result.failures)", sourceLocation: sourceLocation)
    #expect(result.events.count == 1, sourceLocation: sourceLocation)
    return try #require(result.events.first, sourceLocation: sourceLocation)
}

extension JSON {
    /// Shorthands for assertions.
    func string(_ path: String) -> String? { value(at: path)?.stringValue }
    func int(_ path: String) -> Int64? { value(at: path)?.intValue }
}

/// Epoch milliseconds for a timestamp the test states literally.
func millis(_ text: String) -> Int64 { Timestamp.parseISO8601(text)! }

/// Marsaglia's xorshift64 for mutation tests: a fixed seed gives the same mutations on every run.
struct XorShift {
    var state: UInt64
    init(seed: UInt64) { state = seed == 0 ? 0x9E37_79B9_7F4A_7C15 : seed }

    mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }

    /// A number in `0..<bound`.
    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
}
