import Normalize
import OCSF
import Testing

/// Okta System Log. One real sample exists in the shared data: StreamAlert's
/// `rules/community/okta/okta_new_login.json` test event (Apache-2.0, copied as
/// `Fixtures/okta/streamalert_okta_new_login.json`); the other fixtures were written from Okta's
/// published LogEvent reference (see SOURCES.md there).
@Suite("Okta System Log")
struct OktaTests {
    fileprivate static let all: [any SourceParser] = [CloudTrailParser(), AzureActivityParser(), GCPAuditParser(), OktaParser()]

    fileprivate func okta(_ bytes: [UInt8], header: String? = "okta") -> NormalizeResult {
        Normalizer(parsers: [OktaParser()]).normalize(RawRecord(bytes: bytes, source: header))
    }

    @Test("StreamAlert okta_new_login.json: a new-device notification email, detected without a header")
    func streamAlertSample() throws {
        let result = Normalizer(parsers: Self.all).normalize(RawRecord(bytes: try fixture("okta/streamalert_okta_new_login.json"), source: nil))
        #expect(result.detected)
        #expect(result.source == "okta")
        let event = try onlyEvent(result)
        #expect(event.int("class_uid") == 6003)
        #expect(event.int("activity_id") == 99)
        #expect(event.string("activity_name") == "Other")
        #expect(event.string("api.operation") == "system.email.new_device_notification.sent_message")
        #expect(event.string("api.service.name") == "Okta")
        #expect(event.string("api.request.uid") == "...")
        #expect(event.int("time") == millis("2020-01-01T00:00:00Z"))
        #expect(event.string("metadata.original_time") == "2020-01-01T00:00:00.000Z")
        // StreamAlert blanks ids with "...": the parser keeps the source's id as it is, like CloudTrail's eventID.
        #expect(event.string("metadata.uid") == "...")
        #expect(event.string("metadata.event_code") == "system.email.new_device_notification.sent_message")
        #expect(event.string("metadata.product.name") == "Okta System Log")
        #expect(event.string("message") == "Send user new device notification email")
        #expect(event.int("status_id") == 1)
        #expect(event.string("status_code") == "SUCCESS")
        #expect(event.value(at: "status_detail") == nil)
        #expect(event.int("severity_id") == 1)
        #expect(event.string("actor.user.name") == "user@domain.com")
        #expect(event.string("actor.user.email_addr") == "user@domain.com")
        #expect(event.string("actor.user.full_name") == "User Name")
        #expect(event.int("actor.user.type_id") == 1)
        #expect(event.string("actor.session.uid") == "...")
        #expect(event.string("src_endpoint.ip") == "192.168.1.1")
        #expect(event.string("src_endpoint.location.city") == "San Francisco")
        #expect(event.string("src_endpoint.location.region") == "California")
        #expect(event.string("src_endpoint.location.country") == "United States")
        #expect(event.string("src_endpoint.location.postal_code") == "94103")
        #expect(event.value(at: "src_endpoint.location.lat")?.doubleValue == 37.7717748)
        #expect(event.value(at: "src_endpoint.location.long")?.doubleValue == -122.4072223)
        #expect(event.string("src_endpoint.location.isp") == "google llc")
        #expect(event.int("src_endpoint.autonomous_system.number") == 1234)
        #expect(event.string("src_endpoint.autonomous_system.name") == "google")
        #expect(event.value(at: "src_endpoint.intermediate_ips") == nil)
        #expect(event.string("http_request.user_agent") == "...")
        #expect(event.string("resources.0.name") == "User Name")
        #expect(event.string("resources.0.type") == "User")
        #expect(event.value(at: "unmapped.securityContext.isProxy") == false)
        #expect(event.string("unmapped.securityContext.domain") == "google.com")
        #expect(event.value(at: "unmapped.securityContext.asNumber") == nil)
        #expect(event.string("unmapped.client.userAgent.os") == "Mac OS X")
        #expect(event.string("unmapped.client.device") == "Computer")
        #expect(event.value(at: "unmapped.client.ipAddress") == nil)
        #expect(event.string("unmapped.legacyEventType") == "core.user.email.message_sent.new_device_notification")
        #expect(event.string("unmapped.debugContext.debugData.requestUri") == "/api/v1/authn")
        #expect(event.value(at: "unmapped.outcome") == nil)
        #expect(event.value(at: "unmapped.uuid") == nil)
    }

