import Normalize
import OCSF
import Testing

/// Normalizes with only the file integrity parser (by header, or detected when `header` is nil).
fileprivate func fim(_ bytes: [UInt8], header: String? = "fim") -> NormalizeResult {
    Normalizer(parsers: [FileIntegrityParser()]).normalize(RawRecord(bytes: bytes, source: header))
}

fileprivate func fim(_ text: some StringProtocol, header: String? = "fim") -> NormalizeResult {
    fim(Array(text.utf8), header: header)
}

/// The non-empty lines of a JSON-lines fixture.
fileprivate func fixtureLines(_ path: String) throws -> [String] {
    String(decoding: try fixture(path), as: UTF8.self).split(separator: "\n").map(String.init)
}

/// The `data` records of a StreamAlert rule test file.
fileprivate func streamAlertRecords(_ path: String) throws -> [[UInt8]] {
    let cases = try #require(try JSON.parse(try fixture(path)).arrayValue)
    return cases.compactMap { $0["data"]?.serialized() }
}

@Suite("FIM: osquery file_events (Fixtures/fim/own, written from osquery's documentation)")
struct FileIntegrityOsqueryTests {
    @Test("osquery_file_events.jsonl: one event per line, actions mapped to OCSF activities")
    func eventFormat() throws {
        let lines = try fixtureLines("fim/own/osquery_file_events.jsonl")
        let events = try lines.map { try onlyEvent(fim($0, header: nil)) }
        #expect(events.map { $0.int("activity_id") } == [1, 3, 4, 6, 5, 2, 99])
        #expect(events.map { $0.string("activity_name") } == ["Create", "Update", "Delete", "Set Attributes", "Rename", "Read", "CLOSED"])
        let created = events[0]
        #expect(created.int("class_uid") == 1001)
        #expect(created.int("category_uid") == 1)
        #expect(created.int("type_uid") == 100_101)
        #expect(created.int("time") == 1_714_564_800_000)
        #expect(created.string("metadata.original_time") == "1714564800")
        #expect(created.string("metadata.product.name") == "osquery")
        #expect(created.string("metadata.log_name") == "pack_fim_file_events")
        #expect(created.string("metadata.event_code") == "CREATED")
        #expect(created.string("file.path") == "/etc/cron.d/evil")
        #expect(created.string("file.name") == "evil")
        #expect(created.string("file.parent_folder") == "/etc/cron.d")
        #expect(created.int("file.size") == 52)
        #expect(created.string("file.owner.uid") == "0")
        #expect(created.string("file.uid") == "131090")
        #expect(created.int("file.modified_time") == 1_714_564_800_000)
        #expect(created.int("file.hashes.0.algorithm_id") == 1)
        #expect(created.string("file.hashes.0.value") == "2ccd7734a977af08af0dfa875c795733")
        #expect(created.int("file.hashes.2.algorithm_id") == 3)
        #expect(created.string("file.hashes.2.value") == "b95cffdda947b637fee380d01530657374df2ddf2b63a78988e2b9343929dd68")
        #expect(created.string("device.hostname") == "web-01.prod.example")
        #expect(created.string("device.instance_uid") == "i-0abc123def4567890")
        #expect(created.int("device.type_id") == 6)
        #expect(created.string("unmapped.columns.mode") == "0644")
        #expect(created.string("unmapped.action") == "added")
        #expect(created.value(at: "unmapped.columns.time") == nil)
        #expect(created.value(at: "unmapped.hostIdentifier") == nil)
        #expect(OCSFEvent.primaryKey(created) == "i-0abc123def4567890")
        #expect(events[2].value(at: "file.hashes") == nil)  // "" hashes of a deleted file
        #expect(events[2].value(at: "unmapped.columns.md5") == nil)
        // Numbers logged as numbers, a UUID host identifier, a directory path.
        let last = events[6]
        #expect(last.string("device.uid") == "4C4C4544-0051-3010-8052-B4C04F4D4E32")
        #expect(last.value(at: "device.hostname") == nil)
        #expect(last.int("file.type_id") == 2)
        #expect(last.string("file.name") == "html")
        #expect(last.int("file.size") == 4096)
        #expect(last.string("file.owner.uid") == "33")
        #expect(last.int("time") == 1_714_564_806_000)
    }

