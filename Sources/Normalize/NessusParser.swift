import OCSF

/// Tenable CSV exports: Nessus (`Plugin ID, CVE, CVSS v2.0 Base Score, Risk, Host, ...`),
/// Nessus WAS, Tenable.sc (`Plugin, Plugin Name, Family, Severity, IP Address, ...`), Tenable.io
/// (`... Host Start, Host End, First Found, Last Found`) and Tenable Vulnerability Management
/// (`definition.id;asset.display_ipv4_address;...`, `;`-separated). Columns are found by header
/// name, case-insensitively, under every known spelling. Each data row becomes one OCSF 1.3
/// Vulnerability Finding (2002), informational rows (Risk None) included; all-empty rows are
/// skipped. docs/sources.md has the field table.
public struct NessusParser: SourceParser {
    /// The scan time (epoch ms) for exports whose rows carry no observation time (the plain
    /// Nessus layouts); `nil` leaves such rows at time 0 with `unmapped.time_source` "none".
    public let scanTime: Int64?

    /// A Nessus parser; `scanTime` dates rows that carry no time of their own.
    public init(scanTime: Int64? = nil) {
        self.scanTime = scanTime
    }

    /// `nessus`.
    public var sourceName: String { "nessus" }

    /// CSV text, not JSON.
    public var readsJSON: Bool { false }

    /// The header row names a plugin column, a host column and a severity column.
    public func recognizes(_ input: SourceInput) -> Bool {
        guard let first = input.raw.first(where: { $0 != 0xEF && $0 != 0xBB && $0 != 0xBF }),
              first != UInt8(ascii: "{"), first != UInt8(ascii: "["), first != UInt8(ascii: "<"),
              let header = NessusCSV(bytes: input.raw).header() else { return false }
        return NessusColumns(header: header).isUsable
    }

    public func normalize(_ input: SourceInput) -> NormalizeResult {
        var result = NormalizeResult(source: sourceName)
        let csv = NessusCSV(bytes: input.raw)
        var records = csv.records()
        guard !records.isEmpty else {
            result.failures.append(NormalizeFailure(code: NormalizeFailure.Code.unrecognizedFormat, message: "the CSV is empty"))
            return result
        }
        let headerRecord = records.removeFirst()
        let columns = NessusColumns(header: headerRecord.fields)
        guard !headerRecord.unterminated else {
            result.failures.append(NormalizeFailure(
                code: NormalizeFailure.Code.unrecognizedFormat, message: "the header row ends inside a quoted field"))
            return result
        }
        guard columns.isUsable else {
            result.failures.append(NormalizeFailure(
                code: NormalizeFailure.Code.unrecognizedFormat,
                message: "the header row has no plugin, host and severity columns"))
            return result
        }
        let headerBytes = Array(input.raw[headerRecord.range])
        for (index, record) in records.enumerated() {
            if record.fields.allSatisfy({ FindingSupport.trim($0).isEmpty }) && !record.unterminated {
                result.skipped += 1
                continue
            }
            let rowBytes = input.raw[record.range]
            // A row without a time of its own is dated by the configured scan time, else by when the
            // export was shipped (the record time): both are fixed, so replays agree.
            switch NessusMapping.event(record: record, rowBytes: rowBytes, columns: columns, scanTime: scanTime ?? input.recordTime) {
            case .success(let event): result.events.append(event)
            case .failure(let problem):
                // The header travels with the row so the dead-lettered entry is a CSV of its own.
                result.failures.append(problem.failure(
                    entryIndex: index, entryBytes: headerBytes + [NessusCSV.lineFeed] + Array(rowBytes)))
            }
        }
        return result
    }
}

/// Where each known column is, by lower-cased header name.
struct NessusColumns {
    let header: [String]
    let index: [String: Int]

    init(header: [String]) {
        self.header = header
        var index: [String: Int] = [:]
        for (position, name) in header.enumerated() {
            let key = FindingSupport.trim(name).lowercased()
            if !key.isEmpty, index[key] == nil { index[key] = position }
        }
        self.index = index
    }

