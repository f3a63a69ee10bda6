import OCSF

/// Wazuh (and OSSEC-derived) syscheck alerts in the manager's JSON alert format
/// (`alerts.json`): `rule.groups` contains `syscheck`, the change is in `syscheck`.
enum FileIntegrityWazuh {
    /// `syscheck.changed_attributes` values that mean the content changed; a `modified` event
    /// with only other attributes changed (permissions, owner, mtime, inode) is Set Attributes.
    static let contentAttributes: Set<String> = ["size", "md5", "sha1", "sha256"]

    /// `syscheck` keys consumed by the mapping; the rest stay under `unmapped.syscheck`.
    static let mappedSyscheck: Set<String> = [
        "path", "event", "md5_after", "sha1_after", "sha256_after", "size_after", "uid_after",
        "uname_after", "inode_after", "mtime_after", "diff",
    ]

    static func recognizes(_ document: JSON) -> Bool {
        guard document["syscheck"]?.objectValue != nil,
              let groups = document["rule"]?["groups"]?.arrayValue else { return false }
        return groups.contains { $0.stringValue == "syscheck" }
    }

    static func normalize(_ document: JSON) -> NormalizeResult {
        var result = NormalizeResult(source: "fim")
        guard case .object(let alert) = document, case .object(let syscheck)? = alert["syscheck"] else {
            result.failures.append(NormalizeFailure(code: NormalizeFailure.Code.missingField, message: "syscheck is missing or not an object"))
            return result
        }
        guard let path = FileIntegrityFields.text(syscheck["path"]) else {
            result.failures.append(NormalizeFailure(code: NormalizeFailure.Code.missingField, message: "syscheck.path is missing or not a string"))
            return result
        }
        let groups = alert["rule"]?["groups"]?.arrayValue?.compactMap(\.stringValue) ?? []
        if path.hasPrefix("HKEY_") || groups.contains("syscheck_registry") {
            // Windows registry monitoring: not file activity (OCSF keeps registry events in its Windows extension).
            result.skipped = 1
            return result
        }
        var time: (millis: Int64, original: String, field: String)?
        for field in ["timestamp", "@timestamp"] {
            guard let value = alert[field], value != .null else { continue }
            guard let original = value.stringValue, let millis = Timestamp.parseISO8601(original) else {
                result.failures.append(NormalizeFailure(code: NormalizeFailure.Code.invalidTime, message: "\(field) is not an RFC 3339 timestamp"))
                return result
            }
            time = (millis, original, field)
            break
        }
        guard let time else {
            result.failures.append(NormalizeFailure(code: NormalizeFailure.Code.invalidTime, message: "timestamp is missing"))
            return result
        }

        let change = FileIntegrityFields.text(syscheck["event"])
        let changed = Set(syscheck["changed_attributes"]?.arrayValue?.compactMap(\.stringValue) ?? [])
        let activityID: Int64
        switch change {
        case "added": activityID = 1
        case "deleted": activityID = 4
        case "modified": activityID = !changed.isEmpty && changed.isDisjoint(with: contentAttributes) ? 6 : 3
        case nil: activityID = 0
        default: activityID = 99
        }

        // Deleted files carry their last known attributes, in `_after` (4.x) or `_before`.
        func attribute(_ name: String) -> JSON? { syscheck["\(name)_after"] ?? syscheck["\(name)_before"] }
        let hashes = ["md5", "sha1", "sha256"].compactMap { key in FileIntegrityFields.text(attribute(key)).map { (key, $0) } }
        let file = FileIntegrityFields.file(
            path: path, typeID: 1, hashes: hashes,
            size: FileIntegrityFields.integer(attribute("size")),
            ownerUID: FileIntegrityFields.text(attribute("uid")),
            ownerName: FileIntegrityFields.text(attribute("uname")),
            modified: modifiedTime(attribute("mtime")),
            inode: FileIntegrityFields.text(attribute("inode"))
        )

        let manager = FileIntegrityFields.text(alert["manager"]?["name"])
        // Alert ids (`<epoch>.<offset in alerts.json>`) are unique per manager only.
        let uid = FileIntegrityFields.text(alert["id"]).map { id in manager.map { "\($0)/\(id)" } ?? id }
            ?? StableID.hash(bytes: document.serialized())
        var event = FileIntegrityFields.event(
            activityID: activityID, activityName: activityID == 99 ? change : nil, time: time.millis, uid: uid,
            product: "Wazuh", vendor: "Wazuh", logName: FileIntegrityFields.text(alert["location"]),
            originalTime: time.original, file: file, device: device(alert["agent"])
        )
        event.set("metadata.event_code", FileIntegrityFields.text(alert["rule"]?["id"]).map(JSON.string))
        if let diff = FileIntegrityFields.text(syscheck["diff"]) { event["file_diff"] = .string(diff) }
        let actor = actor(syscheck["audit"])
        if !actor.isEmpty { event["actor"] = .object(actor) }
        if let description = FileIntegrityFields.text(alert["rule"]?["description"]) { event["message"] = .string(description) }

        var unmapped = alert.filter { $0.key != "syscheck" && $0.key != "id" && $0.key != time.field }
        var restSyscheck = syscheck.filter { !(mappedSyscheck.contains($0.key) && FileIntegrityFields.text($0.value) != nil) }
        if FileIntegrityFields.text(syscheck["mtime_after"]) != nil, file["modified_time"] == nil {
            restSyscheck["mtime_after"] = syscheck["mtime_after"]  // kept when it could not be read as a time
        }
        if !restSyscheck.isEmpty { unmapped["syscheck"] = .object(restSyscheck) }
        if case .object(var agent)? = alert["agent"] {
            agent["name"] = nil
            if FileIntegrityFields.text(agent["ip"]).map(IPAddress.isLiteral) == true { agent["ip"] = nil }
            unmapped["agent"] = agent.isEmpty ? nil : .object(agent)
        }
        if !unmapped.isEmpty { event["unmapped"] = .object(unmapped) }
        result.events.append(event)
        return result
    }

