import OCSF

/// Okta System Log events (`LogEvent`): one event, the JSON array the System Log API returns,
/// or an event hook delivery (`{"data":{"events":[...]}}`). Sign-ins and sign-outs become
/// Authentication 3002, user lifecycle/account/MFA-factor and group membership changes Account
/// Change 3001, everything else API Activity 6003. The mapping is in `OktaMapping` and
/// documented in docs/sources.md.
public struct OktaParser: JSONSourceParser {
    /// An Okta System Log parser; it has no configuration.
    public init() {}

    /// `okta`.
    public var sourceName: String { "okta" }

    /// `eventType`, `published` and an `actor` object: the three fields every LogEvent has and
    /// no other source combines (an event hook's envelope is recognized by its `data.events`).
    public func recognizes(_ document: JSON) -> Bool {
        return OktaMapping.form(of: document).isRecognized(by: OktaMapping.looksLikeEvent)
    }

    /// Maps every entry independently: a bad entry becomes a failure carrying its index and
    /// bytes, and its siblings still become events.
    public func normalize(_ document: JSON, raw: [UInt8]) -> NormalizeResult {
        OktaMapping.form(of: document).normalize(source: sourceName, map: OktaMapping.event(from:))
    }
}

/// The mapping of one Okta System Log event to OCSF 1.3. docs/sources.md has the tables; keep
/// them in step.
enum OktaMapping {
    typealias Form = EntryDocument

    /// Account Change 3001 activities by exact event type. Other `user.lifecycle.*`,
    /// `user.account.*`, `user.mfa.factor.*` and `group.user_membership.*` events are 3001 with
    /// activity 99 and the event type as activity_name (OCSF 1.3 has no Unlock, and group
    /// membership's own class, Group Management 3006, is not one Vigil emits yet).
    static let accountActivities: [String: (Int64, String)] = [
        "user.lifecycle.create": (1, "Create"),
        "user.lifecycle.activate": (2, "Enable"),
        "user.lifecycle.reactivate": (2, "Enable"),
        "user.lifecycle.unsuspend": (2, "Enable"),
        "user.account.update_password": (3, "Password Change"),
        "user.account.reset_password": (4, "Password Reset"),
        "user.lifecycle.deactivate": (5, "Disable"),
        "user.lifecycle.suspend": (5, "Disable"),
        "user.lifecycle.delete.initiated": (6, "Delete"),
        "user.lifecycle.delete.completed": (6, "Delete"),
        "user.account.lock": (9, "Lock"),
        "user.account.lock.limit": (9, "Lock"),
        "user.mfa.factor.activate": (10, "MFA Factor Enable"),
        "user.mfa.factor.deactivate": (11, "MFA Factor Disable"),
        "user.mfa.factor.reset_all": (11, "MFA Factor Disable"),
    ]

    static let accountChangePrefixes = ["user.lifecycle.", "user.account.", "user.mfa.factor.", "group.user_membership."]

    /// API Activity's activity from the event type's last component (`system.api_token.create`).
    static let apiVerbs: [(activity: Int64, name: String, words: Set<String>)] = [
        (1, "Create", ["create", "add"]),
        (2, "Read", ["read", "view", "list", "get", "search"]),
        (3, "Update", ["update", "change", "modify", "activate", "deactivate", "enable", "disable", "reset"]),
        (4, "Delete", ["delete", "remove", "revoke"]),
    ]

    /// Top-level keys consumed when of the expected type; `target`, `authenticationContext`,
    /// `debugContext`, `transaction`, `request`, `legacyEventType`, `version`, ... stay in `unmapped`.
    static let mappedKeys: Set<String> = ["uuid", "published", "eventType", "displayMessage", "severity"]

    static func form(of document: JSON) -> Form {
        switch document {
        case .array(let entries):
            return .entries(entries)
        case .object:
            if let events = document["data"]?["events"] {
                guard case .array(let entries) = events else { return .unrecognized("data.events is not an array") }
                return .entries(entries)
            }
            return .single(document)
        default:
            return .unrecognized("an Okta System Log document must be a JSON object or array")
        }
    }

    static func looksLikeEvent(_ value: JSON) -> Bool {
        guard case .object(let fields) = value else { return false }
        return text(fields["eventType"]) != nil && text(fields["published"]) != nil && fields["actor"]?.objectValue != nil
    }

