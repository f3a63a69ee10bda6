import Normalize
import OCSF
import Testing

/// The shapes CloudTrail arrives in and the mapping of each event class, on hand-written fixtures.
@Suite("CloudTrail forms and mapping")
struct CloudTrailFormTests {
    @Test("Records file: a broken middle entry fails alone, its siblings become events")
    func recordsWithBrokenEntry() throws {
        let result = normalize(try fixture("own/records_middle_broken.json"))
        #expect(result.events.map { $0.string("metadata.uid") } == [
            "aaaaaaaa-0000-4000-8000-000000000001", "aaaaaaaa-0000-4000-8000-000000000003",
        ])
        let failure = try #require(result.failures.first)
        #expect(result.failures.count == 1)
        #expect(failure.code == "invalid_time")
        #expect(failure.entryIndex == 1)
        #expect(failure.message == "eventTime is missing")
        // The entry's own bytes, ready to be dead-lettered alone.
        let entry = try JSON.parse(#require(failure.entryBytes))
        #expect(entry.string("eventName") == "TerminateInstances")
        #expect(entry.string("eventID") == "aaaaaaaa-0000-4000-8000-000000000002")
        #expect(failure.description == "invalid_time: eventTime is missing (entry 1)")
    }

    @Test("RunInstances: Create, instances from the response, full actor and cloud mapping")
    func runInstances() throws {
        let event = try #require(normalize(try fixture("own/records_middle_broken.json")).events.first)
        #expect(event.int("class_uid") == 6003)
        #expect(event.string("class_name") == "API Activity")
        #expect(event.int("category_uid") == 6)
        #expect(event.int("activity_id") == 1)
        #expect(event.string("activity_name") == "Create")
        #expect(event.int("status_id") == 1)
        #expect(event.int("severity_id") == 1)
        #expect(event.int("time") == millis("2024-05-01T12:00:00Z"))
        #expect(event.string("metadata.product.name") == "CloudTrail")
        #expect(event.string("metadata.product.vendor_name") == "AWS")
        #expect(event.string("metadata.version") == "1.3.0")
        #expect(event.string("metadata.original_time") == "2024-05-01T12:00:00Z")
        #expect(event.value(at: "actor.user") == [
            "type": "IAMUser", "type_id": 1, "uid": "AIDAEXAMPLEALICE", "name": "alice",
            "uid_alt": "arn:aws:iam::111122223333:user/alice", "credential_uid": "AKIAIOSFODNN7EXAMPLE",
            "account": ["uid": "111122223333", "type_id": 10, "type": "AWS Account"],
        ])
        #expect(event.value(at: "api") == [
            "operation": "RunInstances", "service": ["name": "ec2.amazonaws.com"],
            "request": ["uid": "11111111-1111-4111-8111-111111111111"],
        ])
        #expect(event.value(at: "resources") == [
            ["uid": "i-0aaaaaaaaaaaaaaa1", "type": "AWS::EC2::Instance"],
            ["uid": "i-0aaaaaaaaaaaaaaa2", "type": "AWS::EC2::Instance"],
        ])
        // Everything not mapped is kept as-is; nothing mapped is duplicated (except recipientAccountId).
        let unmapped = try #require(event.value(at: "unmapped")?.objectValue)
        #expect(Set(unmapped.keys) == [
            "eventVersion", "readOnly", "managementEvent", "eventCategory", "recipientAccountId",
            "requestParameters", "responseElements",
        ])
        #expect(unmapped["requestParameters"]?["instanceType"] == "t3.micro")
        #expect(unmapped["responseElements"]?["reservationId"] == "r-0123456789abcdef0")
        #expect(unmapped["readOnly"] == false)
    }

    @Test("An errorCode makes a Failure with status_detail, message and api.response")
    func errorCodeFailure() throws {
        let event = try #require(normalize(try fixture("own/records_middle_broken.json")).events.last)
        #expect(event.int("status_id") == 2)
        #expect(event.string("status") == "Failure")
        #expect(event.string("status_detail") == "AccessDenied")
        #expect(event.string("message") == "Access Denied")
        #expect(event.value(at: "api.response") == ["error": "AccessDenied", "message": "Access Denied"])
        #expect(event.string("src_endpoint.ip") == "2001:db8::10")
        #expect(event.value(at: "resources") == [[
            "uid": "arn:aws:s3:::example-bucket", "type": "AWS::S3::Bucket",
            "owner": ["account": ["uid": "111122223333", "type_id": 10, "type": "AWS Account"]],
        ]])
        #expect(event.value(at: "unmapped.responseElements") == .null)
    }

    @Test("ConsoleLogin success: Authentication Logon with MFA")
    func consoleLoginSuccess() throws {
        let event = try onlyEvent(normalize(try fixture("own/console_login_success.json")))
        #expect(event.int("class_uid") == 3002)
        #expect(event.string("class_name") == "Authentication")
        #expect(event.int("category_uid") == 3)
        #expect(event.int("activity_id") == 1)
        #expect(event.string("activity_name") == "Logon")
        #expect(event.int("type_uid") == 300201)
        #expect(event.int("status_id") == 1)
        #expect(event.value(at: "status_detail") == nil)
        #expect(event.value(at: "is_mfa") == true)
        #expect(event.string("user.name") == "bob")
        #expect(event.string("user.uid") == "AIDAEXAMPLEBOB")
        #expect(event.string("actor.user.name") == "bob")
        #expect(event.string("service.name") == "signin.amazonaws.com")
        #expect(event.string("metadata.log_name") == "AwsConsoleSignIn")
        #expect(event.string("unmapped.tlsDetails.tlsVersion") == "TLSv1.3")
        #expect(event.string("unmapped.additionalEventData.MFAUsed") == "Yes")
    }

    @Test("ConsoleLogin failure: status from responseElements, detail from errorMessage")
    func consoleLoginFailure() throws {
        let event = try onlyEvent(normalize(try fixture("own/console_login_failure.json")))
        #expect(event.int("class_uid") == 3002)
        #expect(event.int("status_id") == 2)
        #expect(event.string("status_detail") == "Failed authentication")
        #expect(event.string("message") == "Failed authentication")
        #expect(event.value(at: "is_mfa") == false)
        // No ARN: the name comes from userName; an empty accessKeyId is no credential.
        #expect(event.string("user.name") == "bob")
        #expect(event.value(at: "actor.user.credential_uid") == nil)
        #expect(event.string("src_endpoint.ip") == "198.51.100.99")
    }

    @Test("EventBridge sign-in envelope yields the same event as the bare record")
    func eventBridgeEnvelope() throws {
        let result = normalize(try fixture("own/eventbridge_console_sign_in.json"), source: nil)
        #expect(result.detected && result.source == "cloudtrail")
        let wrapped = try onlyEvent(result)
        let bare = try onlyEvent(normalize(try fixture("own/console_login_success.json")))
        #expect(wrapped.serialized() == bare.serialized())
    }

    @Test("A digest file is recognized and skipped, not an error")
    func digestSkipped() throws {
        let result = normalize(try fixture("own/digest.json"), source: nil)
        #expect(result.detected)
        #expect(result.source == "cloudtrail")
        #expect(result.events.isEmpty)
        #expect(result.failures.isEmpty)
        #expect(result.skipped == 1)
    }

    @Test("AssumeRole: Authentication, activity Other, with the issued session")
    func assumeRole() throws {
        let event = try onlyEvent(normalize(try fixture("own/assume_role.json")))
        #expect(event.int("class_uid") == 3002)
        #expect(event.int("activity_id") == 99)
        #expect(event.string("activity_name") == "AssumeRole")
        #expect(event.int("type_uid") == 300299)
        #expect(event.int("status_id") == 1)
        #expect(event.string("user.name") == "carol")
        #expect(event.string("actor.user.credential_uid") == "AKIAIOSFODNN7EXAMPLE")
        #expect(event.value(at: "actor.session") == ["created_time": .int(millis("2024-05-03T09:00:00Z")), "is_mfa": true])
        #expect(event.value(at: "session") == [
            "credential_uid": "ASIAEXAMPLEISSUED01",
            "expiration_time": .int(millis("2024-05-03T10:30:00Z")),
            "issuer": "arn:aws:iam::444455556666:role/Auditor",
            "uid_alt": "arn:aws:sts::444455556666:assumed-role/Auditor/carol-audit",
        ])
        // OCSF 1.3 Authentication has no resources: the role is session.issuer (above), and
        // CloudTrail's resources list stays in unmapped.
        #expect(event.value(at: "resources") == nil)
        #expect(event.string("unmapped.resources.0.ARN") == "arn:aws:iam::444455556666:role/Auditor")
        #expect(event.string("cloud.account.uid") == "111122223333")
        #expect(event.string("unmapped.sharedEventID") == "dddddddd-0000-4000-8000-000000000001")
        #expect(event.value(at: "unmapped.userIdentity.sessionContext.attributes.mfaAuthenticated") == "true")
        #expect(event.value(at: "unmapped.userIdentity.userName") == nil)
    }

    @Test("activity_id from the event name's verb", arguments: [
        ("CreateUser", 1), ("RunInstances", 1), ("PutBucketPolicy", 1), ("AllocateAddress", 1), ("ImportKeyPair", 1),
        ("GetObject", 2), ("DescribeInstances", 2), ("ListBuckets", 2), ("HeadObject", 2), ("LookupEvents", 2),
        ("UpdateTrail", 3), ("ModifyImageAttribute", 3), ("SetDefaultPolicyVersion", 3), ("AttachUserPolicy", 3),
        ("AssociateRouteTable", 3), ("EnableMFADevice", 3), ("DisableKey", 3), ("StartLogging", 3), ("StopLogging", 3),
        ("ResetImageAttribute", 3), ("ChangePassword", 3), ("AddUserToGroup", 3),
        ("DeleteTrail", 4), ("RemoveUserFromGroup", 4), ("TerminateInstances", 4), ("DetachRolePolicy", 4),
        ("DisassociateAddress", 4), ("RevokeSecurityGroupIngress", 4),
        ("ConsoleLogout", 99), ("DeactivateMFADevice", 99), ("Settings", 99), ("AddressTransfer", 99), ("Get", 2),
        ("CreateFunction20150331", 1),
    ] as [(String, Int64)])
    func activityFromVerb(eventName: String, activity: Int64) throws {
        let record = #"{"eventName":"\#(eventName)","eventSource":"iam.amazonaws.com","eventTime":"2024-01-01T00:00:00Z"}"#
        let event = try onlyEvent(normalize(record))
        #expect(event.int("class_uid") == 6003)
        #expect(event.int("activity_id") == activity)
        #expect(event.int("type_uid") == 600_300 + activity)
        let names: [Int64: String] = [1: "Create", 2: "Read", 3: "Update", 4: "Delete", 99: "Other"]
        #expect(event.string("activity_name") == names[activity])
    }

    @Test("Credential-issuing calls are Authentication", arguments: [
        "AssumeRole", "AssumeRoleWithSAML", "AssumeRoleWithWebIdentity", "GetFederationToken", "GetSessionToken",
    ])
    func credentialIssuers(eventName: String) throws {
        let record = #"{"eventName":"\#(eventName)","eventSource":"sts.amazonaws.com","eventTime":"2024-01-01T00:00:00Z"}"#
        let event = try onlyEvent(normalize(record))
        #expect(event.int("class_uid") == 3002)
        #expect(event.int("activity_id") == 99)
        #expect(event.string("activity_name") == eventName)
    }

    @Test("sourceIPAddress: addresses to ip, host names to domain, anything else to name", arguments: [
        ("203.0.113.5", "ip"), ("2001:db8::1", "ip"), ("::1", "ip"), ("::ffff:192.0.2.1", "ip"),
        ("2001:db8:0:0:0:0:0:1", "ip"), ("ec2.amazonaws.com", "domain"), ("AWS Internal", "name"),
        ("256.1.1.1", "name"), ("2001:db8:::1", "name"), ("1:2:3:4:5:6:7:8:9", "name"), ("...", "name"),
    ])
    func sourceAddress(source: String, key: String) throws {
        let record = #"{"eventName":"ListBuckets","eventSource":"s3.amazonaws.com","eventTime":"2024-01-01T00:00:00Z","sourceIPAddress":"\#(source)"}"#
        let event = try onlyEvent(normalize(record))
        #expect(event.value(at: "src_endpoint") == .object([key: .string(source)]))
    }

    @Test("actor.user.name falls back to the session issuer, then to the ARN's last part")
    func userNameFallbacks() throws {
        let root = #"{"eventName":"ListBuckets","eventSource":"s3.amazonaws.com","eventTime":"2024-01-01T00:00:00Z","userIdentity":{"type":"Root","arn":"arn:aws:iam::111122223333:root","principalId":"111122223333"}}"#
        let rootEvent = try onlyEvent(normalize(root))
        #expect(rootEvent.string("actor.user.name") == "root")
        #expect(rootEvent.int("actor.user.type_id") == 2)
        #expect(rootEvent.string("cloud.account.uid") == nil)
        let pathUser = #"{"eventName":"ListBuckets","eventSource":"s3.amazonaws.com","eventTime":"2024-01-01T00:00:00Z","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/team/dave","accountId":"111122223333"}}"#
        let pathEvent = try onlyEvent(normalize(pathUser))
        #expect(pathEvent.string("actor.user.name") == "dave")
        #expect(pathEvent.string("cloud.account.uid") == "111122223333")
    }

    @Test("Missing eventName and a non-object entry are reported per entry")
    func entryProblems() throws {
        let record = #"{"Records":[{"eventSource":"s3.amazonaws.com","eventTime":"2024-01-01T00:00:00Z"}, 7, {"eventName":"ListBuckets","eventSource":"s3.amazonaws.com","eventTime":"not a time"}]}"#
        let result = normalize(record)
        #expect(result.events.isEmpty)
        #expect(result.failures.map(\.code) == ["missing_field", "invalid_entry", "invalid_time"])
        #expect(result.failures.map(\.entryIndex) == [0, 1, 2])
        #expect(result.failures[1].entryBytes == Array("7".utf8))
        #expect(result.failures[2].message == "eventTime is not an RFC 3339 timestamp")
    }

    @Test("@timestamp is the fallback only when eventTime is absent")
    func timestampFallback() throws {
        let both = #"{"eventName":"ListBuckets","eventSource":"s3.amazonaws.com","eventTime":"2024-01-01T00:00:00Z","@timestamp":"2024-01-01T00:00:09Z"}"#
        let event = try onlyEvent(normalize(both))
        #expect(event.int("time") == millis("2024-01-01T00:00:00Z"))
        #expect(event.string("unmapped.@timestamp") == "2024-01-01T00:00:09Z")
        let offset = #"{"eventName":"ListBuckets","eventSource":"s3.amazonaws.com","@timestamp":"2024-01-01T02:00:00.250+02:00"}"#
        #expect(try onlyEvent(normalize(offset)).int("time") == millis("2024-01-01T00:00:00.250Z"))
        let wrongType = #"{"eventName":"ListBuckets","eventSource":"s3.amazonaws.com","eventTime":1704067200000}"#
        #expect(normalize(wrongType).failures.map(\.code) == ["invalid_time"])
    }
}
