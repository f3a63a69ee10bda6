import Foundation
import Normalize
import OCSF
import Testing

/// Syslog: StreamAlert's syslog test events, our own auth.log and RFC 5424 fixtures, the year
/// rule, detection, and hostile input.
@Suite("Syslog")
struct SyslogTests {
    /// airbnb/streamalert sample_syslog_rule.json (Apache-2.0), one data string per line.
    static let streamAlert = "syslog/streamalert/sample_syslog_rule.log"
    static let authLog = "syslog/own/auth.log"
    static let rfc5424 = "syslog/own/rfc5424.log"

    func run(_ text: String, parser: SyslogParser = SyslogParser(assumedYear: 2024), header: String? = "syslog") -> NormalizeResult {
        Normalizer(parsers: [parser]).normalize(RawRecord(bytes: Array(text.utf8), source: header))
    }

    func lines(_ path: String) throws -> [String] {
        String(decoding: try fixture(path), as: UTF8.self).split(separator: "\n").map(String.init)
    }

    @Test("StreamAlert: detected as syslog, but its invented sudo messages are valid syslog Vigil does not map")
    func streamAlertSamples() throws {
        let bytes = try fixture(Self.streamAlert)
        let result = Normalizer(parsers: [CloudTrailParser(), VPCFlowParser(), SyslogParser(assumedYear: 2017)]).normalize(RawRecord(bytes: bytes))
        #expect(result.detected)
        #expect(result.source == "syslog")
        #expect(result.events.isEmpty)
        #expect(result.failures.isEmpty)
        #expect(result.skipped == 3)
        // The same lines in the format sudo really prints do map, with the host and time parsed.
        let real = try onlyEvent(run("Jan 01 12:00:12 test-host-1 sudo[151]:   ubuntu : TTY=pts/0 ; PWD=/tmp ; USER=root ; COMMAND=/bin/rm /tmp/test",
                                     parser: SyslogParser(assumedYear: 2017)))
        #expect(real.int("time") == millis("2017-01-01T12:00:12Z"))
        #expect(real.string("device.hostname") == "test-host-1")
        #expect(real.int("actor.process.pid") == 151)
        #expect(real.string("unmapped.command") == "/bin/rm /tmp/test")
    }