    static func event(from entry: JSON) -> Result<JSON, EntryProblem> {
        guard case .object(let fields) = entry else {
            return .failure(EntryProblem(code: NormalizeFailure.Code.invalidEntry, message: "the entry is not a JSON object"))
        }
        guard let eventType = text(fields["eventType"]) else {
            return .failure(EntryProblem(code: NormalizeFailure.Code.missingField, message: "eventType is missing or not a string"))
        }
        guard let published = fields["published"] else {
            return .failure(EntryProblem(code: NormalizeFailure.Code.invalidTime, message: "published is missing"))
        }
        guard let originalTime = published.stringValue, let millis = Timestamp.parseISO8601(originalTime) else {
            return .failure(EntryProblem(code: NormalizeFailure.Code.invalidTime, message: "published is not an RFC 3339 timestamp"))
        }

        var unmapped = fields.filter { !(mappedKeys.contains($0.key) && text($0.value) != nil) }
        unmapped["published"] = nil

        let outcome = fields["outcome"]
        let result = text(outcome?["result"])
        let reason = text(outcome?["reason"])
        let status: OCSFStatus
        switch result?.uppercased() {
        case "SUCCESS", "ALLOW": status = .success
        case "FAILURE", "DENY": status = .failure
        default: status = .unknown
        }
        if outcome?.objectValue != nil { unmapped["outcome"] = nil }

        let ocsfClass: OCSFClass
        let activityID: Int64
        let activityName: String
        if eventType == "user.session.start" || eventType.hasPrefix("user.authentication.") {
            ocsfClass = .authentication
            (activityID, activityName) = (1, "Logon")
        } else if eventType == "user.session.end" {
            ocsfClass = .authentication
            (activityID, activityName) = (2, "Logoff")
        } else if let known = accountActivities[eventType] {
            ocsfClass = .accountChange
            (activityID, activityName) = known
        } else if accountChangePrefixes.contains(where: { eventType.hasPrefix($0) }) {
            ocsfClass = .accountChange
            // OCSF: for activity 99 the activity_name carries the source's own label.
            (activityID, activityName) = (99, eventType)
        } else {
            ocsfClass = .apiActivity
            (activityID, activityName) = apiActivity(for: eventType)
        }

        let uid = text(fields["uuid"]) ?? StableID.hash(bytes: entry.serialized())
        var event = OCSFEvent.base(
            class: ocsfClass, activityID: activityID, activityName: activityName, time: millis,
            severity: severity(text(fields["severity"])), status: status, uid: uid,
            product: "Okta System Log", vendor: "Okta", originalTime: originalTime
        )
        event.set("metadata.event_code", .string(eventType))
        if let transaction = text(fields["transaction"]?["id"]) {
            event.set("metadata.correlation_uid", .string(transaction))
        }
        if let result { event["status_code"] = .string(result) }
        if let reason { event["status_detail"] = .string(reason) }
        if let message = text(fields["displayMessage"]) { event["message"] = .string(message) }

        let actorUser = user(fields["actor"])
        var actor: [String: JSON] = [:]
        if !actorUser.isEmpty { actor["user"] = .object(actorUser) }
        let sessionID = known(fields["authenticationContext"]?["externalSessionId"])
        if let sessionID { actor["session"] = .object(["uid": .string(sessionID)]) }
        if !actor.isEmpty { event["actor"] = .object(actor) }
        if fields["actor"]?.objectValue != nil { unmapped["actor"] = rest(of: fields["actor"], without: ["id", "type", "alternateId", "displayName"]) }

        let (endpoint, clientRest, securityRest) = sourceEndpoint(fields)
        if !endpoint.isEmpty { event["src_endpoint"] = .object(endpoint) }
        if fields["client"]?.objectValue != nil { unmapped["client"] = clientRest }
        if fields["securityContext"]?.objectValue != nil { unmapped["securityContext"] = securityRest }
        if let agent = text(fields["client"]?["userAgent"]?["rawUserAgent"]) {
            event["http_request"] = .object(["user_agent": .string(agent)])
        }

        let targets = fields["target"]?.arrayValue ?? []
        switch ocsfClass {
        case .authentication:
            // The subject of a sign-in is the actor; the app signed in to (SSO) is the service.
            event["user"] = .object(actorUser)
            if let app = targets.first(where: { text($0["type"]) == "AppInstance" }) {
                var service: [String: JSON] = [:]
                service["name"] = (known(app["displayName"]) ?? known(app["alternateId"])).map(JSON.string)
                service["uid"] = known(app["id"]).map(JSON.string)
                event["service"] = .object(service)
            } else {
                event["service"] = .object(["name": "Okta"])
            }
            if eventType == "user.authentication.auth_via_mfa" { event["is_mfa"] = true }
            if let sessionID { event["session"] = .object(["uid": .string(sessionID)]) }
        case .accountChange:
            // The account changed is the target user; self-service changes may name none.
            var subject = targets.first(where: { text($0["type"]) == "User" }).map(user) ?? actorUser
            let groups = targets.filter { text($0["type"]) == "UserGroup" }.map { group -> JSON in
                var object: [String: JSON] = [:]
                object["uid"] = known(group["id"]).map(JSON.string)
                object["name"] = known(group["displayName"]).map(JSON.string)
                return .object(object)
            }
            if !groups.isEmpty { subject["groups"] = .array(groups) }
            event["user"] = .object(subject)
        default:
            var api: [String: JSON] = ["operation": .string(eventType), "service": ["name": "Okta"]]
            if let request = text(fields["debugContext"]?["debugData"]?["requestId"]) {
                api["request"] = .object(["uid": .string(request)])
            }
            event["api"] = .object(api)
            let resources = targets.compactMap { target -> JSON? in
                var resource: [String: JSON] = [:]
                resource["uid"] = known(target["id"]).map(JSON.string)
                resource["name"] = (known(target["displayName"]) ?? known(target["alternateId"])).map(JSON.string)
                resource["type"] = text(target["type"]).map(JSON.string)
                return resource.isEmpty ? nil : .object(resource)
            }
            if !resources.isEmpty { event["resources"] = .array(resources) }
        }

        if !unmapped.isEmpty { event["unmapped"] = .object(unmapped.filter { $0.value != .object([:]) }) }
        return .success(event)
    }

