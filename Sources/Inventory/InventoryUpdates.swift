import OCSF

/// What events flowing through the pipeline say about the inventory: AWS Config configuration
/// items (OCSF Device Config State Change 5019, as `vigil-ingest` maps them) create, change and
/// delete assets; vulnerability findings (OCSF 2002) attach open vulnerabilities to assets and
/// resolve them. docs/inventory.md has the rules.
///
/// The changes are full asset states merged with what the store holds (a Config item does not
/// know an asset's owner from an import, a finding knows nothing but its vulnerabilities), ready
/// to be applied with ``InventoryStore/apply(_:)`` and published as they are.
public enum InventoryUpdates {
    /// Config item statuses that mean the resource is gone.
    static let deletedStatuses: Set<String> = ["ResourceDeleted", "ResourceDeletedNotRecorded"]

    /// The inventory changes `event` implies; empty for events that are not Config items or
    /// vulnerability findings, or that change nothing.
    public static func changes(for event: JSON, store: InventoryStore) throws(InventoryError) -> [InventoryChange] {
        guard let time = OCSFEvent.time(event) else { return [] }
        switch event["class_uid"]?.intValue {
        case 5019: return try configurationItem(event, time: time, store: store).map { [$0] } ?? []
        case 2002: return try finding(event, time: time, store: store).map { [$0] } ?? []
        default: return []
        }
    }

    // MARK: Configuration items

    /// The inventory kind of an AWS Config resource type: the common ones by name, any other
    /// `AWS::Service::Type` as `service_type` in lower case.
    public static func kind(configResourceType type: String) -> String {
        switch type {
        case "AWS::EC2::Instance": "instance"
        case "AWS::EC2::Volume": "volume"
        case "AWS::EC2::SecurityGroup": "security_group"
        case "AWS::EC2::NetworkInterface": "network_interface"
        case "AWS::S3::Bucket": "bucket"
        case "AWS::IAM::User": "iam_user"
        case "AWS::IAM::Role": "iam_role"
        case "AWS::Lambda::Function": "function"
        case "AWS::ElasticLoadBalancing::LoadBalancer", "AWS::ElasticLoadBalancingV2::LoadBalancer": "load_balancer"
        default:
            type.split(separator: ":").filter { !$0.isEmpty }.dropFirst().map { $0.lowercased() }.joined(separator: "_")
        }
    }

    static func configurationItem(_ event: JSON, time: Int64, store: InventoryStore) throws(InventoryError) -> InventoryChange? {
        guard let resource = event["resources"]?.arrayValue?.first, let resourceID = text(resource["uid"]),
              let type = text(resource["type"]) else { return nil }
        let status = text(event.value(at: "metadata.event_code"))
        if status == "ResourceNotRecorded" { return nil }
        let data = resource["data"]
        let kind = kind(configResourceType: type)
        // IAM users and roles are known by ARN elsewhere (CloudTrail, the AWS sync).
        let id = (kind == "iam_user" || kind == "iam_role") ? (text(data?["arn"]) ?? resourceID) : resourceID
        if let status, deletedStatuses.contains(status) {
            guard try store.asset(id: id) != nil else { return nil }
            return InventoryChange(.delete(id: id), time: time, source: "awsconfig")
        }
        let current = try store.asset(id: id)
        var asset = current ?? Asset(id: id, kind: kind)
        asset.kind = kind
        asset.account = text(resource.value(at: "owner.account.uid")) ?? text(event.value(at: "cloud.account.uid")) ?? asset.account
        asset.region = text(resource["region"]) ?? text(event.value(at: "cloud.region")) ?? asset.region
        var tags: [String: String] = [:]
        let tagObject: [String: JSON] = data?["tags"]?.objectValue ?? [:]
        for (key, value) in tagObject { if let value = value.scalarText { tags[key] = value } }
        asset = AssetTags.apply(tags, to: asset, keeping: true)
        if tags["Name"] == nil, let name = text(resource["name"]) { asset.name = name }
        if kind == "iam_user" { asset.user = text(resource["name"]) ?? asset.user }
        asset.privateIPs = strings(data?["private_ips"])
        asset.publicIPs = strings(data?["public_ips"])
        asset.networkInterfaces = strings(data?["network_interfaces"])
        asset.securityGroups = strings(data?["security_groups"])
        asset.imageID = text(data?["image_id"]) ?? (kind == "instance" ? nil : asset.imageID)
        // As the AWS sync decides it: reachable from the internet = has a public address.
        if ["instance", "network_interface", "load_balancer"].contains(kind) { asset.internetExposed = !asset.publicIPs.isEmpty }
        asset.firstSeen = current?.firstSeen
        asset.lastSeen = nil
        return InventoryChange(.upsert(asset), time: time, source: "awsconfig")
    }

