import Foundation
import Inventory
import OCSF
import Testing

/// Config items and findings flowing into the inventory, lookups as of an event's time, and the
/// change records every enrich copy applies.
@Suite("Inventory updates and as-of lookups")
struct InventoryUpdatesTests {
    static let t0: Int64 = 1_700_000_000_000
    static let minute: Int64 = 60_000

    /// An OCSF 5019 event shaped as `vigil-ingest` maps an AWS Config item (see AWSConfigMapping).
    static func configItem(id: String, type: String = "AWS::EC2::Instance", status: String = "OK", time: Int64,
                           name: String? = nil, privateIPs: [String] = [], publicIPs: [String] = [], groups: [String] = [],
                           tags: [String: String] = [:]) -> JSON {
        var data: [String: JSON] = [:]
        if !privateIPs.isEmpty { data["private_ips"] = .array(privateIPs.map(JSON.string)) }
        if !publicIPs.isEmpty { data["public_ips"] = .array(publicIPs.map(JSON.string)) }
        if !groups.isEmpty { data["security_groups"] = .array(groups.map(JSON.string)) }
        if !tags.isEmpty { data["tags"] = .object(tags.mapValues(JSON.string)) }
        if type == "AWS::EC2::Instance" { data["image_id"] = "ami-0abc" }
        var resource: [String: JSON] = ["uid": .string(id), "type": .string(type), "region": "us-east-1",
                                        "owner": ["account": ["uid": "111122223333"]], "data": .object(data)]
        if let name { resource["name"] = .string(name) }
        var event = OCSFEvent.base(class: .deviceConfigStateChange, activityID: 99, activityName: status, time: time,
                                   uid: "cfg-\(id)-\(time)", product: "AWS Config", vendor: "AWS")
        event.set("metadata.event_code", .string(status))
        event["cloud"] = ["provider": "AWS", "region": "us-east-1", "account": ["uid": "111122223333"]]
        event["resources"] = [.object(resource)]
        return event
    }

    /// An OCSF 2002 finding about an instance, as the Inspector parser maps one.
    static func finding(uid: String, instance: String, cves: [(String, Bool)], severityID: Int64 = 5, statusID: Int64 = 1,
                        time: Int64) -> JSON {
        var event = OCSFEvent.base(class: .vulnerabilityFinding, activityID: 1, activityName: "Create", time: time,
                                   uid: "evt-\(uid)-\(time)", product: "Inspector", vendor: "AWS")
        event["severity_id"] = .int(severityID)
        event["status_id"] = .int(statusID)
        event["finding_info"] = ["uid": .string(uid), "title": "a flaw"]
        event["resources"] = [["uid": .string(instance), "type": "AWS_EC2_INSTANCE"]]
        event["device"] = ["instance_uid": .string(instance), "type_id": 6]
        event["vulnerabilities"] = .array(cves.map { cve, exploit in
            ["cve": ["uid": .string(cve)], "is_exploit_available": .bool(exploit)]
        })
        return event
    }

    static func apiEvent(time: Int64, _ fields: [String: JSON]) -> JSON {
        var event = OCSFEvent.base(class: .apiActivity, activityID: 99, activityName: "Other", time: time,
                                   uid: "api-\(time)", product: "CloudTrail", vendor: "AWS")
        for (path, value) in fields { event.set(path, value) }
        return event
    }

    /// Applies what the event implies, as the enrich stage does; returns the changes applied.
    @discardableResult
    static func feed(_ event: JSON, _ store: InventoryStore, _ enricher: Enricher? = nil) throws -> [InventoryChange] {
        var applied: [InventoryChange] = []
        for change in try InventoryUpdates.changes(for: event, store: store) where try store.apply(change) {
            if case .upsert(let asset) = change.operation { enricher?.invalidate(asset: asset) }
            applied.append(change)
        }
        return applied
    }

