import OCSF

/// The mapping of AWS Config messages to OCSF 1.3: configuration items to Device Config State
/// Change 5019, compliance changes to Compliance Finding 2003. docs/sources.md has the field
/// tables; keep them in step.
enum AWSConfigMapping {
    /// What surrounds the item being mapped: the Config message (minus the item), the envelope
    /// it came in, and the name of the log it belongs to.
    struct Context {
        /// The Config message's members (`configurationItemDiff`, `notificationCreationTime`, ...).
        var message: [String: JSON] = [:]
        /// Envelope fields kept for `unmapped`, keyed `sns`, `eventBridge`, `configRule`, `deliveryFile`.
        var envelope: [String: JSON] = [:]
        /// `metadata.log_name`: the message type, or `ConfigurationSnapshot`/`ConfigurationHistory`.
        var logName: String?
    }

    /// Configuration item keys consumed by the mapping (both spellings: delivery files and
    /// notifications since 1.2 say `ARN`/`awsAccountId`, the 1.0 notification `arn`/`accountId`).
    static let mappedItemKeys: Set<String> = [
        "configurationItemCaptureTime", "awsAccountId", "accountId", "awsRegion", "resourceType",
        "resourceId", "resourceName", "ARN", "arn", "configurationItemStatus", "availabilityZone",
    ]

    /// Message keys that are not context: the item itself and the type (already the log name).
    static let messageSkippedKeys: Set<String> = [
        "configurationItem", "configurationItemSummary", "messageType",
    ]

    /// `availabilityZone` values that name no zone.
    static let noZone: Set<String> = ["Not Applicable", "Multiple Availability Zones", "Regional"]

    // MARK: Configuration items

    static func configurationItemEvent(_ item: JSON, context: Context) -> Result<JSON, EntryProblem> {
        guard case .object(let fields) = item else {
            return .failure(EntryProblem(code: NormalizeFailure.Code.invalidEntry, message: "the configuration item is not a JSON object"))
        }
        guard let resourceType = text(fields["resourceType"]) else {
            return .failure(EntryProblem(code: NormalizeFailure.Code.missingField, message: "resourceType is missing or not a string"))
        }
        guard let resourceID = text(fields["resourceId"]) else {
            return .failure(EntryProblem(code: NormalizeFailure.Code.missingField, message: "resourceId is missing or not a string"))
        }
        let time: (millis: Int64, original: String)
        switch itemTime(fields, message: context.message) {
        case .success(let found): time = found
        case .failure(let problem): return .failure(problem)
        }

        let account = text(fields["awsAccountId"]) ?? text(fields["accountId"]) ?? text(context.message["awsAccountId"])
        let region = text(fields["awsRegion"])
        let arn = text(fields["ARN"]) ?? text(fields["arn"])
        let name = text(fields["resourceName"])
        let status = text(fields["configurationItemStatus"])
        let stateID = text(fields["configurationStateId"]) ?? text(fields["configurationStateID"]) ?? ""
        let zone = text(fields["availabilityZone"]).flatMap { noZone.contains($0) ? nil : $0 }

        // Re-delivery of the same item (notification, then history file) yields the same uid.
        let uid = StableID.hash(["awsconfig", account ?? "", region ?? "", resourceType, resourceID, stateID, String(time.millis)])
        // OCSF 5019's activities (Log, Collect) say how the state was learned, not what happened
        // to the resource; the item status is the useful part, so it is the source-specific activity.
        let activity: (Int64, String) = status.map { (99, $0) } ?? (0, "Unknown")
        var event = OCSFEvent.base(
            class: .deviceConfigStateChange, activityID: activity.0, activityName: activity.1, time: time.millis,
            severity: .informational, uid: uid, product: "AWS Config", vendor: "AWS",
            logName: context.logName, originalTime: time.original
        )
        event.set("metadata.profiles", ["cloud"])
        if let status { event.set("metadata.event_code", .string(status)) }

        var cloud: [String: JSON] = ["provider": "AWS"]
        cloud["region"] = region.map(JSON.string)
        cloud["zone"] = zone.map(JSON.string)
        if let account { cloud["account"] = awsAccount(account) }
        event["cloud"] = .object(cloud)

        let configuration = parsedConfiguration(fields["configuration"])
        let tags = fields["tags"]?.objectValue ?? [:]
        let relationships = (fields["relationships"]?.arrayValue ?? []).compactMap(relationship)
        let data = enrichmentData(resourceType: resourceType, resourceID: resourceID, configuration: configuration,
                                  relationships: relationships, tags: tags, arn: arn, zone: zone)

        var resource: [String: JSON] = ["uid": .string(resourceID), "type": .string(resourceType)]
        resource["name"] = name.map(JSON.string)
        resource["region"] = region.map(JSON.string)
        if let account { resource["owner"] = .object(["account": awsAccount(account)]) }
        if !data.isEmpty { resource["data"] = .object(data) }
        event["resources"] = [.object(resource)]
        event["device"] = .object(device(resourceType: resourceType, resourceID: resourceID, name: name,
                                         region: region, tags: tags, data: data, configuration: configuration))

        var unmapped = fields.filter { !(mappedItemKeys.contains($0.key) && text($0.value) != nil) }
        if fields["tags"]?.objectValue != nil { unmapped["tags"] = nil }
        if fields["relationships"]?.arrayValue?.count == relationships.count { unmapped["relationships"] = nil }
        for (key, value) in context.message where !messageSkippedKeys.contains(key) && unmapped[key] == nil {
            unmapped[key] = value
        }
        for (key, value) in context.envelope { unmapped[key] = value }
        if !unmapped.isEmpty { event["unmapped"] = .object(unmapped) }
        return .success(event)
    }

