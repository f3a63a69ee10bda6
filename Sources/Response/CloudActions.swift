import AWS
import OCSF

/// The AWS side of the response actions, each safe to run again: it looks at the target's
/// current state first, so a retry or a restart after a crash finds the work done and does
/// not repeat it (no second snapshot, no second group swap).
public struct CloudActions: Sendable {
    /// The client calls go through.
    public let client: AWSClient
    /// The isolation group's name when a playbook does not name one.
    public static let defaultIsolationGroup = "vigil-isolation"

    /// Actions through `client`.
    public init(client: AWSClient) { self.client = client }

    static func failure(_ error: AWSError, _ what: String) -> ResponseError {
        ResponseError(code: .awsFailed, reason: "\(what): \(error.message ?? "AWS refused the call")", awsCode: error.code,
                      isRetriable: error.isRetriable)
    }

    func instance(_ id: String) async throws(ResponseError) -> EC2Instance {
        let found: [EC2Instance]
        do { found = try await client.describeInstances(ids: [id]) } catch { throw Self.failure(error, "DescribeInstances \(id)") }
        guard let instance = found.first(where: { $0.instanceID == id }) else {
            throw ResponseError(code: .notFound, reason: "instance \(id) does not exist")
        }
        if instance.tags["vigil:protected"] == "true" {
            throw ResponseError(code: .protectedTarget, reason: "instance \(id) carries the tag vigil:protected=true")
        }
        return instance
    }

    /// The target's state before the action: what a revert restores and what a restart
    /// compares against.
    public func priorState(of command: ResponseCommand) async throws(ResponseError) -> JSON? {
        switch command.action {
        case .quarantineInstance:
            let instance = try await instance(command.target)
            return ["security_groups": .array(instance.securityGroupIDs.map { .string($0) }),
                    "interfaces": .array(instance.networkInterfaces.map {
                        ["id": .string($0.id), "groups": .array($0.groupIDs.map { .string($0) })]
                    }),
                    "vpc_id": instance.vpcID.map { .string($0) } ?? .null]
        case .snapshotVolumes:
            let instance = try await instance(command.target)
            return ["volumes": .array(instance.volumeIDs.map { .string($0) })]
        case .disableAccessKey:
            let user = try await keyOwner(command)
            let status = try await keyStatus(command.target, user: user)
            return ["user": .string(user), "status": .string(status)]
        case .tagResource, .notify, .revert:
            return nil
        }
    }

    /// Carries out `command` given its recorded prior state; returns what was done.
    public func perform(_ command: ResponseCommand, prior: JSON?, ledger: Ledger) async throws(ResponseError) -> JSON {
        switch command.action {
        case .quarantineInstance: return try await quarantine(command, prior: prior)
        case .snapshotVolumes: return try await snapshot(command, prior: prior)
        case .disableAccessKey: return try await disableKey(command, prior: prior)
        case .tagResource: return try await tag(command)
        case .revert: return try await revert(command, ledger: ledger)
        case .notify: throw ResponseError(code: .invalidCommand, reason: "notify is not an AWS action")
        }
    }

    func quarantine(_ command: ResponseCommand, prior: JSON?) async throws(ResponseError) -> JSON {
        let instance = try await instance(command.target)
        guard let vpc = instance.vpcID else {
            throw ResponseError(code: .invalidState, reason: "instance \(command.target) is not in a VPC; it cannot be isolated by security group")
        }
        let name = command.params["isolation_group"] ?? Self.defaultIsolationGroup
        let groupID = try await isolationGroup(name: name, vpc: vpc)
        // EC2 refuses instance-level group changes for instances with several interfaces;
        // those are isolated interface by interface.
        if instance.networkInterfaces.count > 1 {
            for interface in instance.networkInterfaces where interface.groupIDs != [groupID] {
                do { try await client.setNetworkInterfaceSecurityGroups(networkInterfaceID: interface.id, groupIDs: [groupID]) } catch {
                    throw Self.failure(error, "ModifyNetworkInterfaceAttribute \(interface.id)")
                }
            }
        } else if instance.securityGroupIDs != [groupID] {
            do { try await client.setInstanceSecurityGroups(instanceID: instance.instanceID, groupIDs: [groupID]) } catch {
                throw Self.failure(error, "ModifyInstanceAttribute \(instance.instanceID)")
            }
        }
        return ["isolation_group": .string(groupID), "vpc_id": .string(vpc),
                "original_groups": prior?["security_groups"] ?? .array(instance.securityGroupIDs.map { .string($0) })]
    }