    // Spellings per meaning, most specific first.
    static let pluginID = ["plugin id", "plugin", "definition.id", "pluginid"]
    static let name = ["name", "plugin name", "definition.name"]
    static let host = ["host", "ip address", "asset.display_ipv4_address", "asset.display_fqdn", "asset.host_name",
                       "asset.name", "fqdn", "dns name", "asset.display_ipv6_address"]
    static let ip = ["ip address", "asset.display_ipv4_address", "asset.display_ipv6_address", "ip"]
    static let hostname = ["fqdn", "dns name", "asset.display_fqdn", "asset.host_name"]
    static let netbios = ["netbios name", "netbios", "asset.netbios_name"]
    static let mac = ["mac address", "asset.display_mac_address"]
    static let severity = ["risk", "severity", "risk factor", "definition.severity"]
    static let port = ["port"]
    static let protocolName = ["protocol"]
    static let cve = ["cve", "definition.cve"]
    static let cvss2 = ["cvss v2.0 base score", "cvss v2 base score", "cvss", "cvss base score", "definition.cvss2.base_score"]
    static let cvss2Vector = ["cvss v2 vector", "cvss vector", "definition.cvss2.base_vector"]
    static let cvss3 = ["cvss v3.0 base score", "cvss v3 base score", "cvssv3", "cvss3 base score", "definition.cvss3.base_score"]
    static let cvss3Vector = ["cvss v3 vector", "cvss3 vector", "definition.cvss3.base_vector"]
    static let cvss4 = ["cvss v4.0 base score", "cvss v4 base score", "definition.cvss4.base_score"]
    static let synopsis = ["synopsis", "definition.synopsis"]
    static let description = ["description", "definition.description"]
    static let solution = ["solution", "steps to remediate", "definition.solution"]
    static let seeAlso = ["see also", "definition.see_also"]
    static let output = ["plugin output", "plugin text", "output"]
    static let family = ["family", "plugin family", "definition.family"]
    static let lastSeen = ["last observed", "last found", "last_seen", "last seen"]
    static let hostEnd = ["host end"]
    static let firstSeen = ["first discovered", "first found", "first_observed", "first seen"]
    static let state = ["vulnerability state", "state"]
    static let exploit = ["exploit?", "exploit available", "definition.exploitability_ease"]
    static let findingID = ["id"]

    /// Whether the header names a plugin, a host and a severity column.
    var isUsable: Bool {
        column(Self.pluginID) != nil && column(Self.host) != nil && column(Self.severity) != nil
    }

    /// The position of the first spelling present.
    func column(_ spellings: [String]) -> Int? {
        for spelling in spellings { if let position = index[spelling] { return position } }
        return nil
    }
}

