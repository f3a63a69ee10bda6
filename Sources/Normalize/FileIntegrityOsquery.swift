import OCSF

/// osquery `file_events` results as the filesystem/TLS loggers write them: the event format
/// (one row in `columns`, `action` added/removed), the batch format (`diffResults.added` /
/// `removed`) and the snapshot format (`snapshot`).
enum FileIntegrityOsquery {
    /// osquery's file actions (inotify on Linux, FSEvents on macOS) to OCSF 1001 activities.
    static let activities: [String: Int64] = [
        "CREATED": 1, "ACCESSED": 2, "UPDATED": 3, "DELETED": 4, "MOVED_FROM": 5, "MOVED_TO": 5,
        "ATTRIBUTES_MODIFIED": 6, "OPENED": 14,
    ]

    /// Columns consumed by the mapping; the rest stay under `unmapped.columns`.
    static let mappedColumns: Set<String> = [
        "target_path", "action", "md5", "sha1", "sha256", "size", "uid", "inode", "mtime", "atime",
    ]

    /// Envelope keys consumed by the mapping.
    static let mappedEnvelope: Set<String> = ["hostIdentifier", "name", "columns", "diffResults", "snapshot"]

    /// One result row and whether osquery reported it as removed from the result set.
    struct Row {
        var columns: JSON
        var removed: Bool
    }

    /// The rows of an osquery result in any of its three formats; `nil` when none is present.
    static func rows(_ document: JSON) -> [Row]? {
        if let columns = document["columns"] {
            return [Row(columns: columns, removed: document["action"]?.stringValue == "removed")]
        }
        if let diff = document["diffResults"] {
            let added = (diff["added"]?.arrayValue ?? []).map { Row(columns: $0, removed: false) }
            let removed = (diff["removed"]?.arrayValue ?? []).map { Row(columns: $0, removed: true) }
            return added + removed
        }
        if let snapshot = document["snapshot"]?.arrayValue {
            return snapshot.map { Row(columns: $0, removed: false) }
        }
        return nil
    }

    /// An osquery result envelope (query `name`, `hostIdentifier`, and rows in some format).
    static func isOsqueryResult(_ document: JSON) -> Bool {
        guard document.objectValue != nil, document["name"]?.stringValue != nil,
              document["hostIdentifier"] != nil, document["columns"] != nil || document["diffResults"] != nil
                || document["snapshot"] != nil else { return false }
        return true
    }

    /// An osquery result whose first object row has `target_path`: the `file_events` table (and
    /// not `yara_events`, which shares `target_path` but carries `matches`).
    static func recognizes(_ document: JSON) -> Bool {
        guard isOsqueryResult(document), let rows = rows(document),
              let first = rows.first(where: { $0.columns.objectValue != nil })?.columns else { return false }
        return first["target_path"]?.stringValue != nil && first["matches"] == nil
    }

    static func normalize(_ document: JSON) -> NormalizeResult {
        var result = NormalizeResult(source: "fim")
        guard case .object(let envelope) = document, let rows = rows(document) else {
            result.failures.append(NormalizeFailure(code: NormalizeFailure.Code.unrecognizedFormat,
                                                    message: "osquery result has no columns, diffResults or snapshot"))
            return result
        }
        guard !rows.isEmpty else {
            // An empty batch or snapshot: a result set with no rows, nothing to map.
            result.skipped = 1
            return result
        }
        // One row in `columns` is the record itself; batch and snapshot rows are entries.
        let indexed = envelope["columns"] == nil
        for (index, row) in rows.enumerated() {
            if row.removed {
                // A row leaving an event table's result set is not file activity.
                result.skipped += 1
                continue
            }
            switch event(row.columns, envelope: envelope) {
            case .success(let mapped): result.events.append(mapped)
            case .failure(let problem):
                result.failures.append(indexed ? problem.failure(entryIndex: index, entryBytes: row.columns.serialized())
                                               : problem.failure())
            }
        }
        return result
    }

