import OCSF

/// Qualys VM XML: the host detection list (`HOST_LIST_VM_DETECTION_OUTPUT/RESPONSE/HOST_LIST/HOST`
/// with `DETECTION_LIST/DETECTION`, from `/api/2.0/fo/asset/host/vm/detection/`) and the scan
/// report "asset data report" (`ASSET_DATA_REPORT/HOST_LIST/HOST` with `VULN_INFO_LIST/VULN_INFO`,
/// titles, CVEs and CVSS in `GLOSSARY/VULN_DETAILS_LIST`). Each detection becomes one OCSF 1.3
/// Vulnerability Finding (2002), information-gathered ones included. docs/sources.md has the
/// field table; `QualysXML` has the limits that keep hostile XML cheap.
public struct QualysParser: SourceParser {
    /// A Qualys parser; it has no configuration.
    public init() {}

    /// `qualys`.
    public var sourceName: String { "qualys" }

    /// XML text, not JSON.
    public var readsJSON: Bool { false }

    static let roots = ["HOST_LIST_VM_DETECTION_OUTPUT", "ASSET_DATA_REPORT"]

    /// XML whose first 4 KiB name one of the two Qualys roots (in the DOCTYPE or the root tag).
    public func recognizes(_ input: SourceInput) -> Bool {
        let head = input.raw.prefix(4096)
        guard let first = head.firstIndex(where: { $0 != 0x20 && $0 != 0x0A && $0 != 0x0D && $0 != 0x09 && $0 != 0xEF && $0 != 0xBB && $0 != 0xBF }),
              head[first] == UInt8(ascii: "<") else { return false }
        let text = String(decoding: head, as: UTF8.self)
        return Self.roots.contains { text.contains("<" + $0) || text.contains("DOCTYPE " + $0) }
    }

    public func normalize(_ input: SourceInput) -> NormalizeResult {
        var result = NormalizeResult(source: sourceName)
        let root: QualysXML.Element
        switch QualysXML.parse(input.raw) {
        case .success(let parsed): root = parsed
        case .failure(let error):
            result.failures.append(NormalizeFailure(code: NormalizeFailure.Code.unrecognizedFormat, message: error.message))
            return result
        }
        let entries: [QualysMapping.Entry]
        switch root.name {
        case "HOST_LIST_VM_DETECTION_OUTPUT": entries = QualysMapping.detectionEntries(root)
        case "ASSET_DATA_REPORT": entries = QualysMapping.reportEntries(root)
        case "SIMPLE_RETURN":
            result.failures.append(NormalizeFailure(
                code: NormalizeFailure.Code.unrecognizedFormat,
                message: "a Qualys SIMPLE_RETURN (an API error or status response), not a detection list"))
            return result
        default:
            result.failures.append(NormalizeFailure(
                code: NormalizeFailure.Code.unrecognizedFormat,
                message: "the root element is neither HOST_LIST_VM_DETECTION_OUTPUT nor ASSET_DATA_REPORT"))
            return result
        }
        for (index, entry) in entries.enumerated() {
            switch QualysMapping.event(from: entry) {
            case .success(let event): result.events.append(event)
            case .failure(let problem):
                result.failures.append(problem.failure(entryIndex: index, entryBytes: entry.canonical.serialized()))
            }
        }
        return result
    }
}

/// The mapping of one Qualys detection to OCSF 1.3 Vulnerability Finding (2002).
enum QualysMapping {
    /// One detection with its context.
    struct Entry {
        /// `{"host": ..., "detection": ...}`: the host without its detection list and the
        /// detection, as JSON. Hashed for the event uid and dead-lettered on failure.
        var canonical: JSON
        /// The knowledge-base entry for the QID (asset data reports carry a glossary).
        var details: JSON?
        /// The document's own time (response DATETIME, report GENERATION_DATETIME).
        var documentTime: String?
        /// The root element's name.
        var format: String
    }

    static let mappedHostKeys: Set<String> = ["ID", "IP", "IPV6", "DNS", "NETBIOS", "LAST_SCAN_DATETIME"]
    static let mappedDetectionKeys: Set<String> = [
        "QID", "TYPE", "SEVERITY", "STATUS", "VULN_STATUS", "UNIQUE_VULN_ID", "IS_IGNORED",
        "FIRST_FOUND_DATETIME", "FIRST_FOUND", "LAST_FOUND_DATETIME", "LAST_FOUND",
    ]
    static let mappedDetailKeys: Set<String> = [
        "@id", "QID", "TITLE", "SEVERITY", "THREAT", "SOLUTION", "CVE_ID_LIST", "CVSS_SCORE", "CVSS3_SCORE",
    ]

    static func detectionEntries(_ root: QualysXML.Element) -> [Entry] {
        let response = root.child("RESPONSE")
        let documentTime = response?.text("DATETIME")
        var entries: [Entry] = []
        for host in response?.child("HOST_LIST")?.children("HOST") ?? [] {
            let hostJSON = hostObject(host, listName: "DETECTION_LIST")
            for detection in host.child("DETECTION_LIST")?.children("DETECTION") ?? [] {
                entries.append(Entry(canonical: ["host": hostJSON, "detection": detection.json],
                                     details: nil, documentTime: documentTime, format: root.name))
            }
        }
        return entries
    }

