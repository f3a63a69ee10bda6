import OCSF

/// Azure Activity Log records, as diagnostic settings export them to Event Hubs or storage
/// (`{"records":[...]}`, or one record), and as the REST API and `az monitor activity-log list`
/// return them (`{"value":[...]}`, a JSON array, or one event). Both become OCSF API Activity
/// 6003; the mapping is in `AzureActivityMapping` and documented in docs/sources.md.
public struct AzureActivityParser: JSONSourceParser {
    /// An Azure Activity Log parser; it has no configuration.
    public init() {}

    /// `azure-activity`.
    public var sourceName: String { "azure-activity" }

    /// Strict on purpose: every Azure resource log (Entra ID sign-ins, Key Vault audit, storage
    /// reads) shares the diagnostic-settings envelope (`time`, `resourceId`, `operationName`,
    /// `category`), so only Activity Log categories, or the REST form's `eventDataId`, count.
    public func recognizes(_ document: JSON) -> Bool {
        return AzureActivityMapping.form(of: document).isRecognized(by: AzureActivityMapping.looksLikeEvent)
    }

    /// Maps every entry independently: a bad entry becomes a failure carrying its index and
    /// bytes, and its siblings still become events.
    public func normalize(_ document: JSON, raw: [UInt8]) -> NormalizeResult {
        AzureActivityMapping.form(of: document).normalize(source: sourceName, map: AzureActivityMapping.event(from:))
    }
}

/// The mapping of one Azure Activity Log event to OCSF 1.3 API Activity. docs/sources.md has
/// the field table; keep them in step.
enum AzureActivityMapping {
    typealias Form = EntryDocument

    /// Activity Log categories (the `category` of the export, `category.value` of the REST form),
    /// compared lower-cased. `write`, `delete` and `action` are the legacy export's categories.
    static let activityCategories: Set<String> = [
        "administrative", "security", "servicehealth", "alert", "recommendation", "policy",
        "autoscale", "resourcehealth", "write", "delete", "action",
    ]

    /// Top-level keys consumed by the mapping when they have the expected type; everything else
    /// (`identity`, `claims`, `authorization`, `properties`, `durationMs`, ...) goes to `unmapped`.
    static let mappedKeys: Set<String> = [
        "time", "eventTimestamp", "operationName", "resultType", "resultSignature", "status", "subStatus",
        "callerIpAddress", "caller", "location", "level", "category", "resourceId", "resultDescription",
        "description", "tenantId", "subscriptionId", "correlationId", "eventDataId",
        "resourceProviderName", "resourceType",
    ]

    static func form(of document: JSON) -> Form {
        switch document {
        case .array(let entries):
            return .entries(entries)
        case .object(let members):
            // `records`: diagnostic-settings export; `value`: one page of the REST list.
            for key in ["records", "value"] {
                guard let container = members[key] else { continue }
                guard case .array(let entries) = container else { return .unrecognized("\(key) is not an array") }
                return .entries(entries)
            }
            return .single(document)
        default:
            return .unrecognized("an Azure Activity document must be a JSON object or array")
        }
    }

    /// `operationName` and `resourceId`, plus an Activity Log `category` or the REST `eventDataId`.
    static func looksLikeEvent(_ value: JSON) -> Bool {
        guard case .object(let fields) = value,
              localizable(fields["operationName"]) != nil,
              text(fields["resourceId"]) != nil else { return false }
        if text(fields["eventDataId"]) != nil { return true }
        guard let category = localizable(fields["category"]) else { return false }
        return activityCategories.contains(category.lowercased())
    }

