import Normalize
import OCSF
import Testing

/// Routing by header, format detection, and determinism of the output.
@Suite("Normalizer")
struct NormalizerTests {
    static let event = #"{"eventName":"ListBuckets","eventSource":"s3.amazonaws.com","eventTime":"2024-01-01T00:00:00Z","eventID":"eeeeeeee-0000-4000-8000-000000000001","userIdentity":{"type":"IAMUser","principalId":"AIDAEXAMPLE"}}"#
    static let noID = #"{"eventName":"ListBuckets","eventSource":"s3.amazonaws.com","eventTime":"2024-01-01T00:00:00Z","sourceIPAddress":"203.0.113.1"}"#

    @Test("Built-in sources")
    func sourceNames() {
        #expect(Normalizer().sourceNames == ["cloudtrail", "awsconfig", "inspector", "asff", "azure-activity", "gcp-audit",
                                             "okta", "fim", "vpcflow", "syslog", "nessus", "qualys"])
        #expect(Normalizer(parsers: []).sourceNames.isEmpty)
    }

    @Test("Header absent: the format is detected and says so")
    func detectedWithoutHeader() throws {
        let result = normalize(Self.event, source: nil)
        #expect(result.detected)
        #expect(result.source == "cloudtrail")
        #expect(result.events.count == 1)
        let empty = normalize(Self.event, source: "  ")
        #expect(empty.detected && empty.events.count == 1)
    }

    @Test("Header present: dispatched, not detected; matched case-insensitively")
    func dispatchedByHeader() {
        for header in ["cloudtrail", "CloudTrail", " cloudtrail\n"] {
            let result = normalize(Self.event, source: header)
            #expect(!result.detected)
            #expect(result.source == "cloudtrail")
            #expect(result.events.count == 1)
        }
    }

    @Test("Unknown header: one unknown_source failure, before the payload is even parsed")
    func unknownHeader() throws {
        let result = normalize("not json at all", source: "nosuchsource")
        #expect(result.events.isEmpty)
        #expect(result.source == "unknown")
        #expect(!result.detected)
        let failure = try #require(result.failures.first)
        #expect(result.failures.count == 1)
        #expect(failure.code == "unknown_source")
        #expect(failure.message.contains("\"nosuchsource\""))
        #expect(failure.entryIndex == nil && failure.entryBytes == nil)
        let long = normalize(Self.event, source: String(repeating: "x", count: 10_000))
        #expect(long.failures.first.map { $0.message.utf8.count < 200 } == true)
    }

    @Test("Not CloudTrail and no header: unrecognized_format")
    func undetectable() {
        // An S3 event notification shares Records/eventName/eventSource/eventTime with CloudTrail.
        let s3Notification = #"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1","eventTime":"2024-01-01T00:00:00.000Z","eventName":"ObjectCreated:Put","userIdentity":{"principalId":"AWS:AIDAEXAMPLE"},"s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}]}"#
        let result = normalize(s3Notification, source: nil)
        #expect(result.events.isEmpty)
        #expect(result.failures.map(\.code) == ["unrecognized_format"])
        #expect(result.source == "unknown")
        #expect(result.detected)
        #expect(normalize(#"{"hello":"world"}"#, source: nil).failures.map(\.code) == ["unrecognized_format"])
        #expect(normalize(#"{"Records":[]}"#, source: nil).failures.map(\.code) == ["unrecognized_format"])
    }

    @Test("With the header, an object missing CloudTrail fields reports the missing field")
    func headerLenient() {
        #expect(normalize(#"{"hello":"world"}"#).failures.map(\.code) == ["missing_field"])
        let empty = normalize(#"{"Records":[]}"#)
        #expect(empty.events.isEmpty && empty.failures.isEmpty && empty.skipped == 0)
    }

    @Test("Same bytes twice give byte-identical events; metadata.uid is the eventID")
    func deterministic() throws {
        let first = try onlyEvent(normalize(Self.event))
        let second = try onlyEvent(normalize(Self.event))
        #expect(first.serialized() == second.serialized())
        #expect(first.string("metadata.uid") == "eeeeeeee-0000-4000-8000-000000000001")
        for path in ["otrf/ec2_proxy_s3_exfiltration_2020-09-14011940.json", "own/records_middle_broken.json"] {
            let bytes = try fixture(path)
            let a = bytes.split(separator: UInt8(ascii: "\n")).flatMap { normalize(Array($0)).events.map { $0.serialized() } }
            let b = bytes.split(separator: UInt8(ascii: "\n")).flatMap { normalize(Array($0)).events.map { $0.serialized() } }
            #expect(a == b)
        }
    }

    @Test("Without eventID, metadata.uid is a stable hash of the event, whatever its wrapping")
    func hashedUID() throws {
        let bare = try onlyEvent(normalize(Self.noID))
        let uid = try #require(bare.string("metadata.uid"))
        #expect(uid.count == 32)
        #expect(uid.utf8.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0) })
        #expect(uid == StableID.hash(bytes: try JSON.parse(Self.noID).serialized()))
        // Re-formatted, inside a Records file, or inside an EventBridge envelope: the same uid.
        let pretty = "{\n  \"sourceIPAddress\": \"203.0.113.1\",\n  \"eventTime\": \"2024-01-01T00:00:00Z\",\n  \"eventSource\": \"s3.amazonaws.com\",\n  \"eventName\": \"ListBuckets\"\n}"
        #expect(try onlyEvent(normalize(pretty)).string("metadata.uid") == uid)
        #expect(try onlyEvent(normalize(#"{"Records":[\#(Self.noID)]}"#)).string("metadata.uid") == uid)
        let envelope = #"{"detail-type":"AWS API Call via CloudTrail","source":"aws.s3","detail":\#(Self.noID)}"#
        #expect(try onlyEvent(normalize(envelope, source: nil)).serialized() == bare.serialized())
        // A different event gets a different uid.
        let other = Self.noID.replacing("203.0.113.1", with: "203.0.113.2")
        #expect(try onlyEvent(normalize(other)).string("metadata.uid") != uid)
    }

    @Test("A custom parser list routes and detects through the protocol")
    func customParser() {
        struct Fixed: JSONSourceParser {
            var sourceName: String { "fixed" }
            func recognizes(_ document: JSON) -> Bool { document["fixed"] != nil }
            func normalize(_ document: JSON, raw: [UInt8]) -> NormalizeResult {
                NormalizeResult(skipped: raw.count, source: "ignored")
            }
        }
        let normalizer = Normalizer(parsers: [Fixed()] + Normalizer.builtIn)
        #expect(normalizer.sourceNames == ["fixed"] + Normalizer().sourceNames)
        let fixed = normalizer.normalize(RawRecord(bytes: Array(#"{"fixed":1}"#.utf8)))
        #expect(fixed.source == "fixed" && fixed.detected && fixed.skipped == 11)
        let cloudTrail = normalizer.normalize(RawRecord(bytes: Array(Self.event.utf8)))
        #expect(cloudTrail.source == "cloudtrail" && cloudTrail.events.count == 1)
    }
}
