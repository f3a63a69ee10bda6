// `vigil inventory sync aws`: the pure mapping from AWS descriptions to assets, the convergence
// rules against an in-memory store, and the whole sync (library and CLI) against a real moto.
import AWS
import Foundation
import Inventory
import Stages
import Testing
import TestSupport

private let account = "123456789012"

@Suite("AWS to inventory mapping")
struct AWSAssetMappingTests {
    @Test("tags give name, owner, environment and criticality; the first listed tag key wins")
    func tagsToFields() {
        let instance = EC2Instance(instanceID: "i-0123456789abcdef0", state: "running", imageID: "ami-1", privateIP: "10.0.0.5",
                                   securityGroupIDs: ["sg-1"], networkInterfaces: [EC2NetworkInterface(id: "eni-1", groupIDs: ["sg-1"])],
                                   tags: ["Name": "web-1", "Owner": "team-web", "env": "staging", "Environment": "ignored",
                                          "criticality": "HIGH"])
        let asset = AWSAssetMapping.asset(instance, account: account, region: "eu-west-1")
        #expect(asset == Asset(id: "i-0123456789abcdef0", kind: "instance", account: account, region: "eu-west-1", name: "web-1",
                               owner: "team-web", environment: "staging", criticality: "high", internetExposed: false,
                               protected: false, tags: instance.tags, privateIPs: ["10.0.0.5"], publicIPs: [],
                               networkInterfaces: ["eni-1"], imageID: "ami-1", securityGroups: ["sg-1"]))

        let lower = AWSAssetMapping.asset(EC2Instance(instanceID: "i-1", state: "running",
                                                      tags: ["owner": "a", "Owner": "b", "environment": "production", "env": "x"]),
                                          account: account, region: "eu-west-1")
        #expect(lower.owner == "a")
        #expect(lower.environment == "production")
        #expect(lower.name == nil)
    }

    @Test("a criticality tag that is not low/medium/high/critical is ignored; blank tags are unset")
    func badCriticality() {
        let asset = AWSAssetMapping.asset(EC2Instance(instanceID: "i-1", state: "running",
                                                      tags: ["criticality": "very", "owner": "  ", "Name": ""]),
                                          account: account, region: "us-east-1")
        #expect(asset.criticality == nil)
        #expect(asset.owner == nil)
        #expect(asset.name == nil)
        #expect(asset.tags["criticality"] == "very")
    }

    @Test("an instance with a public IP is internet-exposed; without one it is not")
    func exposure() {
        let exposed = AWSAssetMapping.asset(EC2Instance(instanceID: "i-1", state: "running", privateIP: "10.0.0.1", publicIP: "203.0.113.7"),
                                            account: account, region: "us-east-1")
        #expect(exposed.internetExposed)
        #expect(exposed.publicIPs == ["203.0.113.7"])
        #expect(exposed.privateIPs == ["10.0.0.1"])
        let privateOnly = AWSAssetMapping.asset(EC2Instance(instanceID: "i-2", state: "running", privateIP: "10.0.0.2"),
                                             account: account, region: "us-east-1")
        #expect(!privateOnly.internetExposed)
        #expect(privateOnly.publicIPs.isEmpty)
    }

    @Test("vigil:protected=true (any case) protects; other values and absence do not")
    func protectedTag() {
        func isProtected(_ tags: [String: String]) -> Bool {
            AWSAssetMapping.asset(EC2Instance(instanceID: "i-1", state: "running", tags: tags), account: account, region: "r").protected
        }
        #expect(isProtected(["vigil:protected": "true"]))
        #expect(isProtected(["vigil:protected": "TRUE"]))
        #expect(!isProtected(["vigil:protected": "false"]))
        #expect(!isProtected(["vigil:protected": "yes"]))
        #expect(!isProtected([:]))
        let group = AWSAssetMapping.asset(EC2SecurityGroup(groupID: "sg-1", name: "db", tags: ["vigil:protected": "true"]),
                                          account: account, region: "r")
        #expect(group.protected)
    }

    @Test("security groups, IAM users and access keys")
    func otherKinds() {
        let group = AWSAssetMapping.asset(EC2SecurityGroup(groupID: "sg-1", name: "db", vpcID: "vpc-1", tags: ["owner": "team-db"]),
                                          account: account, region: "us-east-1")
        #expect(group == Asset(id: "sg-1", kind: "security_group", account: account, region: "us-east-1", name: "db", owner: "team-db",
                               tags: ["owner": "team-db"]))
        #expect(AWSAssetMapping.asset(EC2SecurityGroup(groupID: "sg-2", name: "db", tags: ["Name": "Database"]),
                                      account: account, region: "r").name == "Database")

        let user = AWSAssetMapping.asset(IAMUser(userName: "alice", userID: "AIDA1", arn: "arn:aws:iam::111122223333:user/ops/alice"),
                                         account: account)
        #expect(user == Asset(id: "arn:aws:iam::111122223333:user/ops/alice", kind: "iam_user", account: "111122223333",
                              name: "alice", user: "alice"))
        let key = AWSAssetMapping.asset(IAMAccessKey(accessKeyID: "AKIAEXAMPLE", userName: "alice", status: "Active"), account: account)
        #expect(key == Asset(id: "AKIAEXAMPLE", kind: "access_key", account: account, user: "alice"))
    }

    @Test("apply converges: inserts, unchanged on repeat, updates, deletes only what the sync owns in its scope")
    func convergence() throws {
        let store = try InventoryStore(path: ":memory:")
        // Assets the sync must leave alone: another kind, another region, another account.
        let bucket = Asset(id: "arn:aws:s3:::reports", kind: "bucket", account: account, region: "us-east-1")
        let otherRegion = Asset(id: "i-0000000000000000e", kind: "instance", account: account, region: "eu-west-1")
        let otherAccount = Asset(id: "AKIAOTHER", kind: "access_key", account: "999999999999", user: "zed")
        _ = try store.upsert([bucket, otherRegion, otherAccount], at: 1_000)

        var snapshot = InventorySync.Snapshot(
            account: account, region: "us-east-1",
            instances: [EC2Instance(instanceID: "i-1", state: "running", tags: ["owner": "a"]),
                        EC2Instance(instanceID: "i-2", state: "terminated")],
            securityGroups: [EC2SecurityGroup(groupID: "sg-1", name: "default")],
            users: [IAMUser(userName: "alice", userID: "AIDA1", arn: "arn:aws:iam::\(account):user/alice")],
            accessKeys: [IAMAccessKey(accessKeyID: "AKIA1", userName: "alice", status: "Active")])
        var summary = try InventorySync.apply(snapshot, to: store, at: 2_000)
        #expect(summary["instance"] == .init(listed: 1, inserted: 1))
        #expect(summary["security_group"] == .init(listed: 1, inserted: 1))
        #expect(summary["iam_user"] == .init(listed: 1, inserted: 1))
        #expect(summary["access_key"] == .init(listed: 1, inserted: 1))
        #expect(try store.asset(id: "i-2") == nil)  // terminated: never inserted
        // What `--publish` sends: the stored state of every asset the sync changed.
        #expect(Set(summary.changes.map(\.assetID)) == ["i-1", "sg-1", "arn:aws:iam::\(account):user/alice", "AKIA1"])
        #expect(summary.changes.allSatisfy { $0.time == 2_000 && $0.source == "sync" })
        if case .upsert(let stored)? = summary.changes.first(where: { $0.assetID == "i-1" })?.operation {
            #expect(stored == (try store.asset(id: "i-1")))
        } else {
            Issue.record("no upsert for i-1")
        }

        summary = try InventorySync.apply(snapshot, to: store, at: 3_000)
        for kind in AWSAssetMapping.kinds { #expect(summary[kind] == .init(listed: 1, unchanged: 1)) }
        #expect(summary.changes.isEmpty)
        #expect(try store.history(id: "i-1").count == 1)

        snapshot.instances[0].tags["owner"] = "b"
        snapshot.accessKeys = []
        summary = try InventorySync.apply(snapshot, to: store, at: 4_000)
        #expect(summary["instance"] == .init(listed: 1, updated: 1))
        #expect(summary["access_key"] == .init(listed: 0, deleted: 1))
        #expect(summary.changes.map(\.assetID).sorted() == ["AKIA1", "i-1"])
        #expect(summary.changes.contains(InventoryChange(.delete(id: "AKIA1"), time: 4_000, source: "sync")))
        #expect(try store.asset(id: "i-1")?.owner == "b")
        #expect(try store.asset(id: "AKIA1") == nil)
        #expect(try store.asset(id: "AKIA1", at: 3_500)?.user == "alice")
        #expect(try store.asset(id: bucket.id)?.kind == "bucket")
        #expect(try store.asset(id: otherRegion.id) != nil)
        #expect(try store.asset(id: otherAccount.id) != nil)
    }
}

