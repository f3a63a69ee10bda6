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
/// for sign-ins and credential issuance). docs/sources.md has the field table; keep them in step.
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

    /// Top-level keys consumed by the mapping. Everything else goes to `unmapped` as-is.
    /// (`recipientAccountId` is both mapped to `cloud.account.uid` and kept in `unmapped`, so a
    /// reader can tell it from the `userIdentity.accountId` fallback.)
    static let mappedKeys: Set<String> = [
        "eventName", "eventSource", "eventID", "eventType", "awsRegion", "sourceIPAddress",
        "userAgent", "requestID", "apiVersion", "errorCode", "errorMessage",
    ]

    /// `userIdentity` keys mapped onto `actor.user`; the rest (sessionContext, sourceIdentity,
    /// onBehalfOf, ...) stay under `unmapped.userIdentity`.
    static let mappedIdentityKeys: Set<String> = [
        "type", "principalId", "arn", "accountId", "accessKeyId", "userName", "invokedBy",
    ]

    static func event(from entry: JSON) -> Result<JSON, EntryProblem> {
        guard case .object(let fields) = entry else {
            return .failure(EntryProblem(code: NormalizeFailure.Code.invalidEntry, message: "the entry is not a JSON object"))
        }
        guard let eventName = text(fields["eventName"]) else {
            return .failure(EntryProblem(code: NormalizeFailure.Code.missingField, message: "eventName is missing or not a string"))
        }
        let time: (millis: Int64, original: String, field: String)
        switch eventTime(fields) {
        case .success(let found): time = found
        case .failure(let problem): return .failure(problem)
        }

        // A mapped key of the wrong type (an object where a string belongs) is kept, not lost.
        var unmapped = fields.filter { !(mappedKeys.contains($0.key) && text($0.value) != nil) }
        unmapped[time.field] = nil

        let identity = fields["userIdentity"]?.objectValue ?? [:]
        if fields["userIdentity"]?.objectValue != nil {
            let rest = identity.filter { !(mappedIdentityKeys.contains($0.key) && text($0.value) != nil) }
            unmapped["userIdentity"] = rest.isEmpty ? nil : .object(rest)
        }

        let errorCode = text(fields["errorCode"])
        let errorMessage = text(fields["errorMessage"])
        var status: OCSFStatus = errorCode == nil ? .success : .failure
        var statusDetail = errorCode

        let ocsfClass: OCSFClass
        let activityID: Int64
        let activityName: String
        if eventName == "ConsoleLogin" {
            ocsfClass = .authentication
            (activityID, activityName) = (1, "Logon")
            // Console sign-in failures usually carry no errorCode: the verdict is in responseElements.
            switch fields["responseElements"]?["ConsoleLogin"]?.stringValue {
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

        let uid = text(fields["eventID"]) ?? StableID.hash(bytes: entry.serialized())
        var event = OCSFEvent.base(
            class: ocsfClass, activityID: activityID, activityName: activityName, time: time.millis,
            severity: .informational, status: status, uid: uid, product: "CloudTrail", vendor: "AWS",
            logName: text(fields["eventType"]), originalTime: time.original
        )
        event.set("metadata.event_code", .string(eventName))
        event.set("metadata.profiles", ["cloud"])
        if let statusDetail { event["status_detail"] = .string(statusDetail) }
        if let errorMessage { event["message"] = .string(errorMessage) }

        let user = actorUser(identity)
        var actor: [String: JSON] = [:]
        if !user.isEmpty { actor["user"] = .object(user) }
        let session = actorSession(identity)
        if !session.isEmpty { actor["session"] = .object(session) }
        actor["invoked_by"] = text(identity["invokedBy"]).map(JSON.string)
        if !actor.isEmpty { event["actor"] = .object(actor) }

        if let source = text(fields["sourceIPAddress"]) {
            // Services calling on a principal's behalf appear as a host name ("ec2.amazonaws.com"),
            // and AWS writes "AWS Internal"; only real addresses belong in `ip`.
            let key = IPAddress.isLiteral(source) ? "ip" : IPAddress.isHostName(source) ? "domain" : "name"
            event["src_endpoint"] = .object([key: .string(source)])
        }
        if let agent = text(fields["userAgent"]) {
            event["http_request"] = .object(["user_agent": .string(agent)])
        }

        var api: [String: JSON] = ["operation": .string(eventName)]
        api["version"] = text(fields["apiVersion"]).map(JSON.string)
        if let service = text(fields["eventSource"]) { api["service"] = .object(["name": .string(service)]) }
        if let request = text(fields["requestID"]) { api["request"] = .object(["uid": .string(request)]) }
        var response: [String: JSON] = [:]
        response["error"] = errorCode.map(JSON.string)
        response["message"] = errorMessage.map(JSON.string)
        if !response.isEmpty { api["response"] = .object(response) }
        event["api"] = .object(api)

        var cloud: [String: JSON] = ["provider": "AWS"]
        cloud["region"] = text(fields["awsRegion"]).map(JSON.string)
        if let account = text(fields["recipientAccountId"]) ?? text(identity["accountId"]) {
            cloud["account"] = awsAccount(account)
        }
        event["cloud"] = .object(cloud)

        let (resourceList, resourcesFullyMapped) = resources(fields)
        if !resourceList.isEmpty { event["resources"] = .array(resourceList) }
        if resourcesFullyMapped { unmapped["resources"] = nil }

        if ocsfClass == .authentication {
            // Authentication requires `user`: the principal that signed in or asked for credentials.
            event["user"] = .object(user)
            if let service = text(fields["eventSource"]) { event["service"] = .object(["name": .string(service)]) }
            if eventName == "ConsoleLogin" {
                switch fields["additionalEventData"]?["MFAUsed"]?.stringValue {
                case "Yes": event["is_mfa"] = true
                case "No": event["is_mfa"] = false
                default: break
                }
            } else {
                let issued = issuedSession(fields)
                if !issued.isEmpty { event["session"] = .object(issued) }
            }
        }

        if !unmapped.isEmpty { event["unmapped"] = .object(unmapped) }
        return .success(event)
    }

    /// `eventTime`, else `@timestamp` (datasets shipped through Logstash/Elastic rename it).
    /// A present but unparseable `eventTime` is an error rather than a reason to look further:
    /// the record is corrupt, and guessing could misplace it in time.
    static func eventTime(_ fields: [String: JSON]) -> Result<(millis: Int64, original: String, field: String), EntryProblem> {
        for field in ["eventTime", "@timestamp"] {
            guard let value = fields[field] else { continue }
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
        guard name.hasPrefix(verb) else { return false }
        let rest = name.utf8.dropFirst(verb.utf8.count)
        guard let next = rest.first else { return true }
        return (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(next) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(next)
    }

    static func actorUser(_ identity: [String: JSON]) -> [String: JSON] {
        var user: [String: JSON] = [:]
        let type = text(identity["type"])
        user["type"] = type.map(JSON.string)
        if let type, let typeID = userTypeID(type) { user["type_id"] = .int(typeID) }
        user["uid"] = text(identity["principalId"]).map(JSON.string)
        user["uid_alt"] = text(identity["arn"]).map(JSON.string)
        user["credential_uid"] = text(identity["accessKeyId"]).map(JSON.string)
        let name = text(identity["userName"])
            ?? text(identity["sessionContext"]?["sessionIssuer"]?["userName"])
            ?? text(identity["arn"]).flatMap(lastARNPart)
        user["name"] = name.map(JSON.string)
        user["account"] = text(identity["accountId"]).map(awsAccount)
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

    static func actorSession(_ identity: [String: JSON]) -> [String: JSON] {
        guard let context = identity["sessionContext"] else { return [:] }
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
    static func issuedSession(_ fields: [String: JSON]) -> [String: JSON] {
        var session: [String: JSON] = [:]
        let credentials = fields["responseElements"]?["credentials"]
        session["credential_uid"] = text(credentials?["accessKeyId"]).map(JSON.string)
        if let expiration = text(credentials?["expiration"]).flatMap(Timestamp.parseISO8601) {
            session["expiration_time"] = .int(expiration)
        }
        session["uid_alt"] = text(fields["responseElements"]?["assumedRoleUser"]?["arn"]).map(JSON.string)
        session["issuer"] = text(fields["requestParameters"]?["roleArn"]).map(JSON.string)
        return session
    }

    /// CloudTrail's own `resources` (ARN, type, accountId), then EC2 instance ids named in the
    /// request or response, deduplicated by uid in that order. The flag says whether every entry
    /// of `resources` was mapped, so the original can leave `unmapped`.
    static func resources(_ fields: [String: JSON]) -> ([JSON], Bool) {
        var list: [JSON] = []
        var seen: Set<String> = []
        var fullyMapped = fields["resources"] != nil
        func add(_ uid: String, type: String?, account: String?) {
            guard seen.insert(uid).inserted else { return }
            var resource: [String: JSON] = ["uid": .string(uid)]
            resource["type"] = type.map(JSON.string)
            // OCSF 1.3 dropped resource_details.account_uid; the owning account is owner.account.uid.
            if let account { resource["owner"] = .object(["account": awsAccount(account)]) }
            list.append(.object(resource))
        }
        if let declared = fields["resources"] {
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
        if let id = text(fields["requestParameters"]?["instanceId"]) { instanceIDs.append(id) }
        for container in ["requestParameters", "responseElements"] {
            for item in fields[container]?["instancesSet"]?["items"]?.arrayValue ?? [] {
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
}