    static func event(from entry: JSON) -> Result<JSON, EntryProblem> {
        guard case .object(let fields) = entry else {
            return .failure(EntryProblem(code: NormalizeFailure.Code.invalidEntry, message: "the entry is not a JSON object"))
        }
        guard let operation = localizable(fields["operationName"]) else {
            return .failure(EntryProblem(code: NormalizeFailure.Code.missingField, message: "operationName is missing or not a string"))
        }
        let time: (millis: Int64, original: String)
        switch eventTime(fields) {
        case .success(let found): time = found
        case .failure(let problem): return .failure(problem)
        }

        let unmapped = fields.filter { key, value in
            !(mappedKeys.contains(key) && (text(value) != nil || localizable(value) != nil))
        }

        let claims = fields["identity"]?["claims"]?.objectValue ?? fields["claims"]?.objectValue ?? [:]
        let authorization = fields["identity"]?["authorization"] ?? fields["authorization"]
        let properties = fields["properties"]
        let resultType = text(fields["resultType"]) ?? localizable(fields["status"])
        let signature = text(fields["resultSignature"]) ?? localizable(fields["subStatus"])
        let status = self.status(resultType)

        let (activityID, activityName) = activity(operation: operation, signature: signature,
                                                  statusCode: text(properties?["statusCode"]))
        let resourceID = text(fields["resourceId"])
        let uid: String
        if let eventDataID = text(fields["eventDataId"]) {
            uid = eventDataID
        } else if let correlation = text(fields["correlationId"]) {
            // The export has no per-event id: these fields tell the Start, Accept and Success
            // records of one operation apart, and survive re-serialization by shippers.
            uid = StableID.hash([correlation, operation, time.original, resultType ?? "", resourceID ?? ""])
        } else {
            uid = StableID.hash(bytes: entry.serialized())
        }

        var event = OCSFEvent.base(
            class: .apiActivity, activityID: activityID, activityName: activityName, time: time.millis,
            severity: severity(fields["level"]), status: status, uid: uid,
            product: "Azure Activity Log", vendor: "Microsoft",
            logName: localizable(fields["category"]), originalTime: time.original
        )
        event.set("metadata.event_code", .string(operation))
        event.set("metadata.profiles", ["cloud"])
        if let correlation = text(fields["correlationId"]) { event.set("metadata.correlation_uid", .string(correlation)) }
        if let resultType { event["status_code"] = .string(resultType) }
        if let signature { event["status_detail"] = .string(signature) }
        if let message = text(fields["resultDescription"]) ?? text(fields["description"]) {
            event["message"] = .string(message)
        }

        var actor: [String: JSON] = [:]
        let user = actorUser(claims: claims, caller: text(fields["caller"]), evidence: authorization?["evidence"])
        if !user.isEmpty { actor["user"] = .object(user) }
        actor["app_uid"] = text(claims["appid"]).map(JSON.string)
        if !actor.isEmpty { event["actor"] = .object(actor) }

        let address = text(fields["callerIpAddress"]) ?? text(fields["httpRequest"]?["clientIpAddress"])
        if let address { event["src_endpoint"] = endpoint(address) }
        if let method = text(fields["httpRequest"]?["method"]) {
            event["http_request"] = .object(["http_method": .string(method)])
        }

        var api: [String: JSON] = ["operation": .string(operation)]
        // The export upper-cases operationName; the authorization action usually keeps the
        // provider's own spelling (`Microsoft.Compute`), so it is preferred when it is the same name.
        let operationProvider = providerNamespace(operation)
        let actionProvider = text(authorization?["action"]).flatMap(providerNamespace)
            .flatMap { $0.lowercased() == operationProvider?.lowercased() ? $0 : nil }
        if let provider = localizable(fields["resourceProviderName"]) ?? actionProvider ?? operationProvider {
            api["service"] = .object(["name": .string(provider)])
        }
        if let request = text(properties?["serviceRequestId"]) { api["request"] = .object(["uid": .string(request)]) }
        if status == .failure {
            var response: [String: JSON] = [:]
            response["error"] = (text(properties?["statusCode"]) ?? signature).map(JSON.string)
            response["message"] = text(properties?["statusMessage"]).map(JSON.string)
            if !response.isEmpty { api["response"] = .object(response) }
        }
        event["api"] = .object(api)

        var cloud: [String: JSON] = ["provider": "Azure"]
        // Subscription ids are GUIDs; the export upper-cases resource ids, so the derived one is lower-cased.
        if let subscription = text(fields["subscriptionId"]) ?? resourceID.flatMap(subscriptionID)?.lowercased() {
            cloud["account"] = .object(["uid": .string(subscription), "type_id": 13, "type": "Azure Subscription"])
        }
        cloud["region"] = text(fields["location"]).map(JSON.string)
        let tenantClaim = text(claims["http://schemas.microsoft.com/identity/claims/tenantid"]) ?? text(claims["tid"])
        if let tenant = text(fields["tenantId"]) ?? tenantClaim {
            cloud["org"] = .object(["uid": .string(tenant)])
        }
        event["cloud"] = .object(cloud)

        if let resourceID {
            var resource: [String: JSON] = ["uid": .string(resourceID)]
            let parsed = resourceParts(resourceID)
            resource["type"] = (localizable(fields["resourceType"]) ?? parsed.type).map(JSON.string)
            resource["name"] = parsed.name.map(JSON.string)
            event["resources"] = [.object(resource)]
        }

        if !unmapped.isEmpty { event["unmapped"] = .object(unmapped) }
        return .success(event)
    }