/// An AMI in moto's default image list.
private let motoAMI = "ami-12c6146b"

@Suite("inventory sync aws against moto", .enabled(if: MotoServer.isAvailable, "moto_server missing (run scripts/setup)"),
       .timeLimit(.minutes(10)))
struct InventorySyncMotoTests {
    @Test("instances, groups, users and keys arrive with the right fields; removals are deleted; a repeat changes nothing")
    func syncAgainstMoto() async throws {
        let moto = try await MotoServer.start()
        defer { moto.stop() }
        let aws = try moto.client()

        let web = try await aws.createSecurityGroup(name: "web", description: "web servers",
                                                    tags: ["owner": "team-web", "vigil:protected": "true"])
        let webInstance = try #require(try await aws.runInstances(
            imageID: motoAMI, securityGroupIDs: [web], instanceType: "t2.micro",
            tags: ["Name": "web-1", "Owner": "team-web", "env": "production", "criticality": "High"]).first)
        let batch = try #require(try await aws.runInstances(imageID: motoAMI, instanceType: "t2.micro",
                                                             tags: ["Name": "batch-1", "vigil:protected": "true"]).first)
        try await aws.createUser(name: "alice")
        let key = try await aws.createAccessKey(userName: "alice")

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-sync-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try InventoryStore(path: directory.appendingPathComponent("inv.sqlite").path)
        // An imported asset of a kind the sync does not own, in the same account and region.
        let csv = directory.appendingPathComponent("extra.csv")
        try "id,kind,account,region,name\narn:aws:s3:::reports,bucket,\(account),us-east-1,reports\n"
            .write(to: csv, atomically: true, encoding: .utf8)
        _ = try store.importCSV(path: csv.path, at: 1_000)

        var summary = try await InventorySync.sync(client: aws, store: store, at: 2_000)
        #expect(summary.account == account)
        #expect(summary.region == "us-east-1")
        #expect(summary["instance"] == .init(listed: 2, inserted: 2))
        #expect(summary["iam_user"] == .init(listed: 1, inserted: 1))
        #expect(summary["access_key"] == .init(listed: 1, inserted: 1))
        #expect(summary["security_group"].inserted >= 2)  // web plus the default VPC's default group

        let described = try #require(try await aws.describeInstances(ids: [webInstance.instanceID]).first)
        let stored = try #require(try store.asset(id: webInstance.instanceID))
        #expect(stored.kind == "instance")
        #expect(stored.account == account)
        #expect(stored.region == "us-east-1")
        #expect(stored.name == "web-1")
        #expect(stored.owner == "team-web")
        #expect(stored.environment == "production")
        #expect(stored.criticality == "high")
        #expect(!stored.protected)
        #expect(stored.imageID == motoAMI)
        #expect(stored.securityGroups == [web])
        #expect(stored.networkInterfaces == described.networkInterfaces.map(\.id))
        #expect(!stored.networkInterfaces.isEmpty)
        #expect(stored.privateIPs == [try #require(described.privateIP)])
        // moto gives instances in the default subnet a public IP, as AWS does: exposed.
        let publicIP = try #require(described.publicIP)
        #expect(stored.publicIPs == [publicIP])
        #expect(stored.internetExposed)
        #expect(stored.firstSeen == 2_000)
        #expect(try store.asset(id: batch.instanceID)?.protected == true)

        let group = try #require(try store.asset(id: web))
        #expect(group.kind == "security_group")
        #expect(group.name == "web")
        #expect(group.owner == "team-web")
        #expect(group.protected)

        let user = try #require(try store.lookup(userName: "alice"))
        #expect(user.kind == "iam_user")
        #expect(user.id == "arn:aws:iam::\(account):user/alice")
        #expect(user.account == account)
        #expect(user.region == nil)
        let storedKey = try #require(try store.lookup(accessKeyID: key.accessKeyID))
        #expect(storedKey.user == "alice")
        #expect(storedKey.account == account)

        // Nothing changed in AWS: everything unchanged, no new versions.
        summary = try await InventorySync.sync(client: aws, store: store, at: 3_000)
        for kind in AWSAssetMapping.kinds {
            #expect(summary[kind].inserted == 0 && summary[kind].updated == 0 && summary[kind].deleted == 0)
            #expect(summary[kind].unchanged == summary[kind].listed)
        }
        #expect(try store.history(id: webInstance.instanceID).count == 1)

        // Terminate one instance, delete the key: both are deleted; the bucket stays.
        try await aws.terminateInstances(ids: [batch.instanceID])
        try await aws.deleteAccessKey(accessKeyID: key.accessKeyID, userName: "alice")
        summary = try await InventorySync.sync(client: aws, store: store, at: 4_000)
        #expect(summary["instance"] == .init(listed: 1, unchanged: 1, deleted: 1))
        #expect(summary["access_key"] == .init(listed: 0, deleted: 1))
        #expect(try store.asset(id: batch.instanceID) == nil)
        #expect(try store.asset(id: batch.instanceID, at: 3_500)?.name == "batch-1")
        #expect(try store.history(id: batch.instanceID).last == AssetVersion(validFrom: 4_000, validTo: nil, asset: nil))
        #expect(try store.lookup(accessKeyID: key.accessKeyID) == nil)
        #expect(try store.asset(id: "arn:aws:s3:::reports")?.name == "reports")
        #expect(try store.asset(id: webInstance.instanceID) != nil)
    }

    @Test("the vigil CLI: sync aws, then show --json and history")
    func cli() async throws {
        let vigil = Binaries.directory + "/vigil"
        try #require(FileManager.default.isExecutableFile(atPath: vigil), "build vigil first (swift build)")
        let moto = try await MotoServer.start()
        defer { moto.stop() }
        let aws = try moto.client()
        let instance = try #require(try await aws.runInstances(imageID: motoAMI, instanceType: "t2.micro",
                                                                tags: ["Name": "cli-1", "owner": "team-cli"]).first)
        let inventory = NSTemporaryDirectory() + "vigil-sync-cli-\(UUID().uuidString).sqlite"
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: inventory + suffix) } }
        // Credentials only: the endpoint and region come from the flags.
        let environment = ["AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "VIGIL_AWS_ENDPOINT": ""]

        let sync = try Binaries.run(vigil, ["inventory", "sync", "aws", "--aws-endpoint", moto.endpoint.absoluteString,
                                         "--region", "us-east-1", "--inventory", inventory], environment: environment)
        #expect(sync.status == 0)
        #expect(sync.output.contains("instance: listed 1, inserted 1"))

        let show = try Binaries.run(vigil, ["inventory", "show", instance.instanceID, "--json", "--inventory", inventory],
                                 environment: environment)
        #expect(show.status == 0)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(show.output.utf8)) as? [String: Any])
        #expect(object["id"] as? String == instance.instanceID)
        #expect(object["kind"] as? String == "instance")
        #expect(object["name"] as? String == "cli-1")
        #expect(object["owner"] as? String == "team-cli")
        #expect(object["account"] as? String == account)

        let table = try Binaries.run(vigil, ["inventory", "show", instance.instanceID, "--inventory", inventory], environment: environment)
        #expect(table.status == 0)
        #expect(table.output.contains("team-cli"))
        let history = try Binaries.run(vigil, ["inventory", "history", instance.instanceID, "--inventory", inventory],
                                    environment: environment)
        #expect(history.status == 0)
        #expect(history.output.contains("created"))
        let missing = try Binaries.run(vigil, ["inventory", "show", "i-0000000000000000f", "--inventory", inventory],
                                    environment: environment)
        #expect(missing.status != 0)
    }
}
