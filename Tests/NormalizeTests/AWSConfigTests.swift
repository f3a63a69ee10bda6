import Normalize
import OCSF
import Testing

/// Normalizes with only the AWS Config parser (by header, or detected when `header` is nil).
fileprivate func config(_ bytes: [UInt8], header: String? = "awsconfig") -> NormalizeResult {
    Normalizer(parsers: [AWSConfigParser()]).normalize(RawRecord(bytes: bytes, source: header))
}

fileprivate func config(_ text: String, header: String? = "awsconfig") -> NormalizeResult {
    config(Array(text.utf8), header: header)
}

fileprivate let docs = "awsconfig/aws_docs/"

@Suite("AWS Config: AWS documentation samples (Fixtures/awsconfig/aws_docs, from /work/shared/data/aws_docs/aws_config)")
struct AWSConfigDocsSampleTests {
    @Test("example-sns-notification_00.json: recordVersion 1.0, configurationItem is a list")
    func listForm() throws {
        let result = config(try fixture(docs + "example-sns-notification_00.json"), header: nil)
        #expect(result.source == "awsconfig")
        let event = try onlyEvent(result)
        #expect(event.int("class_uid") == 5019)
        #expect(event.int("category_uid") == 5)
        #expect(event.int("activity_id") == 99)
        #expect(event.string("activity_name") == "OK")
        #expect(event.int("type_uid") == 501_999)
        #expect(event.int("time") == millis("2014-03-07T23:47:08.918Z"))
        #expect(event.string("metadata.original_time") == "2014-03-07T23:47:08.918Z")
        #expect(event.string("metadata.log_name") == "ConfigurationItemChangeNotification")
        #expect(event.string("metadata.product.name") == "AWS Config")
        #expect(event.string("cloud.account.uid") == "123456789012")  // `accountId` in the 1.0 form
        #expect(event.string("cloud.zone") == "us-west-2b")
        #expect(event.string("resources.0.uid") == "vol-ce676ccc")
        #expect(event.string("resources.0.type") == "AWS::EC2::VOLUME")
        #expect(event.string("resources.0.data.arn") == "arn:aws:us-west-2b:123456789012:volume/vol-ce676ccc")
        #expect(event.string("resources.0.data.instance_id") == "i-344c463d")
        #expect(event.string("resources.0.data.relationships.0.relationship") == "Attached to Instance")
        #expect(event.int("device.type_id") == 99)
        #expect(event.string("device.uid") == "vol-ce676ccc")
        #expect(event.string("unmapped.configurationStateID") == "3e660fdf-4e34-4f32-afeb-0ace5bf3d63a")
        #expect(event.value(at: "unmapped.configurationItemDiff")?["changedProperties"]?["Configuration.State"]?["updatedValue"] == "in-use")
        #expect(event.string("unmapped.sns.MessageId") == "8b945cb0-db34-5b72-b032-1724878af488")
        #expect(event.value(at: "unmapped.sns.Signature") == nil)
        #expect(event.string("unmapped.NotificationCreateTime") == "2014-03-18T10:11:00Z")
    }