    // MARK: Findings

    /// The severity words vulnerabilities are recorded with, by OCSF `severity_id`.
    static func severityName(_ id: Int64?) -> String {
        switch id {
        case 1: "informational"
        case 2: "low"
        case 3: "medium"
        case 4: "high"
        case 5, 6: "critical"
        default: "unknown"
        }
    }

    static func finding(_ event: JSON, time: Int64, store: InventoryStore) throws(InventoryError) -> InventoryChange? {
        guard let findingID = text(event.value(at: "finding_info.uid")) ?? OCSFEvent.uid(event) else { return nil }
        let statusID = event["status_id"]?.intValue
        let resolved = statusID == 3 || statusID == 4 || event["activity_id"]?.intValue == 3
        guard var asset = try target(event, store: store, creating: !resolved) else { return nil }
        let severity = severityName(event["severity_id"]?.intValue)
        let previous = asset.vulnerabilities.filter { $0.finding == findingID }
        var kept = asset.vulnerabilities.filter { $0.finding != findingID }
        if !resolved {
            var entries: [AssetVulnerability] = []
            for item in event["vulnerabilities"]?.arrayValue ?? [] {
                guard let id = text(item.value(at: "cve.uid")) ?? text(item["title"]) else { continue }
                let since = previous.first { $0.id == id }?.since ?? time
                entries.append(AssetVulnerability(id: id, severity: severity, exploitable: item["is_exploit_available"]?.boolValue ?? false,
                                                  finding: findingID, since: since))
            }
            if entries.isEmpty, let title = text(event.value(at: "finding_info.title")) {
                let since = previous.first?.since ?? time
                entries.append(AssetVulnerability(id: title, severity: severity, finding: findingID, since: since))
            }
            kept += entries
        }
        kept.sort { ($0.id, $0.finding ?? "") < ($1.id, $1.finding ?? "") }
        if kept == asset.vulnerabilities, try store.asset(id: asset.id) != nil { return nil }
        asset.vulnerabilities = kept
        asset.lastSeen = nil
        return InventoryChange(.upsert(asset), time: time, source: "finding")
    }

    /// The asset a finding is about: an instance id (device or resource), else the asset holding
    /// the device's IP now, else the first resource's uid. An unknown target becomes a new asset
    /// (kind `instance` for an instance id, `host` for a scanned address, else the resource
    /// type in lower case) when `creating`.
    static func target(_ event: JSON, store: InventoryStore, creating: Bool) throws(InventoryError) -> Asset? {
        let resources = event["resources"]?.arrayValue ?? []
        var instanceID = text(event.value(at: "device.instance_uid")).flatMap { AssetJoin.isInstanceID($0) ? $0 : nil }
        if instanceID == nil {
            instanceID = resources.lazy.compactMap { text($0["uid"]).flatMap(AssetJoin.trailingInstanceID) }.first
        }
        if let instanceID, let found = try store.asset(id: instanceID) { return found }
        let ip = text(event.value(at: "device.ip"))
        if instanceID == nil, let ip, let found = try store.lookup(ip: ip) { return found }
        let first = resources.first
        if instanceID == nil, let uid = text(first?["uid"]), let found = try store.asset(id: uid) { return found }
        guard creating, let id = instanceID ?? text(first?["uid"]) else { return nil }
        let type = text(first?["type"])
        let kind = instanceID != nil ? "instance" : type == "Host" ? "host" : (type?.lowercased() ?? "host")
        var asset = Asset(id: id, kind: kind)
        asset.account = text(event.value(at: "cloud.account.uid")) ?? text(first?.value(at: "owner.account.uid"))
        asset.region = text(first?["region"]) ?? text(event.value(at: "cloud.region"))
        asset.name = text(first?["name"]) ?? text(event.value(at: "device.hostname"))
        if let ip, kind == "host" || kind == "instance" { asset.privateIPs = [ip] }
        return asset
    }

    private static func text(_ value: JSON?) -> String? {
        guard let value, let text = value.scalarText, !text.isEmpty, value.boolValue == nil else { return nil }
        return text
    }

    private static func strings(_ value: JSON?) -> [String] {
        (value?.arrayValue ?? []).compactMap { text($0) }
    }
}
