import OCSF

/// Google Cloud Audit Logs: `LogEntry` objects whose `protoPayload` is an `AuditLog` (Admin
/// Activity, Data Access, System Event and Policy Denied logs), one entry, a `{"entries":[...]}`
/// page of the Logging API, a JSON array (`gcloud logging read --format=json`), or newline-
/// delimited entries (sink exports). All become OCSF API Activity 6003; the mapping is in
/// `GCPAuditMapping` and documented in docs/sources.md.
public struct GCPAuditParser: JSONSourceParser {
    /// A Cloud Audit Logs parser; it has no configuration.
    public init() {}

    /// `gcp-audit`.
    public var sourceName: String { "gcp-audit" }

    /// An `AuditLog` payload type, or a `cloudaudit.googleapis.com` log name. Other Cloud
    /// Logging entries (`textPayload`, `jsonPayload`) are not claimed.
    public func recognizes(_ document: JSON) -> Bool {
        return GCPAuditMapping.form(of: document).isRecognized(by: GCPAuditMapping.looksLikeEntry)
    }

    /// Also recognizes newline-delimited entries, which do not parse as one JSON document.
    public func recognizes(_ input: SourceInput) -> Bool {
        switch input.json() {
        case .success(let document): return recognizes(document)
        case .failure:
            guard let first = GCPAuditMapping.jsonLines(input.raw)?.first,
                  let entry = try? JSON.parse(first) else { return false }
            return GCPAuditMapping.looksLikeEntry(entry)
        }
    }

    /// Normalizes one document, or, when the bytes are several JSON lines, each line as an entry
    /// (its index counts non-blank lines); a line that is not JSON fails alone.
    public func normalize(_ input: SourceInput) -> NormalizeResult {
        switch input.json() {
        case .success(let document):
            return normalize(document, raw: input.raw)
        case .failure(let error):
            guard let lines = GCPAuditMapping.jsonLines(input.raw) else {
                return NormalizeResult(failures: [NormalizeFailure(code: NormalizeFailure.Code.invalidJSON, message: error.description)],
                                       source: sourceName)
            }
            var result = NormalizeResult(source: sourceName)
            for (index, line) in lines.enumerated() {
                let entry: JSON
                do { entry = try JSON.parse(line) } catch {
                    result.failures.append(NormalizeFailure(code: NormalizeFailure.Code.invalidJSON, message: error.description,
                                                            entryIndex: index, entryBytes: line))
                    continue
                }
                result.append(GCPAuditMapping.event(from: entry), index: index, entry: entry)
            }
            return result
        }
    }

    /// Maps every entry independently: a bad entry becomes a failure carrying its index and
    /// bytes, and its siblings still become events.
    public func normalize(_ document: JSON, raw: [UInt8]) -> NormalizeResult {
        GCPAuditMapping.form(of: document).normalize(source: sourceName, map: GCPAuditMapping.event(from:))
    }

}

/// The mapping of one Cloud Audit Logs entry to OCSF 1.3 API Activity. docs/sources.md has the
/// field table; keep them in step.
enum GCPAuditMapping {
    typealias Form = EntryDocument

    static let auditLogType = "type.googleapis.com/google.cloud.audit.AuditLog"

    /// API Activity's activity from the first word of the method's last component
    /// (`v1.compute.instances.insert` → `insert`, `google.iam.admin.v1.CreateServiceAccountKey`
    /// → `create`), compared lower-cased.
    static let verbs: [(activity: Int64, name: String, words: Set<String>)] = [
        (1, "Create", ["create", "insert", "import"]),
        (2, "Read", ["get", "list", "aggregated", "read", "search", "query", "lookup", "access", "describe"]),
        (3, "Update", ["update", "patch", "set", "modify", "enable", "disable", "start", "stop", "reset",
                       "attach", "add", "move", "resize", "undelete", "replace"]),
        (4, "Delete", ["delete", "remove", "destroy", "detach", "revoke", "purge"]),
    ]

    /// gRPC status code names (google.rpc.Code), for `status_detail`.
    static let grpcCodes = [
        "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
        "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
        "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
    ]

    /// LogEntry keys consumed by the mapping; `insertId`, `resource`, `receiveTimestamp`,
    /// `operation`, `labels`, ... stay in `unmapped`.
    static let mappedKeys: Set<String> = ["logName", "timestamp", "severity"]
    /// AuditLog keys consumed; the rest of `protoPayload` stays under `unmapped.protoPayload`.
    static let mappedPayloadKeys: Set<String> = ["@type", "serviceName", "methodName", "resourceName", "status"]

    static func form(of document: JSON) -> Form {
        switch document {
        case .array(let entries):
            return .entries(entries)
        case .object(let members):
            if let container = members["entries"] {
                guard case .array(let entries) = container else { return .unrecognized("entries is not an array") }
                return .entries(entries)
            }
            return .single(document)
        default:
            return .unrecognized("a Cloud Audit Logs document must be a JSON object or array")
        }
    }

