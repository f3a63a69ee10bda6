import Normalize
import OCSF
import Testing

/// CloudTrail samples written by other projects, so the parser meets data we did not shape.
@Suite("Real CloudTrail samples")
struct RealSampleTests {
    /// OTRF Security-Datasets SDAWS-200914011940 (MIT): 103 CloudTrail events of an EC2
    /// instance-credential theft and S3 exfiltration, one per line, with `@timestamp` instead of `eventTime`.
    static let otrf = "otrf/ec2_proxy_s3_exfiltration_2020-09-14011940.json"

    func otrfLines() throws -> [[UInt8]] {
        try fixture(Self.otrf).split(separator: UInt8(ascii: "\n")).map(Array.init)
    }

    @Test("OTRF: every one of the 103 lines becomes an event, detected without a header")
    func otrfAllLinesNormalize() throws {
        let lines = try otrfLines()
        #expect(lines.count == 103)
        var classes: [Int64: Int] = [:]
        for line in lines {
            let result = normalize(line, source: nil)
            #expect(result.detected)
            #expect(result.source == "cloudtrail")
            let event = try onlyEvent(result)
            classes[event.int("class_uid") ?? 0, default: 0] += 1
            // The window stated by the dataset: 2020-09-14, after midnight UTC and before 01:14.
            let time = try #require(event.int("time"))
            #expect(time >= millis("2020-09-14T00:00:00Z") && time < millis("2020-09-14T01:14:00Z"))
            #expect(event.string("metadata.original_time") == Timestamp.formatISO8601(time))
            #expect(event.string("unmapped.@version") == "1")
        }
        #expect(classes == [6003: 98, 3002: 5])
    }

    @Test("OTRF: the stolen instance-role key downloading ring.txt")
    func otrfExfiltration() throws {
        let line = try #require(try otrfLines().first { String(decoding: $0, as: UTF8.self).contains("\"GetObject\"") })
        let event = try onlyEvent(normalize(line))
        #expect(event.int("class_uid") == 6003)
        #expect(event.int("activity_id") == 2)
        #expect(event.string("activity_name") == "Read")
        #expect(event.int("type_uid") == 600302)
        #expect(event.int("time") == millis("2020-09-14T01:02:34Z"))
        #expect(event.string("metadata.uid") == "771299cb-e200-4926-9604-c85358b30499")
        #expect(event.string("metadata.log_name") == "AwsApiCall")
        #expect(event.string("metadata.event_code") == "GetObject")
        #expect(event.string("actor.user.type") == "AssumedRole")
        #expect(event.string("actor.user.uid") == "AROA5FLZVX4OAMSW6BCRH:i-0317f6c6b66ae9c40")
        #expect(event.string("actor.user.name") == "MordorNginxStack-BankingWAFRole-9S3E0UAE1MM0")
        #expect(event.string("actor.user.credential_uid") == "ASIA5FLZVX4OPVKKVBMX")
        #expect(event.string("actor.user.uid_alt") == "arn:aws:sts::123456789123:assumed-role/MordorNginxStack-BankingWAFRole-9S3E0UAE1MM0/i-0317f6c6b66ae9c40")
        #expect(event.string("actor.user.account.uid") == "123456789123")
        #expect(event.string("actor.session.issuer") == "arn:aws:iam::123456789123:role/MordorNginxStack-BankingWAFRole-9S3E0UAE1MM0")
        #expect(event.value(at: "actor.session.is_mfa") == false)
        #expect(event.int("actor.session.created_time") == millis("2020-09-14T00:48:30Z"))
        #expect(event.string("src_endpoint.ip") == "1.2.3.4")
        #expect(event.string("http_request.user_agent") == "[aws-cli/1.18.136 Python/3.8.5 Darwin/19.5.0 botocore/1.17.59]")
        #expect(event.string("api.service.name") == "s3.amazonaws.com")
        #expect(event.string("api.request.uid") == "A471D1060ED5FD07")
        #expect(event.string("cloud.provider") == "AWS")
        #expect(event.string("cloud.region") == "us-east-1")
        #expect(event.string("cloud.account.uid") == "123456789123")
        #expect(event.string("resources.0.uid") == "arn:aws:s3:::mordors3stack-s3bucket-llp2yingx64a/ring.txt")
        #expect(event.string("resources.0.type") == "AWS::S3::Object")
        #expect(event.string("resources.1.owner.account.uid") == "123456789123")
        #expect(event.value(at: "resources.2") == nil)
        #expect(event.string("unmapped.requestParameters.key") == "ring.txt")
        #expect(event.string("unmapped.eventCategory") == "Data")
        #expect(event.value(at: "unmapped.resources") == nil)
        #expect(event.value(at: "unmapped.eventName") == nil)
    }

