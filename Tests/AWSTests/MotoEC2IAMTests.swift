// EC2 and IAM calls against a real moto server: isolating an instance, snapshotting its disks,
// switching off an access key, and the error codes a responder branches on.
import AWS
import Foundation
import Testing
import TestSupport

/// An AMI in moto's default image list (moto does not check the id, but a real one keeps the
/// test honest should it start to).
private let motoAMI = "ami-12c6146b"

private func client(_ moto: MotoServer) throws -> AWSClient { try moto.client() }

/// The error `body` throws, or `nil` (recorded as an issue) when it throws none.
private func awsError(_ body: () async throws(AWSError) -> Void, sourceLocation: SourceLocation = #_sourceLocation) async -> AWSError? {
    do {
        try await body()
        Issue.record("expected an AWSError", sourceLocation: sourceLocation)
        return nil
    } catch {
        return error
    }
}

@Suite("EC2 and IAM against moto", .enabled(if: MotoServer.isAvailable), .timeLimit(.minutes(10)))
struct MotoEC2IAMTests {
    @Test("isolate an instance behind an allow-nothing group, snapshot its volumes, tag it")
    func isolateAndSnapshot() async throws {
        let moto = try await MotoServer.start()
        defer { moto.stop() }
        let ec2 = try client(moto)

        let web = try await ec2.createSecurityGroup(name: "web", description: "web servers")
        let ssh = try await ec2.createSecurityGroup(name: "ssh", description: "ssh access")
        let launched = try await ec2.runInstances(imageID: motoAMI, securityGroupIDs: [web, ssh], instanceType: "t2.micro",
                                                  tags: ["Name": "victim"])
        #expect(launched.count == 1)
        let instanceID = try #require(launched.first?.instanceID)

        var instance = try #require(try await ec2.describeInstances(ids: [instanceID]).first)
        #expect(instance.instanceID == instanceID)
        #expect(instance.state == "running")
        #expect(instance.imageID == motoAMI)
        #expect(Set(instance.securityGroupIDs) == [web, ssh])
        #expect(instance.networkInterfaces.count == 1)
        #expect(Set(instance.networkInterfaces.flatMap(\.groupIDs)) == [web, ssh])
        #expect(instance.tags["Name"] == "victim")
        #expect(instance.privateIP != nil)
        // moto gives every instance a root EBS volume through its block device mapping.
        #expect(!instance.volumeIDs.isEmpty)
        #expect(instance.volumeIDs.allSatisfy { $0.hasPrefix("vol-") })
        let vpcID = try #require(instance.vpcID)
        #expect(instance.subnetID != nil)

        // The isolation group: in the instance's VPC, no inbound rules, egress revoked.
        let isolationName = "vigil-isolation-\(instanceID)"
        let isolation = try await ec2.createSecurityGroup(name: isolationName, description: "Vigil isolation: allows nothing",
                                                          vpcID: vpcID, tags: ["vigil:command": "cmd-1"])
        var group = try #require(try await ec2.describeSecurityGroups(ids: [isolation]).first)
        #expect(group.egressPermissionCount == 1)
        try await ec2.revokeAllEgress(groupID: isolation)
        try await ec2.revokeAllEgress(groupID: isolation)  // repeating is harmless
        group = try #require(try await ec2.describeSecurityGroups(ids: [isolation]).first)
        #expect(group == EC2SecurityGroup(groupID: isolation, name: isolationName, vpcID: vpcID,
                                          description: "Vigil isolation: allows nothing", tags: ["vigil:command": "cmd-1"],
                                          ingressPermissionCount: 0, egressPermissionCount: 0))
        let byName = try await ec2.describeSecurityGroups(filters: ["group-name": [isolationName], "vpc-id": [vpcID]])
        #expect(byName.map(\.groupID) == [isolation])

        try await ec2.setInstanceSecurityGroups(instanceID: instanceID, groupIDs: [isolation])
        for interface in instance.networkInterfaces {
            try await ec2.setNetworkInterfaceSecurityGroups(networkInterfaceID: interface.id, groupIDs: [isolation])
        }
        instance = try #require(try await ec2.describeInstances(ids: [instanceID]).first)
        #expect(instance.securityGroupIDs == [isolation])
        #expect(instance.networkInterfaces.map(\.groupIDs) == [[isolation]])

        // Evidence: one tagged snapshot per volume, found again by the command's tag.
        var snapshotIDs: [String] = []
        for volumeID in instance.volumeIDs {
            snapshotIDs.append(try await ec2.createSnapshot(volumeID: volumeID, description: "Vigil evidence for \(instanceID)",
                                                            tags: ["vigil:command": "cmd-1", "vigil:instance": instanceID]))
        }
        let snapshots = try await ec2.describeSnapshots(filters: ["tag:vigil:command": ["cmd-1"]])
        #expect(Set(snapshots.map(\.snapshotID)) == Set(snapshotIDs))
        #expect(Set(snapshots.compactMap(\.volumeID)) == Set(instance.volumeIDs))
        #expect(snapshots.allSatisfy { $0.tags["vigil:instance"] == instanceID && !$0.state.isEmpty })
        #expect(snapshots.allSatisfy { $0.description == "Vigil evidence for \(instanceID)" })
        #expect(try await ec2.describeSnapshots(filters: ["tag:vigil:command": ["cmd-2"]]).isEmpty)

        try await ec2.createTags(resourceIDs: [instanceID], tags: ["vigil:isolated-by": "cmd-1", "vigil:state": "isolated"])
        try await ec2.createTags(resourceIDs: [instanceID], tags: [:])  // nothing to send
        instance = try #require(try await ec2.describeInstances(ids: [instanceID]).first)
        #expect(instance.tags == ["Name": "victim", "vigil:isolated-by": "cmd-1", "vigil:state": "isolated"])
        let tagged = try await ec2.describeInstances(filters: ["tag:vigil:state": ["isolated"]])
        #expect(tagged.map(\.instanceID) == [instanceID])
    }

    @Test("describeInstances follows nextToken across pages")
    func pagination() async throws {
        let moto = try await MotoServer.start()
        defer { moto.stop() }
        let ec2 = try client(moto)
        var launched: [String] = []
        for index in 0..<7 {  // one reservation each; moto pages by reservation
            launched += try await ec2.runInstances(imageID: motoAMI, instanceType: "t2.micro", tags: ["n": "\(index)"])
                .map(\.instanceID)
        }
        let all = try await ec2.describeInstances(pageSize: 5)
        #expect(all.count == 7)
        #expect(Set(all.map(\.instanceID)) == Set(launched))
    }

    @Test("the error codes a responder branches on")
    func errorCodes() async throws {
        let moto = try await MotoServer.start()
        defer { moto.stop() }
        let ec2 = try client(moto)

        let missing = await awsError { () async throws(AWSError) in _ = try await ec2.describeInstances(ids: ["i-0123456789abcdef0"]) }
        #expect(missing?.code == "InvalidInstanceID.NotFound")
        #expect(missing?.status == 400)
        #expect(missing?.message?.contains("i-0123456789abcdef0") == true)

        let volume = await awsError { () async throws(AWSError) in
            _ = try await ec2.createSnapshot(volumeID: "vol-0123456789abcdef0", description: "x")
        }
        #expect(volume?.code == "InvalidVolume.NotFound")

        let group = await awsError { () async throws(AWSError) in try await ec2.revokeAllEgress(groupID: "sg-0123456789abcdef0") }
        #expect(group?.code == "InvalidGroup.NotFound")

        _ = try await ec2.createSecurityGroup(name: "twice", description: "first")
        let duplicate = await awsError { () async throws(AWSError) in
            _ = try await ec2.createSecurityGroup(name: "twice", description: "second")
        }
        #expect(duplicate?.code == "InvalidGroup.Duplicate")

        let empty = await awsError { () async throws(AWSError) in
            try await ec2.setInstanceSecurityGroups(instanceID: "i-0123456789abcdef0", groupIDs: [])
        }
        #expect(empty?.code == "MissingParameter")

        let noUser = await awsError { () async throws(AWSError) in _ = try await ec2.listAccessKeys(userName: "nobody") }
        #expect(noUser?.code == "NoSuchEntity")
        #expect(noUser?.status == 404)
        let noKey = await awsError { () async throws(AWSError) in _ = try await ec2.accessKeyOwner(accessKeyID: "AKIAIOSFODNN7EXAMPLE") }
        #expect(noKey?.code == "NoSuchEntity")
    }

    @Test("find a key's owner and switch the key off")
    func deactivateAccessKey() async throws {
        let moto = try await MotoServer.start()
        defer { moto.stop() }
        let iam = try client(moto)

        try await iam.createUser(name: "mallory")
        let created = try await iam.createAccessKey(userName: "mallory")
        #expect(created.userName == "mallory")
        #expect(created.isActive)
        #expect(created.accessKeyID.hasPrefix("AKIA"))
        #expect(created.createDate != nil)
        let other = try await iam.createAccessKey(userName: "mallory")

        #expect(try await iam.accessKeyOwner(accessKeyID: created.accessKeyID) == "mallory")
        try await iam.updateAccessKey(accessKeyID: created.accessKeyID, userName: "mallory", status: .inactive)
        var keys = try await iam.listAccessKeys(userName: "mallory")
        #expect(Set(keys.map(\.accessKeyID)) == [created.accessKeyID, other.accessKeyID])
        #expect(keys.first { $0.accessKeyID == created.accessKeyID }?.status == "Inactive")
        #expect(keys.first { $0.accessKeyID == other.accessKeyID }?.isActive == true)
        #expect(keys.allSatisfy { $0.userName == "mallory" })

        try await iam.updateAccessKey(accessKeyID: created.accessKeyID, userName: "mallory", status: .active)
        keys = try await iam.listAccessKeys(userName: "mallory")
        #expect(keys.allSatisfy { $0.isActive })

        let duplicate = await awsError { () async throws(AWSError) in try await iam.createUser(name: "mallory") }
        #expect(duplicate?.code == "EntityAlreadyExists")
    }
}