    @Test("example-sns-notification_01.json: an EC2 instance update keeps what enrichment needs")
    func instanceUpdate() throws {
        let event = try onlyEvent(config(try fixture(docs + "example-sns-notification_01.json"), header: nil))
        #expect(event.string("activity_name") == "OK")
        #expect(event.int("time") == millis("2017-01-09T22:50:14.328Z"))
        #expect(event.string("cloud.region") == "us-east-2")
        #expect(event.string("cloud.zone") == "us-east-2c")
        #expect(event.string("cloud.account.uid") == "123456789012")
        #expect(event.string("resources.0.uid") == "i-007d374c8912e3e90")
        #expect(event.string("resources.0.type") == "AWS::EC2::Instance")
        #expect(event.string("resources.0.region") == "us-east-2")
        #expect(event.string("resources.0.owner.account.uid") == "123456789012")
        #expect(event.string("resources.0.data.arn") == "arn:aws:ec2:us-east-2:123456789012:instance/i-007d374c8912e3e90")
        #expect(event.value(at: "resources.0.data.private_ips") == ["172.31.16.84"])
        #expect(event.value(at: "resources.0.data.public_ips") == ["54.175.43.43"])
        #expect(event.value(at: "resources.0.data.security_groups") == ["sg-3f1fef43"])
        #expect(event.value(at: "resources.0.data.network_interfaces") == ["eni-fde9493f"])
        #expect(event.string("resources.0.data.subnet_uid") == "subnet-2372be7b")
        #expect(event.string("resources.0.data.vpc_uid") == "vpc-14400670")
        #expect(event.string("resources.0.data.image_id") == "ami-9be6f38c")
        #expect(event.string("resources.0.data.tags.Name") == "value")
        #expect(event.value(at: "resources.0.data.relationships")?.arrayValue?.count == 5)
        #expect(event.int("device.type_id") == 6)
        #expect(event.string("device.instance_uid") == "i-007d374c8912e3e90")
        #expect(event.string("device.hostname") == "ip-172-31-16-84.ec2.internal")
        #expect(event.string("device.ip") == "172.31.16.84")
        #expect(event.string("device.image.uid") == "ami-9be6f38c")
        #expect(event.string("device.name") == "value")
        #expect(event.string("unmapped.configurationItemDiff.changeType") == "UPDATE")
        #expect(event.value(at: "unmapped.configurationItemDiff")?["changedProperties"]?["Configuration.SecurityGroups.0"]?["changeType"] == "DELETE")
        #expect(event.string("unmapped.configuration.instanceType") == "t2.micro")
        #expect(event.int("unmapped.configurationStateId") == 1_484_002_214_328)
        #expect(event.value(at: "unmapped.relationships") == nil)
        #expect(event.string("unmapped.sns.Subject") == "[AWS Config:us-east-2] AWS::EC2::Instance i-007d374c8912e3e90 Updated in Account 123456789012")
        #expect(OCSFEvent.primaryKey(event) == "i-007d374c8912e3e90")
    }

    @Test("example-sns-notification_02.json: a security group discovered")
    func securityGroupDiscovered() throws {
        let event = try onlyEvent(config(try fixture(docs + "example-sns-notification_02.json"), header: nil))
        #expect(event.int("activity_id") == 99)
        #expect(event.string("activity_name") == "ResourceDiscovered")
        #expect(event.string("metadata.event_code") == "ResourceDiscovered")
        #expect(event.int("time") == millis("2017-01-09T22:50:15.156Z"))
        #expect(event.string("resources.0.uid") == "sg-3f1fef43")
        #expect(event.string("resources.0.type") == "AWS::EC2::SecurityGroup")
        #expect(event.string("resources.0.data.vpc_uid") == "vpc-14400670")
        #expect(event.value(at: "resources.0.data.security_groups") == nil)
        #expect(event.value(at: "cloud.zone") == nil)  // "Not Applicable"
        #expect(event.string("device.type") == "AWS::EC2::SecurityGroup")
        #expect(event.value(at: "device.instance_uid") == nil)
        #expect(event.string("unmapped.configurationItemDiff.changeType") == "CREATE")
        #expect(event.string("unmapped.configuration.ipPermissionsEgress.0.ipRanges.0") == "0.0.0.0/0")
    }

    @Test("derived-sns-string-message_02.json: Message as a JSON string (real SNS) maps like the object form")
    func stringMessage() throws {
        let object = try onlyEvent(config(try fixture(docs + "example-sns-notification_02.json")))
        let string = try onlyEvent(config(try fixture(docs + "derived-sns-string-message_02.json"), header: nil))
        #expect(string.serialized() == object.serialized())
    }

