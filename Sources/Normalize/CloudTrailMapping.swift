import OCSF

/// Why one CloudTrail event could not be mapped; becomes a `NormalizeFailure` once the caller
/// knows whether it is one entry of many.
struct EntryProblem: Error {
    let code: String
    let message: String

    func failure(entryIndex: Int? = nil, entryBytes: [UInt8]? = nil) -> NormalizeFailure {
        NormalizeFailure(code: code, message: message, entryIndex: entryIndex, entryBytes: entryBytes)
    }
}

/// The mapping of one CloudTrail event to OCSF 1.3 (API Activity 6003, or Authentication 3002
/// for sign-ins and credential issuance; Insights events are Detection Findings 2004, in
/// `CloudTrailInsight.swift`). docs/sources.md has the field table; keep them in step.
enum CloudTrailMapping {
    /// Sign-ins and calls that issue temporary credentials: Authentication 3002, not API Activity.
    /// Everything but `ConsoleLogin` is activity 99: OCSF's Authentication activities are
    /// Logon/Logoff/Kerberos tickets, none of which is "issue a session for a role".
    static let credentialIssuers: Set<String> = [
        "AssumeRole", "AssumeRoleWithSAML", "AssumeRoleWithWebIdentity",
        "GetFederationToken", "GetSessionToken", "SwitchRole",
    ]

    /// API Activity's activity from the verb that starts the event name. Order does not matter:
    /// a verb only matches up to a CamelCase boundary, so `Disable` never claims `Disassociate*`.
    static let verbs: [(activity: Int64, name: String, prefixes: [String])] = [
        (1, "Create", ["Create", "Run", "Put", "Allocate", "Import"]),
        (2, "Read", ["Get", "Describe", "List", "Head", "Lookup"]),
        (3, "Update", ["Update", "Modify", "Set", "Attach", "Associate", "Enable", "Disable",
                       "Start", "Stop", "Reset", "Change", "Add"]),
        (4, "Delete", ["Delete", "Remove", "Terminate", "Detach", "Disassociate", "Revoke"]),
    ]

    /// Parts every event has alike, built once and shared (they are values: sharing is invisible).
    static let product: JSON = ["name": "CloudTrail", "vendor_name": "AWS"]
    static let profiles: JSON = ["cloud"]

    /// Top-level keys consumed by the mapping. Everything else goes to `unmapped` as-is.
    /// (`recipientAccountId` is both mapped to `cloud.account.uid` and kept in `unmapped`, so a
    /// reader can tell it from the `userIdentity.accountId` fallback.) `event(from:)` reads them
    /// in one pass through `member(named:)`; keep the two in step.
    static let mappedKeys: Set<String> = [
        "eventName", "eventSource", "eventID", "eventType", "awsRegion", "sourceIPAddress",
        "userAgent", "requestID", "apiVersion", "errorCode", "errorMessage",
    ]

    /// `userIdentity` keys mapped onto `actor.user`; the rest (sessionContext, sourceIdentity,
    /// onBehalfOf, ...) stay under `unmapped.userIdentity`. Read by the `userIdentity` pass in
    /// `event(from:)`; keep the two in step.
    static let mappedIdentityKeys: Set<String> = [
        "type", "principalId", "arn", "accountId", "accessKeyId", "userName", "invokedBy",
    ]

    /// The members of an entry the mapping reads, picked out in one pass over the entry.
    struct Picked {
        var eventName: JSON?, eventSource: JSON?, eventID: JSON?, eventType: JSON?, awsRegion: JSON?
        var sourceIPAddress: JSON?, userAgent: JSON?, requestID: JSON?, apiVersion: JSON?
        var errorCode: JSON?, errorMessage: JSON?
        var eventTime: JSON?, timestamp: JSON?, userIdentity: JSON?, resources: JSON?
        var responseElements: JSON?, additionalEventData: JSON?, requestParameters: JSON?, recipientAccountId: JSON?
    }

    /// The `userIdentity` members the mapping reads.
    struct Identity {
        var type: JSON?, principalId: JSON?, arn: JSON?, accountId: JSON?, accessKeyId: JSON?
        var userName: JSON?, invokedBy: JSON?, sessionContext: JSON?
    }

    /// The top-level keys the mapping reads (`mappedKeys` and the ones it looks into).
    enum Member {
        case eventName, eventSource, eventID, eventType, awsRegion, sourceIPAddress, userAgent, requestID
        case apiVersion, errorCode, errorMessage, eventTime, timestamp, userIdentity, resources
        case responseElements, additionalEventData, requestParameters, recipientAccountId
    }

