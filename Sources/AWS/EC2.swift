import Foundation

// EC2 (Query protocol, API version 2016-11-15): the calls response playbooks need to look at an
// instance, isolate it behind a security group that allows nothing, and preserve its disks as
// tagged snapshots, plus `runInstances` for tests and tools.
//
// EC2 lists are `<xxxSet><item>...</item></xxxSet>` and nest (`reservationSet/item/instancesSet/
// item/groupSet/item`), so parsing walks direct children only; a depth-first `find` would pick
// up an interface's groups as the instance's.

/// A network interface of an instance and the security groups on that interface.
public struct EC2NetworkInterface: Sendable, Equatable {
    /// The interface id (`eni-...`).
    public var id: String
    /// The security groups on this interface, which can differ from the instance's list when
    /// the instance has several interfaces.
    public var groupIDs: [String]

    /// Makes an interface entry.
    public init(id: String, groupIDs: [String]) {
        self.id = id
        self.groupIDs = groupIDs
    }
}

/// An EC2 instance, reduced to what detection context and containment need.
public struct EC2Instance: Sendable, Equatable {
    /// The instance id (`i-...`).
    public var instanceID: String
    /// The state name: `pending`, `running`, `stopping`, `stopped`, `shutting-down`, `terminated`.
    public var state: String
    /// The VPC, when the instance is in one.
    public var vpcID: String?
    /// The subnet, when the instance is in a VPC.
    public var subnetID: String?
    /// The AMI it was launched from.
    public var imageID: String?
    /// The primary private IPv4 address.
    public var privateIP: String?
    /// The public IPv4 address, when it has one.
    public var publicIP: String?
    /// The instance's security groups (its `groupSet`).
    public var securityGroupIDs: [String]
    /// Its network interfaces, each with its own security groups.
    public var networkInterfaces: [EC2NetworkInterface]
    /// The EBS volumes attached through its block device mapping (root volume included).
    public var volumeIDs: [String]
    /// Its tags.
    public var tags: [String: String]

    /// Makes an instance description.
    public init(instanceID: String, state: String, vpcID: String? = nil, subnetID: String? = nil, imageID: String? = nil,
                privateIP: String? = nil, publicIP: String? = nil, securityGroupIDs: [String] = [],
                networkInterfaces: [EC2NetworkInterface] = [], volumeIDs: [String] = [], tags: [String: String] = [:]) {
        self.instanceID = instanceID
        self.state = state
        self.vpcID = vpcID
        self.subnetID = subnetID
        self.imageID = imageID
        self.privateIP = privateIP
        self.publicIP = publicIP
        self.securityGroupIDs = securityGroupIDs
        self.networkInterfaces = networkInterfaces
        self.volumeIDs = volumeIDs
        self.tags = tags
    }

    /// From an `instancesSet` item; `nil` without an `instanceId`.
    init?(node: XMLNode) {
        guard let id = node.text("instanceId") else { return nil }
        self.init(
            instanceID: id,
            state: node.child("instanceState")?.text("name") ?? "",
            vpcID: node.text("vpcId"),
            subnetID: node.text("subnetId"),
            imageID: node.text("imageId"),
            privateIP: node.text("privateIpAddress"),
            publicIP: node.text("ipAddress"),
            securityGroupIDs: node.items("groupSet").compactMap { $0.text("groupId") },
            networkInterfaces: node.items("networkInterfaceSet").compactMap { interface in
                interface.text("networkInterfaceId").map {
                    EC2NetworkInterface(id: $0, groupIDs: interface.items("groupSet").compactMap { $0.text("groupId") })
                }
            },
            volumeIDs: node.items("blockDeviceMapping").compactMap { $0.child("ebs")?.text("volumeId") },
            tags: node.tagSet)
    }

    /// The instances of a `DescribeInstancesResponse` (across all its reservations) and its
    /// `nextToken`.
    static func page(_ root: XMLNode) -> AWSPage<EC2Instance> {
        let instances = root.items("reservationSet").flatMap { $0.items("instancesSet") }.compactMap(EC2Instance.init(node:))
        return AWSPage(items: instances, nextToken: root.text("nextToken"))
    }

    /// Parses a `DescribeInstancesResponse` document; throws `invalid_response` when it is not one.
    public static func parseDescribeInstances(_ body: [UInt8]) throws(AWSError) -> AWSPage<EC2Instance> {
        page(try AWSClient.queryResult(body, action: "DescribeInstances"))
    }