    /// `time` (export) or `eventTimestamp` (REST): RFC 3339, or the US culture form
    /// (`1/9/2007 9:41:00 AM`) some Azure pipelines write. Present but unreadable is an error.
    static func eventTime(_ fields: [String: JSON]) -> Result<(millis: Int64, original: String), EntryProblem> {
        for field in ["time", "eventTimestamp"] {
            guard let value = fields[field] else { continue }
            guard let original = value.stringValue,
                  let millis = Timestamp.parseISO8601(original) ?? parseUSDateTime(original) else {
                return .failure(EntryProblem(code: NormalizeFailure.Code.invalidTime, message: "\(field) is not a timestamp"))
            }
            return .success((millis, original))
        }
        return .failure(EntryProblem(code: NormalizeFailure.Code.invalidTime, message: "time and eventTimestamp are missing"))
    }

    /// `M/d/yyyy H:mm:ss[.fff][ AM|PM][ ±hh:mm]`, UTC when no offset is given.
    static func parseUSDateTime(_ text: String) -> Int64? {
        let parts = text.split(separator: " ")
        guard (2...4).contains(parts.count) else { return nil }
        let date = parts[0].split(separator: "/", omittingEmptySubsequences: false)
        guard date.count == 3, let month = Int(date[0]), let day = Int(date[1]), let year = Int(date[2]),
              date[2].count == 4 else { return nil }
        var clock = parts[1].split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard clock.count == 3, var hour = Int(clock[0]), clock[1].count == 2 else { return nil }
        var rest = parts.dropFirst(2)
        if let marker = rest.first?.uppercased(), marker == "AM" || marker == "PM" {
            guard (1...12).contains(hour) else { return nil }
            hour = hour % 12 + (marker == "PM" ? 12 : 0)
            rest = rest.dropFirst()
        }
        var offset = "Z"
        if let zone = rest.first {
            guard zone.first == "+" || zone.first == "-" else { return nil }
            offset = String(zone)
            rest = rest.dropFirst()
        }
        guard rest.isEmpty else { return nil }
        func pad(_ value: Int) -> String { value < 10 ? "0\(value)" : String(value) }
        clock[0] = pad(hour)
        let iso = "\(year)-\(pad(month))-\(pad(day))T\(clock.joined(separator: ":"))\(offset)"
        return Timestamp.parseISO8601(iso)
    }

    /// Activity from the operation's last segment: ARM operations end in `/write`, `/delete`,
    /// `/read` or `/action`. A write is a PUT or PATCH, create-or-update: Create only when the
    /// result says a resource was created (201), else Update.
    static func activity(operation: String, signature: String?, statusCode: String?) -> (Int64, String) {
        let verb = operation.split(separator: "/").last.map { $0.lowercased() } ?? ""
        switch verb {
        case "write":
            let created = [signature, statusCode].contains { $0?.lowercased().hasSuffix("created") ?? false }
            return created ? (1, "Create") : (3, "Update")
        case "read": return (2, "Read")
        case "delete": return (4, "Delete")
        default: return (99, "Other")
        }
    }

    /// `resultType` (export) or `status.value` (REST). Start, Accept(ed) and the health states
    /// are not outcomes: the operation's later record carries Success or Failure.
    static func status(_ result: String?) -> OCSFStatus {
        switch result?.lowercased() {
        case "success", "succeeded": .success
        case "failure", "failed": .failure
        default: .unknown
        }
    }