    @Test("osquery_batch.json: rows are entries; removed rows skipped, a bad row fails alone")
    func batchFormat() throws {
        let result = fim(try fixture("fim/own/osquery_batch.json"), header: nil)
        #expect(result.source == "fim")
        #expect(result.events.map { $0.string("file.path") } == ["/etc/hosts", "/etc/resolv.conf"])
        #expect(result.failures.map(\.code) == ["missing_field"])
        #expect(result.failures.first?.entryIndex == 1)
        #expect(result.failures.first?.entryBytes != nil)
        #expect(result.skipped == 1)
        #expect(result.events[0].string("device.hostname") == "db-01")
        #expect(result.events[0].int("time") == 1_714_565_390_000)
    }

    @Test("osquery_snapshot.json: snapshot rows")
    func snapshotFormat() throws {
        let event = try onlyEvent(fim(try fixture("fim/own/osquery_snapshot.json"), header: nil))
        #expect(event.string("file.path") == "/etc/crontab")
        #expect(event.string("metadata.log_name") == "file_events_snapshot")
        #expect(event.string("device.hostname") == "db-01")
    }

    @Test("Time falls back from the row's time to unixTime to calendarTime")
    func timeFallback() throws {
        let unix = #"{"name":"file_events","hostIdentifier":"h","unixTime":"1714564805","calendarTime":"Wed May  1 12:00:05 2024 UTC","columns":{"target_path":"/etc/a","action":"UPDATED"}}"#
        let event = try onlyEvent(fim(unix, header: nil))
        #expect(event.int("time") == 1_714_564_805_000)
        #expect(event.string("metadata.original_time") == "Wed May  1 12:00:05 2024 UTC")
        let calendar = #"{"name":"file_events","hostIdentifier":"h","calendarTime":"Wed May  1 12:00:05 2024 UTC","columns":{"target_path":"/etc/a","action":"UPDATED"}}"#
        #expect(try onlyEvent(fim(calendar)).int("time") == millis("2024-05-01T12:00:05Z"))
        let none = #"{"name":"file_events","hostIdentifier":"h","columns":{"target_path":"/etc/a","action":"UPDATED"}}"#
        #expect(fim(none).failures.map(\.code) == ["invalid_time"])
        let bad = #"{"name":"file_events","hostIdentifier":"h","unixTime":1,"columns":{"target_path":"/etc/a","time":"soon"}}"#
        #expect(fim(bad).failures.map(\.code) == ["invalid_time"])
        let huge = #"{"name":"file_events","hostIdentifier":"h","columns":{"target_path":"/etc/a","time":"999999999999999999"}}"#
        #expect(fim(huge).failures.map(\.code) == ["invalid_time"])
    }