    /// Parses a `RunInstancesResponse` document (one reservation, its `instancesSet` at the
    /// top); throws `invalid_response` when it is not one.
    public static func parseRunInstances(_ body: [UInt8]) throws(AWSError) -> [EC2Instance] {
        try AWSClient.queryResult(body, action: "RunInstances").items("instancesSet").compactMap(EC2Instance.init(node:))
    }
}

/// An EC2 security group.
public struct EC2SecurityGroup: Sendable, Equatable {
    /// The group id (`sg-...`).
    public var groupID: String
    /// The group name, unique within its VPC.
    public var name: String
    /// The VPC it belongs to.
    public var vpcID: String?
    /// Its description.
    public var description: String
    /// Its tags.
    public var tags: [String: String]
    /// How many inbound permissions it has (0: nothing can reach members through this group).
    public var ingressPermissionCount: Int
    /// How many outbound permissions it has (0 once `revokeAllEgress` has run: an isolation group).
    public var egressPermissionCount: Int

    /// Makes a security group description.
    public init(groupID: String, name: String, vpcID: String? = nil, description: String = "", tags: [String: String] = [:],
                ingressPermissionCount: Int = 0, egressPermissionCount: Int = 0) {
        self.groupID = groupID
        self.name = name
        self.vpcID = vpcID
        self.description = description
        self.tags = tags
        self.ingressPermissionCount = ingressPermissionCount
        self.egressPermissionCount = egressPermissionCount
    }

    /// From a `securityGroupInfo` item; `nil` without a `groupId`.
    init?(node: XMLNode) {
        guard let id = node.text("groupId") else { return nil }
        self.init(groupID: id, name: node.text("groupName") ?? "", vpcID: node.text("vpcId"),
                  description: node.text("groupDescription") ?? "", tags: node.tagSet,
                  ingressPermissionCount: node.items("ipPermissions").count,
                  egressPermissionCount: node.items("ipPermissionsEgress").count)
    }

    /// The groups of a `DescribeSecurityGroupsResponse` and its `nextToken`.
    static func page(_ root: XMLNode) -> AWSPage<EC2SecurityGroup> {
        AWSPage(items: root.items("securityGroupInfo").compactMap(EC2SecurityGroup.init(node:)), nextToken: root.text("nextToken"))
    }

    /// Parses a `DescribeSecurityGroupsResponse` document; throws `invalid_response` when it is not one.
    public static func parseDescribeSecurityGroups(_ body: [UInt8]) throws(AWSError) -> AWSPage<EC2SecurityGroup> {
        page(try AWSClient.queryResult(body, action: "DescribeSecurityGroups"))
    }
}

/// An EBS snapshot.
public struct EC2Snapshot: Sendable, Equatable {
    /// The snapshot id (`snap-...`).
    public var snapshotID: String
    /// The volume it was taken from.
    public var volumeID: String?
    /// `pending`, `completed`, `error`, `recoverable` or `recovering`.
    public var state: String
    /// Its description.
    public var description: String
    /// When it was started.
    public var startTime: Date?
    /// Its tags.
    public var tags: [String: String]

    /// Makes a snapshot description.
    public init(snapshotID: String, volumeID: String? = nil, state: String, description: String = "",
                startTime: Date? = nil, tags: [String: String] = [:]) {
        self.snapshotID = snapshotID
        self.volumeID = volumeID
        self.state = state
        self.description = description
        self.startTime = startTime
        self.tags = tags
    }

    /// From a `snapshotSet` item; `nil` without a `snapshotId`.
    init?(node: XMLNode) {
        guard let id = node.text("snapshotId") else { return nil }
        self.init(snapshotID: id, volumeID: node.text("volumeId"), state: node.text("status") ?? "",
                  description: node.text("description") ?? "", startTime: node.text("startTime").flatMap(AWSTimestamp.parse),
                  tags: node.tagSet)
    }

    /// The snapshots of a `DescribeSnapshotsResponse` and its `nextToken`.
    static func page(_ root: XMLNode) -> AWSPage<EC2Snapshot> {
        AWSPage(items: root.items("snapshotSet").compactMap(EC2Snapshot.init(node:)), nextToken: root.text("nextToken"))
    }

    /// Parses a `DescribeSnapshotsResponse` document; throws `invalid_response` when it is not one.
    public static func parseDescribeSnapshots(_ body: [UInt8]) throws(AWSError) -> AWSPage<EC2Snapshot> {
        page(try AWSClient.queryResult(body, action: "DescribeSnapshots"))
    }
}