    @Test("a Config item sequence (create, change groups, delete) writes versions; as-of lookups find each")
    func configSequence() throws {
        let dir = try TempDirectory()
        let store = try dir.store()
        let id = "i-0123456789abcdef0"
        let created = try Self.feed(Self.configItem(id: id, status: "ResourceDiscovered", time: Self.t0, privateIPs: ["10.0.0.5"],
                                                    groups: ["sg-a"], tags: ["Name": "web-1", "Owner": "team-web", "env": "production"]), store)
        #expect(created.count == 1)
        try Self.feed(Self.configItem(id: id, time: Self.t0 + 10 * Self.minute, privateIPs: ["10.0.0.5"], publicIPs: ["203.0.113.9"],
                                      groups: ["sg-a", "sg-open"], tags: ["Name": "web-1", "Owner": "team-web", "env": "production"]), store)
        // The same item delivered again (a history file after the notification) changes nothing.
        #expect(try Self.feed(Self.configItem(id: id, time: Self.t0 + 10 * Self.minute, privateIPs: ["10.0.0.5"], publicIPs: ["203.0.113.9"],
                                              groups: ["sg-a", "sg-open"], tags: ["Name": "web-1", "Owner": "team-web", "env": "production"]),
                              store).isEmpty)
        try Self.feed(Self.configItem(id: id, status: "ResourceDeleted", time: Self.t0 + 20 * Self.minute), store)

        let history = try store.history(id: id)
        #expect(history.count == 3)
        #expect(history[0].asset?.securityGroups == ["sg-a"])
        #expect(history[0].asset?.owner == "team-web" && history[0].asset?.environment == "production")
        #expect(history[0].asset?.name == "web-1" && history[0].asset?.kind == "instance" && history[0].asset?.account == "111122223333")
        #expect(history[0].asset?.internetExposed == false)
        #expect(history[1].asset?.securityGroups == ["sg-a", "sg-open"] && history[1].asset?.internetExposed == true)
        #expect(history[2].asset == nil && history[2].validFrom == Self.t0 + 20 * Self.minute)
        #expect(try store.asset(id: id) == nil)

        let enricher = Enricher(store: store)
        func groups(at time: Int64) -> JSON? {
            enricher.enrich(Self.apiEvent(time: time, ["src_endpoint.ip": "10.0.0.5"])).value(at: "vigil.asset.internet_exposed")
        }
        #expect(groups(at: Self.t0 + 5 * Self.minute) == false)
        #expect(groups(at: Self.t0 + 15 * Self.minute) == true)
        #expect(groups(at: Self.t0 + 25 * Self.minute) == nil)  // deleted: unknown
        #expect(enricher.enrich(Self.apiEvent(time: Self.t0 + 25 * Self.minute, ["src_endpoint.ip": "10.0.0.5"]))
            .value(at: "vigil.asset_status") == "unknown")
        // Before the inventory knew the instance, its first version answers.
        #expect(groups(at: Self.t0 - 60 * Self.minute) == false)
    }

    @Test("an address moving from one instance to another is answered by whichever held it at the event's time")
    func addressReuse() throws {
        let dir = try TempDirectory()
        let store = try dir.store()
        try Self.feed(Self.configItem(id: "i-00000000000000aaa", time: Self.t0, privateIPs: ["10.1.1.1"], tags: ["Name": "old"]), store)
        try Self.feed(Self.configItem(id: "i-00000000000000aaa", status: "ResourceDeleted", time: Self.t0 + 10 * Self.minute), store)
        try Self.feed(Self.configItem(id: "i-00000000000000bbb", time: Self.t0 + 20 * Self.minute, privateIPs: ["10.1.1.1"],
                                      tags: ["Name": "new"]), store)
        let enricher = Enricher(store: store)
        func name(at time: Int64) -> JSON? {
            enricher.enrich(Self.apiEvent(time: time, ["dst_endpoint.ip": "10.1.1.1"])).value(at: "vigil.asset.name")
        }
        #expect(name(at: Self.t0 + Self.minute) == "old")
        #expect(name(at: Self.t0 + 15 * Self.minute) == nil)
        #expect(name(at: Self.t0 + 30 * Self.minute) == "new")
        #expect(name(at: Self.t0 - Self.minute) == "old")
        #expect(try store.lookup(ip: "10.1.1.1")?.id == "i-00000000000000bbb")
        // A cached timeline is dropped when the address changes hands again.
        try Self.feed(Self.configItem(id: "i-00000000000000ccc", time: Self.t0 + 40 * Self.minute, privateIPs: ["10.1.1.1"],
                                      tags: ["Name": "newest"]), store, enricher)
        try Self.feed(Self.configItem(id: "i-00000000000000bbb", status: "ResourceDeleted", time: Self.t0 + 40 * Self.minute), store, enricher)
        #expect(name(at: Self.t0 + 50 * Self.minute) == "newest")
        #expect(name(at: Self.t0 + 30 * Self.minute) == "new")
    }

    @Test("a Config item keeps what an import said when its tags are silent, and never drops vulnerabilities")
    func configMerge() throws {
        let dir = try TempDirectory()
        let store = try dir.store()
        try store.upsert(Asset(id: "i-0a1b2c3d4e5f60002", kind: "instance", name: "payments-db-1", owner: "team-payments",
                               environment: "production", criticality: "critical", protected: true), at: Self.t0)
        try Self.feed(Self.finding(uid: "f-1", instance: "i-0a1b2c3d4e5f60002", cves: [("CVE-2024-0001", true)], time: Self.t0), store)
        try Self.feed(Self.configItem(id: "i-0a1b2c3d4e5f60002", time: Self.t0 + Self.minute, privateIPs: ["10.0.3.17"],
                                      tags: ["env": "prod-eu"]), store)
        let asset = try #require(try store.asset(id: "i-0a1b2c3d4e5f60002"))
        #expect(asset.owner == "team-payments" && asset.criticality == "critical" && asset.protected)
        #expect(asset.environment == "prod-eu")  // the tag wins over the import
        #expect(asset.name == "payments-db-1")
        #expect(asset.privateIPs == ["10.0.3.17"])
        #expect(asset.vulnerabilities.map(\.id) == ["CVE-2024-0001"])
    }

    @Test("findings attach vulnerabilities, resolving removes them, and enrichment reports them")
    func findings() throws {
        let dir = try TempDirectory()
        let store = try dir.store()
        let enricher = Enricher(store: store)
        let id = "i-0a1b2c3d4e5f60001"
        try store.upsert(Asset(id: id, kind: "instance", name: "bastion-1", internetExposed: true, privateIPs: ["10.0.1.10"]), at: Self.t0)
        try Self.feed(Self.finding(uid: "f-1", instance: id, cves: [("CVE-2024-0001", false), ("CVE-2024-0002", true)],
                                   time: Self.t0 + Self.minute), store, enricher)
        try Self.feed(Self.finding(uid: "f-2", instance: id, cves: [("CVE-2023-9999", false)], severityID: 3, time: Self.t0 + 2 * Self.minute),
                      store, enricher)
        var asset = try #require(try store.asset(id: id))
        #expect(asset.vulnerabilities.map(\.id) == ["CVE-2023-9999", "CVE-2024-0001", "CVE-2024-0002"])
        #expect(asset.vulnerabilities.first { $0.id == "CVE-2024-0001" }?.severity == "critical")
        #expect(asset.vulnerabilities.first { $0.id == "CVE-2023-9999" }?.severity == "medium")
        #expect(asset.vulnerabilities.first { $0.id == "CVE-2024-0002" }?.exploitable == true)

        let out = enricher.enrich(Self.apiEvent(time: Self.t0 + 3 * Self.minute, ["src_endpoint.ip": "10.0.1.10"]))
        #expect(out.value(at: "vigil.asset.vulnerabilities.open") == 3)
        #expect(out.value(at: "vigil.asset.vulnerabilities.critical") == 2)
        #expect(out.value(at: "vigil.asset.vulnerabilities.exploitable") == 1)
        #expect(out.value(at: "vigil.asset.vulnerabilities.critical_ids") == ["CVE-2024-0001", "CVE-2024-0002"])

        // The same finding again: nothing to change. Resolved: its vulnerabilities go.
        #expect(try Self.feed(Self.finding(uid: "f-2", instance: id, cves: [("CVE-2023-9999", false)], severityID: 3,
                                           time: Self.t0 + 4 * Self.minute), store).isEmpty)
        try Self.feed(Self.finding(uid: "f-1", instance: id, cves: [("CVE-2024-0001", false), ("CVE-2024-0002", true)], statusID: 4,
                                   time: Self.t0 + 5 * Self.minute), store, enricher)
        asset = try #require(try store.asset(id: id))
        #expect(asset.vulnerabilities.map(\.id) == ["CVE-2023-9999"])
        // As of before the resolution the enrichment still shows three.
        #expect(enricher.enrich(Self.apiEvent(time: Self.t0 + 3 * Self.minute, ["src_endpoint.ip": "10.0.1.10"]))
            .value(at: "vigil.asset.vulnerabilities.open") == 3)
        #expect(enricher.enrich(Self.apiEvent(time: Self.t0 + 6 * Self.minute, ["src_endpoint.ip": "10.0.1.10"]))
            .value(at: "vigil.asset.vulnerabilities.open") == 1)

        // A finding about an instance the inventory never heard of creates it; resolving an
        // unknown one creates nothing.
        try Self.feed(Self.finding(uid: "f-3", instance: "i-0fffffffffffffff1", cves: [("CVE-2024-1111", false)], time: Self.t0), store)
        #expect(try store.asset(id: "i-0fffffffffffffff1")?.kind == "instance")
        #expect(try Self.feed(Self.finding(uid: "f-4", instance: "i-0fffffffffffffff2", cves: [("CVE-2024-1111", false)], statusID: 4,
                                           time: Self.t0), store).isEmpty)
        #expect(try store.asset(id: "i-0fffffffffffffff2") == nil)
    }

    @Test("the enriched event carries the asset in OCSF resources and cloud, not only in vigil")
    func ocsfObjects() throws {
        let dir = try TempDirectory()
        let store = try dir.store()
        try store.upsert(Asset(id: "arn:aws:s3:::payroll-exports", kind: "bucket", account: "111122223333", region: "eu-west-1",
                               name: "payroll-exports", owner: "team-finance", criticality: "high", tags: ["data": "pii"]), at: Self.t0)
        let enricher = Enricher(store: store)
        var event = Self.apiEvent(time: Self.t0 + Self.minute, [:])
        event["resources"] = [["uid": "arn:aws:s3:::payroll-exports", "type": "AWS::S3::Bucket"]]
        event["cloud"] = ["provider": "AWS"]
        let out = enricher.enrich(event)
        #expect(out.value(at: "vigil.asset_match") == "resource_id")
        #expect(out.value(at: "resources.0.owner.name") == "team-finance")
        #expect(out.value(at: "resources.0.criticality") == "high")
        #expect(out.value(at: "resources.0.labels") == ["data:pii"])
        #expect(out.value(at: "resources.0.type") == "AWS::S3::Bucket")  // what the event said stays
        #expect(out.value(at: "cloud.region") == "eu-west-1")
        #expect(out.value(at: "cloud.account.uid") == "111122223333")
    }

    @Test("change records round-trip, and two stores fed the same topic in different local orders converge")
    func changesConverge() throws {
        let a = InventoryChange(.upsert(Asset(id: "i-00000000000000001", kind: "instance", name: "a", privateIPs: ["10.9.0.1"],
                                              vulnerabilities: [AssetVulnerability(id: "CVE-1", severity: "high", finding: "f", since: 5)])),
                                time: Self.t0, source: "awsconfig")
        let b = InventoryChange(.upsert(Asset(id: "i-00000000000000001", kind: "instance", name: "b", privateIPs: ["10.9.0.2"])),
                                time: Self.t0 + Self.minute, source: "awsconfig")
        let gone = InventoryChange(.delete(id: "i-00000000000000002"), time: Self.t0, source: "sync")
        for change in [a, b, gone] { #expect(try InventoryChange(json: try JSON.parse(change.jsonValue.serialized())) == change) }
        #expect(throws: InventoryError.self) { try InventoryChange(json: ["op": "upsert", "time": 1]) }
        #expect(throws: InventoryError.self) { try InventoryChange(json: ["op": "rename", "time": 1]) }
        #expect(throws: InventoryError.self) { try InventoryChange(json: ["op": "delete"]) }

        // Copy 1 produced `a` and applied it locally first; both copies then read the topic [a, b].
        let dir = try TempDirectory()
        let one = try dir.store("one.sqlite"), two = try dir.store("two.sqlite")
        try one.apply(a)
        for change in [a, b] {
            try one.apply(change)
            try two.apply(change)
        }
        #expect(try one.all() == two.all())
        #expect(try one.asset(id: "i-00000000000000001")?.name == "b")
        #expect(try one.asset(id: "i-00000000000000001")?.vulnerabilities.isEmpty == true)
        let atA = Enricher(store: one).enrich(Self.apiEvent(time: Self.t0 + 1, ["src_endpoint.ip": "10.9.0.1"]))
        let atB = Enricher(store: two).enrich(Self.apiEvent(time: Self.t0 + 1, ["src_endpoint.ip": "10.9.0.1"]))
        #expect(atA == atB)
        #expect(atA.value(at: "vigil.asset.name") == "a")
    }
}