    @Test("The same row gets the same uid in the event and batch formats")
    func uidAcrossFormats() throws {
        let row = #"{"target_path":"/etc/a","action":"UPDATED","time":"1714564805"}"#
        let single = try onlyEvent(fim(#"{"name":"q","hostIdentifier":"h","unixTime":1,"columns":\#(row),"action":"added"}"#))
        let batch = try onlyEvent(fim(#"{"name":"q","hostIdentifier":"h","unixTime":2,"diffResults":{"added":[\#(row)],"removed":[]}}"#))
        #expect(single.string("metadata.uid") == batch.string("metadata.uid"))
    }
}

@Suite("FIM: Wazuh syscheck alerts (Fixtures/fim/own, written from Wazuh's documentation)")
struct FileIntegrityWazuhTests {
    @Test("wazuh_syscheck.jsonl: added, modified, attributes, deleted, registry skipped, Windows path")
    func alerts() throws {
        let results = try fixtureLines("fim/own/wazuh_syscheck.jsonl").map { fim($0, header: nil) }
        #expect(results.allSatisfy { $0.source == "fim" && $0.failures.isEmpty })
        #expect(results.map(\.events.count) == [1, 1, 1, 1, 0, 1])
        #expect(results[4].skipped == 1)  // registry
        let events = results.flatMap(\.events)
        #expect(events.map { $0.int("activity_id") } == [1, 3, 6, 4, 3])

        let added = events[0]
        #expect(added.int("time") == millis("2024-05-01T12:00:05.123Z"))
        #expect(added.string("metadata.original_time") == "2024-05-01T12:00:05.123+0000")
        #expect(added.string("metadata.uid") == "wazuh-manager/1714564805.1001")
        #expect(added.string("metadata.product.name") == "Wazuh")
        #expect(added.string("metadata.event_code") == "554")
        #expect(added.string("message") == "File added to the system.")
        #expect(added.string("file.path") == "/usr/local/bin/update-helper")
        #expect(added.string("file.name") == "update-helper")
        #expect(added.string("file.parent_folder") == "/usr/local/bin")
        #expect(added.int("file.size") == 44)
        #expect(added.string("file.owner.name") == "root")
        #expect(added.string("file.owner.uid") == "0")
        #expect(added.int("file.modified_time") == 1_714_564_804_000)
        #expect(added.string("file.uid") == "262401")
        #expect(added.value(at: "file.hashes")?.arrayValue?.map { $0["algorithm_id"] } == [1, 2, 3])
        #expect(added.string("file.hashes.2.value") == "4eaef5d7c1b7ebf802b1e1101b915568d0d43ead131c19a65e01206867f0b9c4")
        #expect(added.string("device.hostname") == "web-01")
        #expect(added.string("device.ip") == "10.0.1.15")
        #expect(added.string("unmapped.agent.id") == "003")
        #expect(added.string("unmapped.syscheck.perm_after") == "rwxr-xr-x")
        #expect(added.int("unmapped.rule.level") == 5)

        let modified = events[1]
        #expect(modified.string("file_diff") == "1a2\n> toor:x:0:0::/root:/bin/sh\n")
        #expect(modified.string("actor.user.name") == "mallory")
        #expect(modified.string("actor.user.uid") == "1000")
        #expect(modified.int("actor.process.pid") == 4242)
        #expect(modified.string("actor.process.name") == "vim.basic")
        #expect(modified.string("actor.process.file.path") == "/usr/bin/vim.basic")
        #expect(modified.int("actor.process.parent_process.pid") == 4100)
        #expect(modified.string("unmapped.syscheck.md5_before")?.count == 32)
        #expect(modified.string("unmapped.syscheck.audit.effective_user.name") == "root")
        #expect(events[2].string("activity_name") == "Set Attributes")
        #expect(events[3].string("file.path") == "/var/log/auth.log")
        #expect(events[3].string("file.owner.name") == "syslog")

        let windows = events[4]
        #expect(windows.string("file.name") == "hosts")
        #expect(windows.string("file.parent_folder") == #"c:\windows\system32\drivers\etc"#)
        #expect(windows.value(at: "device.ip") == nil)
        #expect(windows.string("unmapped.agent.ip") == "any")
    }

    @Test("Non-syscheck Wazuh alerts are not claimed; with the header they fail as unrecognized")
    func notSyscheck() throws {
        let bytes = try fixture("fim/own/wazuh_sshd_alert.json")
        #expect(fim(bytes, header: nil).source == "unknown")
        #expect(fim(bytes).failures.map(\.code) == ["unrecognized_format"])
    }

    @Test("Missing path or time")
    func missing() throws {
        #expect(fim(#"{"rule":{"groups":["syscheck"]},"syscheck":{"event":"added"},"timestamp":"2024-05-01T00:00:00Z"}"#).failures.map(\.code) == ["missing_field"])
        #expect(fim(#"{"rule":{"groups":["syscheck"]},"syscheck":{"path":"/a"}}"#).failures.map(\.code) == ["invalid_time"])
        #expect(fim(#"{"rule":{"groups":["syscheck"]},"syscheck":{"path":"/a"},"timestamp":"yesterday"}"#).failures.map(\.code) == ["invalid_time"])
        #expect(fim(#"{"rule":{"groups":["syscheck"]},"syscheck":"/a","timestamp":"2024-05-01T00:00:00Z"}"#).failures.map(\.code) == ["missing_field"])
    }
}

@Suite("FIM: AIDE reports (Fixtures/fim/own, written from AIDE's report format)")
struct FileIntegrityAIDETests {
    @Test("aide_report.txt: one event per listed file, details joined, a bad list line fails alone")
    func grouped() throws {
        let result = fim(try fixture("fim/own/aide_report.txt"), header: nil)
        #expect(result.source == "fim")
        #expect(result.events.map { $0.string("file.path") } == ["/etc/cron.d/evil", "/root/.hidden", "/etc/sudoers.d/old", "/usr/bin/ssh", "/etc/shadow"])
        #expect(result.events.map { $0.int("activity_id") } == [1, 1, 4, 3, 6])
        #expect(result.failures.map(\.code) == ["invalid_entry"])
        #expect(result.failures.first?.entryIndex == 5)
        #expect(result.failures.first?.entryBytes == Array("this line is not an entry".utf8))
        for event in result.events {
            #expect(event.int("time") == millis("2024-05-01T12:00:00Z"))
            #expect(event.string("metadata.original_time") == "2024-05-01 12:00:00 +0000")
            #expect(event.string("metadata.product.name") == "AIDE")
            #expect(event.string("metadata.product.version") == "0.18.6")
        }
        #expect(result.events[0].int("file.type_id") == 1)
        #expect(result.events[1].int("file.type_id") == 2)
        #expect(result.events[1].string("file.type") == "Folder")
        #expect(result.events[0].string("unmapped.summary") == "f++++++++++++++++")
        let ssh = result.events[3]
        #expect(ssh.int("file.size") == 851_032)
        #expect(ssh.string("file.uid") == "393901")
        #expect(ssh.int("file.modified_time") == millis("2024-05-01T11:58:30Z"))
        // Base64 digests, wrapped over two and three lines, as lower-case hex.
        #expect(ssh.string("file.hashes.0.algorithm") == "SHA-256")
        #expect(ssh.string("file.hashes.0.value") == "51d77430e26c1e832fa8d6dae05f2c06c9ce19dfc67b78a80f28fa7b77819183")
        #expect(ssh.int("file.hashes.1.algorithm_id") == 4)
        #expect(ssh.string("file.hashes.1.value")?.count == 128)
        #expect(ssh.string("unmapped.details.Size.old") == "849624")
        #expect(ssh.string("unmapped.summary") == "f   >    m  C...   ")
        #expect(result.events[4].string("unmapped.details.Perm.new") == "-rw-rw-rw-")
        #expect(result.events.map { $0.value(at: "device") } == Array(repeating: nil, count: 5))
    }

    @Test("aide_report_ungrouped.txt: a combined list with added:/removed:/changed: lines behind a cron banner")
    func ungrouped() throws {
        let result = fim(try fixture("fim/own/aide_report_ungrouped.txt"), header: nil)
        #expect(result.source == "fim")
        #expect(result.failures.isEmpty)
        #expect(result.events.map { $0.int("activity_id") } == [1, 4, 3])
        #expect(result.events.map { $0.string("file.path") } == ["/tmp/.x/payload", "/usr/sbin/auditd", "/etc/hosts"])
        #expect(result.events.first?.int("time") == millis("2024-05-01T04:25:01Z"))
        #expect(result.events.first?.string("metadata.product.version") == "0.16")
    }

    @Test("aide_no_differences.txt: skipped")
    func noDifferences() throws {
        let result = fim(try fixture("fim/own/aide_no_differences.txt"), header: nil)
        #expect(result.source == "fim")
        #expect(result.events.isEmpty && result.failures.isEmpty && result.skipped == 1)
    }

    @Test("A report without a start timestamp fails as invalid_time; a summary-only report is skipped")
    func reportFaults() {
        #expect(fim("AIDE found differences between database and filesystem!!\n\nAdded entries:\nf+++: /a\n").failures.map(\.code) == ["invalid_time"])
        #expect(fim("AIDE found differences between database and filesystem!!\nStart timestamp: soon\n").failures.map(\.code) == ["invalid_time"])
        let summaryOnly = fim("Start timestamp: 2024-05-01 12:00:00 +0000 (AIDE 0.18)\nAIDE found differences between database and filesystem!!\n\nSummary:\n  Total number of entries:\t3\n  Added entries:\t\t1\n")
        #expect(summaryOnly.skipped == 1 && summaryOnly.events.isEmpty && summaryOnly.failures.isEmpty)
        #expect(fim("just some text").failures.map(\.code) == ["unrecognized_format"])
    }

    @Test("Digest decoding: base64 or hex of the right length, anything else dropped")
    func digests() {
        let report = """
        Start timestamp: 2024-05-01 12:00:00 +0000 (AIDE 0.18)
        AIDE found differences between database and filesystem!!
        Changed entries:
        f   .    .  C..   : /a
        f   .    .  C..   : /b
        Detailed information about changes:
        File: /a
         MD5          : 000102030405060708090a0b0c0d0e0f | 0F0E0D0C0B0A09080706050403020100
        File: /b
         SHA1         : not-a-digest                     | AAECAwQFBgcICQ==
        """
        let result = fim(report)
        #expect(result.events.first?.string("file.hashes.0.value") == "0f0e0d0c0b0a09080706050403020100")
        #expect(result.events.last?.value(at: "file.hashes") == nil)
        #expect(result.events.last?.int("activity_id") == 3)
    }
}

@Suite("FIM: shared samples, detection, hostile input")
struct FileIntegrityRobustnessTests {
    @Test("Shared samples (StreamAlert osquery and Carbon Black, DefectDojo Wazuh vulnerabilities) are not claimed")
    func sharedNegatives() throws {
        var records: [[UInt8]] = []
        for file in ["fim/streamalert/ssh_login_activity.json", "fim/streamalert/osquery_snapshot.json",
                     "fim/streamalert/right_to_left_character.json"] {
            records += try streamAlertRecords(file)
        }
        records += try ["fim/defectdojo/v4-7_one_finding.json", "fim/defectdojo/v4-8_many_findings.json"].map(fixture)
        #expect(records.count == 10)
        for record in records {
            #expect(!FileIntegrityParser().recognizes(SourceInput(raw: record)))
            let result = fim(record, header: nil)
            #expect(result.source == "unknown" && result.events.isEmpty)
        }
        // Routed by header anyway: the osquery results lack target_path, the empty snapshot has no rows.
        let routed = try streamAlertRecords("fim/streamalert/ssh_login_activity.json").map { fim($0) }
        #expect(routed.map { $0.failures.map(\.code) } == Array(repeating: ["missing_field"], count: 3))
        #expect(fim(try streamAlertRecords("fim/streamalert/osquery_snapshot.json")[0]).skipped == 1)
    }

    @Test("CloudTrail and FIM never claim each other's records")
    func cloudTrailBoundary() throws {
        let normalizer = Normalizer(parsers: [CloudTrailParser(), FileIntegrityParser()])
        let reversed = Normalizer(parsers: [FileIntegrityParser(), CloudTrailParser()])
        for file in ["own/assume_role.json", "streamalert/records_delete_subnet.json", "otrf/ec2_proxy_s3_exfiltration_2020-09-14011940.json"] {
            let bytes = try fixture(file)
            let firstLine = Array(bytes.split(separator: UInt8(ascii: "\n")).first ?? [])
            let record = file.hasPrefix("otrf") ? firstLine : bytes
            #expect(!FileIntegrityParser().recognizes(SourceInput(raw: record)), "\(file)")
            #expect(reversed.normalize(RawRecord(bytes: record)).source == "cloudtrail", "\(file)")
        }
        var ours = try fixtureLines("fim/own/osquery_file_events.jsonl").map { Array($0.utf8) }
        ours += try fixtureLines("fim/own/wazuh_syscheck.jsonl").map { Array($0.utf8) }
        ours += try ["fim/own/aide_report.txt", "fim/own/osquery_batch.json"].map(fixture)
        for record in ours {
            #expect(!CloudTrailParser().recognizes(SourceInput(raw: record)))
            #expect(normalizer.normalize(RawRecord(bytes: record)).source == "fim")
        }
    }

    @Test("Hostile input: failures, never a crash, never the payload in a message")
    func hostile() throws {
        let secret = "SECRETVALUEDONOTLEAK"
        let cases: [[UInt8]] = [
            [], Array("   \n".utf8), Array(#"{"name":"file_events","hostIdentifier":"\#(secret)","columns":{"target_path":"#.utf8),
            [UInt8](#"{"name":"f","hostIdentifier":"h","unixTime":1,"columns":{"target_path":""#.utf8) + [0xC3, 0x28, 0xFF] + [UInt8](#""}}"#.utf8),
            Array(#"{"name":"f","hostIdentifier":"h","columns":"\#(secret)"}"#.utf8),
            Array(#"{"name":"f","hostIdentifier":"h","diffResults":{"added":["\#(secret)"]}}"#.utf8),
            Array(#"{"rule":{"groups":"syscheck"},"syscheck":{"path":42},"timestamp":"\#(secret)"}"#.utf8),
            Array(#"["\#(secret)"]"#.utf8),
            [0xFF, 0xFE, 0x41, 0x49, 0x44, 0x45],
            Array("AIDE found differences between database and filesystem!!\nStart timestamp: \(secret)\n".utf8),
        ]
        for bytes in cases {
            for header in ["fim", nil] as [String?] {
                let result = fim(bytes, header: header)
                #expect(result.events.isEmpty)
                #expect(!result.failures.isEmpty)
                for failure in result.failures {
                    #expect(!failure.description.contains(secret))
                    #expect(failure.message.utf8.count < 200)
                }
            }
        }
    }

    /// The 10 MB value sits in `decorations`, outside the row the uid hashes: the debug build's
    /// SHA-256 needs seconds per 10 MB, and hashing cost is not what this test is about.
    @Test("A 10 MB line is kept in an osquery event; a 2 MB junk line in an AIDE report fails alone")
    func tenMegabytes() throws {
        let big = String(repeating: "a", count: 10_000_000)
        let osquery = #"{"name":"file_events","hostIdentifier":"h","unixTime":1714564805,"decorations":{"note":"\#(big)"},"columns":{"target_path":"/etc/a","action":"UPDATED"}}"#
        let event = try onlyEvent(fim(osquery, header: nil))
        #expect(event.string("unmapped.decorations.note")?.utf8.count == 10_000_000)
        let junk = String(repeating: "j", count: 2_000_000)
        let report = "Start timestamp: 2024-05-01 12:00:00 +0000 (AIDE 0.18)\nAIDE found differences between database and filesystem!!\nAdded entries:\n\(junk)\nf+++: /etc/a\n"
        let result = fim(report, header: nil)
        #expect(result.events.map { $0.string("file.path") } == ["/etc/a"])
        #expect(result.failures.map(\.entryIndex) == [0])
        #expect(fim(big, header: nil).failures.map(\.code) == ["invalid_json"])  // no parser claims it
        #expect(fim(big).failures.map(\.code) == ["unrecognized_format"])
    }

    @Test("Same bytes, same events")
    func determinism() throws {
        for file in ["fim/own/aide_report.txt", "fim/own/osquery_batch.json", "fim/own/wazuh_syscheck.jsonl"] {
            let bytes = file.hasSuffix(".jsonl") ? Array(try fixtureLines(file)[1].utf8) : try fixture(file)
            let first = fim(bytes).events.map { $0.serialized() }
            #expect(!first.isEmpty)
            #expect(first == fim(bytes, header: nil).events.map { $0.serialized() })
        }
        // AIDE uids are per report: the same path in another report is another event.
        let report = try fixture("fim/own/aide_report.txt")
        let other = Array(String(decoding: report, as: UTF8.self).replacing("12:03:41", with: "12:03:42").utf8)
        #expect(fim(report).events[0].string("metadata.uid") != fim(other).events[0].string("metadata.uid"))
    }

    @Test("2,000 random byte mutations: no crash, every record accounted for")
    func mutations() throws {
        var samples = try ["fim/own/aide_report.txt", "fim/own/osquery_batch.json"].map(fixture)
        samples += try fixtureLines("fim/own/wazuh_syscheck.jsonl").prefix(2).map { Array($0.utf8) }
        samples += try fixtureLines("fim/own/osquery_file_events.jsonl").prefix(2).map { Array($0.utf8) }
        var random = FileIntegrityXorshift(seed: 0xF11E_5EED_0000_0042)
        for iteration in 0..<2_000 {
            var bytes = samples[iteration % samples.count]
            for _ in 0...(random.next() % 8) {
                bytes[Int(random.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: random.next())
            }
            if random.next() % 10 == 0 { bytes = Array(bytes.prefix(Int(random.next() % UInt64(bytes.count)))) }
            for header in ["fim", nil] as [String?] {
                let result = fim(bytes, header: header)
                #expect(result.events.count + result.failures.count + result.skipped >= 1)
                for event in result.events {
                    #expect(event.string("metadata.uid") != nil)
                    #expect(event.int("time") != nil)
                    #expect(event.string("file.name") != nil)
                }
            }
        }
    }
}

/// A tiny deterministic generator for the mutation test.
fileprivate struct FileIntegrityXorshift {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }
}