    static func reportEntries(_ root: QualysXML.Element) -> [Entry] {
        let documentTime = root.child("HEADER")?.text("GENERATION_DATETIME")
        var glossary: [String: JSON] = [:]
        for details in root.child("GLOSSARY")?.child("VULN_DETAILS_LIST")?.children("VULN_DETAILS") ?? [] {
            guard let qid = details.text("QID") ?? details.attributes["id"].map({ String($0.drop(while: { !$0.isNumber })) }) else { continue }
            if glossary[qid] == nil { glossary[qid] = details.json }
        }
        var entries: [Entry] = []
        for host in root.child("HOST_LIST")?.children("HOST") ?? [] {
            let hostJSON = hostObject(host, listName: "VULN_INFO_LIST")
            for info in host.child("VULN_INFO_LIST")?.children("VULN_INFO") ?? [] {
                let qid = info.text("QID")
                entries.append(Entry(canonical: ["host": hostJSON, "detection": info.json],
                                     details: qid.flatMap { glossary[$0] }, documentTime: documentTime, format: root.name))
            }
        }
        return entries
    }

    /// The host element as JSON without its (large) detection list.
    static func hostObject(_ host: QualysXML.Element, listName: String) -> JSON {
        var copy = host
        copy.children.removeAll { $0.name == listName }
        return copy.json
    }

    /// An element's text whether it came out as a string or as `{"#text": ..., "@id": ...}`.
    static func text(_ value: JSON?) -> String? {
        if let object = value?.objectValue { return FindingSupport.text(object["#text"]) }
        return FindingSupport.text(value)
    }