    /// `configurationItemCaptureTime`; when absent or null, the message's creation time
    /// (`notificationCreationTime`, or `NotificationCreateTime` in the 1.0 form). A present but
    /// unparseable capture time is an error rather than a reason to look further.
    static func itemTime(_ fields: [String: JSON], message: [String: JSON]) -> Result<(millis: Int64, original: String), EntryProblem> {
        var candidates: [(String, JSON?)] = [("configurationItemCaptureTime", fields["configurationItemCaptureTime"])]
        candidates.append(("notificationCreationTime", message["notificationCreationTime"]))
        candidates.append(("NotificationCreateTime", message["NotificationCreateTime"]))
        for (field, value) in candidates {
            guard let value, value != .null else { continue }
            guard let original = value.stringValue, let millis = Timestamp.parseISO8601(original) else {
                return .failure(EntryProblem(code: NormalizeFailure.Code.invalidTime, message: "\(field) is not an RFC 3339 timestamp"))
            }
            return .success((millis, original))
        }
        return .failure(EntryProblem(code: NormalizeFailure.Code.invalidTime, message: "configurationItemCaptureTime is missing"))
    }

    /// `configuration` as an object: delivery files and notifications carry one, the Config API
    /// (and files exported from it) a JSON string.
    static func parsedConfiguration(_ value: JSON?) -> [String: JSON] {
        switch value {
        case .object(let members)?: return members
        case .string(let text)?:
            return ((try? JSON.parse(Array(text.utf8)))?.objectValue) ?? [:]
        default: return [:]
        }
    }

    /// One related resource as `{uid, type, name, relationship}`; `nil` without a resource id.
    static func relationship(_ value: JSON) -> JSON? {
        guard let uid = text(value["resourceId"]) else { return nil }
        var out: [String: JSON] = ["uid": .string(uid)]
        out["type"] = text(value["resourceType"]).map(JSON.string)
        out["name"] = text(value["resourceName"]).map(JSON.string)
        // Notifications say `name`, delivery files and the API `relationshipName`.
        out["relationship"] = (text(value["name"]) ?? text(value["relationshipName"])).map(JSON.string)
        return .object(out)
    }

