import Normalize
import OCSF
import Testing

/// A `{"Records":[...]}` file sent with the `cloudtrail` header is read entry by entry; it must
/// give exactly what mapping the parsed document gives.
@Suite("CloudTrail log files read entry by entry")
struct CloudTrailStreamingTests {
    static let good = #"{"eventName":"ListBuckets","eventSource":"s3.amazonaws.com","eventTime":"2024-01-01T00:00:00Z","eventID":"a"}"#
    static let other = #"{"eventName":"GetObject","eventSource":"s3.amazonaws.com","eventTime":"2024-01-01T00:00:01Z","eventID":"b"}"#
    static let unmappable = #"{"eventSource":"s3.amazonaws.com","eventTime":"2024-01-01T00:00:00Z"}"#

    /// The whole document parsed first, then mapped: the reference.
    func parsedFirst(_ bytes: [UInt8]) -> NormalizeResult {
        let document: Result<JSON, JSONParseError>
        do { document = .success(try JSON.parse(bytes)) } catch { document = .failure(error) }
        return CloudTrailParser().normalize(SourceInput(raw: bytes, document: document))
    }

    @Test("Same events and failures as the parsed document", arguments: [
        #"{"Records":[\#(good),\#(other)]}"#,
        #" { "Records" : [ \#(good) , \#(unmappable) , 7 , \#(other) ] } "#,
        #"{"Records":[\#(good)],"Records":[\#(other)]}"#,
        #"{"Records":[\#(good)],"Records":[]}"#,
        #"{"Records":[\#(good)],"Records":"no"}"#,
        #"{"Records":[]}"#,
        #"{"Records":[\#(good)],"detail-type":"AWS API Call via CloudTrail","detail":\#(other)}"#,
        #"{"Records":[\#(good)],"x":tru}"#,
        #"{"Records":[\#(good),\#(other)"#,
        #"{"Records":[\#(good)]} trailing"#,
    ])
    func sameAsParsedFirst(text: String) {
        let bytes = Array(text.utf8)
        let streamed = Normalizer().normalize(RawRecord(bytes: bytes, source: "cloudtrail"))
        let reference = parsedFirst(bytes)
        #expect(streamed.events.map { $0.serialized() } == reference.events.map { $0.serialized() })
        #expect(streamed.failures == reference.failures)
        #expect(streamed.skipped == reference.skipped)
    }

    @Test("A large file: every entry mapped, the bad one dead-lettered alone with its own bytes")
    func largeFile() throws {
        var entries = (0..<2_000).map { index in
            #"{"eventName":"GetObject","eventSource":"s3.amazonaws.com","eventTime":"2024-01-01T00:00:00Z","eventID":"id-\#(index)"}"#
        }
        entries[1_234] = Self.unmappable
        let bytes = Array(#"{"Records":[\#(entries.joined(separator: ","))]}"#.utf8)
        let result = Normalizer().normalize(RawRecord(bytes: bytes, source: "cloudtrail"))
        #expect(result.events.count == 1_999)
        let failure = try #require(result.failures.first)
        #expect(result.failures.count == 1)
        #expect(failure.entryIndex == 1_234)
        #expect(try JSON.parse(#require(failure.entryBytes)) == JSON.parse(Self.unmappable))
        #expect(result.events.map { $0.serialized() } == parsedFirst(bytes).events.map { $0.serialized() })
    }
}
