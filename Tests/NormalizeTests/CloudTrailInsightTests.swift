import Normalize
import OCSF
import Testing

/// CloudTrail Insights events (Detection Finding 2004) and CloudTrail inside CloudWatch Logs
/// subscription envelopes, on the shared StreamAlert samples (docs/sources.md, CloudTrail).
@Suite("CloudTrail Insights and CloudWatch Logs envelopes")
struct CloudTrailInsightTests {
    /// StreamAlert `head_2022_75ba140d/rules/classifier/cloudtrail/cloudtrail_insights.json` #0
    /// (Apache-2.0, via /work/shared/data/streamalert): an ApiCallRateInsight Start in a Records file.
    static let insight = "streamalert/records_insight_call_rate.json"
    /// StreamAlert `head_2022_75ba140d/rules/classifier/cloudwatch/cloudwatch_cloudtrail.json` #0:
    /// a DATA_MESSAGE whose one message is a CloudTrail event of placeholders.
    static let dataMessage = "streamalert/cloudwatch_logs_data_message.json"
    /// StreamAlert `head_2022_75ba140d/rules/classifier/cloudwatch/cloudwatch_control_message.json` #0.
    static let controlMessage = "streamalert/cloudwatch_logs_control_message.json"

    static func conformance(_ event: JSON) throws -> [ConformanceProblem] {
        OCSFValidator(schema: try PinnedOCSFSchema.pinned()).validate(event)
    }

    /// The shared sample's only entry, edited: the same Insight as its End, or of another kind.
    static func edited(_ change: (inout JSON) -> Void) throws -> [UInt8] {
        var document = try JSON.parse(fixture(insight))
        var entry = try #require(document["Records"]?.arrayValue?.first)
        change(&entry)
        document["Records"] = [entry]
        return document.serialized()
    }