    @Test("OTRF: EC2 assuming the instance role is an Authentication event from a service")
    func otrfServiceAssumeRole() throws {
        let line = try #require(try otrfLines().first { String(decoding: $0, as: UTF8.self).contains("\"AssumeRole\"") })
        let event = try onlyEvent(normalize(line))
        #expect(event.int("class_uid") == 3002)
        #expect(event.int("activity_id") == 99)
        #expect(event.string("activity_name") == "AssumeRole")
        #expect(event.string("actor.user.type") == "AWSService")
        #expect(event.int("actor.user.type_id") == 3)
        #expect(event.string("actor.invoked_by") == "ec2.amazonaws.com")
        #expect(event.string("src_endpoint.domain") == "ec2.amazonaws.com")
        #expect(event.value(at: "src_endpoint.ip") == nil)
        #expect(event.string("session.credential_uid") == "ASIA5FLZVX4OLY6BJN4L")
        #expect(event.string("unmapped.resources.0.type") == "AWS::IAM::Role")  // Authentication has no resources in OCSF 1.3
        // "Sep 14, 2020, 7:01:26 AM" is not a timestamp we accept; it stays in unmapped only.
        #expect(event.value(at: "session.expiration_time") == nil)
        #expect(event.string("unmapped.responseElements.credentials.expiration") == "Sep 14, 2020, 7:01:26 AM")
    }

    @Test("OTRF: instance ids named in requestParameters.instancesSet become resources")
    func otrfInstanceResource() throws {
        let line = try #require(try otrfLines().first { String(decoding: $0, as: UTF8.self).contains("\"DescribeInstances\"") && String(decoding: $0, as: UTF8.self).contains("instancesSet") })
        let event = try onlyEvent(normalize(line))
        #expect(event.value(at: "resources") == [["uid": "i-044b1baf4c96e1b62", "type": "AWS::EC2::Instance"]])
    }

    /// StreamAlert `cloudtrail_ec2_image_creation.json` #0 (Apache-2.0): an EventBridge envelope.
    @Test("StreamAlert: CreateImage through EventBridge")
    func streamAlertEventBridge() throws {
        let result = normalize(try fixture("streamalert/eventbridge_create_image.json"), source: nil)
        #expect(result.detected)
        let event = try onlyEvent(result)
        #expect(event.int("class_uid") == 6003)
        #expect(event.int("activity_id") == 1)
        #expect(event.string("metadata.uid") == "c6b72da7-5dc5-43bd-a890-d8a88cb41e15")
        #expect(event.int("time") == millis("2018-05-15T16:01:34Z"))
        #expect(event.string("actor.user.name") == "test")
        #expect(event.string("src_endpoint.ip") == "12.10.0.1")
        #expect(event.string("resources.0.uid") == "i-fffffffffffffffff")
        #expect(event.string("resources.0.type") == "AWS::EC2::Instance")
        #expect(event.string("unmapped.responseElements.imageId") == "ami-6eb72111")
        // The envelope's own fields are not carried into the event.
        #expect(event.value(at: "unmapped.detail-type") == nil)
    }

    /// StreamAlert `cloudtrail_critical_api_calls.json` #0: a Records file with "..." placeholders.
    @Test("StreamAlert: DeleteSubnet in a Records file, with placeholder values")
    func streamAlertRecords() throws {
        let event = try onlyEvent(normalize(try fixture("streamalert/records_delete_subnet.json"), source: nil))
        #expect(event.int("activity_id") == 4)
        #expect(event.string("activity_name") == "Delete")
        #expect(event.string("metadata.uid") == "123aaac1-123d-456a-1k29a4dd2kea")
        // "..." is neither an address nor a host name.
        #expect(event.string("src_endpoint.name") == "...")
        #expect(event.string("cloud.account.uid") == "123456789123")
        #expect(event.string("actor.user.account.uid") == "12345")
    }

    /// StreamAlert `cloudtrail_events.json` #0: `"eventTime": "eventTime"`.
    @Test("StreamAlert: a placeholder eventTime is an invalid_time failure, never the ingest clock")
    func streamAlertPlaceholderTime() throws {
        let result = normalize(try fixture("streamalert/records_placeholder_time.json"), source: nil)
        #expect(result.detected && result.source == "cloudtrail")
        #expect(result.events.isEmpty)
        let failure = try #require(result.failures.first)
        #expect(result.failures.count == 1)
        #expect(failure.code == "invalid_time")
        #expect(failure.entryIndex == 0)
        #expect(try JSON.parse(#require(failure.entryBytes)).string("eventSource") == "quicksight.amazonaws.com")
    }

    /// StreamAlert `cloudtrail_root_account_usage.json` #0: detail-type is "..." but the detail is CloudTrail.
    @Test("StreamAlert: an envelope with a blanked detail-type is still recognized")
    func streamAlertBlankDetailType() throws {
        let result = normalize(try fixture("streamalert/eventbridge_root_console_login_placeholders.json"), source: nil)
        #expect(result.source == "cloudtrail")
        #expect(result.failures.map(\.code) == ["invalid_time"])
        #expect(result.failures.first?.entryIndex == nil)
    }

    /// StreamAlert `aliyun_actiontrail.json` #0: Alibaba ActionTrail copies CloudTrail's field names.
    @Test("StreamAlert: Alibaba ActionTrail is not mistaken for CloudTrail")
    func streamAlertActionTrail() throws {
        let result = normalize(try fixture("streamalert/aliyun_actiontrail.json"), source: nil)
        #expect(result.events.isEmpty)
        #expect(result.failures.map(\.code) == ["unrecognized_format"])
        #expect(result.source == "unknown")
    }
}