    /// `mtime_after`: epoch seconds (3.x and 4.x alerts) or an RFC 3339 text with a zone;
    /// zone-less texts are left out rather than guessed.
    static func modifiedTime(_ value: JSON?) -> Int64? {
        if let seconds = FileIntegrityFields.integer(value) { return FileIntegrityFields.secondsToMillis(seconds) }
        guard let text = value?.stringValue, text.hasSuffix("Z") || text.dropFirst(19).contains(where: { $0 == "+" || $0 == "-" }) else {
            return nil
        }
        return Timestamp.parseISO8601(text)
    }

    /// The agent's host: `agent.name` as hostname, `agent.ip` when it is an address (Wazuh writes
    /// `any` for agents registered without one).
    static func device(_ agent: JSON?) -> [String: JSON] {
        var device: [String: JSON] = [:]
        device["hostname"] = FileIntegrityFields.text(agent?["name"]).map(JSON.string)
        if let ip = FileIntegrityFields.text(agent?["ip"]), IPAddress.isLiteral(ip) { device["ip"] = .string(ip) }
        if !device.isEmpty {
            device["type_id"] = 0
            device["type"] = "Unknown"
        }
        return device
    }

    /// Who-data (`syscheck.audit`, realtime auditing): the user and process that made the change.
    static func actor(_ audit: JSON?) -> [String: JSON] {
        guard let audit else { return [:] }
        var actor: [String: JSON] = [:]
        var user: [String: JSON] = [:]
        user["uid"] = FileIntegrityFields.text(audit["user"]?["id"]).map(JSON.string)
        user["name"] = FileIntegrityFields.text(audit["user"]?["name"]).map(JSON.string)
        if !user.isEmpty { actor["user"] = .object(user) }
        var process: [String: JSON] = [:]
        process["pid"] = FileIntegrityFields.integer(audit["process"]?["id"]).map(JSON.int)
        if let executable = FileIntegrityFields.text(audit["process"]?["name"]) {
            let file = FileIntegrityFields.file(path: executable, typeID: 1)
            process["name"] = file["name"]
            process["file"] = .object(file)
        }
        if let ppid = FileIntegrityFields.integer(audit["process"]?["ppid"]) {
            process["parent_process"] = .object(["pid": .int(ppid)])
        }
        if !process.isEmpty { actor["process"] = .object(process) }
        return actor
    }
}