    /// The VPC's isolation group, created when missing: no ingress rules, and its default
    /// allow-all egress rule revoked, so the instance can neither be reached nor call out.
    func isolationGroup(name: String, vpc: String) async throws(ResponseError) -> String {
        let found: EC2SecurityGroup?
        do { found = try await client.describeSecurityGroups(filters: ["vpc-id": [vpc], "group-name": [name]]).first } catch {
            throw Self.failure(error, "DescribeSecurityGroups \(name) in \(vpc)")
        }
        if let existing = found {
            // Someone may have opened the group since; an isolation group that lets traffic in
            // is refused rather than used, and egress is closed again.
            if existing.ingressPermissionCount > 0 {
                throw ResponseError(code: .invalidState, reason: "isolation group \(existing.groupID) has inbound rules; remove them or name another group")
            }
            if existing.egressPermissionCount > 0 {
                do { try await client.revokeAllEgress(groupID: existing.groupID) } catch { throw Self.failure(error, "RevokeSecurityGroupEgress") }
            }
            return existing.groupID
        }
        do {
            let id = try await client.createSecurityGroup(
                name: name, description: "Vigil isolation: no inbound, no outbound", vpcID: vpc, tags: ["vigil:purpose": "isolation"])
            try await client.revokeAllEgress(groupID: id)
            return id
        } catch {
            throw Self.failure(error, "isolation group \(name) in \(vpc)")
        }
    }

    func snapshot(_ command: ResponseCommand, prior: JSON?) async throws(ResponseError) -> JSON {
        var volumes = (prior?["volumes"]?.arrayValue ?? []).compactMap(\.stringValue)
        if volumes.isEmpty { volumes = try await instance(command.target).volumeIDs }
        let existing: [EC2Snapshot]
        do { existing = try await client.describeSnapshots(filters: ["tag:vigil:command": [command.id]]) } catch {
            throw Self.failure(error, "DescribeSnapshots")
        }
        var taken: [JSON] = []
        var reused = 0
        for volume in volumes {
            if let done = existing.first(where: { $0.volumeID == volume }) {
                taken.append(["volume": .string(volume), "snapshot": .string(done.snapshotID)])
                reused += 1
                continue
            }
            let tags = ["vigil:command": command.id, "vigil:alert": command.alertID, "vigil:case": command.alertID,
                        "vigil:instance": command.target]
            do {
                let id = try await client.createSnapshot(
                    volumeID: volume, description: "Vigil forensic snapshot of \(command.target) for alert \(command.alertID)", tags: tags)
                taken.append(["volume": .string(volume), "snapshot": .string(id)])
            } catch {
                throw Self.failure(error, "CreateSnapshot \(volume)")
            }
        }
        return ["snapshots": .array(taken), "already_taken": .int(Int64(reused))]
    }

    func keyOwner(_ command: ResponseCommand) async throws(ResponseError) -> String {
        if let user = command.targetDetails["user"], !user.isEmpty { return user }
        do { return try await client.accessKeyOwner(accessKeyID: command.target) } catch {
            throw Self.failure(error, "GetAccessKeyLastUsed")
        }
    }