    /// The member a key names, if the mapping reads it. Keys are told apart by length first, so
    /// each is compared with a few literals rather than all of them.
    static func member(named key: String) -> Member? {
        switch key.utf8.count {
        case 7: return key == "eventID" ? .eventID : nil
        case 9:
            switch key {
            case "eventName": return .eventName
            case "eventType": return .eventType
            case "eventTime": return .eventTime
            case "awsRegion": return .awsRegion
            case "userAgent": return .userAgent
            case "requestID": return .requestID
            case "errorCode": return .errorCode
            case "resources": return .resources
            default: return nil
            }
        case 10:
            switch key {
            case "apiVersion": return .apiVersion
            case "@timestamp": return .timestamp
            default: return nil
            }
        case 11: return key == "eventSource" ? .eventSource : nil
        case 12:
            switch key {
            case "errorMessage": return .errorMessage
            case "userIdentity": return .userIdentity
            default: return nil
            }
        case 15: return key == "sourceIPAddress" ? .sourceIPAddress : nil
        case 16: return key == "responseElements" ? .responseElements : nil
        case 17: return key == "requestParameters" ? .requestParameters : nil
        case 18: return key == "recipientAccountId" ? .recipientAccountId : nil
        case 19: return key == "additionalEventData" ? .additionalEventData : nil
        default: return nil
        }
    }