    static func looksLikeEntry(_ value: JSON) -> Bool {
        guard case .object(let fields) = value else { return false }
        if fields["protoPayload"]?["@type"]?.stringValue == auditLogType { return true }
        return fields["logName"]?.stringValue?.contains("cloudaudit.googleapis.com") ?? false
    }

    /// The non-blank lines of a record when it is newline-delimited JSON: at least two lines,
    /// starting with `{`, one of which parses as an object. `nil` otherwise (a truncated or
    /// pretty-printed document stays one invalid record).
    static func jsonLines(_ raw: [UInt8]) -> [[UInt8]]? {
        guard let start = raw.firstIndex(where: { !isSpace($0) }), raw[start] == UInt8(ascii: "{") else { return nil }
        let lines = raw.split(separator: UInt8(ascii: "\n")).map { line -> [UInt8] in
            var bytes = Array(line)
            while let last = bytes.last, isSpace(last) { bytes.removeLast() }
            return bytes
        }.filter { line in line.contains { !isSpace($0) } }
        guard lines.count >= 2 else { return nil }
        guard lines.contains(where: { (try? JSON.parse($0))?.objectValue != nil }) else { return nil }
        return lines
    }

    private static func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D }

    static func event(from entry: JSON) -> Result<JSON, EntryProblem> {
        guard case .object(let fields) = entry else {
            return .failure(EntryProblem(code: NormalizeFailure.Code.invalidEntry, message: "the entry is not a JSON object"))
        }
        guard case .object(let payload) = fields["protoPayload"] else {
            return .failure(EntryProblem(code: NormalizeFailure.Code.missingField, message: "protoPayload is missing or not an object"))
        }
        guard let method = text(payload["methodName"]) else {
            return .failure(EntryProblem(code: NormalizeFailure.Code.missingField, message: "protoPayload.methodName is missing or not a string"))
        }
        guard let timeValue = fields["timestamp"] else {
            return .failure(EntryProblem(code: NormalizeFailure.Code.invalidTime, message: "timestamp is missing"))
        }
        guard let originalTime = timeValue.stringValue, let millis = Timestamp.parseISO8601(originalTime) else {
            return .failure(EntryProblem(code: NormalizeFailure.Code.invalidTime, message: "timestamp is not an RFC 3339 timestamp"))
        }

        var unmapped = fields.filter { !(mappedKeys.contains($0.key) && text($0.value) != nil) }
        unmapped["timestamp"] = nil
        var payloadRest = payload.filter { !(mappedPayloadKeys.contains($0.key) && $0.value != .null) }
        let logName = text(fields["logName"])

        // Absent status, `{}` and code 0 all mean OK; a status of another shape is Unknown.
        let statusCode: Int64?
        switch payload["status"] {
        case nil, .null?: statusCode = 0
        case .object(let members)?: statusCode = members["code"] == nil ? 0 : members["code"]?.intValue
        default: statusCode = nil
        }
        let statusMessage = text(payload["status"]?["message"])
        let status: OCSFStatus = statusCode.map { $0 == 0 ? .success : .failure } ?? .unknown
        // A failed status stays in `unmapped` too: its `details` can carry the violated policy.
        if statusCode != 0 { payloadRest["status"] = payload["status"] }

        let uid: String
        if let insertID = text(fields["insertId"]) {
            // insertId is unique within a log, not across logs or projects: Logging itself
            // deduplicates on the log name and insertId together.
            uid = StableID.hash([logName ?? "", insertID])
        } else {
            uid = StableID.hash(bytes: entry.serialized())
        }

        let (activityID, activityName) = activity(for: method)
        var event = OCSFEvent.base(
            class: .apiActivity, activityID: activityID, activityName: activityName, time: millis,
            severity: severity(text(fields["severity"])), status: status, uid: uid,
            product: "Cloud Audit Logs", vendor: "Google", logName: logName, originalTime: originalTime
        )
        event.set("metadata.event_code", .string(method))
        event.set("metadata.profiles", ["cloud"])
        if let statusCode, status == .failure {
            event["status_code"] = .string(String(statusCode))
            event["status_detail"] = .string(grpcName(statusCode))
            if let statusMessage { event["message"] = .string(statusMessage) }
        }

        // actor.user from authenticationInfo; its other keys (delegation chain, ...) stay unmapped.
        let authentication = payload["authenticationInfo"]?.objectValue ?? [:]
        var user: [String: JSON] = [:]
        if let email = text(authentication["principalEmail"]) {
            user["name"] = .string(email)
            if email.contains("@") { user["email_addr"] = .string(email) }
            if email.hasSuffix(".gserviceaccount.com") {
                user["type"] = "Service Account"
                user["type_id"] = 99
            } else if email.contains("@") {
                user["type"] = "User"
                user["type_id"] = 1
            }
        }
        user["uid"] = text(authentication["principalSubject"]).map(JSON.string)
        user["credential_uid"] = text(authentication["serviceAccountKeyName"]).map(JSON.string)
        if !user.isEmpty { event["actor"] = .object(["user": .object(user)]) }
        if payload["authenticationInfo"]?.objectValue != nil {
            let rest = authentication.filter { !["principalEmail", "principalSubject", "serviceAccountKeyName"].contains($0.key) }
            payloadRest["authenticationInfo"] = rest.isEmpty ? nil : .object(rest)
        }

        let requestMetadata = payload["requestMetadata"]?.objectValue ?? [:]
        if let caller = text(requestMetadata["callerIp"]) { event["src_endpoint"] = AzureActivityMapping.endpoint(caller) }
        if let agent = text(requestMetadata["callerSuppliedUserAgent"]) {
            event["http_request"] = .object(["user_agent": .string(agent)])
        }
        if payload["requestMetadata"]?.objectValue != nil {
            let rest = requestMetadata.filter { !["callerIp", "callerSuppliedUserAgent"].contains($0.key) }
            payloadRest["requestMetadata"] = rest.isEmpty ? nil : .object(rest)
        }

        var api: [String: JSON] = ["operation": .string(method)]
        if let service = text(payload["serviceName"]) { api["service"] = .object(["name": .string(service)]) }
        if let statusCode, status == .failure {
            var response: [String: JSON] = ["error": .string(grpcName(statusCode))]
            response["message"] = statusMessage.map(JSON.string)
            api["response"] = .object(response)
        }
        event["api"] = .object(api)

        event["cloud"] = .object(cloud(fields: fields, payload: payload, logName: logName))

        var resources: [JSON] = []
        var seen: Set<String> = []
        if let name = text(payload["resourceName"]) {
            seen.insert(name)
            var resource: [String: JSON] = ["uid": .string(name)]
            resource["type"] = text(fields["resource"]?["type"]).map(JSON.string)
            resources.append(.object(resource))
        }
        for item in payload["authorizationInfo"]?.arrayValue ?? [] {
            if let name = text(item["resource"]), seen.insert(name).inserted {
                resources.append(.object(["uid": .string(name)]))
            }
        }
        if !resources.isEmpty { event["resources"] = .array(resources) }

        if !payloadRest.isEmpty { unmapped["protoPayload"] = .object(payloadRest) } else { unmapped["protoPayload"] = nil }
        if !unmapped.isEmpty { event["unmapped"] = .object(unmapped) }
        return .success(event)
    }

    /// Provider, project (from the monitored resource's `project_id`, else the log name),
    /// organization (from an `organizations/...` log name), region and zone.
    static func cloud(fields: [String: JSON], payload: [String: JSON], logName: String?) -> [String: JSON] {
        var cloud: [String: JSON] = ["provider": "GCP"]
        let labels = fields["resource"]?["labels"]
        let scope = logName?.split(separator: "/").map(String.init) ?? []
        let project = text(labels?["project_id"]) ?? (scope.count >= 2 && scope[0] == "projects" ? scope[1] : nil)
        if let project {
            cloud["account"] = .object(["uid": .string(project), "type_id": 11, "type": "GCP Project"])
        }
        if scope.count >= 2, scope[0] == "organizations" { cloud["org"] = .object(["uid": .string(scope[1])]) }
        let zone = text(labels?["zone"])
        cloud["zone"] = zone.map(JSON.string)
        let region = text(labels?["region"]) ?? text(labels?["location"]) ?? zone.flatMap(regionOfZone)
            ?? text(payload["resourceLocation"]?["currentLocations"]?.arrayValue?.first)
        cloud["region"] = region.map(JSON.string)
        return cloud
    }

    /// `us-central1` from `us-central1-a`.
    static func regionOfZone(_ zone: String) -> String? {
        guard let dash = zone.lastIndex(of: "-"), zone[zone.index(after: dash)...].count == 1 else { return nil }
        return String(zone[..<dash])
    }

    static func activity(for method: String) -> (Int64, String) {
        let last = method.split(separator: ".").last.map(String.init) ?? method
        // The first word: up to the first upper-case letter after the start (CamelCase), lower-cased.
        var word = ""
        for (position, character) in last.enumerated() {
            if position > 0, character.isUppercase { break }
            word.append(character)
        }
        word = word.lowercased()
        for verb in verbs where verb.words.contains(word) { return (verb.activity, verb.name) }
        return (99, "Other")
    }

    static func grpcName(_ code: Int64) -> String {
        code >= 0 && code < Int64(grpcCodes.count) ? grpcCodes[Int(code)] : "CODE_\(code)"
    }

    /// Cloud Logging's LogSeverity, on the same scale as the Azure and Okta mappings.
    static func severity(_ value: String?) -> OCSFSeverity {
        switch value?.uppercased() {
        case "DEFAULT", "DEBUG", "INFO", "NOTICE": .informational
        case "WARNING": .low
        case "ERROR": .medium
        case "CRITICAL": .high
        case "ALERT": .critical
        case "EMERGENCY": .fatal
        default: .unknown
        }
    }

    static func text(_ value: JSON?) -> String? { AzureActivityMapping.text(value) }
}