    @Test("A failed sign-in from a Tor exit: INVALID_CREDENTIALS, ASN kept, Okta's 'unknown' ids dropped")
    func failedSignIn() throws {
        let event = try onlyEvent(okta(try fixture("okta/session_start_failure.json")))
        #expect(event.int("class_uid") == 3002)
        #expect(event.int("activity_id") == 1)
        #expect(event.string("activity_name") == "Logon")
        #expect(event.int("type_uid") == 300201)
        #expect(event.int("status_id") == 2)
        #expect(event.string("status") == "Failure")
        #expect(event.string("status_code") == "FAILURE")
        #expect(event.string("status_detail") == "INVALID_CREDENTIALS")
        #expect(event.int("severity_id") == 2)
        #expect(event.string("metadata.uid") == "5f0c2a8e-0b7d-11ef-9a4c-4f1e7d2b9a01")
        #expect(event.string("metadata.correlation_uid") == "ZjrqLGn8x0TnQ1w3@zvYBAAAB5w")
        #expect(event.string("user.name") == "alice@example.com")
        #expect(event.value(at: "user.uid") == nil)
        #expect(event.value(at: "user.full_name") == nil)
        #expect(event.string("actor.user.name") == "alice@example.com")
        #expect(event.value(at: "actor.session") == nil)
        #expect(event.string("service.name") == "Okta")
        #expect(event.string("src_endpoint.ip") == "185.220.101.34")
        #expect(event.int("src_endpoint.autonomous_system.number") == 208294)
        #expect(event.string("src_endpoint.autonomous_system.name") == "CIA TRIAD SECURITY LLC")
        #expect(event.string("src_endpoint.location.country") == "Germany")
        #expect(event.value(at: "unmapped.securityContext.isProxy") == true)
        #expect(event.string("unmapped.debugContext.debugData.threatSuspected") == "true")
    }

    @Test("A System Log API page: sign-in, MFA, SSO, sign-out, user creation, group add, lock, policy update")
    func apiPage() throws {
        let result = okta(try fixture("okta/system_log_api_page.json"))
        #expect(result.failures.isEmpty)
        try #require(result.events.count == 8)
        let summary = result.events.map { [$0.int("class_uid"), $0.int("activity_id")] }
        #expect(summary == [[3002, 1], [3002, 1], [3002, 1], [3002, 2], [3001, 1], [3001, 99], [3001, 9], [6003, 3]])

        let (signIn, mfa, sso, signOut) = (result.events[0], result.events[1], result.events[2], result.events[3])
        #expect(signIn.int("status_id") == 1)
        #expect(signIn.string("user.uid") == "00u1a2b3c4D5e6F7g8h9")
        #expect(signIn.string("session.uid") == "102bZDNFfWaQSyEZQuDgWt-uQ")
        #expect(signIn.string("actor.session.uid") == "102bZDNFfWaQSyEZQuDgWt-uQ")
        #expect(signIn.int("src_endpoint.autonomous_system.number") == 7922)
        #expect(signIn.value(at: "is_mfa") == nil)
        #expect(mfa.value(at: "is_mfa") == true)
        #expect(sso.string("service.name") == "AWS IAM Identity Center")
        #expect(sso.string("service.uid") == "0oa1b2c3d4E5f6G7h8i9")
        #expect(signOut.string("activity_name") == "Logoff")
        #expect(signOut.int("type_uid") == 300202)

        let (created, grouped, locked, policy) = (result.events[4], result.events[5], result.events[6], result.events[7])
        #expect(created.string("activity_name") == "Create")
        #expect(created.string("actor.user.name") == "it-admin@example.com")
        #expect(created.string("user.name") == "contractor7@example.com")
        #expect(created.string("user.uid") == "00u5n6m7l8K9j0H1g2f3")
        #expect(grouped.string("activity_name") == "group.user_membership.add")
        #expect(grouped.string("user.name") == "contractor7@example.com")
        #expect(grouped.string("user.groups.0.name") == "Super Admins")
        #expect(grouped.string("user.groups.0.uid") == "00g1q2w3e4R5t6Y7u8i9")
        #expect(locked.string("activity_name") == "Lock")
        #expect(locked.string("user.name") == "alice@example.com")
        #expect(locked.int("severity_id") == 2)
        #expect(policy.string("api.operation") == "policy.lifecycle.update")
        #expect(policy.string("api.request.uid") == "ZjuLBa2kT0y@1PjB9Fd9QAAAAzs")
        #expect(policy.string("resources.0.uid") == "00p1a2s3d4F5g6H7j8k9")
        #expect(policy.string("resources.0.name") == "Default Policy")
        #expect(policy.string("unmapped.target.0.detailEntry.policyType") == "OktaSignOn")
    }