    /// Azure's levels as the Activity Log documentation defines them: Critical demands
    /// immediate attention, Error does not, Warning forewarns, Informational is a note.
    static func severity(_ level: JSON?) -> OCSFSeverity {
        switch level?.scalarText?.lowercased() {
        case "critical", "1": .critical
        case "error", "2": .medium
        case "warning", "3": .low
        case "informational", "information", "verbose", "4", "5": .informational
        default: .unknown
        }
    }

    /// The principal from the token claims: `upn` (people), else the REST `caller`, else the
    /// display `name`; `oid` as uid. Role-assignment evidence, when present, gives the type.
    static func actorUser(claims: [String: JSON], caller: String?, evidence: JSON?) -> [String: JSON] {
        var user: [String: JSON] = [:]
        let upn = text(claims["http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"]) ?? text(claims["upn"])
        let displayName = text(claims["name"])
        let name = upn ?? caller ?? displayName
        user["name"] = name.map(JSON.string)
        if let email = [upn, caller].compactMap({ $0 }).first(where: { $0.contains("@") }) {
            user["email_addr"] = .string(email)
        }
        user["full_name"] = displayName.map(JSON.string)
        let oid = text(claims["http://schemas.microsoft.com/identity/claims/objectidentifier"]) ?? text(claims["oid"])
        user["uid"] = (oid ?? text(evidence?["principalId"])).map(JSON.string)
        if let type = text(evidence?["principalType"]) {
            user["type"] = .string(type)
            user["type_id"] = .int(type == "User" ? 1 : 99)
        }
        return user
    }

    /// `Microsoft.Compute` from `Microsoft.Compute/virtualMachines/write`; nil when the name
    /// has no provider prefix (`Sign-in activity`).
    static func providerNamespace(_ operation: String) -> String? {
        guard operation.contains("/"), let first = operation.split(separator: "/").first,
              first.contains(".") else { return nil }
        return String(first)
    }

    /// The subscription id from `/subscriptions/<id>/...` (any case).
    static func subscriptionID(_ resourceID: String) -> String? {
        let parts = resourceID.split(separator: "/")
        guard parts.count >= 2, parts[0].lowercased() == "subscriptions" else { return nil }
        return String(parts[1])
    }

    /// Type (`Microsoft.Compute/virtualMachines`) and name from an ARM resource id, read after
    /// its last `providers` segment; `/subscriptions/s/resourceGroups/rg` is a resource group.
    static func resourceParts(_ resourceID: String) -> (type: String?, name: String?) {
        let parts = resourceID.split(separator: "/").map(String.init)
        guard let providers = parts.lastIndex(where: { $0.lowercased() == "providers" }) else {
            if parts.count == 4, parts[2].lowercased() == "resourcegroups" {
                return ("Microsoft.Resources/resourceGroups", parts[3])
            }
            if parts.count == 2, parts[0].lowercased() == "subscriptions" {
                return ("Microsoft.Resources/subscriptions", parts[1])
            }
            return (nil, nil)
        }
        let tail = parts[(providers + 1)...]
        guard let namespace = tail.first else { return (nil, nil) }
        let pairs = Array(tail.dropFirst())
        let types = stride(from: 0, to: pairs.count, by: 2).map { pairs[$0] }
        let name = pairs.count % 2 == 0 ? pairs.last : nil
        return (([namespace] + types).joined(separator: "/"), name)
    }

    /// A source endpoint: `ip` for an address literal, `domain` for a host name, else `name`.
    static func endpoint(_ address: String) -> JSON {
        let key = IPAddress.isLiteral(address) ? "ip" : IPAddress.isHostName(address) ? "domain" : "name"
        return .object([key: .string(address)])
    }

    /// A REST "localizable string" (`{"value": "...", "localizedValue": "..."}`) or a plain string.
    /// Strings only: a number where an operation, category or status belongs is not one.
    static func localizable(_ value: JSON?) -> String? {
        for candidate in [value, value?["value"]] {
            if let string = candidate?.stringValue, !string.isEmpty { return string }
        }
        return nil
    }

    /// A non-empty scalar as text; `nil` for anything else.
    static func text(_ value: JSON?) -> String? {
        guard let value, let scalar = value.scalarText, !scalar.isEmpty else { return nil }
        return scalar
    }
}