    /// An Okta actor or target as an OCSF user: `id` → uid, `alternateId` (the login) → name,
    /// `displayName` → full_name.
    static func user(_ value: JSON?) -> [String: JSON] {
        var user: [String: JSON] = [:]
        user["uid"] = known(value?["id"]).map(JSON.string)
        let login = known(value?["alternateId"])
        user["name"] = login.map(JSON.string)
        if let login, login.contains("@") { user["email_addr"] = .string(login) }
        user["full_name"] = known(value?["displayName"]).map(JSON.string)
        if let type = text(value?["type"]) {
            user["type"] = .string(type)
            user["type_id"] = .int(type == "User" ? 1 : type == "SystemPrincipal" ? 3 : 99)
        }
        return user
    }

    /// `src_endpoint` from the client (address, geolocation) and the security context (ASN,
    /// ISP), with the leftovers of both for `unmapped`.
    static func sourceEndpoint(_ fields: [String: JSON]) -> ([String: JSON], JSON?, JSON?) {
        var endpoint: [String: JSON] = [:]
        let client = fields["client"]
        if let address = text(client?["ipAddress"]) {
            endpoint = AzureActivityMapping.endpoint(address).objectValue ?? [:]
        }
        var location: [String: JSON] = [:]
        let geo = client?["geographicalContext"]
        location["city"] = text(geo?["city"]).map(JSON.string)
        location["region"] = text(geo?["state"]).map(JSON.string)
        location["country"] = text(geo?["country"]).map(JSON.string)
        location["postal_code"] = text(geo?["postalCode"]).map(JSON.string)
        if let lat = geo?["geolocation"]?["lat"]?.doubleValue, let long = geo?["geolocation"]?["lon"]?.doubleValue {
            location["lat"] = .double(lat)
            location["long"] = .double(long)
        }
        let security = fields["securityContext"]
        location["isp"] = text(security?["isp"]).map(JSON.string)
        if !location.isEmpty { endpoint["location"] = .object(location) }
        var system: [String: JSON] = [:]
        system["number"] = security?["asNumber"]?.intValue.map(JSON.int)
        system["name"] = text(security?["asOrg"]).map(JSON.string)
        if !system.isEmpty { endpoint["autonomous_system"] = .object(system) }
        // Proxies and load balancers the request passed through, other than the client itself.
        let chain = (fields["request"]?["ipChain"]?.arrayValue ?? []).compactMap { text($0["ip"]) }
            .filter { $0 != text(client?["ipAddress"]) }
        if !chain.isEmpty { endpoint["intermediate_ips"] = .array(chain.map(JSON.string)) }

        var clientRest = rest(of: client, without: ["ipAddress"], objectKeys: ["geographicalContext"])
        if let agent = client?["userAgent"]?.objectValue, text(agent["rawUserAgent"]) != nil {
            let agentRest = agent.filter { $0.key != "rawUserAgent" }
            clientRest?["userAgent"] = agentRest.isEmpty ? nil : .object(agentRest)
        }
        let securityRest = rest(of: security, without: security?["asNumber"]?.intValue == nil ? ["isp", "asOrg"] : ["isp", "asNumber", "asOrg"])
        return (endpoint, clientRest, securityRest)
    }

    static func apiActivity(for eventType: String) -> (Int64, String) {
        let word = eventType.split(separator: ".").last.map { $0.lowercased() } ?? ""
        for verb in apiVerbs where verb.words.contains(word) { return (verb.activity, verb.name) }
        return (99, "Other")
    }

    /// Okta's severities on the scale shared with the Azure and GCP mappings.
    static func severity(_ value: String?) -> OCSFSeverity {
        switch value?.uppercased() {
        case "DEBUG", "INFO": .informational
        case "WARN": .low
        case "ERROR": .medium
        default: .unknown
        }
    }

    /// The object's members except the mapped ones: `keys` holding a scalar and `objectKeys`
    /// holding an object (a value of another type was not used, so it stays); `nil` when empty.
    static func rest(of value: JSON?, without keys: Set<String>, objectKeys: Set<String> = []) -> JSON? {
        guard let members = value?.objectValue else { return value }
        let rest = members.filter { key, value in
            !((keys.contains(key) && text(value) != nil) || (objectKeys.contains(key) && value.objectValue != nil))
        }
        return rest.isEmpty ? nil : .object(rest)
    }

    static func text(_ value: JSON?) -> String? { AzureActivityMapping.text(value) }

    /// Text other than Okta's literal `unknown`, which it writes for ids and names it could not
    /// resolve (a failed sign-in with a mistyped login has actor id `unknown`).
    static func known(_ value: JSON?) -> String? {
        guard let value = text(value), value.lowercased() != "unknown" else { return nil }
        return value
    }
}
