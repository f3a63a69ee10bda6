import OCSF

/// The mapping of one VPC flow-log line to OCSF 1.3 Network Activity (4001). docs/sources.md
/// has the field table; keep them in step.
enum VPCFlowMapping {
    /// What one line or log event became.
    enum Outcome {
        case event(JSON)
        case skipped
        case failure(code: String, message: String)
    }

    /// The CloudWatch Logs envelope's context for its log events.
    struct Envelope {
        var logGroup: String?
        var logStream: String?
        var owner: String?
    }

    /// Every field AWS documents for VPC flow logs (versions 2 to 8). Used to recognize header
    /// lines; fields outside this list are still accepted in a format and kept in `unmapped`.
    static let knownFields: Set<String> = [
        "version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport",
        "protocol", "packets", "bytes", "start", "end", "action", "log-status",
        "vpc-id", "subnet-id", "instance-id", "tcp-flags", "type", "pkt-srcaddr", "pkt-dstaddr",
        "region", "az-id", "sublocation-type", "sublocation-id",
        "pkt-src-aws-service", "pkt-dst-aws-service", "flow-direction", "traffic-path",
        "ecs-cluster-arn", "ecs-cluster-name", "ecs-container-instance-arn", "ecs-container-instance-id",
        "ecs-container-id", "ecs-second-container-id", "ecs-service-name", "ecs-task-definition-arn",
        "ecs-task-arn", "ecs-task-id", "reject-reason", "resource-id",
    ]

    /// Fields the mapping consumes; any other non-placeholder value goes to `unmapped`.
    static let mappedFields: Set<String> = [
        "version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport",
        "protocol", "packets", "bytes", "start", "end", "action", "log-status",
        "vpc-id", "subnet-id", "instance-id", "tcp-flags", "type", "pkt-srcaddr", "pkt-dstaddr",
        "region", "az-id", "pkt-src-aws-service", "pkt-dst-aws-service", "flow-direction", "traffic-path",
    ]

    /// CloudWatch Logs subscription filters name the fields of a space-delimited pattern
    /// themselves; AWS's documented flow-log pattern (and StreamAlert) use these names.
    static let extractedAliases: [String: String] = [
        "account": "account-id", "eni": "interface-id", "source": "srcaddr", "destination": "dstaddr",
        "destport": "dstport", "windowstart": "start", "windowend": "end", "flowlogstatus": "log-status",
    ]

    /// IANA protocol keywords (lower-cased, as OCSF's `protocol_name` asks) for the protocols
    /// flow logs commonly carry; others keep only `protocol_num`.
    static let protocolNames: [Int64: String] = [
        1: "icmp", 2: "igmp", 4: "ipv4", 6: "tcp", 17: "udp", 41: "ipv6", 47: "gre", 50: "esp",
        51: "ah", 58: "ipv6-icmp", 132: "sctp",
    ]

    /// `traffic-path` values (v5) and OCSF 1.3 `connection_info.boundary_id`: the enums are
    /// aligned, OCSF's id is AWS's value plus 3.
    static let boundaries: [Int64: String] = [
        4: "Same VPC", 5: "Internet/VPC Gateway", 6: "Virtual Private Gateway", 7: "Intra-region VPC",
        8: "Inter-region VPC", 9: "Local Gateway", 10: "Gateway VPC", 11: "Internet Gateway",
    ]

    /// Latest epoch second accepted (9999-12-31T23:59:59Z), so seconds × 1000 cannot overflow.
    static let maximumEpochSecond: Int64 = 253_402_300_799

    // MARK: Record structure

    /// `{` after leading whitespace: the CloudWatch Logs envelope (a flow-log line never starts so).
    static func startsLikeJSON(_ raw: [UInt8]) -> Bool {
        raw.first(where: { !isSpace($0) && $0 != 0x0A && $0 != 0x0D }) == UInt8(ascii: "{")
    }

    /// The record's lines with their 0-based line numbers, line endings and surrounding blanks
    /// removed (a blank line yields empty bytes).
    static func lines(_ raw: [UInt8]) -> [(index: Int, bytes: ArraySlice<UInt8>)] {
        var out: [(index: Int, bytes: ArraySlice<UInt8>)] = []
        var start = raw.startIndex
        var number = 0
        while start <= raw.endIndex {
            let end = raw[start...].firstIndex(of: 0x0A) ?? raw.endIndex
            out.append((number, trimmed(raw[start..<end])))
            number += 1
            start = end + 1
        }
        return out
    }

    static func trimmed(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var slice = bytes
        while let first = slice.first, isSpace(first) || first == 0x0D { slice = slice.dropFirst() }
        while let last = slice.last, isSpace(last) || last == 0x0D { slice = slice.dropLast() }
        return slice
    }