    @Test("example-config-rule-compliance-notification_00.json: Compliance Finding, NON_COMPLIANT -> COMPLIANT")
    func compliance() throws {
        let result = config(try fixture(docs + "example-config-rule-compliance-notification_00.json"), header: nil)
        #expect(result.source == "awsconfig")
        let event = try onlyEvent(result)
        #expect(event.int("class_uid") == 2003)
        #expect(event.int("category_uid") == 2)
        #expect(event.int("activity_id") == 3)
        #expect(event.string("activity_name") == "Close")
        #expect(event.int("type_uid") == 200_303)
        #expect(event.int("time") == millis("2016-09-27T19:48:41.405Z"))
        #expect(event.int("status_id") == 4)
        #expect(event.string("status") == "Resolved")
        #expect(event.int("compliance.status_id") == 1)
        #expect(event.string("compliance.status") == "Pass")
        #expect(event.string("compliance.status_code") == "COMPLIANT")
        #expect(event.string("compliance.control") == "cloudtrail-enabled")
        #expect(event.value(at: "compliance.standards") == ["AWS Config"])
        #expect(event.string("finding_info.analytic.name") == "cloudtrail-enabled")
        #expect(event.string("finding_info.analytic.uid") == "arn:aws:config:us-east-2:123456789012:config-rule/config-rule-9rpvxc")
        #expect(event.string("finding_info.title") == "AWS::::Account 123456789012 is COMPLIANT with cloudtrail-enabled")
        #expect(event.string("finding_info.uid")?.count == 32)
        #expect(event.string("resources.0.uid") == "123456789012")
        #expect(event.string("resources.0.type") == "AWS::::Account")
        #expect(event.string("cloud.region") == "us-east-2")
        #expect(event.string("cloud.account.uid") == "123456789012")
        #expect(event.string("unmapped.oldEvaluationResult.complianceType") == "NON_COMPLIANT")
        #expect(event.string("unmapped.notificationCreationTime") == "2016-09-27T19:48:42.620Z")
        #expect(event.string("unmapped.sns.TopicArn") == "arn:aws:sns:us-east-2:123456789012:config-topic-ohio")
    }

    @Test("oversized-notification-example_00.json: the summary becomes an event")
    func oversized() throws {
        let event = try onlyEvent(config(try fixture(docs + "oversized-notification-example_00.json"), header: nil))
        #expect(event.int("class_uid") == 5019)
        #expect(event.string("metadata.log_name") == "OversizedConfigurationItemChangeNotification")
        #expect(event.int("time") == millis("2016-10-06T16:46:16.261Z"))
        #expect(event.string("resources.0.uid") == "resourceId_14b76876-7969-4097-ab8e-a31942b02e80")
        #expect(event.string("cloud.region") == "us-west-2")
        #expect(event.string("device.instance_uid") == "resourceId_14b76876-7969-4097-ab8e-a31942b02e80")
        #expect(event.string("unmapped.changeType") == "UPDATE")
        #expect(event.string("unmapped.s3DeliverySummary.s3BucketLocation")?.hasPrefix("my-bucket/AWSLogs/123456789012/Config/") == true)
    }

    @Test("Delivery notices are recognized and skipped", arguments: [
        "example-configuration-history-notification_00.json",
        "example-configuration-snapshot-notification-started_00.json",
        "example-configuration-snapshot-notification_00.json",
        "notification-delivery-failed_00.json",
        "evaluate-config_develop-rules_example-events_02.json",
    ])
    func notices(file: String) throws {
        let result = config(try fixture(docs + file), header: nil)
        #expect(result.source == "awsconfig")
        #expect(result.events.isEmpty)
        #expect(result.failures.isEmpty)
        #expect(result.skipped == 1)
    }

    @Test("evaluate-config_develop-rules_example-events_00.json: a rule's Lambda event carries the item in invokingEvent")
    func ruleInvocation() throws {
        let event = try onlyEvent(config(try fixture(docs + "evaluate-config_develop-rules_example-events_00.json"), header: nil))
        #expect(event.int("time") == millis("2016-02-17T01:36:34.043Z"))
        #expect(event.string("resources.0.uid") == "i-00000000")
        #expect(event.string("resources.0.data.tags.Foo") == "Bar")
        #expect(event.string("resources.0.data.relationships.0.type") == "AWS::EC2::EIP")
        #expect(event.string("device.instance_uid") == "i-00000000")
        #expect(event.string("cloud.region") == "us-east-2")
        #expect(event.string("unmapped.configRule.configRuleName") == "change-triggered-config-rule")
        #expect(event.value(at: "unmapped.configRule.invokingEvent") == nil)
    }

    @Test("evaluate-config_develop-rules_example-events_01.json: an oversized item in invokingEvent")
    func ruleInvocationOversized() throws {
        let event = try onlyEvent(config(try fixture(docs + "evaluate-config_develop-rules_example-events_01.json"), header: nil))
        #expect(event.string("metadata.log_name") == "OversizedConfigurationItemChangeNotification")
        #expect(event.int("time") == millis("2016-10-06T16:46:16.261Z"))
        #expect(event.string("cloud.region") == "us-west-2")
    }