/// The mapping of one Tenable CSV row to OCSF 1.3 Vulnerability Finding (2002).
enum NessusMapping {
    static func event(record: NessusCSV.Record, rowBytes: ArraySlice<UInt8>, columns: NessusColumns, scanTime: Int64?) -> Result<JSON, EntryProblem> {
        typealias F = FindingSupport
        typealias C = NessusColumns
        if record.unterminated {
            return .failure(EntryProblem(code: NormalizeFailure.Code.invalidEntry, message: "the row ends inside a quoted field"))
        }
        let fields = record.fields
        var used: Set<Int> = []
        /// The position and trimmed text of the first spelling present with a non-empty value.
        func present(_ spellings: [String]) -> (position: Int, text: String)? {
            for spelling in spellings {
                guard let position = columns.index[spelling], position < fields.count else { continue }
                let text = F.trim(fields[position])
                if !text.isEmpty { return (position, text) }
            }
            return nil
        }
        /// The value of the first spelling present; marks its column as carried unless told not to.
        func value(_ spellings: [String], consume: Bool = true) -> String? {
            guard let found = present(spellings) else { return nil }
            if consume { used.insert(found.position) }
            return found.text
        }

        guard let plugin = value(C.pluginID) else {
            return .failure(EntryProblem(code: NormalizeFailure.Code.missingField, message: "Plugin ID is missing"))
        }
        guard let host = value(C.host, consume: false) else {
            return .failure(EntryProblem(code: NormalizeFailure.Code.missingField, message: "Host is missing"))
        }

        // Time: the row's last observation, else the host scan end, else its first observation,
        // else the configured scan time, else 0 with the gap made visible in unmapped.time_source.
        var found: (millis: Int64, original: String?, source: String)?
        for spellings in [C.lastSeen, C.hostEnd, C.firstSeen] {
            guard let (position, text) = present(spellings) else { continue }
            let column = F.trim(columns.header[position])
            guard let millis = F.parseTime(text) else {
                return .failure(EntryProblem(code: NormalizeFailure.Code.invalidTime, message: "\(column) is not a timestamp"))
            }
            used.insert(position)
            found = (millis, text, column)
            break
        }
        let eventTime: (millis: Int64, original: String?, source: String)
        let uid: String
        if let found {
            (eventTime, uid) = (found, StableID.hash(bytes: rowBytes))
        } else if let scanTime {
            // The same row in two scans is two observations: the scan time is part of the uid.
            (eventTime, uid) = ((scanTime, nil, "scan_time"), StableID.hash([String(scanTime), String(decoding: rowBytes, as: UTF8.self)]))
        } else {
            (eventTime, uid) = ((0, nil, "none"), StableID.hash(bytes: rowBytes))
        }

        let severityText = value(C.severity)
        let severity = severityText.flatMap(severity(_:)) ?? .unknown
        let stateText = value(C.state)
        let (status, activity): (F.Status, F.Activity) = switch stateText?.lowercased() {
        case nil, "active", "new", "open": (.new, .create)
        case "resurfaced", "reopened", "re-opened": (.new, .update)
        case "fixed", "resolved": (.resolved, .close)
        default: (.other, .update)
        }

        var event = F.base(
            class: .vulnerabilityFinding, activity: activity, time: eventTime.millis, severity: severity,
            status: status, sourceStatus: stateText, uid: uid, product: "Nessus", vendor: "Tenable",
            originalTime: eventTime.original
        )
        event.set("metadata.event_code", .string(plugin))
        event.set("metadata.profiles", ["host"])

        let port = value(C.port, consume: false)
        let proto = value(C.protocolName, consume: false)
        var findingUID = "plugin-\(plugin)@\(host)"
        if let port, port != "0" { findingUID += ":\(port)" }
        if let proto { findingUID += "/\(proto.lowercased())" }
        let name = value(C.name)
        var info: [String: JSON] = ["uid": .string(value(C.findingID) ?? findingUID)]
        info["title"] = .string(name ?? "Plugin \(plugin)")
        info["desc"] = (value(C.synopsis) ?? value(C.description, consume: false)).map(JSON.string)
        if let family = value(C.family) { info["types"] = [.string(family)] }
        // Observation times are carried by first_seen_time / last_seen_time when they parse.
        var firstSeen: Int64?, lastSeen: Int64?
        if let (position, text) = present(C.firstSeen), let millis = F.parseTime(text) { firstSeen = millis; used.insert(position) }
        if let (position, text) = present(C.lastSeen), let millis = F.parseTime(text) { lastSeen = millis; used.insert(position) }
        info["first_seen_time"] = firstSeen.map(JSON.int)
        info["last_seen_time"] = lastSeen.map(JSON.int)
        event["finding_info"] = .object(info)

        var scores: [JSON] = []
        for (base, vector, version) in [(C.cvss4, [String](), "4.0"), (C.cvss3, C.cvss3Vector, "3.x"), (C.cvss2, C.cvss2Vector, "2.0")] {
            guard let text = value(base, consume: false), let score = Double(text), score.isFinite else { continue }
            var cvss: [String: JSON] = ["base_score": .double(score)]
            let vectorText = value(vector, consume: false)
            cvss["vector_string"] = vectorText.map(JSON.string)
            cvss["version"] = .string(cvssVersion(vectorText, fallback: version))
            scores.append(.object(cvss))
        }
        let cves = (value(C.cve) ?? "").split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\n" || $0 == "\r" || $0 == ";" })
            .map(String.init).filter { !$0.isEmpty }
        var vulnerability: [String: JSON] = [:]
        vulnerability["title"] = info["title"]
        vulnerability["desc"] = value(C.description).map(JSON.string)
        vulnerability["severity"] = severityText.map(JSON.string)
        vulnerability["vendor_name"] = "Tenable"
        if let solution = value(C.solution) { vulnerability["remediation"] = ["desc": .string(solution)] }
        let references = (value(C.seeAlso) ?? "").split(whereSeparator: { $0 == "\n" || $0 == "\r" || $0 == " " }).map(String.init)
        if !references.isEmpty { vulnerability["references"] = .array(references.map(JSON.string)) }
        if let exploit = value(C.exploit, consume: false).flatMap({ F.yesNo(.string($0)) }) {
            vulnerability["is_exploit_available"] = .bool(exploit)
            if let position = columns.column(C.exploit) { used.insert(position) }
        }
        vulnerability["first_seen_time"] = firstSeen.map(JSON.int)
        vulnerability["last_seen_time"] = lastSeen.map(JSON.int)
        var vulnerabilities: [JSON] = []
        if cves.isEmpty {
            vulnerabilities = [.object(vulnerability)]
        } else {
            // One vulnerability per CVE, each with the plugin's scores (they rate the plugin).
            for cve in cves {
                var item = vulnerability
                var cveObject: [String: JSON] = ["uid": .string(cve)]
                if !scores.isEmpty { cveObject["cvss"] = .array(scores) }
                item["cve"] = .object(cveObject)
                vulnerabilities.append(.object(item))
            }
            // Scores now live in cve.cvss; without a CVE they have no OCSF home and stay unmapped.
            for spellings in [C.cvss4, C.cvss3, C.cvss3Vector, C.cvss2, C.cvss2Vector] {
                if let position = columns.column(spellings) { used.insert(position) }
            }
        }
        event["vulnerabilities"] = .array(vulnerabilities)

        var device: [String: JSON] = ["type_id": 0, "type": "Unknown"]
        let ip = value(C.ip) ?? (IPAddress.isLiteral(host) ? host : nil)
        let hostname = value(C.hostname) ?? (IPAddress.isLiteral(host) ? nil : host)
        if let ip, IPAddress.isLiteral(ip) { device["ip"] = .string(ip) }
        if let hostname { device["hostname"] = .string(hostname) }
        device["name"] = value(C.netbios).map(JSON.string)
        device["mac"] = value(C.mac).map(JSON.string)
        event["device"] = .object(device)
        var resource: [String: JSON] = ["uid": .string(host), "type": "Host"]
        resource["name"] = hostname.map(JSON.string)
        event["resources"] = [.object(resource)]
        if let position = columns.column(C.host) { used.insert(position) }

        // Every other non-empty column, under its header name (port and protocol included).
        var unmapped: JSON = ["time_source": .string(eventTime.source)]
        for (position, field) in fields.enumerated() where !used.contains(position) {
            guard !F.trim(field).isEmpty else { continue }
            let name = position < columns.header.count ? F.trim(columns.header[position]) : ""
            setUnmapped(&unmapped, column: name.isEmpty ? "column_\(position + 1)" : name, .string(field))
        }
        event["unmapped"] = unmapped
        return .success(event)
    }

