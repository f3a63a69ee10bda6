import Detection
import Foundation
import Kafka
import OCSF
import Pipeline
import Stages
import Testing

/// vigil-detect's select step reads events by scanning their bytes, not parsing them: it must
/// emit exactly what selecting the parsed event emits, and send what is not a JSON object to
/// the dead-letter topic with the parser's own reason, whatever the bytes.
@Suite("Detect select processor")
struct DetectSelectProcessorTests {
    static let topics = Topics(prefix: "ds.")

    static func processor() throws -> DetectSelectProcessor {
        let rules = try RuleSet.load(directory: Binaries.repository + "/rules")
        return DetectSelectProcessor(rules: rules, topics: topics, metrics: MetricsRegistry())
    }

    static func record(_ bytes: [UInt8], offset: Int64 = 0) -> ConsumedRecord {
        ConsumedRecord(topic: topics.enriched, partition: 2, offset: offset, key: nil, value: bytes, headers: [], timestamp: nil)
    }

    static func event(_ index: Int, class classID: OCSFClass, status: OCSFStatus, operation: String?) -> JSON {
        var event = OCSFEvent.base(class: classID, activityID: 1, activityName: "Logon", time: 1_780_000_000_000 + Int64(index) * 1000,
                                   status: status, uid: "e\(index)", product: "CloudTrail", vendor: "AWS")
        event.set("actor.user.name", .string("user-\(index % 3)"))
        event.set("src_endpoint.ip", "203.0.113.7")
        event.set("cloud.region", "us-east-1")
        if let operation { event.set("api.operation", .string(operation)) }
        if classID == .apiActivity { event.set("api.service.name", "cloudtrail.amazonaws.com") }
        return event
    }

    @Test("events give the records that selecting the parsed event gives: alerts, partials, nothing")
    func sameOutputsAsTheParsedEvent() throws {
        var processor = try Self.processor()
        let selector = RuleSelector(rules: try RuleSet.load(directory: Binaries.repository + "/rules"))
        var partials = 0
        var alerts = 0
        for index in 0..<60 {
            var event = switch index % 4 {
            case 0: Self.event(index, class: .authentication, status: .failure, operation: "ConsoleLogin")
            case 1: Self.event(index, class: .apiActivity, status: .success, operation: "StopLogging")
            case 2: Self.event(index, class: .apiActivity, status: .success, operation: "DescribeInstances")
            default: Self.event(index, class: .authentication, status: .success, operation: "ConsoleLogin")
            }
            // Some without a uid: theirs is hashed from the whole event.
            if index % 5 == 0 { event.set("metadata.uid", nil) }
            let output = processor.process(Self.record(event.serialized()))
            #expect(output.deadLetters.isEmpty)
            var expected: [String] = []
            for selection in selector.select(event) {
                switch selection {
                case .alert(let alert):
                    expected.append(Self.topics.alerts + " " + alert.jsonText)
                    alerts += 1
                case .partial(var partial):
                    partial.source = "\(Self.topics.enriched)/2"
                    expected.append(Self.topics.detectPartials + " " + partial.json().jsonText)
                    partials += 1
                }
            }
            #expect(output.records.map { $0.topic + " " + String(decoding: $0.value, as: UTF8.self) } == expected)
        }
        #expect(partials > 30 && alerts > 10, "\(partials) partials, \(alerts) alerts")
    }

    @Test("malformed, truncated, huge and hostile bytes are dead-lettered with the parser's reason, never dropped")
    func badBytes() throws {
        var processor = try Self.processor()
        let good = Self.event(0, class: .authentication, status: .failure, operation: nil).serialized()
        var inputs: [[UInt8]] = [
            [], Array("   ".utf8), Array("nope".utf8), Array("[1,2]".utf8), Array(#""text""#.utf8), Array("42".utf8), Array("null".utf8),
            Array(#"{"class_uid":3002,}"#.utf8), Array(#"{"class_uid":3002} {}"#.utf8),
            Array(#"{"actor":{"user":{"name":"\ud800"}}}"#.utf8),
            Array(#"{"class_uid":30"#.utf8) + [0x02] + Array("02}".utf8),
            Array(#"{"api":{"operation":""#.utf8) + [0xC3, 0x28] + Array(#""}}"#.utf8),
            Array(repeating: UInt8(ascii: "["), count: 100_000),
            Array((String(repeating: #"{"a":"#, count: 5_000) + "1" + String(repeating: "}", count: 5_000)).utf8),
        ]
        // Every truncation of a real event.
        inputs += (1..<good.count).map { Array(good.prefix($0)) }
        for (offset, bytes) in inputs.enumerated() {
            let output = processor.process(Self.record(bytes, offset: Int64(offset)))
            #expect(output.records.isEmpty)
            let letter = try #require(output.deadLetters.first, "no dead letter for \(String(decoding: bytes.prefix(80), as: UTF8.self))")
            #expect(output.deadLetters.count == 1)
            switch Result(catching: { () throws(JSONParseError) -> JSON in try JSON.parse(bytes) }) {
            case .failure(let error):
                #expect(letter.code == "invalid_json")
                #expect(letter.reason == error.description)
            case .success:
                #expect(letter.code == "invalid_event")
                #expect(letter.reason == "event is not a JSON object")
            }
            // The reason names a position, never the payload.
            #expect(!letter.reason.contains("nope") && !letter.reason.contains("text"))
        }
        // Valid, odd and large: duplicate members (the last counts), escaped names, an 8 MB member
        // no rule reads. Selected exactly as the parsed event is.
        let huge = String(repeating: "x", count: 8 << 20)
        let odd = #"{"class_uid":6003,"class_uid":3002,"status_id":1,"status_id":2,"\u0074ime":1780000000000,"#
            + #""metadata":{"uid":"odd-1"},"api":{"operation":"ConsoleLogin"},"actor":{"user":{"name":"mallory"}},"unmapped":{"blob":"\#(huge)"}}"#
        let output = processor.process(Self.record(Array(odd.utf8)))
        #expect(output.deadLetters.isEmpty)
        let partial = try #require(output.records.first { $0.topic == Self.topics.detectPartials && $0.key.map { String(decoding: $0, as: UTF8.self) } == "aws.console.bruteforce|mallory" })
        #expect(partial.value.count < 4096, "the partial carries context, not the event")
    }
}