    @Test("Own auth.log: 21 events and 7 skipped lines, classes and activities line by line")
    func authLogOverview() throws {
        let result = run(String(decoding: try fixture(Self.authLog), as: UTF8.self), header: nil)
        #expect(result.source == "syslog")
        #expect(result.failures.isEmpty)
        #expect(result.events.count == 21)
        #expect(result.skipped == 7)
        let summary = result.events.map { "\($0.int("class_uid") ?? 0)/\($0.int("activity_id") ?? 0)/\($0.int("status_id") ?? 0)" }
        #expect(summary == [
            "3002/99/2", "3002/1/2", "3002/99/0", "3002/1/2", "3002/1/2", "3002/99/0", // scan, brute force
            "3002/1/1", "3002/99/1", "3002/99/1", "3002/99/1", "3001/1/1", "3002/99/1", // alice logs in, sudo useradd
            "3001/99/1", "3001/3/1", "3002/99/2", "3002/99/1", "3002/99/1", "3002/99/2", // usermod, passwd, sudo fail, su
            "3001/6/1", "3002/2/1", "3002/99/1", // userdel, logout
        ])
    }

    @Test("sshd: failed password for an invalid user, field by field")
    func failedInvalidUser() throws {
        let event = try onlyEvent(run("Nov 20 09:14:02 bastion-1 sshd[1234]: Failed password for invalid user admin from 203.0.113.50 port 50122 ssh2"))
        #expect(event.int("class_uid") == 3002)
        #expect(event.int("type_uid") == 300201)
        #expect(event.string("activity_name") == "Logon")
        #expect(event.int("status_id") == 2)
        #expect(event.string("status") == "Failure")
        #expect(event.string("status_detail") == "Invalid user")
        #expect(event.int("time") == millis("2024-11-20T09:14:02Z"))
        #expect(event.string("metadata.original_time") == "Nov 20 09:14:02")
        #expect(event.string("metadata.product.name") == "sshd")
        #expect(event.string("metadata.product.vendor_name") == "OpenSSH")
        #expect(event.string("metadata.uid") == StableID.hash(bytes: Array("Nov 20 09:14:02 bastion-1 sshd[1234]: Failed password for invalid user admin from 203.0.113.50 port 50122 ssh2".utf8)))
        #expect(event.string("user.name") == "admin")
        #expect(event.string("src_endpoint.ip") == "203.0.113.50")
        #expect(event.int("src_endpoint.port") == 50122)
        #expect(event.string("dst_endpoint.hostname") == "bastion-1")
        #expect(event.string("device.hostname") == "bastion-1")
        #expect(event.string("actor.process.name") == "sshd")
        #expect(event.int("actor.process.pid") == 1234)
        #expect(event.string("auth_protocol") == "password")
        #expect(event.int("auth_protocol_id") == 99)
        #expect(event.value(at: "is_remote") == true)
        #expect(event.string("service.name") == "sshd")
        #expect(event.string("message") == "Failed password for invalid user admin from 203.0.113.50 port 50122 ssh2")
    }

    @Test("sshd: accepted publickey, logoff, repeats, preauth disconnects")
    func sshdForms() throws {
        let log = try lines(Self.authLog)
        let accepted = try onlyEvent(run(log[7]))
        #expect(accepted.int("activity_id") == 1)
        #expect(accepted.int("status_id") == 1)
        #expect(accepted.value(at: "status_detail") == nil)
        #expect(accepted.string("user.name") == "alice")
        #expect(accepted.string("auth_protocol") == "publickey")
        #expect(accepted.string("src_endpoint.ip") == "198.51.100.7")
        #expect(accepted.string("unmapped.key_type") == "ED25519")
        #expect(accepted.string("unmapped.key_fingerprint") == "SHA256:Q2hlY2tzdW1QbGFjZWhvbGRlckZvclRlc3RzMDAwMDAw")

        let repeated = try onlyEvent(run(log[4]))
        #expect(repeated.int("count") == 2)
        #expect(repeated.string("user.name") == "root")
        #expect(repeated.string("status_detail") == "Failed password")

        let invalid = try onlyEvent(run(log[0]))
        #expect(invalid.int("activity_id") == 99)
        #expect(invalid.string("activity_name") == "Invalid User")
        #expect(invalid.string("user.name") == "admin")
        #expect(invalid.int("src_endpoint.port") == 50122)

        let closed = try onlyEvent(run(log[2]))
        #expect(closed.string("activity_name") == "Preauth Disconnect")
        #expect(closed.string("status_detail") == "invalid user")
        #expect(closed.string("user.name") == "admin")

        let logoff = try onlyEvent(run(log[24]))
        #expect(logoff.int("activity_id") == 2)
        #expect(logoff.string("activity_name") == "Logoff")
        #expect(logoff.string("user.name") == "alice")
        #expect(logoff.int("src_endpoint.port") == 61022)

        let scanner = try onlyEvent(run("Nov 20 09:14:05 bastion-1 sshd[9]: Connection closed by 203.0.113.9 port 4444 [preauth]"))
        #expect(scanner.int("activity_id") == 99)
        #expect(scanner.value(at: "user") == nil)
        #expect(scanner.string("src_endpoint.ip") == "203.0.113.9")

        // OpenSSH 9.8+ logs from sshd-session.
        let session = try onlyEvent(run("Nov 20 09:14:05 bastion-1 sshd-session[9]: Accepted password for eve from 203.0.113.9 port 4444 ssh2"))
        #expect(session.string("user.name") == "eve")
    }

    @Test("sudo, su and PAM sessions: who acted, as whom, on which terminal")
    func privilegeChanges() throws {
        let log = try lines(Self.authLog)
        let sudo = try onlyEvent(run(log[9]))
        #expect(sudo.int("class_uid") == 3002)
        #expect(sudo.int("activity_id") == 99)
        #expect(sudo.string("activity_name") == "Sudo")
        #expect(sudo.int("status_id") == 1)
        #expect(sudo.string("actor.user.name") == "alice")
        #expect(sudo.string("user.name") == "root")
        #expect(sudo.string("session.terminal") == "pts/0")
        #expect(sudo.string("unmapped.pwd") == "/home/alice")
        #expect(sudo.string("unmapped.command") == "/usr/sbin/useradd -m -s /bin/bash deploy")
        #expect(sudo.value(at: "actor.process.pid") == nil)

        let denied = try onlyEvent(run(log[17]))
        #expect(denied.int("status_id") == 2)
        #expect(denied.string("status_detail") == "3 incorrect password attempts")
        #expect(denied.string("actor.user.name") == "bob")
        #expect(denied.string("unmapped.command") == "/bin/bash")

        let su = try onlyEvent(run(log[18]))
        #expect(su.string("activity_name") == "Su")
        #expect(su.string("user.name") == "root")
        #expect(su.string("actor.user.name") == "alice")
        #expect(su.string("session.terminal") == "pts/0")
        let failedSu = try onlyEvent(run(log[20]))
        #expect(failedSu.int("status_id") == 2)
        #expect(failedSu.string("actor.user.name") == "bob")
        let shadowSu = try onlyEvent(run("Nov 20 09:24:00 old-1 su[7]: Successful su for root by carol"))
        #expect(shadowSu.string("actor.user.name") == "carol")
        #expect(shadowSu.string("metadata.product.vendor_name") == "shadow-utils")

        let opened = try onlyEvent(run(log[10]))
        #expect(opened.string("activity_name") == "Session Opened")
        #expect(opened.string("user.name") == "root")
        #expect(opened.string("user.uid") == "0")
        #expect(opened.string("actor.user.name") == "alice")
        #expect(opened.string("unmapped.pam_service") == "sudo")
        let sshdOpened = try onlyEvent(run(log[8]))
        #expect(sshdOpened.string("user.uid") == "1000")
        #expect(sshdOpened.value(at: "actor.user") == nil)
        #expect(sshdOpened.value(at: "is_remote") == true)
    }

    @Test("shadow-utils: useradd, usermod, passwd, userdel are Account Change")
    func accountChanges() throws {
        let log = try lines(Self.authLog)
        let created = try onlyEvent(run(log[12]))
        #expect(created.int("class_uid") == 3001)
        #expect(created.string("class_name") == "Account Change")
        #expect(created.int("activity_id") == 1)
        #expect(created.string("activity_name") == "Create")
        #expect(created.int("type_uid") == 300101)
        #expect(created.string("user.name") == "deploy")
        #expect(created.string("user.uid") == "1001")
        #expect(created.string("unmapped.home") == "/home/deploy")
        #expect(created.string("unmapped.shell") == "/bin/bash")
        #expect(created.string("unmapped.from") == "/dev/pts/0")
        #expect(created.string("metadata.product.name") == "useradd")
        #expect(created.value(at: "dst_endpoint") == nil)

        let grouped = try onlyEvent(run(log[14]))
        #expect(grouped.int("activity_id") == 99)
        #expect(grouped.string("activity_name") == "Add To Group")
        #expect(grouped.string("user.groups.0.name") == "sudo")
        #expect(run(log[15]).skipped == 1) // the gshadow repeat

        let password = try onlyEvent(run(log[16]))
        #expect(password.int("activity_id") == 3)
        #expect(password.string("user.name") == "deploy")
        let changedBy = try onlyEvent(run("Nov 20 09:22:31 bastion-1 passwd[1416]: password for 'deploy' changed by 'root'"))
        #expect(changedBy.string("actor.user.name") == "root")

        let deleted = try onlyEvent(run(log[21]))
        #expect(deleted.int("activity_id") == 6)
        #expect(deleted.string("activity_name") == "Delete")
        #expect(deleted.string("user.name") == "olduser")
        let locked = try onlyEvent(run("Nov 20 09:22:31 bastion-1 usermod[1417]: lock user 'deploy' password"))
        #expect(locked.int("activity_id") == 9)
    }

    @Test("RFC 5424 and RFC 3339 forms: PRI, structured data, BOM, offsets, no PRI")
    func rfc5424() throws {
        let result = run(String(decoding: try fixture(Self.rfc5424), as: UTF8.self), header: nil)
        #expect(result.source == "syslog")
        #expect(result.failures.isEmpty)
        #expect(result.events.count == 5)
        #expect(result.skipped == 1)
        let failed = result.events[0]
        #expect(failed.int("time") == millis("2024-11-20T09:14:02.123Z"))
        #expect(failed.string("metadata.original_time") == "2024-11-20T09:14:02.123456Z")
        #expect(failed.string("metadata.log_name") == "auth")
        #expect(failed.int("unmapped.syslog.facility") == 4)
        #expect(failed.int("unmapped.syslog.severity") == 6)
        #expect(failed.string("user.name") == "oracle")
        #expect(failed.string("dst_endpoint.hostname") == "bastion-2.example.net")
        let accepted = result.events[1]
        #expect(accepted.int("time") == millis("2024-11-20T09:14:02Z"))
        #expect(accepted.string("metadata.log_name") == "authpriv")
        #expect(accepted.string("src_endpoint.ip") == "2001:db8::77")
        #expect(accepted.string("unmapped.syslog.structured_data.origin.ip") == "10.0.2.9")
        #expect(accepted.string("unmapped.syslog.structured_data.meta.note") == #"a "quoted" ] value"#)
        let sudo = result.events[2]
        #expect(sudo.string("actor.user.name") == "carol")
        #expect(sudo.string("user.name") == "postgres")
        #expect(sudo.value(at: "actor.process.pid") == nil)
        let created = result.events[3]
        #expect(created.string("user.name") == "svc-backup")
        #expect(created.value(at: "metadata.log_name") == nil)
        let rsyslog = result.events[4]
        #expect(rsyslog.int("time") == millis("2024-11-20T09:19:30.514Z"))
        #expect(rsyslog.string("auth_protocol") == "keyboard-interactive/pam")
        #expect(rsyslog.string("device.hostname") == "bastion-3")
    }

    @Test("RFC 3164 year: fixed, nearest to the reference (across New Year), and impossible dates")
    func years() throws {
        let line = "Dec 31 23:59:59 host sshd[1]: Accepted password for a from 203.0.113.1 port 22 ssh2"
        #expect(try onlyEvent(run(line, parser: SyslogParser())).int("time") == millis("1970-12-31T23:59:59Z"))
        #expect(try onlyEvent(run(line, parser: SyslogParser(referenceTime: millis("2025-01-01T00:00:10Z")))).int("time") == millis("2024-12-31T23:59:59Z"))
        // Seven months ahead is further than five months back.
        #expect(try onlyEvent(run(line, parser: SyslogParser(referenceTime: millis("2025-06-01T00:00:00Z")))).int("time") == millis("2024-12-31T23:59:59Z"))
        #expect(try onlyEvent(run(line, parser: SyslogParser(referenceTime: millis("2025-08-01T00:00:00Z")))).int("time") == millis("2025-12-31T23:59:59Z"))
        let january = "Jan  1 00:00:05 host sshd[1]: Accepted password for a from 203.0.113.1 port 22 ssh2"
        #expect(try onlyEvent(run(january, parser: SyslogParser(referenceTime: millis("2024-12-31T23:59:00Z")))).int("time") == millis("2025-01-01T00:00:05Z"))
        let leap = "Feb 29 10:00:00 host sshd[1]: Accepted password for a from 203.0.113.1 port 22 ssh2"
        #expect(run(leap, parser: SyslogParser(assumedYear: 2023)).failures.map(\.code) == ["invalid_time"])
        #expect(try onlyEvent(run(leap, parser: SyslogParser(assumedYear: 2024))).int("time") == millis("2024-02-29T10:00:00Z"))
        #expect(run("<38>1 - host sshd 1 - - Accepted password for a from 203.0.113.1 port 22 ssh2").failures.map(\.code) == ["invalid_time"])
    }

    @Test("Not syslog: failures; one bad line among many keeps its index and its siblings flow")
    func notSyslog() throws {
        for text in ["hello world", "{\"a\":1}", "2 123456789010 eni-1 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK",
                     "Nov 20 host", "Foo 20 09:14:02 host sshd[1]: x", "<999>Nov 20 09:14:02 host sshd[1]: x", "<38>1 2024-11-20T09:14:02Z host sshd 1 - [broken"] {
            let result = run(text)
            #expect(result.events.isEmpty, "\(text)")
            #expect(result.failures.count == 1, "\(text)")
            #expect(result.failures.first?.entryIndex == nil)
        }
        let mixed = run("Nov 20 09:14:02 h sshd[1]: Accepted password for a from 203.0.113.1 port 22 ssh2\nnot syslog at all\nNov 20 09:14:03 h kernel: x\n")
        #expect(mixed.events.count == 1)
        #expect(mixed.skipped == 1)
        #expect(mixed.failures.first?.entryIndex == 1)
        #expect(mixed.failures.first?.entryBytes == Array("not syslog at all".utf8))
        #expect(mixed.failures.first?.code == "unrecognized_format")
        #expect(run("").failures.map(\.code) == ["unrecognized_format"])
    }

    @Test("Detection: syslog lines are claimed; flow logs, CloudTrail and JSON are not")
    func detection() throws {
        let parser = SyslogParser()
        func claims(_ text: String) -> Bool { parser.recognizes(SourceInput(raw: Array(text.utf8))) }
        #expect(claims("Nov 20 09:14:02 bastion-1 sshd[1234]: Failed password for root from 203.0.113.50 port 50122 ssh2"))
        #expect(claims("<13>Nov  3 09:14:02 bastion-1 cron: x"))
        #expect(claims("<38>1 2024-11-20T09:14:02Z host sshd 1 - - x"))
        #expect(claims("2024-11-20T09:19:30.514023+00:00 bastion-3 sshd[877]: x"))
        #expect(!claims("2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK"))
        #expect(!claims("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"))
        #expect(!claims(#"{"eventName":"DeleteSubnet","eventSource":"ec2.amazonaws.com","eventTime":"2024-01-01T00:00:00Z"}"#))
        #expect(!claims("Nov 20 09:14:02 just some words"))
        let all = Normalizer(parsers: [CloudTrailParser(), VPCFlowParser(), SyslogParser()])
        #expect(all.normalize(RawRecord(bytes: try fixture(Self.authLog))).source == "syslog")
        #expect(all.normalize(RawRecord(bytes: try fixture("vpcflow/own/s3_v5_file.log"))).source == "vpcflow")
        // CloudTrail does not claim syslog.
        #expect(Normalizer(parsers: [CloudTrailParser()]).normalize(RawRecord(bytes: try fixture(Self.authLog))).source == "unknown")
    }

    @Test("Deterministic: the same bytes twice give identical events")
    func deterministic() throws {
        let bytes = try fixture(Self.authLog)
        let first = Normalizer(parsers: [SyslogParser(assumedYear: 2024)]).normalize(RawRecord(bytes: bytes, source: "syslog"))
        let second = Normalizer(parsers: [SyslogParser(assumedYear: 2024)]).normalize(RawRecord(bytes: bytes, source: "syslog"))
        #expect(first.events.map { $0.serialized() } == second.events.map { $0.serialized() })
        #expect(Set(first.events.compactMap(OCSFEvent.uid)).count == first.events.count)
    }

    @Test("Hostile input: invalid UTF-8, truncation, control bytes, a 10 MB line; nothing leaks")
    func hostile() {
        let secret = "SECRETVALUEDONOTLEAK"
        let cases: [String: [UInt8]] = [
            "invalid UTF-8": Array("Nov 20 09:14:02 h sshd[1]: Failed password for ".utf8) + [0xC3, 0x28, 0xFF],
            "truncated": Array("Nov 20 09:1".utf8),
            "PRI only": Array("<38>".utf8),
            "NUL bytes": [0, 0, 0] + Array(secret.utf8),
            "10 MB line": [UInt8](repeating: UInt8(ascii: "x"), count: 10_000_000),
            "10 MB of SD": Array("<38>1 2024-11-20T09:14:02Z h a 1 - [x a=\"".utf8) + [UInt8](repeating: UInt8(ascii: "y"), count: 10_000_000),
        ]
        for (name, bytes) in cases {
            let result = Normalizer(parsers: [SyslogParser()]).normalize(RawRecord(bytes: bytes, source: "syslog"))
            #expect(result.events.isEmpty, "\(name)")
            #expect(result.failures.count == 1, "\(name)")
            for failure in result.failures {
                #expect(!failure.description.contains(secret))
                #expect(failure.message.utf8.count < 200)
            }
        }
        // A valid header with a 10 MB message still maps: the message is the user's business.
        let long = "Nov 20 09:14:02 h sshd[1]: Accepted password for " + String(repeating: "u", count: 10_000_000) + " from 203.0.113.1 port 22 ssh2"
        #expect(run(long).events.count == 1)
    }

    @Test("2,000 random byte mutations of auth.log: no crash, every line accounted for")
    func mutations() throws {
        let original = try fixture(Self.authLog)
        var random = XorShift(seed: 0x5EED_5150)
        let parser = SyslogParser(assumedYear: 2024)
        for _ in 0..<2_000 {
            var bytes = original
            for _ in 0..<(1 + Int(random.next() % 8)) {
                let position = Int(random.next() % UInt64(bytes.count))
                switch random.next() % 3 {
                case 0: bytes[position] = UInt8(truncatingIfNeeded: random.next())
                case 1: bytes.remove(at: position)
                default: bytes.insert([0x20, 0x0A, 0x3A, 0x5B, 0x22][Int(random.next() % 5)], at: position)
                }
            }
            let result = parser.normalize(SourceInput(raw: bytes))
            let lines = bytes.split(separator: 0x0A).filter { $0.contains { $0 != 0x20 && $0 != 0x09 && $0 != 0x0D } }.count
            #expect(result.events.count + result.failures.count + result.skipped == max(lines, 1))
            _ = parser.recognizes(SourceInput(raw: bytes))
        }
    }
}

