import Normalize
import OCSF
import Testing

/// Google Cloud Audit Logs. The shared data holds no GCP audit entries (StreamAlert's only
/// Google record is a G Suite Admin report, used here as a negative), so every fixture under
/// `Fixtures/gcp-audit/` was written from Google's published LogEntry/AuditLog reference (see
/// SOURCES.md there).
@Suite("GCP Cloud Audit Logs")
struct GCPAuditTests {
    fileprivate static let all: [any SourceParser] = [CloudTrailParser(), AzureActivityParser(), GCPAuditParser(), OktaParser()]

    fileprivate func gcp(_ bytes: [UInt8], header: String? = "gcp-audit") -> NormalizeResult {
        Normalizer(parsers: [GCPAuditParser()]).normalize(RawRecord(bytes: bytes, source: header))
    }

    @Test("Admin Activity: a user creates a VM from gcloud")
    func instancesInsert() throws {
        let event = try onlyEvent(gcp(try fixture("gcp-audit/admin_activity_instances_insert.json")))
        #expect(event.int("class_uid") == 6003)
        #expect(event.int("activity_id") == 1)
        #expect(event.string("activity_name") == "Create")
        #expect(event.int("type_uid") == 600301)
        #expect(event.int("status_id") == 1)
        #expect(event.int("time") == millis("2024-05-06T14:22:10.034Z"))
        #expect(event.string("metadata.original_time") == "2024-05-06T14:22:10.034512Z")
        #expect(event.string("metadata.uid") == StableID.hash(["projects/acme-prod-4471/logs/cloudaudit.googleapis.com%2Factivity", "-k3t8q2e1v9xa"]))
        #expect(event.string("metadata.log_name") == "projects/acme-prod-4471/logs/cloudaudit.googleapis.com%2Factivity")
        #expect(event.string("metadata.event_code") == "v1.compute.instances.insert")
        #expect(event.string("metadata.product.name") == "Cloud Audit Logs")
        #expect(event.string("metadata.product.vendor_name") == "Google")
        #expect(event.int("severity_id") == 1)
        #expect(event.string("api.operation") == "v1.compute.instances.insert")
        #expect(event.string("api.service.name") == "compute.googleapis.com")
        #expect(event.string("actor.user.name") == "dana@example.com")
        #expect(event.string("actor.user.email_addr") == "dana@example.com")
        #expect(event.string("actor.user.uid") == "user:dana@example.com")
        #expect(event.int("actor.user.type_id") == 1)
        #expect(event.string("src_endpoint.ip") == "203.0.113.51")
        #expect(event.string("http_request.user_agent")?.hasPrefix("google-cloud-sdk gcloud/473.0.0") == true)
        #expect(event.string("cloud.provider") == "GCP")
        #expect(event.string("cloud.account.uid") == "acme-prod-4471")
        #expect(event.int("cloud.account.type_id") == 11)
        #expect(event.string("cloud.zone") == "us-central1-a")
        #expect(event.string("cloud.region") == "us-central1")
        #expect(event.string("resources.0.uid") == "projects/acme-prod-4471/zones/us-central1-a/instances/miner-01")
        #expect(event.string("resources.0.type") == "gce_instance")
        #expect(event.string("resources.1.uid") == "projects/acme-prod-4471/zones/us-central1-a/disks/miner-01")
        #expect(event.value(at: "resources.2") == nil)
        #expect(event.string("unmapped.protoPayload.request.machineType") == "zones/us-central1-a/machineTypes/n2-highcpu-32")
        #expect(event.string("unmapped.protoPayload.requestMetadata.requestAttributes.time") == "2024-05-06T14:22:10.120418Z")
        #expect(event.value(at: "unmapped.protoPayload.requestMetadata.callerIp") == nil)
        #expect(event.value(at: "unmapped.protoPayload.authenticationInfo") == nil)
        #expect(event.value(at: "unmapped.protoPayload.methodName") == nil)
        #expect(event.value(at: "unmapped.protoPayload.status") == nil)
        #expect(event.string("unmapped.insertId") == "-k3t8q2e1v9xa")
        #expect(event.string("unmapped.operation.producer") == "compute.googleapis.com")
        #expect(event.value(at: "unmapped.timestamp") == nil)
    }