    static func event(from entry: JSON) -> Result<JSON, EntryProblem> {
        guard case .object(let fields) = entry else {
            return .failure(EntryProblem(code: NormalizeFailure.Code.invalidEntry, message: "the entry is not a JSON object"))
        }
        // One pass: each member is read once, mapped or kept for `unmapped`. A mapped key of the
        // wrong type (an object where a string belongs) is kept, not lost (see `mappedKeys`).
        var picked = Picked()
        var unmapped = [String: JSON](minimumCapacity: fields.count)
        for (key, value) in fields {
            var keep = !hasText(value)
            switch member(named: key) {
            case .eventName?: picked.eventName = value
            case .eventSource?: picked.eventSource = value
            case .eventID?: picked.eventID = value
            case .eventType?: picked.eventType = value
            case .awsRegion?: picked.awsRegion = value
            case .sourceIPAddress?: picked.sourceIPAddress = value
            case .userAgent?: picked.userAgent = value
            case .requestID?: picked.requestID = value
            case .apiVersion?: picked.apiVersion = value
            case .errorCode?: picked.errorCode = value
            case .errorMessage?: picked.errorMessage = value
            // Decided below: the time field used, userIdentity's leftovers, unmapped resources.
            case .eventTime?: picked.eventTime = value; keep = false
            case .timestamp?: picked.timestamp = value; keep = false
            case .userIdentity?: picked.userIdentity = value; keep = false
            case .resources?: picked.resources = value; keep = false
            // Read, and kept as they are.
            case .responseElements?: picked.responseElements = value; keep = true
            case .additionalEventData?: picked.additionalEventData = value; keep = true
            case .requestParameters?: picked.requestParameters = value; keep = true
            case .recipientAccountId?: picked.recipientAccountId = value; keep = true
            case nil: keep = true
            }
            if keep { unmapped[key] = value }
        }

        // Insights events name their API under insightDetails: a finding, not an API call.
        if isInsight(picked, unmapped: unmapped) {
            return insight(entry: entry, picked: picked, unmapped: unmapped)
        }

        guard let eventName = text(picked.eventName) else {
            return .failure(EntryProblem(code: NormalizeFailure.Code.missingField, message: "eventName is missing or not a string"))
        }
        let time: (millis: Int64, original: String, field: String)
        switch eventTime(eventTime: picked.eventTime, timestamp: picked.timestamp) {
        case .success(let found): time = found
        case .failure(let problem): return .failure(problem)
        }
        // Only the time field used leaves; `@timestamp` beside an `eventTime` stays.
        if time.field != "@timestamp", let timestamp = picked.timestamp { unmapped["@timestamp"] = timestamp }

        var identity = Identity()
        if let userIdentity = picked.userIdentity {
            if case .object(let members) = userIdentity {
                var rest = [String: JSON](minimumCapacity: members.count)
                for (key, value) in members {
                    var keep = !hasText(value)
                    switch key {
                    case "type": identity.type = value
                    case "principalId": identity.principalId = value
                    case "arn": identity.arn = value
                    case "accountId": identity.accountId = value
                    case "accessKeyId": identity.accessKeyId = value
                    case "userName": identity.userName = value
                    case "invokedBy": identity.invokedBy = value
                    case "sessionContext": identity.sessionContext = value; keep = true
                    default: keep = true
                    }
                    if keep { rest[key] = value }
                }
                if !rest.isEmpty { unmapped["userIdentity"] = .object(rest) }
            } else {
                unmapped["userIdentity"] = userIdentity
            }
        }

        let errorCode = text(picked.errorCode)
        let errorMessage = text(picked.errorMessage)
        var status: OCSFStatus = errorCode == nil ? .success : .failure
        var statusDetail = errorCode

        let ocsfClass: OCSFClass
        let activityID: Int64
        let activityName: String
        if eventName == "ConsoleLogin" {
            ocsfClass = .authentication
            (activityID, activityName) = (1, "Logon")
            // Console sign-in failures usually carry no errorCode: the verdict is in responseElements.
            switch picked.responseElements?["ConsoleLogin"]?.stringValue {
            case "Success": status = .success
            case "Failure": status = .failure
            default: break
            }
            // The reason a sign-in failed is in errorMessage ("Failed authentication").
            statusDetail = status == .failure ? (errorMessage ?? errorCode) : nil
        } else if credentialIssuers.contains(eventName) {
            ocsfClass = .authentication
            // OCSF: for activity 99 the activity_name carries the source's own label.
            (activityID, activityName) = (99, eventName)
        } else {
            ocsfClass = .apiActivity
            (activityID, activityName) = apiActivity(for: eventName)
        }

        let uid = text(picked.eventID) ?? StableID.hash(bytes: entry.serialized())
        var metadata = [String: JSON](minimumCapacity: 7)
        metadata["version"] = .string(ocsfVersion)
        metadata["uid"] = .string(uid)
        metadata["product"] = product
        if let logName = text(picked.eventType) { metadata["log_name"] = .string(logName) }
        metadata["original_time"] = .string(time.original)
        metadata["event_code"] = .string(eventName)
        metadata["profiles"] = profiles
        var event = OCSFEvent.baseMembers(
            class: ocsfClass, activityID: activityID, activityName: activityName, time: time.millis,
            severity: .informational, status: status, metadata: metadata, capacity: 26
        )
        if let statusDetail { event["status_detail"] = .string(statusDetail) }
        if let errorMessage { event["message"] = .string(errorMessage) }

        let user = actorUser(identity)
        var actor = [String: JSON](minimumCapacity: 3)
        if !user.isEmpty { actor["user"] = .object(user) }
        let session = actorSession(identity.sessionContext)
        if !session.isEmpty { actor["session"] = .object(session) }
        if let invokedBy = text(identity.invokedBy) { actor["invoked_by"] = .string(invokedBy) }
        if !actor.isEmpty { event["actor"] = .object(actor) }

        if let source = text(picked.sourceIPAddress) {
            // Services calling on a principal's behalf appear as a host name ("ec2.amazonaws.com"),
            // and AWS writes "AWS Internal"; only real addresses belong in `ip`.
            let key = IPAddress.isLiteral(source) ? "ip" : IPAddress.isHostName(source) ? "domain" : "name"
            event["src_endpoint"] = .object([key: .string(source)])
        }
        if let agent = text(picked.userAgent) {
            event["http_request"] = .object(["user_agent": .string(agent)])
        }

        let service = text(picked.eventSource)
        var api = [String: JSON](minimumCapacity: 5)
        api["operation"] = .string(eventName)
        if let version = text(picked.apiVersion) { api["version"] = .string(version) }
        if let service { api["service"] = .object(["name": .string(service)]) }
        if let request = text(picked.requestID) { api["request"] = .object(["uid": .string(request)]) }
        if errorCode != nil || errorMessage != nil {
            var response: [String: JSON] = [:]
            if let errorCode { response["error"] = .string(errorCode) }
            if let errorMessage { response["message"] = .string(errorMessage) }
            api["response"] = .object(response)
        }
        event["api"] = .object(api)

        var cloud = [String: JSON](minimumCapacity: 3)
        cloud["provider"] = "AWS"
        if let region = text(picked.awsRegion) { cloud["region"] = .string(region) }
        if let account = text(picked.recipientAccountId) ?? text(identity.accountId) {
            cloud["account"] = awsAccount(account)
        }
        event["cloud"] = .object(cloud)

        if ocsfClass == .authentication {
            // OCSF 1.3 Authentication has no `resources`: the role an AssumeRole call names
            // stays in `unmapped` as CloudTrail wrote it.
            if let declared = picked.resources { unmapped["resources"] = declared }
        } else {
            let (resourceList, resourcesFullyMapped) = resources(picked)
            if !resourceList.isEmpty { event["resources"] = .array(resourceList) }
            if !resourcesFullyMapped, let declared = picked.resources { unmapped["resources"] = declared }
        }

        if ocsfClass == .authentication {
            // Authentication requires `user`: the principal that signed in or asked for credentials.
            event["user"] = .object(user)
            if let service { event["service"] = .object(["name": .string(service)]) }
            if eventName == "ConsoleLogin" {
                switch picked.additionalEventData?["MFAUsed"]?.stringValue {
                case "Yes": event["is_mfa"] = true
                case "No": event["is_mfa"] = false
                default: break
                }
            } else {
                let issued = issuedSession(picked)
                if !issued.isEmpty { event["session"] = .object(issued) }
            }
        }

        if !unmapped.isEmpty { event["unmapped"] = .object(unmapped) }
        return .success(.object(event))
    }

