import Normalize
import OCSF
import Testing

/// Azure Activity Log. The shared data holds no Azure records, so every fixture under
/// `Fixtures/azure-activity/` was written from Microsoft's published Activity Log schema
/// (see SOURCES.md there).
@Suite("Azure Activity Log")
struct AzureActivityTests {
    fileprivate static let all: [any SourceParser] = [CloudTrailParser(), AzureActivityParser(), GCPAuditParser(), OktaParser()]

    fileprivate func azure(_ bytes: [UInt8], header: String? = "azure-activity") -> NormalizeResult {
        Normalizer(parsers: [AzureActivityParser()]).normalize(RawRecord(bytes: bytes, source: header))
    }

    @Test("Event Hub export: Start and Success of one role assignment, a Forbidden delete, a service principal's listKeys, a policy audit")
    func eventHubRecords() throws {
        let result = azure(try fixture("azure-activity/eventhub_records.json"))
        #expect(result.failures.isEmpty)
        try #require(result.events.count == 5)
        let (start, created, denied, listKeys, policy) = (result.events[0], result.events[1], result.events[2], result.events[3], result.events[4])

        #expect(start.int("class_uid") == 6003)
        #expect(start.int("activity_id") == 3)
        #expect(start.int("status_id") == 0)
        #expect(start.string("status_code") == "Start")
        #expect(start.int("time") == millis("2024-05-01T09:14:02.152Z"))
        #expect(start.string("metadata.original_time") == "2024-05-01T09:14:02.1520387Z")
        #expect(start.string("metadata.uid") == StableID.hash([
            "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d", "MICROSOFT.AUTHORIZATION/ROLEASSIGNMENTS/WRITE", "2024-05-01T09:14:02.1520387Z", "Start",
            "/SUBSCRIPTIONS/6F2B3C1E-8D4A-4F0B-9C7E-2A5D1E3F4B60/RESOURCEGROUPS/PROD-RG/PROVIDERS/MICROSOFT.AUTHORIZATION/ROLEASSIGNMENTS/0F1E2D3C-4B5A-6978-8A9B-0C1D2E3F4A5B",
        ]))
        #expect(start.string("metadata.uid") != created.string("metadata.uid"))

        #expect(created.int("activity_id") == 1)
        #expect(created.string("activity_name") == "Create")
        #expect(created.int("type_uid") == 600301)
        #expect(created.int("status_id") == 1)
        #expect(created.string("status_detail") == "Succeeded.Created")
        #expect(created.string("metadata.correlation_uid") == "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d")
        #expect(created.string("metadata.log_name") == "Administrative")
        #expect(created.string("metadata.event_code") == "MICROSOFT.AUTHORIZATION/ROLEASSIGNMENTS/WRITE")
        #expect(created.string("metadata.product.name") == "Azure Activity Log")
        #expect(created.string("metadata.product.vendor_name") == "Microsoft")
        #expect(created.string("api.operation") == "MICROSOFT.AUTHORIZATION/ROLEASSIGNMENTS/WRITE")
        #expect(created.string("api.service.name") == "Microsoft.Authorization")
        #expect(created.string("api.request.uid") == "5c4d3e2f-1a0b-4c9d-8e7f-6a5b4c3d2e1f")
        #expect(created.string("actor.user.name") == "alice@contoso.com")
        #expect(created.string("actor.user.email_addr") == "alice@contoso.com")
        #expect(created.string("actor.user.full_name") == "Alice Nguyen")
        #expect(created.string("actor.user.uid") == "3c9e4f2a-1b7d-4e8a-9f0c-5d6b7a8e9f01")
        #expect(created.int("actor.user.type_id") == 1)
        #expect(created.string("actor.app_uid") == "04b07795-8ddb-461a-bbee-02f9e1bf7b46")
        #expect(created.string("src_endpoint.ip") == "203.0.113.24")
        #expect(created.string("cloud.provider") == "Azure")
        #expect(created.string("cloud.account.uid") == "6f2b3c1e-8d4a-4f0b-9c7e-2a5d1e3f4b60")
        #expect(created.int("cloud.account.type_id") == 13)
        #expect(created.string("cloud.region") == "global")
        #expect(created.string("cloud.org.uid") == "72f988bf-86f1-41af-91ab-2d7cd011db47")
        #expect(created.string("resources.0.type") == "MICROSOFT.AUTHORIZATION/ROLEASSIGNMENTS")
        #expect(created.string("resources.0.name") == "0F1E2D3C-4B5A-6978-8A9B-0C1D2E3F4A5B")
        #expect(created.string("unmapped.identity.authorization.evidence.role") == "Owner")
        #expect(created.string("unmapped.properties.statusCode") == "Created")
        #expect(created.string("unmapped.durationMs") == "1748")
        #expect(created.value(at: "unmapped.operationName") == nil)

        #expect(denied.int("activity_id") == 4)
        #expect(denied.int("status_id") == 2)
        #expect(denied.string("status") == "Failure")
        #expect(denied.string("status_detail") == "Failed.Forbidden")
        #expect(denied.int("severity_id") == 3)
        #expect(denied.string("api.response.error") == "Forbidden")
        #expect(denied.string("message")?.hasPrefix("The client does not have authorization") == true)
        #expect(denied.string("actor.user.name") == "bob@contoso.com")
        #expect(denied.string("cloud.region") == "westeurope")
        #expect(denied.string("resources.0.name") == "WEB-01")
        #expect(denied.string("api.service.name") == "Microsoft.Compute")

        #expect(listKeys.int("activity_id") == 99)
        #expect(listKeys.string("activity_name") == "Other")
        #expect(listKeys.value(at: "actor.user.name") == nil)
        #expect(listKeys.string("actor.user.uid") == "b7e4c1d2-9f3a-4b6c-8d7e-1a2b3c4d5e6f")
        #expect(listKeys.string("actor.user.type") == "ServicePrincipal")
        #expect(listKeys.int("actor.user.type_id") == 99)
        #expect(listKeys.string("actor.app_uid") == "e2b7c4d1-3f5a-4e6b-9c8d-7a6b5c4d3e2f")
        #expect(listKeys.string("api.service.name") == "Microsoft.Storage")

        #expect(policy.string("metadata.log_name") == "Policy")
        #expect(policy.int("severity_id") == 2)
        #expect(policy.int("activity_id") == 99)
    }

    @Test("REST list page: eventDataId as uid, localizable fields, the Failed one with its sub-status")
    func restList() throws {
        let result = azure(try fixture("azure-activity/rest_list.json"))
        #expect(result.failures.isEmpty)
        try #require(result.events.count == 2)
        let (ok, failed) = (result.events[0], result.events[1])
        #expect(ok.string("metadata.uid") == "b0c1d2e3-f4a5-4b6c-8d7e-9f0a1b2c3d4e")
        #expect(ok.int("activity_id") == 1)
        #expect(ok.int("status_id") == 1)
        #expect(ok.string("status_code") == "Succeeded")
        #expect(ok.string("status_detail") == "Created")
        #expect(ok.int("time") == millis("2024-05-02T12:00:07.440Z"))
        #expect(ok.string("api.operation") == "Microsoft.Network/networkSecurityGroups/securityRules/write")
        #expect(ok.string("api.service.name") == "Microsoft.Network")
        #expect(ok.string("actor.user.name") == "carol@contoso.com")
        #expect(ok.string("src_endpoint.ip") == "192.0.2.45")
        #expect(ok.string("http_request.http_method") == "PUT")
        #expect(ok.string("cloud.account.uid") == "6f2b3c1e-8d4a-4f0b-9c7e-2a5d1e3f4b60")
        #expect(ok.string("resources.0.type") == "Microsoft.Network/networkSecurityGroups/securityRules")
        #expect(ok.string("resources.0.name") == "allow-rdp-any")
        #expect(ok.string("metadata.log_name") == "Administrative")
        #expect(ok.string("unmapped.eventName.value") == "EndRequest")
        #expect(ok.string("unmapped.resourceGroupName") == "net-rg")
        #expect(ok.value(at: "unmapped.status") == nil)

        #expect(failed.string("metadata.uid") == "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f")
        #expect(failed.int("status_id") == 2)
        #expect(failed.int("activity_id") == 3)
        #expect(failed.string("status_detail") == "BadRequest")
        #expect(failed.string("message") == "Security rule has invalid Port range.")
        #expect(failed.int("severity_id") == 3)
    }

    @Test("az monitor activity-log list array: an Accepted delete from an IPv6 address")
    func cliArray() throws {
        let event = try onlyEvent(azure(try fixture("azure-activity/cli_list.json")))
        #expect(event.int("activity_id") == 4)
        #expect(event.int("status_id") == 0)
        #expect(event.string("status_code") == "Accepted")
        #expect(event.string("src_endpoint.ip") == "2001:db8:4006:812::200e")
        #expect(event.string("http_request.http_method") == "DELETE")
    }

    @Test("A bad entry fails alone, with its index and bytes; siblings still flow")
    func middleBroken() throws {
        let result = azure(try fixture("azure-activity/records_middle_broken.json"))
        #expect(result.events.count == 2)
        #expect(result.failures.map(\.code) == ["invalid_time", "invalid_entry"])
        #expect(result.failures.map(\.entryIndex) == [1, 2])
        let bytes = try #require(result.failures[1].entryBytes)
        #expect(String(decoding: bytes, as: UTF8.self) == #""not an object""#)
    }

    @Test("Timestamps: 7-digit fractions, US culture forms with AM/PM and offsets, garbage")
    func timeForms() throws {
        func time(_ text: String) -> NormalizeResult {
            azure(Array(#"{"time":"\#(text)","resourceId":"/subscriptions/s","operationName":"Microsoft.Resources/subscriptions/read","category":"Administrative"}"#.utf8))
        }
        let cases: [(String, String)] = [
            ("2007-01-09T09:41:00.6816663Z", "2007-01-09T09:41:00.681Z"),
            ("2007-01-09T11:41:00+02:00", "2007-01-09T09:41:00Z"),
            ("1/9/2007 9:41:00 AM", "2007-01-09T09:41:00Z"),
            ("01/09/2007 09:41:00", "2007-01-09T09:41:00Z"),
            ("1/9/2007 10:41:00 AM +01:00", "2007-01-09T09:41:00Z"),
            ("1/9/2007 12:05:00 PM", "2007-01-09T12:05:00Z"),
            ("1/9/2007 12:05:00 AM", "2007-01-09T00:05:00Z"),
        ]
        for (text, expected) in cases {
            let event = try onlyEvent(time(text))
            #expect(event.int("time") == millis(expected), "\(text)")
            #expect(event.string("metadata.original_time") == text)
        }
        for bad in ["yesterday", "13/40/2007 09:41:00", "1/9/2007 13:00:00 PM", "1/9/07 09:41:00", ""] {
            #expect(time(bad).failures.map(\.code) == ["invalid_time"], "\(bad)")
        }
        let noTime = azure(Array(#"{"resourceId":"/subscriptions/s","operationName":"x/read","category":"Administrative"}"#.utf8))
        #expect(noTime.failures.map(\.code) == ["invalid_time"])
    }

    @Test("Detection without a header, and no claims on CloudTrail, GCP, Okta or Entra ID records")
    func detection() throws {
        let normalizer = Normalizer(parsers: Self.all)
        for path in ["azure-activity/eventhub_records.json", "azure-activity/rest_list.json", "azure-activity/cli_list.json"] {
            let result = normalizer.normalize(RawRecord(bytes: try fixture(path), source: nil))
            #expect(result.detected)
            #expect(result.source == "azure-activity", "\(path)")
            #expect(!result.events.isEmpty)
        }
        // Entra ID sign-in logs share the diagnostic-settings envelope but are not Activity Log records.
        let signIn = normalizer.normalize(RawRecord(bytes: try fixture("azure-activity/entra_signin_not_activity.json"), source: nil))
        #expect(signIn.source == "unknown")
        #expect(signIn.failures.map(\.code) == ["unrecognized_format"])

        let azureOnly = Normalizer(parsers: [AzureActivityParser()])
        let others = [
            "own/assume_role.json", "own/console_login_success.json", "own/eventbridge_console_sign_in.json",
            "streamalert/records_delete_subnet.json", "streamalert/aliyun_actiontrail.json",
            "gcp-audit/admin_activity_instances_insert.json", "gcp-audit/entries_page.json", "gcp-audit/gcloud_read_array.json",
            "okta/system_log_api_page.json", "okta/session_start_failure.json", "okta/event_hook_delivery.json",
        ]
        for path in others {
            #expect(azureOnly.normalize(RawRecord(bytes: try fixture(path), source: nil)).source == "unknown", "\(path)")
        }
        let cloudTrailOnly = Normalizer(parsers: [CloudTrailParser()])
        for path in ["azure-activity/eventhub_records.json", "azure-activity/rest_list.json", "azure-activity/cli_list.json"] {
            #expect(cloudTrailOnly.normalize(RawRecord(bytes: try fixture(path), source: nil)).source == "unknown", "\(path)")
        }
        // None of StreamAlert's 127 test records (CloudTrail, SaaS, osquery, ...) is Azure.
        let lines = try fixture("okta/streamalert_flat_head_test_events.jsonl").split(separator: UInt8(ascii: "\n"))
        #expect(lines.count == 127)
        for line in lines {
            let data = try #require(try JSON.parse(line)["data"])
            #expect(azureOnly.normalize(RawRecord(bytes: data.serialized(), source: nil)).source == "unknown")
        }
    }

    @Test("Deterministic: the same bytes give identical events, also pretty-printed vs compact")
    func determinism() throws {
        let bytes = try fixture("azure-activity/eventhub_records.json")
        let first = azure(bytes).events.map { $0.serialized() }
        let second = azure(bytes).events.map { $0.serialized() }
        #expect(first == second)
        let compact = try JSON.parse(bytes).serialized()
        #expect(azure(compact).events.map { $0.serialized() } == first)
    }

    @Test("Hostile input: failures, never a crash, never the payload in a message")
    func hostile() throws {
        let secret = "SECRETVALUEDONOTLEAK"
        let cases: [[UInt8]] = [
            [], Array("  ".utf8), Array(#"{"records":[{"time":"2024-01-01T00:00:00Z","operationName":"\#(secret)"#.utf8),
            Array(#"{"operationName":""#.utf8) + [0xC3, 0x28, 0xFF] + Array(#"","time":"2024-01-01T00:00:00Z"}"#.utf8),
            Array(#"{"records":{"operationName":"\#(secret)"}}"#.utf8),
            Array(#"{"records":[{"operationName":42,"time":"2024-01-01T00:00:00Z","resourceId":"\#(secret)"}]}"#.utf8),
            Array(#"{"records":[{"operationName":"a/write","time":1714550000,"resourceId":"\#(secret)"}]}"#.utf8),
            Array(#"{"value":"\#(secret)"}"#.utf8), Array("42".utf8), Array(#""\#(secret)""#.utf8),
        ]
        for bytes in cases {
            for header in [String?.none, "azure-activity"] {
                let result = Normalizer(parsers: Self.all).normalize(RawRecord(bytes: bytes, source: header))
                #expect(result.events.isEmpty)
                #expect(!result.failures.isEmpty)
                for failure in result.failures {
                    #expect(!failure.description.contains(secret))
                }
            }
        }
        // A 10 MB line: a valid record with a huge property still normalizes; a huge garbage line fails.
        let big = String(repeating: "x", count: 10_000_000)
        let record = #"{"time":"2024-05-01T00:00:00Z","resourceId":"/subscriptions/s","operationName":"a/b/write","category":"Administrative","properties":{"blob":"\#(big)"}}"#
        let event = try onlyEvent(azure(Array(record.utf8), header: nil))
        #expect(event.string("unmapped.properties.blob")?.utf8.count == 10_000_000)
        #expect(!azure(Array(big.utf8)).failures.isEmpty)
    }

    @Test("2,000 random byte mutations of the export: no crash, every entry accounted for")
    func mutations() throws {
        let original = try fixture("azure-activity/eventhub_records.json")
        var random = XorShift(seed: 0xA2_0E_AC_71)
        let normalizer = Normalizer(parsers: Self.all)
        for _ in 0..<2_000 {
            var bytes = original
            for _ in 0..<(1 + random.next() % 8) {
                bytes[Int(random.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: random.next())
            }
            for header in [String?.none, "azure-activity"] {
                let result = normalizer.normalize(RawRecord(bytes: bytes, source: header))
                #expect(!result.events.isEmpty || !result.failures.isEmpty)
                if header != nil, let entries = (try? JSON.parse(bytes))?["records"]?.arrayValue {
                    #expect(result.events.count + result.failures.count == entries.count)
                }
            }
        }
    }
}