    /// Per-file outcome over every shared AWS Config sample, as reported to the lead.
    @Test("Every shared sample is accounted for: 7 events, 5 skipped, no failures")
    func accounting() throws {
        let files = [
            "evaluate-config_develop-rules_example-events_00.json", "evaluate-config_develop-rules_example-events_01.json",
            "evaluate-config_develop-rules_example-events_02.json", "example-config-rule-compliance-notification_00.json",
            "example-configuration-history-notification_00.json", "example-configuration-snapshot-notification-started_00.json",
            "example-configuration-snapshot-notification_00.json", "example-sns-notification_00.json",
            "example-sns-notification_01.json", "example-sns-notification_02.json",
            "notification-delivery-failed_00.json", "oversized-notification-example_00.json",
        ]
        var events = 0, failures = 0, skipped = 0
        for file in files {
            let result = config(try fixture(docs + file), header: nil)
            #expect(result.source == "awsconfig", "\(file)")
            events += result.events.count
            failures += result.failures.count
            skipped += result.skipped
        }
        #expect(events == 7)
        #expect(failures == 0)
        #expect(skipped == 5)
    }
}

@Suite("AWS Config: own fixtures (Fixtures/awsconfig/own)")
struct AWSConfigOwnFixtureTests {
    @Test("snapshot_delivery_file.json: one event per item, bad items fail alone with their index")
    func deliveryFile() throws {
        let result = config(try fixture("awsconfig/own/snapshot_delivery_file.json"), header: nil)
        #expect(result.source == "awsconfig")
        #expect(result.events.count == 2)
        #expect(result.failures.map(\.code) == ["missing_field", "invalid_entry"])
        #expect(result.failures.map(\.entryIndex) == [2, 3])
        #expect(result.failures[1].entryBytes == Array(#""not an item""#.utf8))
        let instance = result.events[0]
        #expect(instance.string("metadata.log_name") == "ConfigurationSnapshot")
        #expect(instance.string("unmapped.deliveryFile.configSnapshotId") == "0c0b2d5e-6a4f-4b6e-9d0e-2f1f0b7c9a11")
        #expect(instance.value(at: "resources.0.data.private_ips") == ["10.0.1.15", "10.0.1.16"])
        #expect(instance.value(at: "resources.0.data.public_ips") == ["203.0.113.25"])
        #expect(instance.value(at: "resources.0.data.security_groups") == ["sg-0123456789abcdef0"])
        #expect(instance.value(at: "resources.0.data.network_interfaces") == ["eni-0a1b2c3d4e5f60718"])
        #expect(instance.string("resources.0.data.relationships.2.relationship") == "Is contained in Subnet")
        #expect(instance.string("device.name") == "web-01")
        #expect(instance.string("device.subnet_uid") == "subnet-0fedcba9876543210")
        #expect(instance.string("device.vpc_uid") == "vpc-0a0b0c0d")
        let group = result.events[1]
        #expect(group.string("activity_name") == "ResourceDeleted")
        #expect(group.string("resources.0.name") == "web")
        #expect(group.string("resources.0.data.vpc_uid") == "vpc-0a0b0c0d")  // from the configuration JSON string
        #expect(group.value(at: "unmapped.relatedEvents") == ["6f2a0c1e-1111-2222-3333-444455556666"])
    }

    @Test("eventbridge_compliance.json: EventBridge compliance change, a new NON_COMPLIANT finding")
    func eventBridgeCompliance() throws {
        let event = try onlyEvent(config(try fixture("awsconfig/own/eventbridge_compliance.json"), header: nil))
        #expect(event.int("class_uid") == 2003)
        #expect(event.int("activity_id") == 1)
        #expect(event.int("status_id") == 1)
        #expect(event.string("status") == "New")
        #expect(event.int("compliance.status_id") == 3)
        #expect(event.string("compliance.status") == "Fail")
        #expect(event.string("compliance.status_detail") == "Port 22 open to 0.0.0.0/0")
        #expect(event.int("time") == millis("2024-05-01T10:04:59.120Z"))
        #expect(event.string("resources.0.uid") == "sg-0123456789abcdef0")
        #expect(event.string("unmapped.eventBridge.detail-type") == "Config Rules Compliance Change")
    }