    @Test("Data Access: a service account key reads an export object")
    func dataAccess() throws {
        let event = try onlyEvent(gcp(try fixture("gcp-audit/data_access_objects_get.json")))
        #expect(event.int("activity_id") == 2)
        #expect(event.string("activity_name") == "Read")
        #expect(event.string("metadata.log_name")?.hasSuffix("cloudaudit.googleapis.com%2Fdata_access") == true)
        #expect(event.string("actor.user.name") == "etl-runner@acme-prod-4471.iam.gserviceaccount.com")
        #expect(event.string("actor.user.type") == "Service Account")
        #expect(event.int("actor.user.type_id") == 99)
        #expect(event.string("actor.user.credential_uid")?.hasSuffix("/keys/3f1a9c0b7e2d4c5a8b6e0f1d2c3b4a59") == true)
        #expect(event.string("src_endpoint.ip") == "198.51.100.200")
        #expect(event.string("cloud.region") == "us-east1")
        #expect(event.string("resources.0.uid") == "projects/_/buckets/acme-customer-exports/objects/2024/05/customers.csv")
        #expect(event.string("resources.0.type") == "gcs_bucket")
        #expect(event.int("status_id") == 1)
    }

    @Test("A denied SetIamPolicy: status code 7 is a failure with its gRPC name")
    func permissionDenied() throws {
        let event = try onlyEvent(gcp(try fixture("gcp-audit/admin_activity_setiampolicy_denied.json")))
        #expect(event.int("activity_id") == 3)
        #expect(event.int("status_id") == 2)
        #expect(event.string("status") == "Failure")
        #expect(event.string("status_code") == "7")
        #expect(event.string("status_detail") == "PERMISSION_DENIED")
        #expect(event.string("api.response.error") == "PERMISSION_DENIED")
        #expect(event.int("severity_id") == 3)
        #expect(event.string("src_endpoint.ip") == "2001:db8:85a3::8a2e:370:7334")
        #expect(event.string("unmapped.protoPayload.status.details.0.reason") == "IAM_PERMISSION_DENIED")
        #expect(event.value(at: "unmapped.protoPayload.authorizationInfo.0.granted") == false)
    }

    @Test("Logging API page: CreateServiceAccountKey, and an org-level DeleteSink with no project")
    func entriesPage() throws {
        let result = gcp(try fixture("gcp-audit/entries_page.json"))
        #expect(result.failures.isEmpty)
        try #require(result.events.count == 2)
        let (key, sink) = (result.events[0], result.events[1])
        #expect(key.int("activity_id") == 1)
        #expect(key.string("api.operation") == "google.iam.admin.v1.CreateServiceAccountKey")
        #expect(key.string("api.service.name") == "iam.googleapis.com")
        #expect(sink.int("activity_id") == 4)
        #expect(sink.string("cloud.org.uid") == "123456789012")
        #expect(sink.value(at: "cloud.account") == nil)
        #expect(sink.value(at: "actor.user.uid") == nil)
        #expect(sink.string("resources.0.type") == "logging_sink")
    }

    @Test("gcloud array and newline-delimited export; a truncated line fails alone")
    func arrayAndLines() throws {
        let array = gcp(try fixture("gcp-audit/gcloud_read_array.json"))
        #expect(array.failures.isEmpty)
        #expect(array.events.map { $0.int("activity_id") } == [1, 2])

        for header in [String?.none, "gcp-audit"] {
            let lines = gcp(try fixture("gcp-audit/sink_export.ndjson"), header: header)
            #expect(lines.source == "gcp-audit")
            #expect(lines.detected == (header == nil))
            #expect(lines.events.map { $0.string("api.operation") } == ["v1.compute.instances.insert", "SetIamPolicy"])
            #expect(lines.failures.map(\.code) == ["invalid_json"])
            #expect(lines.failures.map(\.entryIndex) == [1])
            #expect(lines.failures.first?.entryBytes?.first == UInt8(ascii: "{"))
        }
        // The same entry alone, in an array and as a line gives the same event.
        let single = try onlyEvent(gcp(try fixture("gcp-audit/admin_activity_instances_insert.json")))
        #expect(array.events[0] == single)
        #expect(gcp(try fixture("gcp-audit/sink_export.ndjson")).events[0] == single)
    }