    /// What enrichment and detection need without digging into `configuration`: the attached
    /// instance, image, subnet, VPC, addresses, security groups and ENIs (from the configuration,
    /// then from relationships), plus the ARN, zone, tags and relationships themselves. Keys follow
    /// the inventory's asset columns.
    static func enrichmentData(resourceType: String, resourceID: String, configuration c: [String: JSON],
                               relationships: [JSON], tags: [String: JSON], arn: String?, zone: String?) -> [String: JSON] {
        var privateIPs = OrderedTexts(), publicIPs = OrderedTexts(), groups = OrderedTexts(), interfaces = OrderedTexts()
        func addresses(_ object: JSON?) {
            privateIPs.add(text(object?["privateIpAddress"]))
            publicIPs.add(text(object?["publicIpAddress"]))
            publicIPs.add(text(object?["association"]?["publicIp"]))
            for entry in object?["privateIpAddresses"]?.arrayValue ?? [] {
                privateIPs.add(text(entry["privateIpAddress"]))
                publicIPs.add(text(entry["association"]?["publicIp"]))
            }
            for key in ["securityGroups", "groups"] {
                for group in object?[key]?.arrayValue ?? [] { groups.add(text(group["groupId"])) }
            }
        }
        let configuration = JSON.object(c)
        addresses(configuration)
        publicIPs.add(text(c["publicIp"]))  // an Elastic IP's own address
        for interface in c["networkInterfaces"]?.arrayValue ?? [] {
            interfaces.add(text(interface["networkInterfaceId"]))
            addresses(interface)
        }
        var related: [String: [String]] = [:]
        for item in relationships {
            guard let type = item["type"]?.stringValue, let uid = item["uid"]?.stringValue else { continue }
            related[type.lowercased(), default: []].append(uid)
        }
        for id in related["aws::ec2::securitygroup"] ?? [] where resourceType != "AWS::EC2::SecurityGroup" { groups.add(id) }
        for id in related["aws::ec2::networkinterface"] ?? [] where resourceType != "AWS::EC2::NetworkInterface" { interfaces.add(id) }

        var data: [String: JSON] = [:]
        data["arn"] = arn.map(JSON.string)
        data["availability_zone"] = zone.map(JSON.string)
        var instance: String?
        if resourceType == "AWS::EC2::Instance" {
            instance = resourceID
        } else {
            let attached = (c["attachments"]?.arrayValue ?? []).compactMap { text($0["instanceId"]) }
            instance = text(c["instanceId"]) ?? text(c["attachment"]?["instanceId"]) ?? (attached.count == 1 ? attached[0] : nil)
        }
        data["instance_id"] = instance.map(JSON.string)
        data["image_id"] = text(c["imageId"]).map(JSON.string)
        data["subnet_uid"] = (text(c["subnetId"]) ?? related["aws::ec2::subnet"]?.first).map(JSON.string)
        data["vpc_uid"] = (text(c["vpcId"]) ?? related["aws::ec2::vpc"]?.first).map(JSON.string)
        if !privateIPs.items.isEmpty { data["private_ips"] = .array(privateIPs.items.map(JSON.string)) }
        if !publicIPs.items.isEmpty { data["public_ips"] = .array(publicIPs.items.map(JSON.string)) }
        if !groups.items.isEmpty { data["security_groups"] = .array(groups.items.map(JSON.string)) }
        if !interfaces.items.isEmpty { data["network_interfaces"] = .array(interfaces.items.map(JSON.string)) }
        if !tags.isEmpty { data["tags"] = .object(tags) }
        if !relationships.isEmpty { data["relationships"] = .array(relationships) }
        return data
    }