extension AWSClient {
    /// The EC2 API version every call is made with.
    public static let ec2APIVersion = "2016-11-15"

    /// One EC2 action.
    func ec2(_ action: String, _ parameters: [(name: String, value: String)] = []) async throws(AWSError) -> XMLNode {
        try await query(service: "ec2", action: action, version: Self.ec2APIVersion, parameters: parameters)
    }

    /// The instances with these ids (all instances when `ids` is empty), narrowed by `filters`
    /// (`["tag:env": ["prod"]]`), every page followed.
    ///
    /// An id that does not exist fails the whole call with `InvalidInstanceID.NotFound`, as EC2
    /// does. `pageSize` (5 to 1000) is sent only without ids, since EC2 refuses `MaxResults`
    /// together with instance ids.
    public func describeInstances(ids: [String] = [], filters: [String: [String]] = [:],
                                  pageSize: Int? = nil) async throws(AWSError) -> [EC2Instance] {
        var base = QueryParameters.list("InstanceId", ids) + QueryParameters.filters(filters)
        if ids.isEmpty, let pageSize { base.append(("MaxResults", String(pageSize))) }
        return try await allPages { (token: String?) async throws(AWSError) -> AWSPage<EC2Instance> in
            EC2Instance.page(try await ec2("DescribeInstances", base + (token.map { [("NextToken", $0)] } ?? [])))
        }
    }

    /// The security groups matching `filters` (`["group-name": ["vigil-isolation"], "vpc-id":
    /// [vpc]]`) and, when given, with these ids; every page followed.
    public func describeSecurityGroups(filters: [String: [String]] = [:], ids: [String] = []) async throws(AWSError) -> [EC2SecurityGroup] {
        let base = QueryParameters.list("GroupId", ids) + QueryParameters.filters(filters)
        return try await allPages { (token: String?) async throws(AWSError) -> AWSPage<EC2SecurityGroup> in
            EC2SecurityGroup.page(try await ec2("DescribeSecurityGroups", base + (token.map { [("NextToken", $0)] } ?? [])))
        }
    }

    /// Creates a security group (in `vpcID`, else the default VPC) born with `tags`, and returns
    /// its id. A new group allows no inbound traffic but all outbound; `revokeAllEgress` closes
    /// that. A name already used in the VPC fails with `InvalidGroup.Duplicate`.
    public func createSecurityGroup(name: String, description: String, vpcID: String? = nil,
                                    tags: [String: String] = [:]) async throws(AWSError) -> String {
        var parameters: [(name: String, value: String)] = [("GroupName", name), ("GroupDescription", description)]
        if let vpcID { parameters.append(("VpcId", vpcID)) }
        parameters += QueryParameters.tagSpecification(resourceType: "security-group", tags)
        let root = try await ec2("CreateSecurityGroup", parameters)
        guard let id = root.text("groupId") else {
            throw AWSError(code: "invalid_response", message: "CreateSecurityGroup answer has no groupId")
        }
        return id
    }

    /// Revokes the allow-all outbound rules EC2 gives every new group (IPv4 `0.0.0.0/0` and,
    /// in IPv6 VPCs, `::/0`), so that together with no inbound rules the group allows nothing.
    ///
    /// Each rule is revoked in its own request because a missing rule fails the request it is
    /// in; `InvalidPermission.NotFound` (already revoked, or no IPv6) is not an error, which
    /// makes this safe to repeat. Other egress rules someone added are left alone: check
    /// `egressPermissionCount` before trusting a group found by name.
    public func revokeAllEgress(groupID: String) async throws(AWSError) {
        let rules: [[(name: String, value: String)]] = [
            [("IpPermissions.1.IpProtocol", "-1"), ("IpPermissions.1.IpRanges.1.CidrIp", "0.0.0.0/0")],
            [("IpPermissions.1.IpProtocol", "-1"), ("IpPermissions.1.Ipv6Ranges.1.CidrIpv6", "::/0")],
        ]
        for rule in rules {
            do throws(AWSError) {
                _ = try await ec2("RevokeSecurityGroupEgress", [("GroupId", groupID)] + rule)
            } catch {
                if error.code != "InvalidPermission.NotFound" { throw error }
            }
        }
    }