    /// `eventTime`, else `@timestamp` (datasets shipped through Logstash/Elastic rename it).
    /// A present but unparseable `eventTime` is an error rather than a reason to look further:
    /// the record is corrupt, and guessing could misplace it in time.
    static func eventTime(eventTime: JSON?, timestamp: JSON?) -> Result<(millis: Int64, original: String, field: String), EntryProblem> {
        for (field, value) in [("eventTime", eventTime), ("@timestamp", timestamp)] {
            guard let value else { continue }
            guard let original = value.stringValue, let millis = Timestamp.parseISO8601(original) else {
                return .failure(EntryProblem(code: NormalizeFailure.Code.invalidTime, message: "\(field) is not an RFC 3339 timestamp"))
            }
            return .success((millis, original, field))
        }
        return .failure(EntryProblem(code: NormalizeFailure.Code.invalidTime, message: "eventTime is missing"))
    }

    /// API Activity's activity id and name for an event name (see `verbs`), else 99 with the
    /// event name as activity_name, as OCSF asks for unmapped activities.
    static func apiActivity(for eventName: String) -> (Int64, String) {
        for verb in verbs where verb.prefixes.contains(where: { startsWithVerb(eventName, $0) }) {
            return (verb.activity, verb.name)
        }
        return (99, "Other")
    }