    @Test("Shared sample: the Insight is a Detection Finding about autoscaling CompleteLifecycleAction, detected without a header")
    func sharedInsightStart() throws {
        let result = normalize(try fixture(Self.insight), source: nil)
        #expect(result.detected && result.source == "cloudtrail")
        let event = try onlyEvent(result)
        #expect(event.int("class_uid") == 2004)
        #expect(event.string("class_name") == "Detection Finding")
        #expect(event.int("category_uid") == 2)
        #expect(event.int("activity_id") == 1)
        #expect(event.string("activity_name") == "Create")
        #expect(event.int("type_uid") == 200401)
        #expect(event.int("status_id") == 1)
        #expect(event.string("status") == "New")
        #expect(event.string("status_detail") == "Start")
        #expect(event.int("severity_id") == 2)
        #expect(event.string("severity") == "Low")
        #expect(event.int("time") == millis("2022-04-12T16:10:00Z"))
        #expect(event.int("start_time") == millis("2022-04-12T16:10:00Z"))
        #expect(event.value(at: "end_time") == nil)
        #expect(event.string("metadata.uid") == "49dfd327-5991-494b-98bf-6fe1eb3e3732")
        #expect(event.string("metadata.correlation_uid") == "26acc406-e3d7-4f74-90bd-aca9d06c5127")
        #expect(event.string("metadata.log_name") == "AwsCloudTrailInsight")
        #expect(event.string("metadata.event_code") == "ApiCallRateInsight")
        #expect(event.string("metadata.original_time") == "2022-04-12T16:10:00Z")
        #expect(event.value(at: "metadata.profiles") == ["cloud"])
        #expect(event.value(at: "metadata.product") == ["name": "CloudTrail", "vendor_name": "AWS"])
        #expect(event.string("finding_info.uid") == "26acc406-e3d7-4f74-90bd-aca9d06c5127")
        #expect(event.string("finding_info.title") == "Unusual API call rate: autoscaling.amazonaws.com CompleteLifecycleAction")
        #expect(event.value(at: "finding_info.types") == ["ApiCallRateInsight"])
        #expect(event.value(at: "finding_info.analytic") == ["name": "CloudTrail Insights", "type_id": 3, "type": "Statistical"])
        #expect(event.int("finding_info.first_seen_time") == millis("2022-04-12T16:10:00Z"))
        let desc = try #require(event.string("finding_info.desc"))
        #expect(desc.hasPrefix("API call rate of autoscaling.amazonaws.com CompleteLifecycleAction at its start: 0.6 per minute against a baseline average of "))
        #expect(event.string("message") == desc)
        #expect(event.value(at: "api") == ["operation": "CompleteLifecycleAction", "service": ["name": "autoscaling.amazonaws.com"]])
        #expect(event.value(at: "cloud") == [
            "provider": "AWS", "region": "eu-central-1",
            "account": ["uid": "246337027688", "type_id": 10, "type": "AWS Account"],
        ])
        // An Insight has no caller: nothing is made up.
        #expect(event.value(at: "actor") == nil && event.value(at: "src_endpoint") == nil)
        // The statistics and attributions stay as AWS wrote them; the mapped keys leave.
        let unmapped = try #require(event.value(at: "unmapped")?.objectValue)
        #expect(Set(unmapped.keys) == ["eventVersion", "eventCategory", "recipientAccountId", "insightDetails"])
        #expect(unmapped["eventCategory"] == "Insight")
        let details = try #require(unmapped["insightDetails"]?.objectValue)
        #expect(Set(details.keys) == ["insightContext"])
        #expect(event.value(at: "unmapped.insightDetails.insightContext.statistics.insight.average") == .double(0.6))
        #expect(event.int("unmapped.insightDetails.insightContext.statistics.baselineDuration") == 11336)
        #expect(event.string("unmapped.insightDetails.insightContext.attributions.0.attribute") == "userIdentityArn")
        #expect(event.string("unmapped.insightDetails.insightContext.attributions.0.insight.2.value") == "arn:aws:sts::012345678901:assumed-role/CodeDeployRole3")
        #expect(event.string("unmapped.insightDetails.insightContext.attributions.1.insight.0.value") == "codedeploy.amazonaws.com")
        let problems = try Self.conformance(event)
        #expect(problems.isEmpty, "\(problems)")
    }

    @Test("The same Insight's End closes the finding: same finding uid, window from insightDuration")
    func insightEnd() throws {
        let bytes = try Self.edited { entry in
            entry.set("eventID", "49dfd327-5991-494b-98bf-6fe1eb3e3733")
            entry.set("eventTime", "2022-04-12T16:30:00Z")
            entry.set("insightDetails.state", "End")
            entry.set("insightDetails.insightContext.statistics.insightDuration", 20)
        }
        let event = try onlyEvent(normalize(bytes))
        #expect(event.int("class_uid") == 2004)
        #expect(event.int("activity_id") == 3)
        #expect(event.string("activity_name") == "Close")
        #expect(event.int("type_uid") == 200403)
        #expect(event.int("status_id") == 4)
        #expect(event.string("status") == "Resolved")
        #expect(event.string("status_detail") == "End")
        #expect(event.int("time") == millis("2022-04-12T16:30:00Z"))
        #expect(event.int("end_time") == millis("2022-04-12T16:30:00Z"))
        #expect(event.int("start_time") == millis("2022-04-12T16:10:00Z"))
        #expect(event.int("duration") == 1_200_000)
        #expect(event.int("finding_info.first_seen_time") == millis("2022-04-12T16:10:00Z"))
        #expect(event.int("finding_info.last_seen_time") == millis("2022-04-12T16:30:00Z"))
        #expect(event.string("metadata.uid") == "49dfd327-5991-494b-98bf-6fe1eb3e3733")
        // The finding is the same across Start and End (sharedEventID).
        #expect(event.string("finding_info.uid") == "26acc406-e3d7-4f74-90bd-aca9d06c5127")
        #expect(event.string("finding_info.desc")?.contains("over the insight: 0.6 per minute") == true)
        let problems = try Self.conformance(event)
        #expect(problems.isEmpty, "\(problems)")
    }

    @Test("An error-rate Insight says so; without eventID the uid is a stable hash; an unknown state is Other")
    func insightVariants() throws {
        let errorRate = try onlyEvent(normalize(try Self.edited { entry in
            entry.set("insightDetails.insightType", "ApiErrorRateInsight")
            entry.set("eventID", nil)
            entry.set("insightDetails.state", "Paused")
        }))
        #expect(errorRate.string("finding_info.title") == "Unusual API error rate: autoscaling.amazonaws.com CompleteLifecycleAction")
        #expect(errorRate.value(at: "finding_info.types") == ["ApiErrorRateInsight"])
        #expect(errorRate.int("activity_id") == 99 && errorRate.string("activity_name") == "Paused")
        #expect(errorRate.int("status_id") == 99 && errorRate.string("status") == "Paused")
        #expect(errorRate.value(at: "start_time") == nil)
        let uid = try #require(errorRate.string("metadata.uid"))
        #expect(uid.utf8.count == 32)
        let again = try onlyEvent(normalize(try Self.edited { entry in
            entry.set("insightDetails.insightType", "ApiErrorRateInsight")
            entry.set("eventID", nil)
            entry.set("insightDetails.state", "Paused")
        }))
        #expect(again.serialized() == errorRate.serialized())
        let problems = try Self.conformance(errorRate)
        #expect(problems.isEmpty, "\(problems)")
    }

    @Test("An Insight without insightDetails.eventName fails alone with missing_field; one without insightDetails too")
    func insightMissingAPI() throws {
        let noName = normalize(try Self.edited { $0.set("insightDetails.eventName", nil) })
        #expect(noName.events.isEmpty)
        #expect(noName.failures.map(\.code) == ["missing_field"])
        #expect(noName.failures.first?.message == "insightDetails.eventName is missing or not a string")
        #expect(noName.failures.first?.entryIndex == 0)
        let noDetails = normalize(try Self.edited { $0.set("insightDetails", nil) })
        #expect(noDetails.failures.map(\.message) == ["insightDetails is missing or not an object"])
    }

    @Test("An Insight through EventBridge (AWS Insight via CloudTrail) is the same event")
    func insightEventBridge() throws {
        let entry = try #require(try JSON.parse(fixture(Self.insight))["Records"]?.arrayValue?.first)
        let envelope: JSON = ["version": "0", "detail-type": "AWS Insight via CloudTrail", "source": "aws.cloudtrail", "detail": entry]
        let result = normalize(envelope.serialized(), source: nil)
        #expect(result.detected && result.source == "cloudtrail")
        let bare = try onlyEvent(normalize(entry.serialized()))
        #expect(try onlyEvent(result).serialized() == bare.serialized())
    }

    // MARK: - CloudWatch Logs subscription envelopes

    static let good = #"{"eventName":"ListBuckets","eventSource":"s3.amazonaws.com","eventTime":"2024-01-01T00:00:00Z","eventID":"cw-1","awsRegion":"us-east-1","sourceIPAddress":"203.0.113.1","userIdentity":{"type":"IAMUser","principalId":"AIDAEXAMPLE","userName":"alice"}}"#
    static let noTime = #"{"eventName":"GetObject","eventSource":"s3.amazonaws.com","eventID":"cw-2"}"#

    static func envelope(_ messages: [String], type: String = "DATA_MESSAGE") -> [UInt8] {
        let logEvents: [JSON] = messages.enumerated().map { index, message in
            ["id": .string("3605\(index)"), "timestamp": .int(1_704_067_200_000 + Int64(index)), "message": .string(message)]
        }
        let document: JSON = [
            "messageType": .string(type), "owner": "111122223333", "logGroup": "CloudTrail/DefaultLogGroup",
            "logStream": "111122223333_CloudTrail_us-east-1", "subscriptionFilters": ["all"], "logEvents": .array(logEvents),
        ]
        return document.serialized()
    }

    @Test("Shared sample: the DATA_MESSAGE is unwrapped; its placeholder event fails alone with invalid_time")
    func sharedDataMessage() throws {
        let result = normalize(try fixture(Self.dataMessage))
        #expect(result.source == "cloudtrail")
        #expect(result.events.isEmpty)
        let failure = try #require(result.failures.first)
        #expect(result.failures.count == 1)
        #expect(failure.code == "invalid_time")
        #expect(failure.message == "eventTime is not an RFC 3339 timestamp")
        #expect(failure.entryIndex == 0)
        // The dead letter is the CloudTrail event as delivered, not the envelope.
        let entry = try JSON.parse(#require(failure.entryBytes))
        #expect(entry.string("eventName") == "bar" && entry.string("sharedEventID") == "bar")
        // All placeholders ("eventSource": "foo"): nothing in it says CloudTrail, so without a
        // header it is not claimed.
        #expect(normalize(try fixture(Self.dataMessage), source: nil).source == "unknown")
    }

    @Test("Shared sample: a CONTROL_MESSAGE is skipped with the header and not claimed without")
    func sharedControlMessage() throws {
        let result = normalize(try fixture(Self.controlMessage))
        #expect(result.events.isEmpty && result.failures.isEmpty && result.skipped == 1)
        #expect(normalize(try fixture(Self.controlMessage), source: nil).source == "unknown")
    }

    @Test("Every log event is an event; a bad one fails alone with its index and message bytes; siblings flow")
    func envelopeEntries() throws {
        let bytes = Self.envelope([Self.good, Self.noTime, "not json", Self.good.replacing("cw-1", with: "cw-4")])
        let result = normalize(bytes, source: nil)
        #expect(result.detected && result.source == "cloudtrail")
        #expect(result.events.map { $0.string("metadata.uid") } == ["cw-1", "cw-4"])
        #expect(result.failures.map(\.code) == ["invalid_time", "invalid_json"])
        #expect(result.failures.map(\.entryIndex) == [1, 2])
        #expect(result.failures.map(\.entryBytes) == [Array(Self.noTime.utf8), Array("not json".utf8)])
        // Apart from where it came from, the event is the one the bare record gives.
        var wrapped = try #require(result.events.first)
        #expect(wrapped.value(at: "unmapped.cloudwatch_logs") == [
            "logGroup": "CloudTrail/DefaultLogGroup", "logStream": "111122223333_CloudTrail_us-east-1",
        ])
        wrapped.set("unmapped.cloudwatch_logs", nil)
        if wrapped.value(at: "unmapped")?.objectValue?.isEmpty == true { wrapped["unmapped"] = nil }
        #expect(wrapped.serialized() == (try onlyEvent(normalize(Self.good))).serialized())
        let problems = try Self.conformance(result.events[0])
        #expect(problems.isEmpty, "\(problems)")
    }

    @Test("An Insight inside a CloudWatch envelope; empty, malformed and foreign envelopes")
    func envelopeEdges() throws {
        let insightEntry = try #require(try JSON.parse(fixture(Self.insight))["Records"]?.arrayValue?.first)
        let insight = normalize(Self.envelope([String(decoding: insightEntry.serialized(), as: UTF8.self)]), source: nil)
        #expect(insight.source == "cloudtrail")
        #expect(try onlyEvent(insight).int("class_uid") == 2004)

        let empty = normalize(Self.envelope([]))
        #expect(empty.events.isEmpty && empty.failures.isEmpty && empty.skipped == 1)
        let notArray = normalize(#"{"messageType":"DATA_MESSAGE","logGroup":"g","logEvents":{"message":"x"}}"#)
        #expect(notArray.failures.map(\.code) == ["unrecognized_format"])
        let noMessage = normalize(#"{"messageType":"DATA_MESSAGE","logGroup":"g","logEvents":[{"id":"1","message":7}]}"#)
        #expect(noMessage.failures.map(\.code) == ["invalid_entry"])
        #expect(noMessage.failures.first?.entryIndex == 0)
        // VPC flow lines delivered the same way are not CloudTrail's.
        let flow = Self.envelope(["2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK"])
        #expect(normalize(flow, source: nil).source == "vpcflow")
        #expect(!CloudTrailParser().recognizes(SourceInput(raw: flow)))
    }
}