    /// Replaces the instance's security groups with exactly `groupIDs` (ModifyInstanceAttribute).
    ///
    /// EC2 refuses this for an instance with several network interfaces; use
    /// `setNetworkInterfaceSecurityGroups` on each of its interfaces then. An empty list is
    /// refused here with `MissingParameter`, as an instance must keep at least one group.
    public func setInstanceSecurityGroups(instanceID: String, groupIDs: [String]) async throws(AWSError) {
        guard !groupIDs.isEmpty else {
            throw AWSError(code: "MissingParameter", message: "an instance needs at least one security group")
        }
        _ = try await ec2("ModifyInstanceAttribute", [("InstanceId", instanceID)] + QueryParameters.list("GroupId", groupIDs))
    }

    /// Replaces one network interface's security groups with exactly `groupIDs`
    /// (ModifyNetworkInterfaceAttribute): isolation for instances with several interfaces.
    public func setNetworkInterfaceSecurityGroups(networkInterfaceID: String, groupIDs: [String]) async throws(AWSError) {
        guard !groupIDs.isEmpty else {
            throw AWSError(code: "MissingParameter", message: "a network interface needs at least one security group")
        }
        _ = try await ec2("ModifyNetworkInterfaceAttribute",
                          [("NetworkInterfaceId", networkInterfaceID)] + QueryParameters.list("SecurityGroupId", groupIDs))
    }

    /// Starts a snapshot of the volume, born with `tags`, and returns its id. The snapshot is
    /// `pending` until EBS finishes; `describeSnapshots` shows its state.
    public func createSnapshot(volumeID: String, description: String, tags: [String: String] = [:]) async throws(AWSError) -> String {
        var parameters: [(name: String, value: String)] = [("VolumeId", volumeID)]
        if !description.isEmpty { parameters.append(("Description", description)) }
        parameters += QueryParameters.tagSpecification(resourceType: "snapshot", tags)
        let root = try await ec2("CreateSnapshot", parameters)
        guard let id = root.text("snapshotId") else {
            throw AWSError(code: "invalid_response", message: "CreateSnapshot answer has no snapshotId")
        }
        return id
    }

    /// This account's own snapshots (`Owner=self`: never the public ones) matching `filters`
    /// (`["tag:vigil:command": [id]]`), every page followed.
    public func describeSnapshots(filters: [String: [String]] = [:]) async throws(AWSError) -> [EC2Snapshot] {
        let base = [("Owner.1", "self")] + QueryParameters.filters(filters)
        return try await allPages { (token: String?) async throws(AWSError) -> AWSPage<EC2Snapshot> in
            EC2Snapshot.page(try await ec2("DescribeSnapshots", base + (token.map { [("NextToken", $0)] } ?? [])))
        }
    }

    /// Adds (or overwrites) `tags` on every resource in `resourceIDs`; nothing is sent when
    /// either is empty, since EC2 requires at least one of each.
    public func createTags(resourceIDs: [String], tags: [String: String]) async throws(AWSError) {
        guard !resourceIDs.isEmpty, !tags.isEmpty else { return }
        _ = try await ec2("CreateTags", QueryParameters.list("ResourceId", resourceIDs) + QueryParameters.tags("Tag", tags))
    }

    /// Terminates the instances (tests and tools; responses never terminate anything). EC2
    /// keeps reporting them, in state `terminated`, for a while afterwards.
    public func terminateInstances(ids: [String]) async throws(AWSError) {
        guard !ids.isEmpty else { return }
        _ = try await ec2("TerminateInstances", QueryParameters.list("InstanceId", ids))
    }

    /// Launches `count` instances (all or none) and returns them as launched (`pending`); for
    /// tests and tools, responses never launch anything.
    public func runInstances(imageID: String, count: Int = 1, securityGroupIDs: [String] = [], subnetID: String? = nil,
                             instanceType: String = "t3.micro", tags: [String: String] = [:]) async throws(AWSError) -> [EC2Instance] {
        var parameters: [(name: String, value: String)] = [
            ("ImageId", imageID), ("MinCount", String(count)), ("MaxCount", String(count)), ("InstanceType", instanceType),
        ]
        parameters += QueryParameters.list("SecurityGroupId", securityGroupIDs)
        if let subnetID { parameters.append(("SubnetId", subnetID)) }
        parameters += QueryParameters.tagSpecification(resourceType: "instance", tags)
        return try await ec2("RunInstances", parameters).items("instancesSet").compactMap(EC2Instance.init(node:))
    }
}