    /// OCSF 5019 requires the device whose state changed. An EC2 instance is one (type Virtual,
    /// with the fields enrichment fills); any other resource is described as a device of type
    /// Other whose `type` is the Config resource type, so the event stays valid without
    /// pretending a security group is a host.
    static func device(resourceType: String, resourceID: String, name: String?, region: String?,
                       tags: [String: JSON], data: [String: JSON], configuration c: [String: JSON]) -> [String: JSON] {
        var device: [String: JSON] = [:]
        device["region"] = region.map(JSON.string)
        guard resourceType == "AWS::EC2::Instance" else {
            device["type_id"] = 99
            device["type"] = .string(resourceType)
            device["uid"] = .string(resourceID)
            device["name"] = name.map(JSON.string)
            return device
        }
        device["type_id"] = 6
        device["type"] = "Virtual"
        device["instance_uid"] = .string(resourceID)
        device["name"] = (text(tags["Name"]) ?? name).map(JSON.string)
        device["hostname"] = text(c["privateDnsName"]).map(JSON.string)
        device["ip"] = data["private_ips"]?.arrayValue?.first ?? data["public_ips"]?.arrayValue?.first
        device["subnet_uid"] = data["subnet_uid"]
        device["vpc_uid"] = data["vpc_uid"]
        if let image = data["image_id"] { device["image"] = .object(["uid": image]) }
        return device
    }

    // MARK: Compliance

    /// Compliance types: OCSF `compliance.status_id` and the finding's `status_id`.
    static func complianceStatus(_ type: String?) -> (id: Int64, name: String) {
        switch type {
        case "COMPLIANT": (1, "Pass")
        case "INSUFFICIENT_DATA": (2, "Warning")
        case "NON_COMPLIANT": (3, "Fail")
        case nil: (0, "Unknown")
        case let other?: (99, other)
        }
    }