    static func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 }

    /// `account_id` and `${account-id}` both mean `account-id`.
    static func canonicalName(_ name: String) -> String {
        var text = Substring(name)
        while let first = text.first, first == " " || first == "\t" { text = text.dropFirst() }
        while let last = text.last, last == " " || last == "\t" { text = text.dropLast() }
        if text.hasPrefix("${"), text.hasSuffix("}"), text.count >= 3 { text = text.dropFirst(2).dropLast() }
        return String(text).lowercased().replacingUnderscores()
    }

    /// The field names of a header line (`version account-id interface-id ...`), or `nil` when
    /// the line is data: every word must be name-shaped and most must be documented fields.
    static func headerFields(_ line: ArraySlice<UInt8>) -> [String]? {
        let words = line.split(whereSeparator: isSpace)
        guard words.count >= 2, words.count <= 256 else { return nil }
        var names: [String] = []
        var known = 0
        for word in words {
            guard let first = word.first, (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(first) || first == UInt8(ascii: "$"),
                  word.allSatisfy({ isNameByte($0) }) else { return nil }
            let name = canonicalName(String(decoding: word, as: UTF8.self))
            guard !name.isEmpty, name.utf8.allSatisfy({ isNameByte($0) && $0 != UInt8(ascii: "$") }) else { return nil }
            if knownFields.contains(name) { known += 1 }
            names.append(name)
        }
        return known * 2 > names.count ? names : nil
    }

    private static func isNameByte(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
            || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "$")
            || byte == UInt8(ascii: "{") || byte == UInt8(ascii: "}")
    }

    // MARK: Entries

    /// One text line in `format`.
    static func entry(line: ArraySlice<UInt8>, format: [String], envelope: Envelope?) -> Outcome {
        guard let text = String(validating: line, as: UTF8.self) else {
            return .failure(code: NormalizeFailure.Code.invalidEntry, message: "the line is not valid UTF-8")
        }
        let words = text.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard words.count == format.count else {
            return .failure(code: NormalizeFailure.Code.unrecognizedFormat,
                            message: "the line has \(words.count) fields where the format has \(format.count)")
        }
        var values: [String: String] = [:]
        for (name, word) in zip(format, words) { values[name] = String(word) }
        // The same line under the same format is the same flow record, wherever it was read.
        let uid = StableID.hash([format.joined(separator: " "), text])
        return event(values: values, uid: uid, envelope: envelope)
    }

    /// One CloudWatch Logs log event: its `message` line, else its `extractedFields`.
    static func entry(logEvent: JSON, format: [String], envelope: Envelope) -> Outcome {
        guard case .object(let members) = logEvent else {
            return .failure(code: NormalizeFailure.Code.invalidEntry, message: "the log event is not a JSON object")
        }
        var messageOutcome: Outcome?
        if let message = members["message"]?.stringValue {
            let outcome = entry(line: trimmed(Array(message.utf8)[...]), format: format, envelope: envelope)
            if case .failure = outcome {
                messageOutcome = outcome
            } else {
                return outcome
            }
        }
        if let extracted = members["extractedFields"]?.objectValue, looksLikeExtractedFlow(extracted) {
            var values: [String: String] = [:]
            for (key, value) in extracted {
                guard let scalar = value.scalarText else { continue }
                let name = canonicalName(key)
                values[extractedAliases[name] ?? name] = scalar
            }
            let uid = text(members["id"]) ?? StableID.hash(bytes: JSON.object(extracted).serialized())
            return event(values: values, uid: uid, envelope: envelope)
        }
        return messageOutcome ?? .failure(code: NormalizeFailure.Code.missingField, message: "the log event has no message")
    }

    /// `extractedFields` naming both addresses and an action or status, under flow-log or
    /// CloudWatch-pattern names.
    static func looksLikeExtractedFlow(_ fields: [String: JSON]) -> Bool {
        let names = Set(fields.keys.map { extractedAliases[canonicalName($0)] ?? canonicalName($0) })
        return names.contains("srcaddr") && names.contains("dstaddr")
            && (names.contains("action") || names.contains("log-status"))
    }

    // MARK: Mapping

    /// Maps named values (placeholder `-` means absent) to an event, or says why not.
    static func event(values: [String: String], uid: String, envelope: Envelope?) -> Outcome {
        func value(_ name: String) -> String? {
            guard let text = values[name], !text.isEmpty, text != "-" else { return nil }
            return text
        }
        // NODATA: no traffic in the interval; SKIPDATA: records lost in the interval. Neither is a flow.
        if let status = value("log-status"), status == "NODATA" || status == "SKIPDATA" { return .skipped }

        var problem: Outcome?
        func number(_ name: String, max: Int64) -> Int64? {
            guard let text = value(name) else { return nil }
            guard text.utf8.count <= 19, text.utf8.allSatisfy({ (48...57).contains($0) }), let parsed = Int64(text), parsed <= max else {
                if problem == nil { problem = .failure(code: NormalizeFailure.Code.invalidEntry, message: "\(name) is not a number in range") }
                return nil
            }
            return parsed
        }
        func address(_ name: String) -> String? {
            guard let text = value(name) else { return nil }
            guard IPAddress.isLiteral(text) else {
                if problem == nil { problem = .failure(code: NormalizeFailure.Code.invalidEntry, message: "\(name) is not an IP address") }
                return nil
            }
            return text
        }

        // Time: the end of the aggregation window (when the record was closed and published),
        // else its start. A present but malformed time is corruption, not a reason to guess.
        func seconds(_ name: String) -> Result<Int64?, Never>? {
            guard let text = value(name) else { return .success(nil) }
            guard text.utf8.count <= 12, text.utf8.allSatisfy({ (48...57).contains($0) }),
                  let parsed = Int64(text), parsed <= maximumEpochSecond else { return nil }
            return .success(parsed)
        }
        guard case .success(let startSeconds)? = seconds("start") else {
            return .failure(code: NormalizeFailure.Code.invalidTime, message: "start is not epoch seconds")
        }
        guard case .success(let endSeconds)? = seconds("end") else {
            return .failure(code: NormalizeFailure.Code.invalidTime, message: "end is not epoch seconds")
        }
        guard let timeSeconds = endSeconds ?? startSeconds, let timeText = value(endSeconds != nil ? "end" : "start") else {
            return .failure(code: NormalizeFailure.Code.invalidTime, message: "the line has no start or end time")
        }

        let srcPort = number("srcport", max: 65_535)
        let dstPort = number("dstport", max: 65_535)
        let protocolNumber = number("protocol", max: 255)
        let packets = number("packets", max: Int64.max)
        let bytes = number("bytes", max: Int64.max)
        let tcpFlags = number("tcp-flags", max: 65_535)
        let trafficPath = number("traffic-path", max: 255)
        let srcAddress = address("srcaddr")
        let dstAddress = address("dstaddr")
        let packetSrc = address("pkt-srcaddr")
        let packetDst = address("pkt-dstaddr")
        if let problem { return problem }

        let action = value("action")
        let (activityID, activityName): (Int64, String) = action == "REJECT" ? (5, "Refuse") : (6, "Traffic")
        let status: OCSFStatus = action == "ACCEPT" ? .success : action == "REJECT" ? .failure : .unknown

        var event = OCSFEvent.base(
            class: .networkActivity, activityID: activityID, activityName: activityName,
            time: timeSeconds * 1000, severity: .informational, status: status, uid: uid,
            product: "Amazon VPC", vendor: "AWS", logName: envelope?.logGroup, originalTime: timeText
        )
        event.set("metadata.product.feature", ["name": "Flow Logs"])
        if let version = value("version") { event.set("metadata.log_version", .string(version)) }
        if let startSeconds { event["start_time"] = .int(startSeconds * 1000) }
        if let endSeconds { event["end_time"] = .int(endSeconds * 1000) }
        if let startSeconds, let endSeconds, endSeconds >= startSeconds {
            event["duration"] = .int((endSeconds - startSeconds) * 1000)
        }
        if let logStatus = value("log-status") { event["status_code"] = .string(logStatus) }

        switch action {
        case "ACCEPT":
            event["action_id"] = 1
            event["action"] = "Allowed"
            event["disposition_id"] = 1
            event["disposition"] = "Allowed"
        case "REJECT":
            event["action_id"] = 2
            event["action"] = "Denied"
            event["disposition_id"] = 2
            event["disposition"] = "Blocked"
        default:
            break
        }

        // Endpoints: the packet-level address (pkt-*) is the real peer behind a NAT gateway or
        // for pods; the interface's own address then becomes an intermediate hop.
        var source = endpoint(address: srcAddress, packetAddress: packetSrc, port: srcPort, service: value("pkt-src-aws-service"))
        var destination = endpoint(address: dstAddress, packetAddress: packetDst, port: dstPort, service: value("pkt-dst-aws-service"))

        // The interface that recorded the flow: always the `device`; also the endpoint it is,
        // when flow-direction (v5) says which.
        var interface: [String: JSON] = [:]
        interface["interface_uid"] = value("interface-id").map(JSON.string)
        interface["vpc_uid"] = value("vpc-id").map(JSON.string)
        interface["subnet_uid"] = value("subnet-id").map(JSON.string)
        interface["instance_uid"] = value("instance-id").map(JSON.string)
        var profiles: [JSON] = ["cloud", "security_control"]
        if !interface.isEmpty {
            var device = interface
            device["type_id"] = 0
            device["type"] = "Unknown"
            device["region"] = value("region").map(JSON.string)
            device["zone"] = value("az-id").map(JSON.string)
            event["device"] = .object(device)
            profiles.append("host")
        }

        var connection: [String: JSON] = [:]
        if let protocolNumber {
            connection["protocol_num"] = .int(protocolNumber)
            connection["protocol_name"] = protocolNames[protocolNumber].map(JSON.string)
        }
        switch value("type") ?? inferredIPVersion(srcAddress ?? dstAddress) {
        case "IPv4": connection["protocol_ver_id"] = 4; connection["protocol_ver"] = "Internet Protocol version 4 (IPv4)"
        case "IPv6": connection["protocol_ver_id"] = 6; connection["protocol_ver"] = "Internet Protocol version 6 (IPv6)"
        case let other?: connection["protocol_ver_id"] = 99; connection["protocol_ver"] = .string(other)
        case nil: break
        }
        switch value("flow-direction") {
        case "ingress":
            connection["direction_id"] = 1
            connection["direction"] = "Inbound"
            destination.merge(interface) { _, new in new }
        case "egress":
            connection["direction_id"] = 2
            connection["direction"] = "Outbound"
            source.merge(interface) { _, new in new }
        default:
            break
        }
        if let tcpFlags { connection["tcp_flags"] = .int(tcpFlags) }
        if let trafficPath, let boundary = boundaries[trafficPath + 3] {
            connection["boundary_id"] = .int(trafficPath + 3)
            connection["boundary"] = .string(boundary)
        }
        if !source.isEmpty { event["src_endpoint"] = .object(source) }
        if !destination.isEmpty { event["dst_endpoint"] = .object(destination) }
        if !connection.isEmpty { event["connection_info"] = .object(connection) }

        var traffic: [String: JSON] = [:]
        traffic["packets"] = packets.map(JSON.int)
        traffic["bytes"] = bytes.map(JSON.int)
        if !traffic.isEmpty { event["traffic"] = .object(traffic) }

        var cloud: [String: JSON] = ["provider": "AWS"]
        if let account = value("account-id") ?? envelope?.owner {
            cloud["account"] = .object(["uid": .string(account), "type_id": 10, "type": "AWS Account"])
        }
        cloud["region"] = value("region").map(JSON.string)
        cloud["zone"] = value("az-id").map(JSON.string)
        event["cloud"] = .object(cloud)
        event.set("metadata.profiles", .array(profiles))

        var unmapped: [String: JSON] = [:]
        for (name, text) in values where !mappedFields.contains(name) && !text.isEmpty && text != "-" {
            unmapped[name] = .string(text)
        }
        if let envelope {
            var cloudWatch: [String: JSON] = [:]
            cloudWatch["logGroup"] = envelope.logGroup.map(JSON.string)
            cloudWatch["logStream"] = envelope.logStream.map(JSON.string)
            if !cloudWatch.isEmpty { unmapped["cloudwatch_logs"] = .object(cloudWatch) }
        }
        if !unmapped.isEmpty { event["unmapped"] = .object(unmapped) }
        return .event(event)
    }

    static func endpoint(address: String?, packetAddress: String?, port: Int64?, service: String?) -> [String: JSON] {
        var endpoint: [String: JSON] = [:]
        if let packetAddress, let address, packetAddress != address {
            endpoint["ip"] = .string(packetAddress)
            endpoint["intermediate_ips"] = [.string(address)]
        } else if let ip = packetAddress ?? address {
            endpoint["ip"] = .string(ip)
        }
        endpoint["port"] = port.map(JSON.int)
        endpoint["svc_name"] = service.map(JSON.string)
        return endpoint
    }

    static func inferredIPVersion(_ address: String?) -> String? {
        guard let address else { return nil }
        return address.contains(":") ? "IPv6" : "IPv4"
    }

    /// A non-empty scalar as text (account ids arrive as numbers); `nil` for anything else.
    static func text(_ value: JSON?) -> String? {
        guard let value, let scalar = value.scalarText, !scalar.isEmpty else { return nil }
        return scalar
    }
}

extension String {
    /// `account_id` → `account-id` (Athena and Parquet spell flow-log fields with underscores).
    fileprivate func replacingUnderscores() -> String {
        String(unicodeScalars.map { $0 == "_" ? "-" : Character($0) })
    }
}