    @Test("Finding uid is shared by every change of one rule and resource; event uid is not")
    func findingIdentity() throws {
        let first = try onlyEvent(config(try fixture("awsconfig/own/eventbridge_compliance.json")))
        var text = String(decoding: try fixture("awsconfig/own/eventbridge_compliance.json"), as: UTF8.self)
        text = text.replacing("2024-05-01T10:04:58.000Z", with: "2024-05-02T10:04:58.000Z")
        let second = try onlyEvent(config(text))
        #expect(first.string("finding_info.uid") == second.string("finding_info.uid"))
        #expect(first.string("metadata.uid") != second.string("metadata.uid"))
    }

    @Test("sns_subscription_confirmation.json: skipped with the header, not claimed without")
    func subscriptionConfirmation() throws {
        let bytes = try fixture("awsconfig/own/sns_subscription_confirmation.json")
        let result = config(bytes)
        #expect(result.skipped == 1 && result.events.isEmpty && result.failures.isEmpty)
        #expect(config(bytes, header: nil).failures.map(\.code) == ["unrecognized_format"])
    }

    @Test("The same item via notification and via a history file gets the same uid")
    func redeliveryUID() throws {
        let notification = try onlyEvent(config(try fixture(docs + "example-sns-notification_02.json")))
        let item = try #require(try JSON.parse(try fixture(docs + "example-sns-notification_02.json")).value(at: "Message.configurationItem"))
        let file = JSON.object(["fileVersion": "1.0", "configurationItems": [item]])
        let result = config(file.serialized(), header: nil)
        #expect(result.events.first?.string("metadata.uid") == notification.string("metadata.uid"))
        #expect(result.events.first?.string("metadata.log_name") == "ConfigurationHistory")
    }
}

@Suite("AWS Config: detection, failures, hostile input")
struct AWSConfigRobustnessTests {
    @Test("CloudTrail events are not claimed, and CloudTrail does not claim Config records")
    func detectionBoundaries() throws {
        let both = Normalizer(parsers: [CloudTrailParser(), AWSConfigParser()])
        let reversed = Normalizer(parsers: [AWSConfigParser(), CloudTrailParser()])
        for file in ["own/assume_role.json", "streamalert/records_delete_subnet.json", "streamalert/eventbridge_create_image.json"] {
            let bytes = try fixture(file)
            #expect(config(bytes, header: nil).failures.map(\.code) == ["unrecognized_format"], "\(file)")
            #expect(reversed.normalize(RawRecord(bytes: bytes)).source == "cloudtrail", "\(file)")
        }
        for file in ["example-sns-notification_01.json", "example-config-rule-compliance-notification_00.json",
                     "oversized-notification-example_00.json", "evaluate-config_develop-rules_example-events_00.json"] {
            let bytes = try fixture(docs + file)
            #expect(!CloudTrailParser().recognizes(SourceInput(raw: bytes)), "\(file)")
            #expect(both.normalize(RawRecord(bytes: bytes)).source == "awsconfig", "\(file)")
        }
        #expect(!CloudTrailParser().recognizes(SourceInput(raw: try fixture("awsconfig/own/snapshot_delivery_file.json"))))
    }