    @Test("Entries that are not audit logs, or lack what the mapping needs")
    func malformedEntries() throws {
        #expect(gcp(try fixture("gcp-audit/not_audit_text_payload.json")).failures.map(\.code) == ["missing_field"])
        #expect(gcp(try fixture("gcp-audit/not_audit_text_payload.json"), header: nil).failures.map(\.code) == ["unrecognized_format"])
        let base = #""logName":"projects/p/logs/cloudaudit.googleapis.com%2Factivity","insertId":"i""#
        #expect(gcp(Array(#"{\#(base),"timestamp":"2024-01-01T00:00:00Z","protoPayload":{"serviceName":"s"}}"#.utf8)).failures.map(\.code) == ["missing_field"])
        #expect(gcp(Array(#"{\#(base),"protoPayload":{"methodName":"m"}}"#.utf8)).failures.map(\.code) == ["invalid_time"])
        #expect(gcp(Array(#"{\#(base),"timestamp":17,"protoPayload":{"methodName":"m"}}"#.utf8)).failures.map(\.code) == ["invalid_time"])
        let oddStatus = try onlyEvent(gcp(Array(#"{\#(base),"timestamp":"2024-01-01T00:00:00Z","protoPayload":{"methodName":"m","status":"broken"}}"#.utf8)))
        #expect(oddStatus.int("status_id") == 0)
        #expect(oddStatus.string("unmapped.protoPayload.status") == "broken")
        #expect(oddStatus.int("activity_id") == 99)
        let noInsertID = try onlyEvent(gcp(Array(#"{"logName":"projects/p/logs/cloudaudit.googleapis.com%2Factivity","timestamp":"2024-01-01T00:00:00Z","protoPayload":{"methodName":"m"}}"#.utf8)))
        #expect(noInsertID.string("metadata.uid")?.count == 32)
        #expect(gcp(Array(#"{"entries":{"a":1}}"#.utf8)).failures.map(\.code) == ["unrecognized_format"])
    }

    @Test("Detection without a header, and no claims on CloudTrail, Azure, Okta or G Suite records")
    func detection() throws {
        let normalizer = Normalizer(parsers: Self.all)
        for path in ["gcp-audit/admin_activity_instances_insert.json", "gcp-audit/data_access_objects_get.json",
                     "gcp-audit/entries_page.json", "gcp-audit/gcloud_read_array.json", "gcp-audit/admin_activity_setiampolicy_denied.json"] {
            let result = normalizer.normalize(RawRecord(bytes: try fixture(path), source: nil))
            #expect(result.detected)
            #expect(result.source == "gcp-audit", "\(path)")
        }
        let gcpOnly = Normalizer(parsers: [GCPAuditParser()])
        for path in ["own/assume_role.json", "own/records_middle_broken.json", "streamalert/records_delete_subnet.json",
                     "otrf/ec2_proxy_s3_exfiltration_2020-09-14011940.json",
                     "azure-activity/eventhub_records.json", "azure-activity/rest_list.json", "azure-activity/cli_list.json",
                     "okta/system_log_api_page.json", "okta/event_hook_delivery.json", "okta/streamalert_okta_new_login.json"] {
            #expect(gcpOnly.normalize(RawRecord(bytes: try fixture(path), source: nil)).source == "unknown", "\(path)")
        }
        let cloudTrailOnly = Normalizer(parsers: [CloudTrailParser()])
        for path in ["gcp-audit/admin_activity_instances_insert.json", "gcp-audit/entries_page.json", "gcp-audit/sink_export.ndjson"] {
            #expect(cloudTrailOnly.normalize(RawRecord(bytes: try fixture(path), source: nil)).source == "unknown", "\(path)")
        }
        // StreamAlert's G Suite Admin report (Google, but not Cloud Audit Logs) and every other record there.
        let lines = try fixture("okta/streamalert_flat_head_test_events.jsonl").split(separator: UInt8(ascii: "\n"))
        var sawGSuite = false
        for line in lines {
            let record = try JSON.parse(line)
            sawGSuite = sawGSuite || record["log"]?.stringValue == "gsuite:reports"
            let data = try #require(record["data"])
            #expect(gcpOnly.normalize(RawRecord(bytes: data.serialized(), source: nil)).source == "unknown")
        }
        #expect(sawGSuite)
    }

    @Test("Deterministic: the same bytes twice, and compact vs pretty-printed")
    func determinism() throws {
        let bytes = try fixture("gcp-audit/entries_page.json")
        let first = gcp(bytes).events.map { $0.serialized() }
        #expect(gcp(bytes).events.map { $0.serialized() } == first)
        #expect(gcp(try JSON.parse(bytes).serialized()).events.map { $0.serialized() } == first)
    }

    @Test("Hostile input: failures, never a crash, never the payload in a message")
    func hostile() throws {
        let secret = "SECRETVALUEDONOTLEAK"
        let cases: [[UInt8]] = [
            [], Array("\n\n".utf8), Array(#"{"protoPayload":{"@type":"type.googleapis.com/google.cloud.audit.AuditLog","methodName":"\#(secret)"#.utf8),
            Array(#"{"protoPayload":{"methodName":""#.utf8) + [0xC3, 0x28, 0xFF] + Array(#""}}"#.utf8),
            Array("{\"logName\":\"cloudaudit.googleapis.com\"}\n{\"\(secret)".utf8),
            Array(#"{"logName":"cloudaudit.googleapis.com","protoPayload":"\#(secret)","timestamp":"2024-01-01T00:00:00Z"}"#.utf8),
            Array(#"{"entries":"\#(secret)"}"#.utf8), Array("[1,2]".utf8), Array("\(secret)\n\(secret)".utf8),
        ]
        for bytes in cases {
            for header in [String?.none, "gcp-audit"] {
                let result = Normalizer(parsers: Self.all).normalize(RawRecord(bytes: bytes, source: header))
                #expect(result.events.isEmpty)
                #expect(!result.failures.isEmpty)
                for failure in result.failures { #expect(!failure.description.contains(secret)) }
            }
        }
        let big = String(repeating: "y", count: 10_000_000)
        let entry = #"{"logName":"projects/p/logs/cloudaudit.googleapis.com%2Fdata_access","insertId":"a","timestamp":"2024-05-01T00:00:00Z","protoPayload":{"@type":"type.googleapis.com/google.cloud.audit.AuditLog","methodName":"storage.objects.get","request":{"blob":"\#(big)"}}}"#
        let event = try onlyEvent(gcp(Array(entry.utf8), header: nil))
        #expect(event.string("unmapped.protoPayload.request.blob")?.utf8.count == 10_000_000)
        let lines = gcp(Array((entry + "\n" + big + "\n").utf8), header: nil)
        #expect(lines.events.count == 1)
        #expect(lines.failures.map(\.entryIndex) == [1])
    }

    @Test("2,000 random byte mutations of a Logging API page: no crash, every entry accounted for")
    func mutations() throws {
        let original = try fixture("gcp-audit/entries_page.json")
        var random = XorShift(seed: 0x6C_9A_0D_17)
        let normalizer = Normalizer(parsers: Self.all)
        for _ in 0..<2_000 {
            var bytes = original
            for _ in 0..<(1 + random.next() % 8) {
                bytes[Int(random.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: random.next())
            }
            for header in [String?.none, "gcp-audit"] {
                let result = normalizer.normalize(RawRecord(bytes: bytes, source: header))
                #expect(!result.events.isEmpty || !result.failures.isEmpty)
                if header != nil, let entries = (try? JSON.parse(bytes))?["entries"]?.arrayValue {
                    #expect(result.events.count + result.failures.count == entries.count)
                }
            }
        }
    }
}