    static func event(_ row: JSON, envelope: [String: JSON]) -> Result<JSON, EntryProblem> {
        guard case .object(let columns) = row else {
            return .failure(EntryProblem(code: NormalizeFailure.Code.invalidEntry, message: "the result row is not a JSON object"))
        }
        guard let path = FileIntegrityFields.text(columns["target_path"]) else {
            return .failure(EntryProblem(code: NormalizeFailure.Code.missingField, message: "columns.target_path is missing or not a string"))
        }
        let time: (millis: Int64, original: String, field: String)
        switch eventTime(columns: columns, envelope: envelope) {
        case .success(let found): time = found
        case .failure(let problem): return .failure(problem)
        }
        let action = FileIntegrityFields.text(columns["action"])
        let activityID = action.map { activities[$0] ?? 99 } ?? 0
        let activityName = activityID == 99 ? action : nil

        let host = FileIntegrityFields.text(envelope["hostIdentifier"])
        // The same row gets the same uid in the event, batch and snapshot formats.
        let canonical = JSON.object(["hostIdentifier": host.map(JSON.string) ?? .null,
                                     "name": envelope["name"] ?? .null, "columns": row])
        let uid = StableID.hash(bytes: canonical.serialized())

        let hashes = ["md5", "sha1", "sha256"].compactMap { key in FileIntegrityFields.text(columns[key]).map { (key, $0) } }
        let file = FileIntegrityFields.file(
            path: path, typeID: path.hasSuffix("/") ? 2 : 0, hashes: hashes,
            size: FileIntegrityFields.integer(columns["size"]),
            ownerUID: FileIntegrityFields.text(columns["uid"]),
            modified: FileIntegrityFields.integer(columns["mtime"]).flatMap(FileIntegrityFields.secondsToMillis),
            accessed: FileIntegrityFields.integer(columns["atime"]).flatMap(FileIntegrityFields.secondsToMillis),
            inode: FileIntegrityFields.text(columns["inode"])
        )
        var event = FileIntegrityFields.event(
            activityID: activityID, activityName: activityName, time: time.millis, uid: uid,
            product: "osquery", vendor: "osquery", logName: FileIntegrityFields.text(envelope["name"]),
            originalTime: time.original, file: file, device: device(envelope)
        )
        if let action { event.set("metadata.event_code", .string(action)) }

        var unmapped = envelope.filter { !mappedEnvelope.contains($0.key) }
        if time.field != "columns.time" { unmapped[time.field] = nil }
        // osquery writes "" for a column it did not fill (hashes of a deleted file): nothing to keep.
        var restColumns = columns.filter { !(mappedColumns.contains($0.key) && ($0.value.stringValue == "" || FileIntegrityFields.text($0.value) != nil)) }
        if time.field == "columns.time" { restColumns["time"] = nil }
        if !restColumns.isEmpty { unmapped["columns"] = .object(restColumns) }
        if !unmapped.isEmpty { event["unmapped"] = .object(unmapped) }
        return .success(event)
    }

    /// The row's `time` column (when the file event happened, epoch seconds), else the envelope's
    /// `unixTime` (when the query ran), else `calendarTime`. A value present but unusable is an
    /// error: guessing could misplace the event in time.
    static func eventTime(columns: [String: JSON], envelope: [String: JSON]) -> Result<(millis: Int64, original: String, field: String), EntryProblem> {
        if let value = columns["time"], value != .null {
            guard let seconds = FileIntegrityFields.integer(value), seconds > 0,
                  let millis = FileIntegrityFields.secondsToMillis(seconds) else {
                return .failure(EntryProblem(code: NormalizeFailure.Code.invalidTime, message: "columns.time is not epoch seconds"))
            }
            return .success((millis, String(seconds), "columns.time"))
        }
        if let value = envelope["unixTime"], value != .null {
            guard let seconds = FileIntegrityFields.integer(value), seconds > 0,
                  let millis = FileIntegrityFields.secondsToMillis(seconds) else {
                return .failure(EntryProblem(code: NormalizeFailure.Code.invalidTime, message: "unixTime is not epoch seconds"))
            }
            return .success((millis, envelope["calendarTime"]?.stringValue ?? String(seconds), "unixTime"))
        }
        if let value = envelope["calendarTime"], value != .null {
            guard let text = value.stringValue, let millis = calendarTime(text) else {
                return .failure(EntryProblem(code: NormalizeFailure.Code.invalidTime, message: "calendarTime is not osquery's UTC time text"))
            }
            return .success((millis, text, "calendarTime"))
        }
        return .failure(EntryProblem(code: NormalizeFailure.Code.invalidTime, message: "columns.time, unixTime and calendarTime are missing"))
    }

    static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// osquery's `calendarTime`, `Wed Feb 12 21:38:11 2020 UTC` (always UTC).
    static func calendarTime(_ text: String) -> Int64? {
        let parts = text.split(separator: " ")
        guard parts.count == 6, parts[5] == "UTC", let month = months.firstIndex(of: String(parts[1])),
              let day = Int(parts[2]), (1...31).contains(day), parts[3].utf8.count == 8, parts[4].utf8.count == 4 else { return nil }
        func pad(_ value: Int) -> String { value < 10 ? "0\(value)" : String(value) }
        return Timestamp.parseISO8601("\(parts[4])-\(pad(month + 1))-\(pad(day))T\(parts[3])Z")
    }

    /// The host: `decorations.hostname` when the deployment adds it, else `hostIdentifier` unless
    /// it is a UUID (`--host_identifier=uuid|instance`), which goes to `uid`; an EC2 instance id in
    /// `decorations.instance_id` becomes `instance_uid` so enrichment can join the asset.
    static func device(_ envelope: [String: JSON]) -> [String: JSON] {
        var device: [String: JSON] = [:]
        let host = FileIntegrityFields.text(envelope["hostIdentifier"])
        let decorations = envelope["decorations"]
        if let name = FileIntegrityFields.text(decorations?["hostname"]) {
            device["hostname"] = .string(name)
        } else if let host, !looksLikeUUID(host) {
            device["hostname"] = .string(host)
        }
        if let host, looksLikeUUID(host) { device["uid"] = .string(host) }
        if let instance = FileIntegrityFields.text(decorations?["instance_id"]), instance.hasPrefix("i-") {
            device["instance_uid"] = .string(instance)
            device["type_id"] = 6
            device["type"] = "Virtual"
        } else if !device.isEmpty {
            device["type_id"] = 0
            device["type"] = "Unknown"
        }
        return device
    }

    /// 8-4-4-4-12 hex digits (upper or lower case; osquery also masks some with other letters).
    static func looksLikeUUID(_ text: String) -> Bool {
        let groups = text.split(separator: "-", omittingEmptySubsequences: false)
        return groups.map(\.count) == [8, 4, 4, 4, 12]
    }
}