    static func event(from entry: Entry) -> Result<JSON, EntryProblem> {
        typealias F = FindingSupport
        let host = entry.canonical["host"]?.objectValue ?? [:]
        guard let detection = entry.canonical["detection"]?.objectValue else {
            return .failure(EntryProblem(code: NormalizeFailure.Code.invalidEntry, message: "the detection has no fields"))
        }
        guard let qid = text(detection["QID"]) else {
            return .failure(EntryProblem(code: NormalizeFailure.Code.missingField, message: "QID is missing"))
        }
        let details = entry.details?.objectValue ?? [:]

        // The detection's last sighting, else its first, else the host's last scan, else the
        // document's own time: each is a time the record states.
        var time: (millis: Int64, original: String)?
        let sources: [([String: JSON], [String])] = [
            (detection, ["LAST_FOUND_DATETIME", "LAST_FOUND", "LAST_TEST_DATETIME", "FIRST_FOUND_DATETIME", "FIRST_FOUND"]),
            (host, ["LAST_SCAN_DATETIME", "LAST_VM_SCANNED_DATE"]),
            (["document": entry.documentTime.map(JSON.string) ?? .null], ["document"]),
        ]
        search: for (object, fields) in sources {
            switch F.firstTime(object, fields) {
            case .success(let found):
                time = (found.millis, found.original)
                break search
            case .failure(.invalid(let field)):
                let name = field == "document" ? (entry.format == "ASSET_DATA_REPORT" ? "GENERATION_DATETIME" : "DATETIME") : field
                return .failure(EntryProblem(code: NormalizeFailure.Code.invalidTime, message: "\(name) is not a timestamp"))
            case .failure(.missing):
                continue
            }
        }
        guard let time else {
            return .failure(EntryProblem(code: NormalizeFailure.Code.invalidTime, message: "the detection, its host and the document carry no time"))
        }

        let type = text(detection["TYPE"])
        let level = text(detection["SEVERITY"]) ?? text(details["SEVERITY"])
        let severity: OCSFSeverity
        if let type, ["ig", "info"].contains(type.lowercased()) {
            severity = .informational
        } else {
            severity = switch level {
            case "1": .informational
            case "2": .low
            case "3": .medium
            case "4": .high
            case "5": .critical
            default: .unknown
            }
        }
        let sourceStatus = text(detection["STATUS"]) ?? text(detection["VULN_STATUS"])
        let ignored = text(detection["IS_IGNORED"]) == "1"
        let (status, activity): (F.Status, F.Activity) = if ignored {
            (.suppressed, .update)
        } else {
            switch sourceStatus?.lowercased() {
            case nil: (.unknown, .create)
            case "new": (.new, .create)
            case "active", "re-opened", "reopened": (.new, .update)
            case "fixed": (.resolved, .close)
            default: (.other, .update)
            }
        }

        var event = F.base(
            class: .vulnerabilityFinding, activity: activity, time: time.millis, severity: severity,
            status: status, sourceStatus: ignored ? "Ignored" : sourceStatus,
            uid: StableID.hash(bytes: entry.canonical.serialized()),
            product: "Qualys VM", vendor: "Qualys", originalTime: time.original
        )
        event.set("metadata.log_name", .string(entry.format))
        event.set("metadata.event_code", .string(qid))
        event.set("metadata.profiles", ["host"])

        let ip = text(host["IP"]) ?? text(host["IPV6"])
        let dns = text(host["DNS"]) ?? text(host["DNS_DATA"]?["FQDN"]) ?? text(host["DNS_DATA"]?["HOSTNAME"])
        let hostID = text(host["ID"])
        let hostKey = hostID ?? ip ?? dns ?? "unknown-host"
        var findingUID = "qid-\(qid)@\(hostKey)"
        if let port = text(detection["PORT"]) { findingUID += ":\(port)" }
        if let proto = text(detection["PROTOCOL"]) { findingUID += "/\(proto.lowercased())" }

        let title = text(details["TITLE"]) ?? "Qualys QID \(qid)"
        var info: [String: JSON] = ["uid": .string(text(detection["UNIQUE_VULN_ID"]) ?? findingUID), "title": .string(title)]
        info["desc"] = text(details["THREAT"]).map(JSON.string)
        if let type { info["types"] = [.string(type)] }
        let firstSeen = (detection["FIRST_FOUND_DATETIME"] ?? detection["FIRST_FOUND"]).flatMap(F.time)?.millis
        let lastSeen = (detection["LAST_FOUND_DATETIME"] ?? detection["LAST_FOUND"]).flatMap(F.time)?.millis
        info["first_seen_time"] = firstSeen.map(JSON.int)
        info["last_seen_time"] = lastSeen.map(JSON.int)
        event["finding_info"] = .object(info)

        var vulnerability: [String: JSON] = ["title": .string(title), "vendor_name": "Qualys"]
        vulnerability["desc"] = text(details["THREAT"]).map(JSON.string)
        vulnerability["severity"] = level.map(JSON.string)
        if let solution = text(details["SOLUTION"]) { vulnerability["remediation"] = ["desc": .string(solution)] }
        vulnerability["first_seen_time"] = firstSeen.map(JSON.int)
        vulnerability["last_seen_time"] = lastSeen.map(JSON.int)
        var scores: [JSON] = []
        for (container, field, version) in [("CVSS3_SCORE", "CVSS3_BASE", "3.x"), ("CVSS_SCORE", "CVSS_BASE", "2.0")] {
            if let parsed = text(details[container]?[field]).flatMap(cvss) {
                var score: [String: JSON] = ["base_score": .double(parsed.score), "version": .string(version == "3.x" ? "3.0" : version)]
                score["vector_string"] = parsed.vector.map(JSON.string)
                scores.append(.object(score))
            }
        }
        let cveEntries = F.list(details["CVE_ID_LIST"]?["CVE_ID"])
        var vulnerabilities: [JSON] = []
        for cve in cveEntries {
            guard let id = text(cve["ID"]) else { continue }
            var item = vulnerability
            var cveObject: [String: JSON] = ["uid": .string(id)]
            if !scores.isEmpty { cveObject["cvss"] = .array(scores) }
            item["cve"] = .object(cveObject)
            if let url = text(cve["URL"]) { item["references"] = [.string(url)] }
            vulnerabilities.append(.object(item))
        }
        if vulnerabilities.isEmpty { vulnerabilities = [.object(vulnerability)] }
        event["vulnerabilities"] = .array(vulnerabilities)

        var device: [String: JSON] = ["type_id": 0, "type": "Unknown"]
        if let ip, IPAddress.isLiteral(ip) { device["ip"] = .string(ip) }
        device["hostname"] = dns.map(JSON.string)
        device["name"] = text(host["NETBIOS"]).map(JSON.string)
        device["uid"] = hostID.map(JSON.string)
        event["device"] = .object(device)
        var resource: [String: JSON] = ["uid": .string(ip ?? dns ?? hostKey), "type": "Host"]
        resource["name"] = dns.map(JSON.string)
        event["resources"] = [.object(resource)]

        var unmapped: [String: JSON] = [:]
        unmapped["host"] = F.residue(host, mapped: mappedHostKeys)
        unmapped["detection"] = F.residue(detection, mapped: mappedDetectionKeys)
        // Without CVEs the scores have no OCSF home; they stay with the other QID details.
        let detailKeys = cveEntries.isEmpty ? mappedDetailKeys.subtracting(["CVSS_SCORE", "CVSS3_SCORE"]) : mappedDetailKeys
        unmapped["vuln_details"] = F.residue(details, mapped: detailKeys)
        if !unmapped.isEmpty { event["unmapped"] = .object(unmapped) }
        return .success(event)
    }

    /// `9.3 (AV:N/AC:M/Au:N/C:C/I:C/A:C)` → 9.3 and the vector.
    static func cvss(_ text: String) -> (score: Double, vector: String?)? {
        let parts = text.split(separator: " ", maxSplits: 1)
        guard let first = parts.first, let score = Double(first), score.isFinite else { return nil }
        var vector: String?
        if parts.count == 2 {
            let rest = FindingSupport.trim(parts[1])
            if rest.hasPrefix("("), rest.hasSuffix(")"), rest.count > 2 { vector = String(rest.dropFirst().dropLast()) }
        }
        return (score, vector)
    }
}