    func keyStatus(_ key: String, user: String) async throws(ResponseError) -> String {
        let keys: [IAMAccessKey]
        do { keys = try await client.listAccessKeys(userName: user) } catch { throw Self.failure(error, "ListAccessKeys \(user)") }
        guard let found = keys.first(where: { $0.accessKeyID == key }) else {
            throw ResponseError(code: .notFound, reason: "access key \(key) does not belong to user \(user)")
        }
        return found.status
    }

    func disableKey(_ command: ResponseCommand, prior: JSON?) async throws(ResponseError) -> JSON {
        let user: String
        if let known = prior?["user"]?.stringValue { user = known } else { user = try await keyOwner(command) }
        if try await keyStatus(command.target, user: user) != IAMAccessKeyStatus.inactive.rawValue {
            do { try await client.updateAccessKey(accessKeyID: command.target, userName: user, status: .inactive) } catch {
                throw Self.failure(error, "UpdateAccessKey")
            }
        }
        return ["user": .string(user), "status": .string(IAMAccessKeyStatus.inactive.rawValue),
                "previous_status": prior?["status"] ?? .null]
    }

    func tag(_ command: ResponseCommand) async throws(ResponseError) -> JSON {
        guard let tags = ActionSpec.parseTags(command.params["tags"] ?? "") else {
            throw ResponseError(code: .invalidCommand, reason: "tag_resource needs tags 'key=value,...'")
        }
        if command.target.hasPrefix("i-") { _ = try await instance(command.target) }
        do { try await client.createTags(resourceIDs: [command.target], tags: tags) } catch {
            throw Self.failure(error, "CreateTags \(command.target)")
        }
        return ["tags": .object(tags.mapValues { .string($0) })]
    }

    func revert(_ command: ResponseCommand, ledger: Ledger) async throws(ResponseError) -> JSON {
        guard let originalID = command.revertOf, let original = try ledger.entry(originalID) else {
            throw ResponseError(code: .notFound, reason: "the ledger has no command \(command.revertOf ?? "") to revert")
        }
        guard ["succeeded", "reverted"].contains(original.status), let prior = original.priorState else {
            throw ResponseError(code: .invalidState, reason: "command \(originalID) is \(original.status); only a succeeded quarantine or key disable can be reverted")
        }
        switch original.action {
        case ActionKind.quarantineInstance.rawValue:
            let groups = (prior["security_groups"]?.arrayValue ?? []).compactMap(\.stringValue)
            let interfaces = prior["interfaces"]?.arrayValue ?? []
            if interfaces.count > 1 {
                for interface in interfaces {
                    guard let id = interface["id"]?.stringValue else { continue }
                    let original = (interface["groups"]?.arrayValue ?? []).compactMap(\.stringValue)
                    do { try await client.setNetworkInterfaceSecurityGroups(networkInterfaceID: id, groupIDs: original) } catch {
                        throw Self.failure(error, "ModifyNetworkInterfaceAttribute \(id)")
                    }
                }
                return ["restored_interfaces": .array(interfaces)]
            }
            guard !groups.isEmpty else { throw ResponseError(code: .invalidState, reason: "no original groups were recorded") }
            do { try await client.setInstanceSecurityGroups(instanceID: original.target, groupIDs: groups) } catch {
                throw Self.failure(error, "ModifyInstanceAttribute \(original.target)")
            }
            return ["restored_groups": .array(groups.map { .string($0) })]
        case ActionKind.disableAccessKey.rawValue:
            guard let user = prior["user"]?.stringValue else { throw ResponseError(code: .invalidState, reason: "no key owner was recorded") }
            let status = IAMAccessKeyStatus(rawValue: prior["status"]?.stringValue ?? "") ?? .active
            do { try await client.updateAccessKey(accessKeyID: original.target, userName: user, status: status) } catch {
                throw Self.failure(error, "UpdateAccessKey")
            }
            return ["restored_status": .string(status.rawValue), "user": .string(user)]
        default:
            throw ResponseError(code: .invalidState, reason: "\(original.action) cannot be reverted")
        }
    }
}
