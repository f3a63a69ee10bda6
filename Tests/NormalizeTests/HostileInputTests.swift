import Normalize
import OCSF
import Testing

/// Input an attacker or a broken shipper could send: each must give failures, never a crash,
/// and no failure message may echo the payload.
@Suite("Hostile input")
struct HostileInputTests {
    static let secret = "SECRETVALUEDONOTLEAK"

    static let cases: [(String, [UInt8])] = [
        ("empty", []),
        ("whitespace", Array("  \n ".utf8)),
        ("truncated", Array(#"{"Records":[{"eventName":"GetObject","eventTime":"2024-01-01T00:00:00Z","key":"\#(secret)"#.utf8)),
        ("invalid UTF-8", [UInt8](#"{"eventName":""#.utf8) + [0xC3, 0x28, 0xFF] + [UInt8](#"","eventTime":"2024-01-01T00:00:00Z"}"#.utf8)),
        ("100k nested arrays", [UInt8](repeating: UInt8(ascii: "["), count: 100_000) + [UInt8](repeating: UInt8(ascii: "]"), count: 100_000)),
        ("5 MB string", [UInt8](#"{"eventSource":"s3.amazonaws.com","note":""#.utf8) + [UInt8](repeating: UInt8(ascii: "a"), count: 5_000_000) + [UInt8](#""}"#.utf8)),
        ("Records not an array", Array(#"{"Records":{"eventName":"\#(secret)"}}"#.utf8)),
        ("null", Array("null".utf8)),
        ("number", Array("42".utf8)),
        ("string", Array(#""\#(secret)""#.utf8)),
        ("array of events", Array(#"[{"eventName":"GetObject","eventSource":"s3.amazonaws.com","eventTime":"2024-01-01T00:00:00Z"}]"#.utf8)),
        ("trailing garbage", Array(#"{"eventName":"GetObject"} {"#.utf8)),
        ("EventBridge detail not an object", Array(#"{"detail-type":"AWS API Call via CloudTrail","detail":"\#(secret)"}"#.utf8)),
    ]

    @Test("Each gives failures and no events, with or without a header", arguments: cases.map(\.0), [String?.none, "cloudtrail"])
    func failsCleanly(name: String, header: String?) throws {
        let bytes = try #require(Self.cases.first { $0.0 == name }?.1)
        let result = normalize(bytes, source: header)
        #expect(result.events.isEmpty)
        #expect(!result.failures.isEmpty)
        #expect(result.detected == (header == nil))
        for failure in result.failures {
            #expect(!failure.message.contains(Self.secret))
            #expect(!failure.description.contains(Self.secret))
            #expect(failure.message.utf8.count < 200)
        }
    }

    @Test("Specific codes for specific faults")
    func codes() {
        let byName = Dictionary(uniqueKeysWithValues: Self.cases)
        #expect(normalize(byName["empty"]!).failures.map(\.code) == ["invalid_json"])
        #expect(normalize(byName["100k nested arrays"]!).failures.map(\.code) == ["invalid_json"])
        #expect(normalize(byName["invalid UTF-8"]!).failures.map(\.message) == ["invalid JSON: invalid UTF-8 at byte 14"])
        #expect(normalize(byName["Records not an array"]!).failures.map(\.code) == ["unrecognized_format"])
        #expect(normalize(byName["Records not an array"]!, source: nil).failures.map(\.code) == ["unrecognized_format"])
        #expect(normalize(byName["null"]!).failures.map(\.code) == ["unrecognized_format"])
        #expect(normalize(byName["5 MB string"]!).failures.map(\.code) == ["missing_field"])
    }

    @Test("A valid event with a 5 MB field still normalizes, keeping the field in unmapped")
    func largeFieldInValidEvent() throws {
        let big = String(repeating: "b", count: 5_000_000)
        let record = #"{"eventName":"PutObject","eventSource":"s3.amazonaws.com","eventTime":"2024-01-01T00:00:00Z","requestParameters":{"blob":"\#(big)"}}"#
        let event = try onlyEvent(normalize(record))
        #expect(event.string("unmapped.requestParameters.blob")?.utf8.count == 5_000_000)
    }

    @Test("Deep but legal nesting inside an event is kept")
    func deepButLegal() throws {
        let depth = 200
        let nested = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        let record = #"{"eventName":"PutObject","eventSource":"s3.amazonaws.com","eventTime":"2024-01-01T00:00:00Z","requestParameters":{"n":\#(nested)}}"#
        _ = try onlyEvent(normalize(record))
    }
}