    /// `name` starts with `verb` followed by the end, an upper-case letter or a digit: CloudTrail
    /// names are CamelCase, so `Set` matches `SetTopicAttributes` but `Add` never `AddressTransfer`.
    static func startsWithVerb(_ name: String, _ verb: String) -> Bool {
        // Bytes, not `Character`s: the verbs are ASCII, and a match must be followed by an ASCII
        // letter or digit, so a combining mark after the verb fails either way.
        guard name.utf8.starts(with: verb.utf8) else { return false }
        let rest = name.utf8.dropFirst(verb.utf8.count)
        guard let next = rest.first else { return true }
        return (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(next) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(next)
    }

    static func actorUser(_ identity: Identity) -> [String: JSON] {
        var user = [String: JSON](minimumCapacity: 8)
        if let type = text(identity.type) {
            user["type"] = .string(type)
            if let typeID = userTypeID(type) { user["type_id"] = .int(typeID) }
        }
        let arn = text(identity.arn)
        if let uid = text(identity.principalId) { user["uid"] = .string(uid) }
        if let arn { user["uid_alt"] = .string(arn) }
        if let credential = text(identity.accessKeyId) { user["credential_uid"] = .string(credential) }
        let name = text(identity.userName)
            ?? text(identity.sessionContext?["sessionIssuer"]?["userName"])
            ?? arn.flatMap(lastARNPart)
        if let name { user["name"] = .string(name) }
        if let account = text(identity.accountId) { user["account"] = awsAccount(account) }
        return user
    }

    /// OCSF 1.3 user type ids: Root is the account's admin, AWS services act as the system,
    /// people and federated principals are users, and roles/accounts have no better fit than Other.
    static func userTypeID(_ type: String) -> Int64? {
        switch type {
        case "IAMUser", "FederatedUser", "SAMLUser", "WebIdentityUser", "IdentityCenterUser": 1
        case "Root": 2
        case "AWSService": 3
        case "AssumedRole", "AWSAccount", "Role": 99
        default: nil
        }
    }

    /// The last part of an ARN's resource: `alice` for `...:user/path/alice`, `root` for `...:root`.
    static func lastARNPart(_ arn: String) -> String? {
        let tail = arn.split(separator: "/", omittingEmptySubsequences: false).last.map(String.init) ?? arn
        let part = tail.contains(":") ? String(tail.split(separator: ":", omittingEmptySubsequences: false).last ?? "") : tail
        return part.isEmpty ? nil : part
    }

    static func actorSession(_ sessionContext: JSON?) -> [String: JSON] {
        guard let context = sessionContext else { return [:] }
        var session: [String: JSON] = [:]
        if let created = text(context["attributes"]?["creationDate"]).flatMap(Timestamp.parseISO8601) {
            session["created_time"] = .int(created)
        }
        switch context["attributes"]?["mfaAuthenticated"]?.scalarText {
        case "true": session["is_mfa"] = true
        case "false": session["is_mfa"] = false
        default: break
        }
        session["issuer"] = text(context["sessionIssuer"]?["arn"]).map(JSON.string)
        return session
    }

    /// The session an AssumeRole-style call issued: its access key id lets detections join later
    /// calls made with those credentials back to the call that minted them.
    static func issuedSession(_ fields: Picked) -> [String: JSON] {
        var session: [String: JSON] = [:]
        let credentials = fields.responseElements?["credentials"]
        session["credential_uid"] = text(credentials?["accessKeyId"]).map(JSON.string)
        if let expiration = text(credentials?["expiration"]).flatMap(Timestamp.parseISO8601) {
            session["expiration_time"] = .int(expiration)
        }
        session["uid_alt"] = text(fields.responseElements?["assumedRoleUser"]?["arn"]).map(JSON.string)
        session["issuer"] = text(fields.requestParameters?["roleArn"]).map(JSON.string)
        return session
    }

    /// CloudTrail's own `resources` (ARN, type, accountId), then EC2 instance ids named in the
    /// request or response, deduplicated by uid in that order. The flag says whether every entry
    /// of `resources` was mapped, so the original can leave `unmapped`.
    static func resources(_ fields: Picked) -> ([JSON], Bool) {
        var list: [JSON] = []
        var seen: Set<String> = []
        var fullyMapped = fields.resources != nil
        func add(_ uid: String, type: String?, account: String?) {
            guard seen.insert(uid).inserted else { return }
            var resource: [String: JSON] = ["uid": .string(uid)]
            resource["type"] = type.map(JSON.string)
            // OCSF 1.3 dropped resource_details.account_uid; the owning account is owner.account.uid.
            if let account { resource["owner"] = .object(["account": awsAccount(account)]) }
            list.append(.object(resource))
        }
        if let declared = fields.resources {
            if case .array(let items) = declared {
                for item in items {
                    guard let arn = text(item["ARN"]) else { fullyMapped = false; continue }
                    add(arn, type: text(item["type"]), account: text(item["accountId"]))
                }
            } else {
                fullyMapped = false
            }
        }
        var instanceIDs: [String] = []
        if let id = text(fields.requestParameters?["instanceId"]) { instanceIDs.append(id) }
        for container in [fields.requestParameters, fields.responseElements] {
            for item in container?["instancesSet"]?["items"]?.arrayValue ?? [] {
                if let id = text(item["instanceId"]) { instanceIDs.append(id) }
            }
        }
        // Only real instance ids: test data and redacted logs carry placeholders such as "...".
        for id in instanceIDs where id.hasPrefix("i-") {
            add(id, type: "AWS::EC2::Instance", account: nil)
        }
        return (list, fullyMapped)
    }

    /// An OCSF account object for an AWS account id (`type_id` 10 is "AWS Account").
    static func awsAccount(_ uid: String) -> JSON {
        .object(["uid": .string(uid), "type_id": 10, "type": "AWS Account"])
    }

    /// A non-empty scalar as text (ids sometimes arrive as numbers); `nil` for anything else.
    static func text(_ value: JSON?) -> String? {
        guard let value, let scalar = value.scalarText, !scalar.isEmpty else { return nil }
        return scalar
    }

    /// Whether `text(value)` is non-nil, without making the text.
    static func hasText(_ value: JSON) -> Bool {
        switch value {
        case .string(let s): !s.isEmpty
        case .int, .double, .bool: true
        case .null, .array, .object: false
        }
    }
}
