import Foundation
import Normalize
import OCSF
import Testing

/// VPC flow logs: the AWS documentation's examples, StreamAlert's CloudWatch envelope, our own
/// S3-file and CloudWatch fixtures, detection, and hostile input.
@Suite("VPC flow logs")
struct VPCFlowTests {
    /// awsdocs/amazon-vpc-user-guide examples (CC-BY-SA-4.0 text, MIT-0 samples).
    static let examples = "vpcflow/aws_docs/flow_log_examples.json"
    static let allLines = "vpcflow/aws_docs/flow_log_examples_all_lines.txt"
    /// airbnb/streamalert sample_cloudwatch_flow_log_rule.json (Apache-2.0).
    static let streamAlert = "vpcflow/streamalert/cloudwatch_flow_log_ssh.json"

    struct Example {
        var section: String
        var format: [String]
        var lines: [String]
    }

    func examples() throws -> [Example] {
        let document = try JSON.parse(try fixture(Self.examples))
        return try #require(document.arrayValue).map { item in
            Example(section: item["section"]?.stringValue ?? "",
                    format: item["format"]?.arrayValue?.compactMap(\.stringValue) ?? [],
                    lines: item["records"]?.arrayValue?.compactMap(\.stringValue) ?? [])
        }
    }

    func run(_ text: String, parser: VPCFlowParser = VPCFlowParser(), header: String? = "vpcflow") -> NormalizeResult {
        Normalizer(parsers: [parser]).normalize(RawRecord(bytes: Array(text.utf8), source: header))
    }

    @Test("Every AWS documentation example, as an S3 file with its header and with the format configured")
    func documentationExamples() throws {
        let all = try examples()
        #expect(all.count == 18)
        var totals = (events: 0, failures: 0, skipped: 0)
        for example in all {
            let withHeader = run(([example.format.joined(separator: " ")] + example.lines).joined(separator: "\n") + "\n")
            let configured = run(example.lines.joined(separator: "\n"), parser: VPCFlowParser(fields: example.format.map { "${\($0)}" }))
            // The same lines under the same format: identical events either way.
            #expect(withHeader.events.map { $0.serialized() } == configured.events.map { $0.serialized() }, "\(example.section)")
            #expect(withHeader.events.count + withHeader.failures.count + withHeader.skipped == example.lines.count)
            totals.events += withHeader.events.count
            totals.failures += withHeader.failures.count
            totals.skipped += withHeader.skipped

            switch example.section {
            case "Traffic through a NAT gateway", "Traffic through a transit gateway":
                // These documented formats leave out start and end, so no event time exists; the
                // "..." elision and the "#comment" annotations do not fit the format.
                #expect(withHeader.events.isEmpty)
                for failure in withHeader.failures {
                    #expect(["invalid_time", "unrecognized_format"].contains(failure.code))
                }
            case "No data and skipped records":
                #expect(withHeader.skipped == 1 && withHeader.events.isEmpty && withHeader.failures.isEmpty)
            default:
                #expect(withHeader.failures.isEmpty, "\(example.section): \(withHeader.failures)")
                #expect(withHeader.events.count == example.lines.count)
            }
        }
        #expect(totals.events == 15)
        #expect(totals.failures == 11)
        #expect(totals.skipped == 2)
    }

    @Test("The all-lines file as one record: a header per section switches the format mid-record")
    func allLinesFile() throws {
        let text = String(decoding: try fixture(Self.allLines), as: UTF8.self)
        var record: [String] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("# format: ") {
                record.append(String(line.dropFirst("# format: ".count)))
            } else if !line.hasPrefix("# section") {
                record.append(String(line))
            }
        }
        let result = run(record.joined(separator: "\n"))
        #expect(result.events.count == 15)
        #expect(result.skipped == 2)
        #expect(result.failures.count == 11)
        // Failures point at their own line, so the stage can dead-letter that line alone.
        for failure in result.failures {
            let index = try #require(failure.entryIndex)
            #expect(failure.entryBytes == Array(record[index].utf8).trimmingSpaces())
        }
    }

    @Test("Default v2: accepted SSH from the AWS guide, field by field")
    func acceptedSSH() throws {
        let line = "2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK"
        let event = try onlyEvent(run(line))
        #expect(event.int("class_uid") == 4001)
        #expect(event.int("category_uid") == 4)
        #expect(event.int("activity_id") == 6)
        #expect(event.string("activity_name") == "Traffic")
        #expect(event.int("type_uid") == 400106)
        #expect(event.int("time") == 1_418_530_070_000)
        #expect(event.int("start_time") == 1_418_530_010_000)
        #expect(event.int("end_time") == 1_418_530_070_000)
        #expect(event.int("duration") == 60_000)
        #expect(event.string("metadata.original_time") == "1418530070")
        #expect(event.string("metadata.product.name") == "Amazon VPC")
        #expect(event.string("metadata.product.vendor_name") == "AWS")
        #expect(event.string("metadata.log_version") == "2")
        #expect(event.string("metadata.uid") == StableID.hash([VPCFlowParser.defaultFields.joined(separator: " "), line]))
        #expect(event.string("src_endpoint.ip") == "172.31.16.139")
        #expect(event.int("src_endpoint.port") == 20641)
        #expect(event.string("dst_endpoint.ip") == "172.31.16.21")
        #expect(event.int("dst_endpoint.port") == 22)
        // Without flow-direction the interface is only the reporting device.
        #expect(event.string("device.interface_uid") == "eni-1235b8ca123456789")
        #expect(event.value(at: "src_endpoint.interface_uid") == nil)
        #expect(event.int("connection_info.protocol_num") == 6)
        #expect(event.string("connection_info.protocol_name") == "tcp")
        #expect(event.int("connection_info.protocol_ver_id") == 4)
        #expect(event.int("traffic.packets") == 20)
        #expect(event.int("traffic.bytes") == 4249)
        #expect(event.string("action") == "Allowed")
        #expect(event.int("action_id") == 1)
        #expect(event.string("disposition") == "Allowed")
        #expect(event.int("disposition_id") == 1)
        #expect(event.int("status_id") == 1)
        #expect(event.string("status_code") == "OK")
        #expect(event.string("cloud.provider") == "AWS")
        #expect(event.string("cloud.account.uid") == "123456789010")
        #expect(event.value(at: "unmapped") == nil)
    }

    @Test("Default v2: rejected RDP is Refuse / Denied / Blocked")
    func rejectedRDP() throws {
        let event = try onlyEvent(run("2 123456789010 eni-1235b8ca123456789 172.31.9.69 172.31.9.12 49761 3389 6 20 4249 1418530010 1418530070 REJECT OK"))
        #expect(event.int("activity_id") == 5)
        #expect(event.string("activity_name") == "Refuse")
        #expect(event.int("type_uid") == 400105)
        #expect(event.string("action") == "Denied")
        #expect(event.int("action_id") == 2)
        #expect(event.string("disposition") == "Blocked")
        #expect(event.int("disposition_id") == 2)
        #expect(event.int("status_id") == 2)
        #expect(event.int("dst_endpoint.port") == 3389)
    }

    @Test("IPv6 and ICMP from the AWS guide")
    func ipv6AndICMP() throws {
        let v6 = try onlyEvent(run("2 123456789010 eni-1235b8ca123456789 2001:db8:1234:a100:8d6e:3477:df66:f105 2001:db8:1234:a102:3304:8879:34cf:4071 34892 22 6 54 8855 1477913708 1477913820 ACCEPT OK"))
        #expect(v6.string("src_endpoint.ip") == "2001:db8:1234:a100:8d6e:3477:df66:f105")
        #expect(v6.string("dst_endpoint.ip") == "2001:db8:1234:a102:3304:8879:34cf:4071")
        #expect(v6.int("connection_info.protocol_ver_id") == 6)
        let icmp = try onlyEvent(run("2 123456789010 eni-1235b8ca123456789 203.0.113.12 172.31.16.139 0 0 1 4 336 1432917027 1432917142 ACCEPT OK"))
        #expect(icmp.string("connection_info.protocol_name") == "icmp")
        #expect(icmp.int("src_endpoint.port") == 0)
        #expect(icmp.int("time") == 1_432_917_142_000)
    }

    @Test("v3 TCP flags and v5 service, traffic path and flow direction from the AWS guide")
    func customFormats() throws {
        let all = try examples()
        let tcp = try #require(all.first { $0.section == "TCP flag sequence" })
        let tcpResult = run(([tcp.format.joined(separator: " ")] + tcp.lines).joined(separator: "\n"))
        #expect(tcpResult.events.map { $0.int("connection_info.tcp_flags") } == [2, 18, 2, 18])
        let syn = try #require(tcpResult.events.first)
        #expect(syn.string("device.vpc_uid") == "vpc-abcdefab012345678")
        #expect(syn.string("device.subnet_uid") == "subnet-aaaaaaaa012345678")
        #expect(syn.string("device.instance_uid") == "i-01234567890123456")
        #expect(syn.int("traffic.bytes") == 568)
        #expect(syn.int("traffic.packets") == 8)
        #expect(syn.string("metadata.log_version") == "3")
        #expect(OCSFEvent.primaryKey(syn) == "i-01234567890123456")

        let v5 = try #require(all.first { $0.section == "Service name, traffic path, and flow direction" })
        let v5Result = run(([v5.format.joined(separator: " ")] + v5.lines).joined(separator: "\n"))
        #expect(v5Result.failures.isEmpty)
        let ingress = try #require(v5Result.events.first)
        #expect(ingress.int("connection_info.direction_id") == 1)
        #expect(ingress.string("connection_info.direction") == "Inbound")
        #expect(ingress.string("src_endpoint.svc_name") == "S3")
        #expect(ingress.string("dst_endpoint.instance_uid") == "i-0c50d5961bcb2d47b")
        #expect(ingress.string("dst_endpoint.interface_uid") == "eni-1235b8ca123456789")
        #expect(ingress.value(at: "src_endpoint.instance_uid") == nil)
        #expect(ingress.string("cloud.region") == "ap-southeast-2")
        #expect(ingress.string("cloud.zone") == "apse2-az3")
        #expect(ingress.value(at: "connection_info.boundary_id") == nil)
        #expect(ingress.int("time") == 1_616_729_349_000)
        let egress = try #require(v5Result.events.last)
        #expect(egress.int("connection_info.direction_id") == 2)
        #expect(egress.string("src_endpoint.instance_uid") == "i-0c50d5961bcb2d47b")
        #expect(egress.string("dst_endpoint.svc_name") == "S3")
        #expect(egress.int("connection_info.boundary_id") == 11)
        #expect(egress.string("connection_info.boundary") == "Internet Gateway")
    }

    @Test("NAT gateway: packet-level addresses win, the interface's address is an intermediate hop")
    func natAddresses() throws {
        let format = ["start", "end", "instance-id", "interface-id", "srcaddr", "dstaddr", "pkt-srcaddr", "pkt-dstaddr"]
        let event = try onlyEvent(run("1700000000 1700000060 - eni-1235b8ca123456789 10.0.1.5 10.0.0.220 10.0.1.5 203.0.113.5",
                                      parser: VPCFlowParser(fields: format)))
        #expect(event.string("src_endpoint.ip") == "10.0.1.5")
        #expect(event.value(at: "src_endpoint.intermediate_ips") == nil)
        #expect(event.string("dst_endpoint.ip") == "203.0.113.5")
        #expect(event.value(at: "dst_endpoint.intermediate_ips") == ["10.0.0.220"])
        #expect(event.value(at: "device.instance_uid") == nil)
        #expect(event.value(at: "action_id") == nil)
        #expect(event.int("status_id") == 0)
    }

    @Test("StreamAlert: CloudWatch Logs envelope with extractedFields, detected without a header")
    func streamAlertEnvelope() throws {
        let bytes = try fixture(Self.streamAlert)
        let result = Normalizer(parsers: [CloudTrailParser(), VPCFlowParser(), SyslogParser()]).normalize(RawRecord(bytes: bytes))
        #expect(result.detected)
        #expect(result.source == "vpcflow")
        let event = try onlyEvent(result)
        #expect(event.string("src_endpoint.ip") == "10.0.5.1")
        #expect(event.int("src_endpoint.port") == 35446)
        #expect(event.string("dst_endpoint.ip") == "23.16.23.123")
        #expect(event.int("dst_endpoint.port") == 22)
        #expect(event.int("connection_info.protocol_num") == 7)
        #expect(event.int("time") == 1_490_996_995_000)
        #expect(event.int("start_time") == 1_490_996_987_000)
        #expect(event.string("action") == "Allowed")
        #expect(event.string("device.interface_uid") == "eni-id")
        #expect(event.string("cloud.account.uid") == "123456789101")
        #expect(event.string("status_code") == "running")
        #expect(event.string("metadata.log_name") == "rule-test-group")
        #expect(event.string("metadata.uid") == "123451234123412341234123412341235123512351235")
        #expect(event.string("unmapped.cloudwatch_logs.logStream") == "rule-test-stream")
    }

    @Test("Own S3 file (v5 custom format with header): events, NODATA skipped, one bad line with its index")
    func ownS3File() throws {
        let result = Normalizer(parsers: [VPCFlowParser()]).normalize(RawRecord(bytes: try fixture("vpcflow/own/s3_v5_file.log")))
        #expect(result.source == "vpcflow")
        #expect(result.events.count == 4)
        #expect(result.skipped == 1)
        #expect(result.failures.map(\.code) == ["invalid_entry"])
        #expect(result.failures.first?.entryIndex == 5)
        #expect(result.failures.first?.message == "dstaddr is not an IP address")
        let reject = try #require(result.events.first)
        #expect(reject.int("activity_id") == 5)
        #expect(reject.string("src_endpoint.ip") == "198.51.100.23")
        #expect(reject.string("dst_endpoint.instance_uid") == "i-0fedcba9876543210")
        #expect(reject.value(at: "connection_info.boundary_id") == nil)
        #expect(reject.string("cloud.account.uid") == "111122223333")
        #expect(reject.string("cloud.region") == "eu-west-1")
        let dynamo = result.events[1]
        #expect(dynamo.string("dst_endpoint.svc_name") == "DYNAMODB")
        #expect(dynamo.int("connection_info.boundary_id") == 4)
        let icmpv6 = result.events[3]
        #expect(icmpv6.string("connection_info.protocol_name") == "ipv6-icmp")
        #expect(icmpv6.int("connection_info.protocol_ver_id") == 6)
        #expect(icmpv6.string("src_endpoint.ip") == "2001:db8:100::15")
    }

    @Test("Own CloudWatch envelope in the default format: message lines, NODATA, a bad line")
    func ownCloudWatch() throws {
        let result = Normalizer(parsers: [CloudTrailParser(), VPCFlowParser()]).normalize(RawRecord(bytes: try fixture("vpcflow/own/cloudwatch_default_format.json")))
        #expect(result.detected)
        #expect(result.source == "vpcflow")
        #expect(result.events.count == 1)
        #expect(result.skipped == 1)
        #expect(result.failures.map(\.code) == ["invalid_entry"])
        #expect(result.failures.first?.entryIndex == 2)
        #expect(result.failures.first?.message == "packets is not a number in range")
        let event = try #require(result.events.first)
        #expect(event.string("metadata.log_name") == "/vpc/flow-logs/prod")
        // The line's uid is the same as when it arrives in a file: one flow, one id.
        let line = "2 111122223333 eni-0a1b2c3d4e5f60718 203.0.113.50 10.0.1.15 50122 22 6 3 180 1732093981 1732094041 REJECT OK"
        #expect(event.string("metadata.uid") == run(line).events.first?.string("metadata.uid"))
    }

    @Test("Control messages and header-only files are skipped; empty records fail")
    func skipsAndEmpties() {
        let control = run(#"{"messageType":"CONTROL_MESSAGE","owner":"CloudwatchLogs","logGroup":"","logStream":"","subscriptionFilters":[],"logEvents":[{"id":"","timestamp":1,"message":"CWL CONTROL MESSAGE: Checking health of destination Kinesis stream."}]}"#)
        #expect(control.skipped == 1 && control.events.isEmpty && control.failures.isEmpty)
        let headerOnly = run("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n")
        #expect(headerOnly.skipped == 1 && headerOnly.failures.isEmpty)
        #expect(run("").failures.map(\.code) == ["unrecognized_format"])
        #expect(run(" \n\n").failures.map(\.code) == ["unrecognized_format"])
    }

    @Test("Detection: flow lines, headers and envelopes are claimed; syslog, CloudTrail and CSV are not")
    func detection() throws {
        let parser = VPCFlowParser()
        func claims(_ text: String) -> Bool { parser.recognizes(SourceInput(raw: Array(text.utf8))) }
        #expect(claims("2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK"))
        #expect(claims("2 123456789010 eni-11111111aaaaaaaaa - - - - - - - 1431280876 1431280934 - SKIPDATA"))
        #expect(claims("version vpc-id subnet-id instance-id interface-id\n3 vpc-1 subnet-1 i-1 eni-1"))
        #expect(!claims("Nov 20 09:14:02 bastion-1 sshd[1234]: Failed password for invalid user admin from 203.0.113.50 port 50122 ssh2"))
        #expect(!claims("<38>1 2024-11-20T09:14:02Z host sshd 1 - - Accepted password for a from 203.0.113.1 port 1 ssh2"))
        #expect(!claims(#"{"eventName":"DeleteSubnet","eventSource":"ec2.amazonaws.com","eventTime":"2024-01-01T00:00:00Z"}"#))
        #expect(!claims(#"{"logEvents":[{"id":"1","timestamp":1,"message":"{\"eventName\":\"GetObject\"}"}]}"#))
        #expect(!claims("a,b,c\n1,2,3"))
        #expect(!claims("2 123456789010 eni-1 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT"))
        // CloudTrail does not claim flow logs, text or envelope.
        let cloudTrail = Normalizer(parsers: [CloudTrailParser()])
        #expect(cloudTrail.normalize(RawRecord(bytes: try fixture(Self.streamAlert))).source == "unknown")
        #expect(cloudTrail.normalize(RawRecord(bytes: Array("2 123456789010 eni-1 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK".utf8))).events.isEmpty)
        // And a CloudTrail event still goes to CloudTrail with both registered.
        let both = Normalizer(parsers: [CloudTrailParser(), VPCFlowParser(), SyslogParser()])
        let trail = both.normalize(RawRecord(bytes: Array(#"{"eventName":"DeleteSubnet","eventSource":"ec2.amazonaws.com","eventTime":"2024-01-01T00:00:00Z","eventID":"x"}"#.utf8)))
        #expect(trail.source == "cloudtrail")
    }

    @Test("Deterministic: the same bytes twice give identical events")
    func deterministic() throws {
        let bytes = try fixture("vpcflow/own/s3_v5_file.log")
        let first = Normalizer(parsers: [VPCFlowParser()]).normalize(RawRecord(bytes: bytes, source: "vpcflow"))
        let second = Normalizer(parsers: [VPCFlowParser()]).normalize(RawRecord(bytes: bytes, source: "vpcflow"))
        #expect(first.events.map { $0.serialized() } == second.events.map { $0.serialized() })
        #expect(Set(first.events.compactMap(OCSFEvent.uid)).count == first.events.count)
    }

    @Test("Hostile input: truncated, invalid UTF-8, wrong types, overflow, a 10 MB line; every line accounted for")
    func hostile() {
        let secret = "SECRETVALUEDONOTLEAK"
        let cases: [String: [UInt8]] = [
            "truncated": Array("2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31".utf8),
            "invalid UTF-8": Array("2 123456789010 eni-1 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT ".utf8) + [0xC3, 0x28],
            "overflowing time": Array("2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 1 1 99999999999999999999 ACCEPT OK".utf8),
            "port out of range": Array("2 1 eni-1 10.0.0.1 10.0.0.2 70000 2 6 1 1 1 2 ACCEPT \(secret)".utf8),
            "negative bytes": Array("2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 -5 1 2 ACCEPT OK".utf8),
            "logEvents not an array": Array(#"{"logEvents":{"message":"\#(secret)"}}"#.utf8),
            "log event not an object": Array(#"{"logEvents":["\#(secret)", 4]}"#.utf8),
            "broken JSON": Array(#"{"logEvents":[{"message":"\#(secret)"#.utf8),
            "10 MB line": [UInt8](repeating: UInt8(ascii: "7"), count: 10_000_000),
            "10 MB of fields": Array(String(repeating: "1 ", count: 5_000_000).utf8),
        ]
        for (name, bytes) in cases {
            let result = Normalizer(parsers: [VPCFlowParser()]).normalize(RawRecord(bytes: bytes, source: "vpcflow"))
            #expect(result.events.isEmpty, "\(name)")
            #expect(!result.failures.isEmpty, "\(name)")
            for failure in result.failures {
                #expect(!failure.description.contains(secret))
                #expect(failure.message.utf8.count < 200)
            }
        }
        let time = Normalizer(parsers: [VPCFlowParser()]).normalize(RawRecord(bytes: cases["overflowing time"]!, source: "vpcflow"))
        #expect(time.failures.map(\.code) == ["invalid_time"])
    }

    @Test("2,000 random byte mutations of a flow-log file: no crash, every line accounted for")
    func mutations() throws {
        let original = try fixture("vpcflow/own/s3_v5_file.log")
        var random = XorShift(seed: 0x5EED_F10E)
        let parser = VPCFlowParser()
        for _ in 0..<2_000 {
            var bytes = original
            for _ in 0..<(1 + Int(random.next() % 8)) {
                let position = Int(random.next() % UInt64(bytes.count))
                switch random.next() % 3 {
                case 0: bytes[position] = UInt8(truncatingIfNeeded: random.next())
                case 1: bytes.remove(at: position)
                default: bytes.insert([0x20, 0x0A, 0x2D, 0x3A][Int(random.next() % 4)], at: position)
                }
            }
            let result = parser.normalize(SourceInput(raw: bytes))
            let lines = bytes.split(separator: 0x0A).filter { $0.contains { $0 != 0x20 && $0 != 0x09 && $0 != 0x0D } }.count
            let accounted = result.events.count + result.failures.count + result.skipped
            #expect(accounted >= 1)
            #expect(accounted <= max(lines, 1))
            _ = parser.recognizes(SourceInput(raw: bytes))
        }
    }
}


extension Array where Element == UInt8 {
    fileprivate func trimmingSpaces() -> [UInt8] {
        Array(drop { $0 == 0x20 || $0 == 0x09 }.reversed().drop { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }.reversed())
    }
}