    static func complianceEvent(_ context: Context) -> Result<JSON, EntryProblem> {
        let message = context.message
        let newResult = message["newEvaluationResult"]
        let qualifier = newResult?["evaluationResultIdentifier"]?["evaluationResultQualifier"]
        guard let resourceType = text(message["resourceType"]) ?? text(qualifier?["resourceType"]),
              let resourceID = text(message["resourceId"]) ?? text(qualifier?["resourceId"]) else {
            return .failure(EntryProblem(code: NormalizeFailure.Code.missingField, message: "resourceType or resourceId is missing"))
        }
        guard let ruleName = text(message["configRuleName"]) ?? text(qualifier?["configRuleName"]) else {
            return .failure(EntryProblem(code: NormalizeFailure.Code.missingField, message: "configRuleName is missing"))
        }
        guard newResult?.objectValue != nil else {
            return .failure(EntryProblem(code: NormalizeFailure.Code.missingField, message: "newEvaluationResult is missing or not an object"))
        }
        // When the evaluation was recorded is when compliance changed; the notification follows.
        var time: (millis: Int64, original: String)?
        for (field, value) in [("newEvaluationResult.resultRecordedTime", newResult?["resultRecordedTime"]),
                               ("notificationCreationTime", message["notificationCreationTime"])] {
            guard let value, value != .null else { continue }
            guard let original = value.stringValue, let millis = Timestamp.parseISO8601(original) else {
                return .failure(EntryProblem(code: NormalizeFailure.Code.invalidTime, message: "\(field) is not an RFC 3339 timestamp"))
            }
            time = (millis, original)
            break
        }
        guard let time else {
            return .failure(EntryProblem(code: NormalizeFailure.Code.invalidTime, message: "resultRecordedTime and notificationCreationTime are missing"))
        }

        let account = text(message["awsAccountId"])
        let region = text(message["awsRegion"])
        let ruleARN = text(message["configRuleARN"]) ?? text(message["configRuleArn"])
        let newType = text(newResult?["complianceType"])
        let hadOld = message["oldEvaluationResult"]?.objectValue != nil
        let compliance = complianceStatus(newType)

        // A first evaluation opens the finding; becoming compliant (or not applicable) closes it.
        let activity: (Int64, String)
        if !hadOld {
            activity = (1, "Create")
        } else if newType == "COMPLIANT" || newType == "NOT_APPLICABLE" {
            activity = (3, "Close")
        } else {
            activity = (2, "Update")
        }
        let ordering = text(newResult?["evaluationResultIdentifier"]?["orderingTimestamp"]) ?? time.original
        let uid = StableID.hash(["awsconfig-compliance", account ?? "", region ?? "", ruleARN ?? ruleName,
                                 resourceType, resourceID, ordering, newType ?? ""])
        var event = OCSFEvent.base(
            class: .complianceFinding, activityID: activity.0, activityName: activity.1, time: time.millis,
            severity: .informational, uid: uid, product: "AWS Config", vendor: "AWS",
            logName: context.logName, originalTime: time.original
        )
        event.set("metadata.profiles", ["cloud"])
        event.set("metadata.event_code", newType.map(JSON.string))
        // Finding status: a failing resource is a new finding, a passing one is resolved.
        let findingStatus: (Int64, String) = switch newType {
        case "NON_COMPLIANT": (1, "New")
        case "COMPLIANT", "NOT_APPLICABLE": (4, "Resolved")
        default: (0, "Unknown")
        }
        event["status_id"] = .int(findingStatus.0)
        event["status"] = .string(findingStatus.1)

        var info: [String: JSON] = [
            // Stable per rule and resource, so every change of the same finding shares it.
            "uid": .string(StableID.hash(["awsconfig-compliance", account ?? "", region ?? "", ruleARN ?? ruleName, resourceType, resourceID])),
            "title": .string("\(resourceType) \(resourceID) is \(newType ?? "of unknown compliance") with \(ruleName)"),
            "types": ["AWS Config rule evaluation"],
            "modified_time": .int(time.millis),
        ]
        var analytic: [String: JSON] = ["name": .string(ruleName), "type_id": 1, "type": "Rule"]
        analytic["uid"] = ruleARN.map(JSON.string)
        info["analytic"] = .object(analytic)
        event["finding_info"] = .object(info)

        var complianceObject: [String: JSON] = [
            "standards": ["AWS Config"],
            "control": .string(ruleName),
            "status_id": .int(compliance.id),
            "status": .string(compliance.name),
        ]
        complianceObject["status_code"] = newType.map(JSON.string)
        complianceObject["status_detail"] = text(newResult?["annotation"]).map(JSON.string)
        event["compliance"] = .object(complianceObject)

        var resource: [String: JSON] = ["uid": .string(resourceID), "type": .string(resourceType)]
        resource["region"] = region.map(JSON.string)
        if let account { resource["owner"] = .object(["account": awsAccount(account)]) }
        event["resources"] = [.object(resource)]

        var cloud: [String: JSON] = ["provider": "AWS"]
        cloud["region"] = region.map(JSON.string)
        if let account { cloud["account"] = awsAccount(account) }
        event["cloud"] = .object(cloud)

        let consumed: Set<String> = ["messageType", "awsAccountId", "awsRegion", "resourceType", "resourceId",
                                     "configRuleName", "configRuleARN", "configRuleArn"]
        var unmapped = message.filter { !(consumed.contains($0.key) && text($0.value) != nil) }
        unmapped["messageType"] = nil
        for (key, value) in context.envelope { unmapped[key] = value }
        if !unmapped.isEmpty { event["unmapped"] = .object(unmapped) }
        return .success(event)
    }

    // MARK: Helpers

    /// An OCSF account object for an AWS account id (`type_id` 10 is "AWS Account").
    static func awsAccount(_ uid: String) -> JSON {
        .object(["uid": .string(uid), "type_id": 10, "type": "AWS Account"])
    }

    /// A non-empty scalar as text (ids sometimes arrive as numbers); `nil` for anything else.
    static func text(_ value: JSON?) -> String? {
        guard let value, let scalar = value.scalarText, !scalar.isEmpty else { return nil }
        return scalar
    }

    /// Distinct non-empty strings in first-seen order.
    struct OrderedTexts {
        private(set) var items: [String] = []
        private var seen: Set<String> = []

        mutating func add(_ value: String?) {
            guard let value, !value.isEmpty, seen.insert(value).inserted else { return }
            items.append(value)
        }
    }
}
