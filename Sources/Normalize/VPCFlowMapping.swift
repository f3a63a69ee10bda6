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

    /// Parts every flow event has alike, built once and shared (they are values: sharing is
    /// invisible, and saves allocations and memory per event).
    static let product: JSON = ["name": "Amazon VPC", "vendor_name": "AWS", "feature": ["name": "Flow Logs"]]
    static let profiles: JSON = ["cloud", "security_control"]
    static let hostProfiles: JSON = ["cloud", "security_control", "host"]

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
        // Data lines start with a digit or `-`: a header's first word starts with a letter or `$`.
        guard let first = line.first, (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(first) || first == UInt8(ascii: "$") else {
            return nil
        }
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

    // MARK: Formats and values

    /// The fields the mapping reads (`mappedFields`), as positions into a `Layout`.
    enum Field: Int, CaseIterable {
        case version, accountID, interfaceID, srcaddr, dstaddr, srcport, dstport, protocolNumber, packets, bytes
        case start, end, action, logStatus, vpcID, subnetID, instanceID, tcpFlags, type, pktSrcaddr, pktDstaddr
        case region, azID, pktSrcAWSService, pktDstAWSService, flowDirection, trafficPath

        /// The flow-log field name.
        var name: String {
            switch self {
            case .version: "version"
            case .accountID: "account-id"
            case .interfaceID: "interface-id"
            case .srcaddr: "srcaddr"
            case .dstaddr: "dstaddr"
            case .srcport: "srcport"
            case .dstport: "dstport"
            case .protocolNumber: "protocol"
            case .packets: "packets"
            case .bytes: "bytes"
            case .start: "start"
            case .end: "end"
            case .action: "action"
            case .logStatus: "log-status"
            case .vpcID: "vpc-id"
            case .subnetID: "subnet-id"
            case .instanceID: "instance-id"
            case .tcpFlags: "tcp-flags"
            case .type: "type"
            case .pktSrcaddr: "pkt-srcaddr"
            case .pktDstaddr: "pkt-dstaddr"
            case .region: "region"
            case .azID: "az-id"
            case .pktSrcAWSService: "pkt-src-aws-service"
            case .pktDstAWSService: "pkt-dst-aws-service"
            case .flowDirection: "flow-direction"
            case .trafficPath: "traffic-path"
            }
        }
    }

    /// A format resolved once rather than per line: where each mapped field's value sits among a
    /// line's words, which fields go to `unmapped`, and the uid hash after the format text, which
    /// every line in that format shares.
    struct Layout: Sendable {
        /// The field names, in order.
        let fields: [String]
        /// For each `Field`, the word position of its last occurrence in `fields` (a repeated
        /// name keeps its last value), or -1.
        let positions: [Int]
        /// Fields outside `mappedFields`, each once, with the position of its last occurrence.
        let others: [(name: String, position: Int)]
        /// SHA-256 over the format joined with spaces and the unit separator (`StableID.hash`'s
        /// first part), continued with each line's bytes for its uid.
        let uidPrefix: SHA256

        init(fields: [String]) {
            self.fields = fields
            var last: [String: Int] = [:]
            for (position, name) in fields.enumerated() { last[name] = position }
            positions = Field.allCases.map { last[$0.name] ?? -1 }
            others = last.filter { !mappedFields.contains($0.key) }
                .map { (name: $0.key, position: $0.value) }
                .sorted { $0.position < $1.position }
            var hasher = SHA256()
            hasher.update(data: fields.joined(separator: " ").utf8)
            hasher.update(byte: 0x1F)
            uidPrefix = hasher
        }
    }

    /// One record's values as byte ranges of `bytes`, named through `layout`. Empty and `-`
    /// (the placeholder) read as absent. Comparisons are on bytes when every byte is ASCII
    /// (where that is exactly `String` equality), else on `String`s.
    struct Values {
        let bytes: ArraySlice<UInt8>
        let words: [Range<Int>]
        let layout: Layout
        let isASCII: Bool

        /// The value at a word position, unless empty or the placeholder.
        func range(at position: Int) -> Range<Int>? {
            guard position >= 0 else { return nil }
            let range = words[position]
            if range.isEmpty || (range.count == 1 && bytes[range.lowerBound] == UInt8(ascii: "-")) { return nil }
            return range
        }

        func range(_ field: Field) -> Range<Int>? { range(at: layout.positions[field.rawValue]) }

        func text(_ range: Range<Int>) -> String { String(decoding: bytes[range], as: UTF8.self) }

        func string(_ field: Field) -> String? { range(field).map(text) }

        /// Whether the field is present and equal to `literal` (an ASCII word).
        func equals(_ field: Field, _ literal: StaticString) -> Bool {
            guard let range = range(field) else { return false }
            guard isASCII else { return text(range) == literal.description }
            guard range.count == literal.utf8CodeUnitCount else { return false }
            let expected = literal.utf8Start
            var offset = 0
            for byte in bytes[range] {
                if byte != expected[offset] { return false }
                offset += 1
            }
            return true
        }

        enum Number {
            case absent, invalid, value(Int64)
        }

        /// A decimal of at most `maxDigits` digits and at most `max`, read from the bytes.
        func number(_ field: Field, maxDigits: Int, max: Int64) -> Number {
            guard let range = range(field) else { return .absent }
            guard range.count <= maxDigits else { return .invalid }
            var value: Int64 = 0
            for byte in bytes[range] {
                guard byte >= 48, byte <= 57 else { return .invalid }
                let (times10, overflow) = value.multipliedReportingOverflow(by: 10)
                let (sum, carry) = times10.addingReportingOverflow(Int64(byte - 48))
                if overflow || carry { return .invalid }
                value = sum
            }
            return value <= max ? .value(value) : .invalid
        }
    }

    // MARK: Entries

    /// One text line in `layout`'s format.
    static func entry(line: ArraySlice<UInt8>, layout: Layout, envelope: Envelope?) -> Outcome {
        let expected = layout.fields.count
        var isASCII = true
        for byte in line where byte >= 0x80 {
            isASCII = false
            break
        }
        var words: [Range<Int>] = []
        words.reserveCapacity(expected)
        var count = 0
        if isASCII {
            // Bytes: for ASCII, splitting on spaces and tabs is exactly the `Character` split.
            var index = line.startIndex
            let end = line.endIndex
            while index < end {
                while index < end, isSpace(line[index]) { index += 1 }
                if index == end { break }
                let start = index
                while index < end, !isSpace(line[index]) { index += 1 }
                if count < expected { words.append(start..<index) }
                count += 1
            }
        } else {
            guard let text = String(validating: line, as: UTF8.self) else {
                return .failure(code: NormalizeFailure.Code.invalidEntry, message: "the line is not valid UTF-8")
            }
            // `Character`s: a space joined to a combining mark is not a separator.
            let utf8 = text.utf8
            for word in text.split(whereSeparator: { $0 == " " || $0 == "\t" }) {
                if count < expected {
                    let start = line.startIndex + utf8.distance(from: utf8.startIndex, to: word.startIndex)
                    words.append(start..<(start + word.utf8.count))
                }
                count += 1
            }
        }
        guard count == expected else {
            return .failure(code: NormalizeFailure.Code.unrecognizedFormat,
                            message: "the line has \(count) fields where the format has \(expected)")
        }
        // The same line under the same format is the same flow record, wherever it was read:
        // StableID.hash([format joined by spaces, line]).
        var hasher = layout.uidPrefix
        line.withUnsafeBufferPointer { hasher.update(buffer: $0) }
        let uid = StableID.hex(of: hasher)
        return event(Values(bytes: line, words: words, layout: layout, isASCII: isASCII), uid: uid, envelope: envelope)
    }

    /// One CloudWatch Logs log event: its `message` line, else its `extractedFields`.
    static func entry(logEvent: JSON, layout: Layout, envelope: Envelope) -> Outcome {
        guard case .object(let members) = logEvent else {
            return .failure(code: NormalizeFailure.Code.invalidEntry, message: "the log event is not a JSON object")
        }
        var messageOutcome: Outcome?
        if let message = members["message"]?.stringValue {
            let outcome = entry(line: trimmed(Array(message.utf8)[...]), layout: layout, envelope: envelope)
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
            return event(named: values, uid: uid, envelope: envelope)
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
    static func event(named values: [String: String], uid: String, envelope: Envelope?) -> Outcome {
        var bytes: [UInt8] = []
        var words: [Range<Int>] = []
        var names: [String] = []
        for (name, text) in values {
            let start = bytes.count
            bytes.append(contentsOf: text.utf8)
            words.append(start..<bytes.count)
            names.append(name)
        }
        let isASCII = bytes.allSatisfy { $0 < 0x80 }
        return event(Values(bytes: bytes[...], words: words, layout: Layout(fields: names), isASCII: isASCII),
                     uid: uid, envelope: envelope)
    }

    /// Maps one record's values to an event, or says why not. Builds the event's members
    /// directly, each once.
    static func event(_ values: Values, uid: String, envelope: Envelope?) -> Outcome {
        // NODATA: no traffic in the interval; SKIPDATA: records lost in the interval. Neither is a flow.
        if values.equals(.logStatus, "NODATA") || values.equals(.logStatus, "SKIPDATA") { return .skipped }

        // Time: the end of the aggregation window (when the record was closed and published),
        // else its start. A present but malformed time is corruption, not a reason to guess.
        let startSeconds: Int64?
        switch values.number(.start, maxDigits: 12, max: maximumEpochSecond) {
        case .absent: startSeconds = nil
        case .invalid: return .failure(code: NormalizeFailure.Code.invalidTime, message: "start is not epoch seconds")
        case .value(let seconds): startSeconds = seconds
        }
        let endSeconds: Int64?
        switch values.number(.end, maxDigits: 12, max: maximumEpochSecond) {
        case .absent: endSeconds = nil
        case .invalid: return .failure(code: NormalizeFailure.Code.invalidTime, message: "end is not epoch seconds")
        case .value(let seconds): endSeconds = seconds
        }
        guard let timeSeconds = endSeconds ?? startSeconds, let timeText = values.string(endSeconds != nil ? .end : .start) else {
            return .failure(code: NormalizeFailure.Code.invalidTime, message: "the line has no start or end time")
        }

        var problem: Outcome?
        func number(_ field: Field, max: Int64) -> Int64? {
            switch values.number(field, maxDigits: 19, max: max) {
            case .absent: return nil
            case .value(let value): return value
            case .invalid:
                if problem == nil { problem = .failure(code: NormalizeFailure.Code.invalidEntry, message: "\(field.name) is not a number in range") }
                return nil
            }
        }
        func address(_ field: Field) -> String? {
            guard let range = values.range(field) else { return nil }
            let text = values.text(range)
            guard IPAddress.isLiteral(text) else {
                if problem == nil { problem = .failure(code: NormalizeFailure.Code.invalidEntry, message: "\(field.name) is not an IP address") }
                return nil
            }
            return text
        }

        let srcPort = number(.srcport, max: 65_535)
        let dstPort = number(.dstport, max: 65_535)
        let protocolNumber = number(.protocolNumber, max: 255)
        let packets = number(.packets, max: Int64.max)
        let bytes = number(.bytes, max: Int64.max)
        let tcpFlags = number(.tcpFlags, max: 65_535)
        let trafficPath = number(.trafficPath, max: 255)
        let srcAddress = address(.srcaddr)
        let dstAddress = address(.dstaddr)
        let packetSrc = address(.pktSrcaddr)
        let packetDst = address(.pktDstaddr)
        if let problem { return problem }

        let accepted = values.equals(.action, "ACCEPT")
        let rejected = values.equals(.action, "REJECT")
        let (activityID, activityName): (Int64, String) = rejected ? (5, "Refuse") : (6, "Traffic")
        let status: OCSFStatus = accepted ? .success : rejected ? .failure : .unknown

        // The interface that recorded the flow: always the `device`; also the endpoint it is,
        // when flow-direction (v5) says which.
        // Capacities are reserved up front throughout: a dictionary that grows rehashes its keys.
        var interface = [String: JSON](minimumCapacity: 4)
        if let id = values.string(.interfaceID) { interface["interface_uid"] = .string(id) }
        if let id = values.string(.vpcID) { interface["vpc_uid"] = .string(id) }
        if let id = values.string(.subnetID) { interface["subnet_uid"] = .string(id) }
        if let id = values.string(.instanceID) { interface["instance_uid"] = .string(id) }
        let region = values.string(.region)
        let zone = values.string(.azID)

        var metadata = [String: JSON](minimumCapacity: 7)
        metadata["version"] = .string(ocsfVersion)
        metadata["uid"] = .string(uid)
        metadata["product"] = product
        metadata["original_time"] = .string(timeText)
        metadata["profiles"] = interface.isEmpty ? profiles : hostProfiles
        if let logName = envelope?.logGroup { metadata["log_name"] = .string(logName) }
        if let version = values.string(.version) { metadata["log_version"] = .string(version) }

        var event = OCSFEvent.baseMembers(
            class: .networkActivity, activityID: activityID, activityName: activityName,
            time: timeSeconds * 1000, severity: .informational, status: status, metadata: metadata, capacity: 32
        )
        if let startSeconds { event["start_time"] = .int(startSeconds * 1000) }
        if let endSeconds { event["end_time"] = .int(endSeconds * 1000) }
        if let startSeconds, let endSeconds, endSeconds >= startSeconds {
            event["duration"] = .int((endSeconds - startSeconds) * 1000)
        }
        if let logStatus = values.string(.logStatus) { event["status_code"] = .string(logStatus) }
        if accepted {
            event["action_id"] = 1
            event["action"] = "Allowed"
            event["disposition_id"] = 1
            event["disposition"] = "Allowed"
        } else if rejected {
            event["action_id"] = 2
            event["action"] = "Denied"
            event["disposition_id"] = 2
            event["disposition"] = "Blocked"
        }

        // Endpoints: the packet-level address (pkt-*) is the real peer behind a NAT gateway or
        // for pods; the interface's own address then becomes an intermediate hop.
        var source = endpoint(address: srcAddress, packetAddress: packetSrc, port: srcPort, service: values.string(.pktSrcAWSService))
        var destination = endpoint(address: dstAddress, packetAddress: packetDst, port: dstPort, service: values.string(.pktDstAWSService))

        if !interface.isEmpty {
            var device = [String: JSON](minimumCapacity: 8)
            device.merge(interface) { _, new in new }
            device["type_id"] = 0
            device["type"] = "Unknown"
            if let region { device["region"] = .string(region) }
            if let zone { device["zone"] = .string(zone) }
            event["device"] = .object(device)
        }

        var connection = [String: JSON](minimumCapacity: 9)
        if let protocolNumber {
            connection["protocol_num"] = .int(protocolNumber)
            if let name = protocolNames[protocolNumber] { connection["protocol_name"] = .string(name) }
        }
        if let type = values.range(.type) {
            if values.equals(.type, "IPv4") {
                connection["protocol_ver_id"] = 4
                connection["protocol_ver"] = "Internet Protocol version 4 (IPv4)"
            } else if values.equals(.type, "IPv6") {
                connection["protocol_ver_id"] = 6
                connection["protocol_ver"] = "Internet Protocol version 6 (IPv6)"
            } else {
                connection["protocol_ver_id"] = 99
                connection["protocol_ver"] = .string(values.text(type))
            }
        } else if let address = srcAddress ?? dstAddress {
            if address.utf8.contains(UInt8(ascii: ":")) {
                connection["protocol_ver_id"] = 6
                connection["protocol_ver"] = "Internet Protocol version 6 (IPv6)"
            } else {
                connection["protocol_ver_id"] = 4
                connection["protocol_ver"] = "Internet Protocol version 4 (IPv4)"
            }
        }
        if values.equals(.flowDirection, "ingress") {
            connection["direction_id"] = 1
            connection["direction"] = "Inbound"
            destination.merge(interface) { _, new in new }
        } else if values.equals(.flowDirection, "egress") {
            connection["direction_id"] = 2
            connection["direction"] = "Outbound"
            source.merge(interface) { _, new in new }
        } else {
            // Required by OCSF; the default format (v2) has no flow-direction field.
            connection["direction_id"] = 0
            connection["direction"] = "Unknown"
        }
        if let tcpFlags { connection["tcp_flags"] = .int(tcpFlags) }
        if let trafficPath, let boundary = boundaries[trafficPath + 3] {
            connection["boundary_id"] = .int(trafficPath + 3)
            connection["boundary"] = .string(boundary)
        }
        if !source.isEmpty { event["src_endpoint"] = .object(source) }
        if !destination.isEmpty { event["dst_endpoint"] = .object(destination) }
        if !connection.isEmpty { event["connection_info"] = .object(connection) }

        if packets != nil || bytes != nil {
            var traffic = [String: JSON](minimumCapacity: 2)
            if let packets { traffic["packets"] = .int(packets) }
            if let bytes { traffic["bytes"] = .int(bytes) }
            event["traffic"] = .object(traffic)
        }

        var cloud = [String: JSON](minimumCapacity: 4)
        cloud["provider"] = "AWS"
        if let account = values.string(.accountID) ?? envelope?.owner {
            cloud["account"] = ["uid": .string(account), "type_id": 10, "type": "AWS Account"]
        }
        if let region { cloud["region"] = .string(region) }
        if let zone { cloud["zone"] = .string(zone) }
        event["cloud"] = .object(cloud)

        var unmapped: [String: JSON] = [:]
        for other in values.layout.others {
            if let range = values.range(at: other.position) { unmapped[other.name] = .string(values.text(range)) }
        }
        if let envelope {
            var cloudWatch: [String: JSON] = [:]
            if let group = envelope.logGroup { cloudWatch["logGroup"] = .string(group) }
            if let stream = envelope.logStream { cloudWatch["logStream"] = .string(stream) }
            if !cloudWatch.isEmpty { unmapped["cloudwatch_logs"] = .object(cloudWatch) }
        }
        if !unmapped.isEmpty { event["unmapped"] = .object(unmapped) }
        return .event(.object(event))
    }

    static func endpoint(address: String?, packetAddress: String?, port: Int64?, service: String?) -> [String: JSON] {
        var endpoint = [String: JSON](minimumCapacity: 4)
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