    /// Stores a column so dotted paths reach it: the Tenable VM export's flattened names
    /// (`asset.id`, `definition.cvss3.base_vector`) nest back into objects; other names keep
    /// their spelling with `.` written `_` (`CVSS v2.0 Base Score` → `CVSS v2_0 Base Score`).
    static func setUnmapped(_ unmapped: inout JSON, column: String, _ value: JSON) {
        let flat = column.replacingDots
        guard !column.contains(" "), column.contains("."),
              !column.split(separator: ".", omittingEmptySubsequences: false).contains(where: \.isEmpty) else {
            unmapped[flat] = value
            return
        }
        // Nest only when no prefix already holds a plain value (which nesting would overwrite).
        var prefix = ""
        for part in column.split(separator: ".").dropLast() {
            prefix = prefix.isEmpty ? String(part) : prefix + "." + part
            if let existing = unmapped.value(at: prefix), existing.objectValue == nil {
                unmapped[flat] = value
                return
            }
        }
        if unmapped.value(at: column) != nil { unmapped[flat] = value; return }
        unmapped.set(column, value)
    }

    /// Risk / Severity: None, Info, Low, Medium, High, Critical, or Tenable's 0-4 numbers.
    static func severity(_ text: String) -> OCSFSeverity? {
        switch text {
        case "0": .informational
        case "1": .low
        case "2": .medium
        case "3": .high
        case "4": .critical
        default: FindingSupport.severity(label: text)
        }
    }

    /// The CVSS version a vector names (`CVSS:3.1/...` → 3.1), else the column's version.
    static func cvssVersion(_ vector: String?, fallback: String) -> String {
        guard let vector, vector.hasPrefix("CVSS:") else { return fallback == "3.x" ? "3.0" : fallback }
        let version = vector.dropFirst(5).prefix(while: { $0 != "/" })
        return version.isEmpty ? fallback : String(version)
    }
}

extension String {
    /// The text with every `.` written `_`, so a dotted-path lookup cannot split it.
    fileprivate var replacingDots: String {
        String(map { $0 == "." ? "_" : $0 })
    }
}