    @Test("Failure codes for specific faults; messages never quote the payload")
    func failures() throws {
        let secret = "SECRETVALUEDONOTLEAK"
        let cases: [(String, String)] = [
            (#"{"messageType":"ConfigurationItemChangeNotification","configurationItem":{"resourceType":"AWS::S3::Bucket","resourceId":"\#(secret)","configurationItemCaptureTime":"\#(secret)"}}"#, "invalid_time"),
            (#"{"messageType":"ConfigurationItemChangeNotification","configurationItem":{"resourceType":"AWS::S3::Bucket","resourceId":"b"}}"#, "invalid_time"),
            (#"{"messageType":"ConfigurationItemChangeNotification","configurationItem":{"resourceId":"\#(secret)"}}"#, "missing_field"),
            (#"{"messageType":"ConfigurationItemChangeNotification","configurationItem":"\#(secret)"}"#, "missing_field"),
            (#"{"messageType":"\#(secret)"}"#, "unrecognized_format"),
            (#"{"Type":"Notification","TopicArn":"t","Message":"{\"messageType\":\"\#(secret)"}"#, "invalid_json"),
            (#"{"Type":"Notification","TopicArn":"t","Message":42}"#, "unrecognized_format"),
            (#"{"configurationItems":{"a":"\#(secret)"}}"#, "unrecognized_format"),
            (#"{"messageType":"ComplianceChangeNotification","resourceType":"AWS::S3::Bucket","resourceId":"b","configRuleName":"r"}"#, "missing_field"),
            (#"{"messageType":"ComplianceChangeNotification","resourceType":"AWS::S3::Bucket","resourceId":"b","configRuleName":"r","newEvaluationResult":{"resultRecordedTime":"\#(secret)"}}"#, "invalid_time"),
            (#"["\#(secret)"]"#, "unrecognized_format"),
            (#"{"no":"config"}"#, "missing_field"),
            ("{\"messageType\":\"Configuration", "invalid_json"),
        ]
        for (record, code) in cases {
            let result = config(record)
            #expect(result.events.isEmpty, "\(record)")
            #expect(result.failures.map(\.code) == [code], "\(record)")
            for failure in result.failures {
                #expect(!failure.description.contains(secret))
                #expect(failure.message.utf8.count < 200)
            }
        }
    }

    @Test("Invalid UTF-8 and a 10 MB field")
    func sizeAndEncoding() throws {
        let bad = [UInt8](#"{"messageType":"ConfigurationItemChangeNotification","configurationItem":{"resourceId":""#.utf8) + [0xC3, 0x28, 0xFF] + [UInt8](#""}}"#.utf8)
        #expect(config(bad).failures.map(\.code) == ["invalid_json"])
        #expect(config(bad, header: nil).failures.map(\.code) == ["invalid_json"])
        let big = String(repeating: "x", count: 10_000_000)
        let record = #"{"messageType":"ConfigurationItemChangeNotification","configurationItem":{"resourceType":"AWS::S3::Bucket","resourceId":"b","configurationItemCaptureTime":"2024-05-01T00:00:00Z","configuration":{"policy":"\#(big)"}}}"#
        let event = try onlyEvent(config(record, header: nil))
        #expect(event.string("unmapped.configuration.policy")?.utf8.count == 10_000_000)
    }

    @Test("Same bytes, same events")
    func determinism() throws {
        for file in ["example-sns-notification_00.json", "example-sns-notification_01.json",
                     "example-config-rule-compliance-notification_00.json"] {
            let bytes = try fixture(docs + file)
            #expect(config(bytes).events.map { $0.serialized() } == config(bytes, header: nil).events.map { $0.serialized() })
        }
        let file = try fixture("awsconfig/own/snapshot_delivery_file.json")
        #expect(config(file).events.map { $0.serialized() } == config(file).events.map { $0.serialized() })
    }

    @Test("2,000 random byte mutations: no crash, every record accounted for")
    func mutations() throws {
        let samples = try [docs + "example-sns-notification_00.json", docs + "example-config-rule-compliance-notification_00.json",
                           docs + "derived-sns-string-message_02.json", "awsconfig/own/snapshot_delivery_file.json"].map(fixture)
        var random = AWSConfigXorshift(seed: 0x5EED_C0F1_6000_0001)
        for iteration in 0..<2_000 {
            var bytes = samples[iteration % samples.count]
            for _ in 0...(random.next() % 8) {
                bytes[Int(random.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: random.next())
            }
            if random.next() % 10 == 0 { bytes = Array(bytes.prefix(Int(random.next() % UInt64(bytes.count)))) }
            for header in ["awsconfig", nil] as [String?] {
                let result = config(bytes, header: header)
                #expect(result.events.count + result.failures.count + result.skipped >= 1)
                for event in result.events {
                    #expect(event.string("metadata.uid") != nil)
                    #expect(event.int("time") != nil)
                }
            }
        }
    }
}

/// A tiny deterministic generator for the mutation test.
fileprivate struct AWSConfigXorshift {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }
}