    @Test("Event hook delivery: the events inside data.events")
    func eventHook() throws {
        let result = Normalizer(parsers: Self.all).normalize(RawRecord(bytes: try fixture("okta/event_hook_delivery.json"), source: nil))
        #expect(result.source == "okta")
        let event = try onlyEvent(result)
        let direct = try onlyEvent(okta(try fixture("okta/session_start_failure.json")))
        #expect(event == direct)
    }

    @Test("Classes and activities by event type; outcomes")
    func eventTypes() throws {
        func event(_ type: String, result: String = "SUCCESS") throws -> JSON {
            try onlyEvent(okta(Array(#"{"uuid":"u","published":"2024-01-01T00:00:00Z","eventType":"\#(type)","actor":{"id":"00u1","type":"User","alternateId":"a@example.com"},"outcome":{"result":"\#(result)"},"target":[{"id":"00u2","type":"User","alternateId":"b@example.com"}]}"#.utf8)))
        }
        let expected: [(String, Int64, Int64)] = [
            ("user.authentication.auth_via_IDP", 3002, 1), ("user.lifecycle.deactivate", 3001, 5),
            ("user.lifecycle.suspend", 3001, 5), ("user.lifecycle.activate", 3001, 2),
            ("user.lifecycle.delete.initiated", 3001, 6), ("user.account.reset_password", 3001, 4),
            ("user.account.update_password", 3001, 3), ("user.account.unlock", 3001, 99),
            ("user.mfa.factor.deactivate", 3001, 11), ("user.mfa.factor.activate", 3001, 10),
            ("group.user_membership.remove", 3001, 99), ("system.api_token.create", 6003, 1),
            ("application.user_membership.remove", 6003, 4), ("app.oauth2.as.token.grant", 6003, 99),
        ]
        for (type, classUID, activity) in expected {
            let mapped = try event(type)
            #expect(mapped.int("class_uid") == classUID, "\(type)")
            #expect(mapped.int("activity_id") == activity, "\(type)")
        }
        #expect(try event("user.account.reset_password").string("user.name") == "b@example.com")
        #expect(try event("user.session.start", result: "DENY").int("status_id") == 2)
        #expect(try event("user.session.start", result: "ALLOW").int("status_id") == 1)
        #expect(try event("user.session.start", result: "CHALLENGE").int("status_id") == 0)
        #expect(try event("user.session.start", result: "CHALLENGE").string("status_code") == "CHALLENGE")
    }

    @Test("Entries lacking what the mapping needs fail alone, with index and bytes")
    func badEntries() throws {
        let page = #"[{"uuid":"a","published":"2024-01-01T00:00:00Z","eventType":"user.session.start","actor":{}},{"uuid":"b","published":"soon","eventType":"x","actor":{}},{"uuid":"c","eventType":"x","actor":{}},{"uuid":"d","published":"2024-01-01T00:00:00Z","actor":{}},7]"#
        let result = okta(Array(page.utf8))
        #expect(result.events.count == 1)
        #expect(result.failures.map(\.code) == ["invalid_time", "invalid_time", "missing_field", "invalid_entry"])
        #expect(result.failures.map(\.entryIndex) == [1, 2, 3, 4])
        #expect(result.failures.last?.entryBytes == Array("7".utf8))
        // No uuid: the hash of the event's canonical form.
        let noID = try onlyEvent(okta(Array(#"{"published":"2024-01-01T00:00:00Z","eventType":"user.session.end","actor":{"id":"x"}}"#.utf8)))
        #expect(noID.string("metadata.uid") == StableID.hash(bytes: try JSON.parse(#"{"published":"2024-01-01T00:00:00Z","eventType":"user.session.end","actor":{"id":"x"}}"#).serialized()))
        #expect(okta(Array(#"{"data":{"events":"x"}}"#.utf8)).failures.map(\.code) == ["unrecognized_format"])
    }

    @Test("Detection: Okta claims the StreamAlert Okta record and nothing else there, nor CloudTrail, Azure or GCP")
    func detection() throws {
        let oktaOnly = Normalizer(parsers: [OktaParser()])
        let lines = try fixture("okta/streamalert_flat_head_test_events.jsonl").split(separator: UInt8(ascii: "\n"))
        var claimed: [String] = []
        for line in lines {
            let record = try JSON.parse(line)
            let data = try #require(record["data"])
            if oktaOnly.normalize(RawRecord(bytes: data.serialized(), source: nil)).source == "okta" {
                claimed.append(record["log"]?.stringValue ?? "")
            }
        }
        #expect(claimed == ["okta:logevents"])
        for path in ["own/assume_role.json", "streamalert/eventbridge_create_image.json", "otrf/ec2_proxy_s3_exfiltration_2020-09-14011940.json",
                     "azure-activity/eventhub_records.json", "azure-activity/rest_list.json", "azure-activity/cli_list.json",
                     "gcp-audit/entries_page.json", "gcp-audit/gcloud_read_array.json", "gcp-audit/sink_export.ndjson"] {
            #expect(oktaOnly.normalize(RawRecord(bytes: try fixture(path), source: nil)).source == "unknown", "\(path)")
        }
        let cloudTrailOnly = Normalizer(parsers: [CloudTrailParser()])
        for path in ["okta/system_log_api_page.json", "okta/session_start_failure.json", "okta/event_hook_delivery.json", "okta/streamalert_okta_new_login.json"] {
            #expect(cloudTrailOnly.normalize(RawRecord(bytes: try fixture(path), source: nil)).source == "unknown", "\(path)")
        }
    }

    @Test("Deterministic: the same bytes twice, and compact vs pretty-printed")
    func determinism() throws {
        let bytes = try fixture("okta/system_log_api_page.json")
        let first = okta(bytes).events.map { $0.serialized() }
        #expect(okta(bytes).events.map { $0.serialized() } == first)
        #expect(okta(try JSON.parse(bytes).serialized()).events.map { $0.serialized() } == first)
    }

    @Test("Hostile input: failures, never a crash, never the payload in a message")
    func hostile() throws {
        let secret = "SECRETVALUEDONOTLEAK"
        let cases: [[UInt8]] = [
            [], Array(#"[{"eventType":"user.session.start","published":"\#(secret)"#.utf8),
            Array(#"{"eventType":""#.utf8) + [0xC3, 0x28, 0xFF] + Array(#"","published":"2024-01-01T00:00:00Z","actor":{}}"#.utf8),
            Array(#"{"eventType":"user.session.start","published":"\#(secret)","actor":{}}"#.utf8),
            Array(#"{"eventType":["\#(secret)"],"published":"2024-01-01T00:00:00Z","actor":{}}"#.utf8),
            Array(#"[null,"\#(secret)"]"#.utf8), Array("true".utf8),
        ]
        for bytes in cases {
            for header in [String?.none, "okta"] {
                let result = Normalizer(parsers: Self.all).normalize(RawRecord(bytes: bytes, source: header))
                #expect(result.events.isEmpty)
                #expect(!result.failures.isEmpty)
                for failure in result.failures { #expect(!failure.description.contains(secret)) }
            }
        }
        // Wrong types inside an otherwise valid event are kept in unmapped, not trusted.
        let odd = try onlyEvent(okta(Array(#"{"uuid":"u","published":"2024-01-01T00:00:00Z","eventType":"user.session.start","actor":"x","client":{"ipAddress":5,"geographicalContext":"y"},"securityContext":{"asNumber":"many"},"outcome":"z","target":"t"}"#.utf8)))
        #expect(odd.string("unmapped.actor") == "x")
        #expect(odd.string("unmapped.outcome") == "z")
        #expect(odd.value(at: "src_endpoint.ip") == nil)
        #expect(odd.value(at: "src_endpoint.autonomous_system") == nil)
        #expect(odd.string("unmapped.securityContext.asNumber") == "many")
        #expect(odd.string("unmapped.client.geographicalContext") == "y")
        #expect(odd.value(at: "unmapped.client.ipAddress") == nil)
        #expect(odd.int("status_id") == 0)
        // A 10 MB field in a valid event, and a 10 MB garbage line.
        let big = String(repeating: "z", count: 10_000_000)
        let event = try onlyEvent(okta(Array(#"{"uuid":"u","published":"2024-01-01T00:00:00Z","eventType":"user.session.start","actor":{"id":"a"},"displayMessage":"\#(big)"}"#.utf8), header: nil))
        #expect(event.string("message")?.utf8.count == 10_000_000)
        #expect(!okta(Array(big.utf8), header: nil).failures.isEmpty)
    }

    @Test("2,000 random byte mutations of an API page: no crash, every entry accounted for")
    func mutations() throws {
        let original = try fixture("okta/system_log_api_page.json")
        var random = XorShift(seed: 0x0C_7A_5E_55)
        let normalizer = Normalizer(parsers: Self.all)
        for _ in 0..<2_000 {
            var bytes = original
            for _ in 0..<(1 + random.next() % 8) {
                bytes[Int(random.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: random.next())
            }
            for header in [String?.none, "okta"] {
                let result = normalizer.normalize(RawRecord(bytes: bytes, source: header))
                #expect(!result.events.isEmpty || !result.failures.isEmpty)
                if header != nil, let entries = (try? JSON.parse(bytes))?.arrayValue {
                    #expect(result.events.count + result.failures.count == entries.count)
                }
            }
        }
    }
}