@Suite("Enricher: role sessions and flow-log interfaces")
struct EnricherMoreLookupsTests {
    @Test("an assumed-role session finds its IAM role; a flow log's ENI finds its instance")
    func roleAndInterface() throws {
        let dir = try TempDirectory()
        let store = try dir.store()
        try store.upsert(Asset(id: "arn:aws:iam::111122223333:role/deployer", kind: "iam_role", owner: "team-release"), at: 1_000)
        try store.upsert(Asset(id: "i-0123456789abcdef1", kind: "instance", name: "worker-1", networkInterfaces: ["eni-0abc"]), at: 1_000)
        let enricher = Enricher(store: store)
        let session = InventoryUpdatesTests.apiEvent(time: 2_000, ["actor.session.issuer": "arn:aws:iam::111122223333:role/deployer",
                                                                   "actor.user.name": "deployer-session"])
        let out = enricher.enrich(session)
        #expect(out.value(at: "vigil.asset_match") == "role_arn")
        #expect(out.value(at: "vigil.asset.owner") == "team-release")
        let flow = InventoryUpdatesTests.apiEvent(time: 2_000, ["device.interface_uid": "eni-0abc", "src_endpoint.ip": "192.0.2.1"])
        let joined = enricher.enrich(flow)
        #expect(joined.value(at: "vigil.asset_match") == "network_interface")
        #expect(joined.value(at: "vigil.asset.name") == "worker-1")
        // Enriching again matches the same way (idempotent).
        #expect(enricher.enrich(joined) == joined)
    }
}
