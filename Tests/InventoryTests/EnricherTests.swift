import Foundation
import Inventory
import OCSF
import Testing

@Suite("Enricher")
struct EnricherTests {
    /// A store with the sample inventory and an enricher over it.
    static func sampleEnricher(_ dir: TempDirectory, name: String = "inventory.sqlite") throws -> (InventoryStore, Enricher) {
        let store = try dir.store(name)
        _ = try store.importCSV(path: sampleInventoryPath, at: 1_000)
        return (store, Enricher(store: store))
    }

    static func apiEvent(_ extra: [String: JSON]) -> JSON {
        var event = OCSFEvent.base(class: .apiActivity, activityID: 99, activityName: "Other", time: 1_700_000_000_000,
                                   uid: "evt-1", product: "CloudTrail", vendor: "AWS")
        for (path, value) in extra { event.set(path, value) }
        return event
    }

    @Test("a source IP finds the bastion and fills in device")
    func sourceIP() throws {
        let dir = try TempDirectory()
        let (_, enricher) = try Self.sampleEnricher(dir)
        let out = enricher.enrich(Self.apiEvent(["src_endpoint.ip": "198.51.100.10"]))
        #expect(out.value(at: "vigil.asset_status") == "known")
        #expect(out.value(at: "vigil.asset_match") == "src_ip")
        #expect(out.value(at: "vigil.asset.name") == "bastion-1")
        #expect(out.value(at: "vigil.asset.id") == "i-0a1b2c3d4e5f60001")
        #expect(out.value(at: "vigil.asset.owner") == "team-platform")
        #expect(out.value(at: "vigil.asset.criticality") == "high")
        #expect(out.value(at: "vigil.asset.internet_exposed") == true)
        #expect(out.value(at: "vigil.asset.protected") == false)
        #expect(out.value(at: "vigil.asset.tags.role") == "bastion")
        #expect(out.value(at: "vigil.asset.public_ips.0") == "198.51.100.10")
        #expect(out.value(at: "vigil.asset.user") == nil)
        #expect(out.value(at: "device.instance_uid") == "i-0a1b2c3d4e5f60001")
        #expect(out.value(at: "device.name") == "bastion-1")
        #expect(out.value(at: "device.hostname") == "bastion-1")
        #expect(out.value(at: "device.region") == "us-east-1")
        #expect(out.value(at: "device.ip") == "10.0.1.10")
        #expect(out.value(at: "device.type_id") == 6)
        #expect(enricher.knownCount == 1 && enricher.unknownCount == 0)
        // OCSF's primary key now prefers the asset id.
        #expect(OCSFEvent.primaryKey(out) == "i-0a1b2c3d4e5f60001")
    }

    @Test("an instance-role session in actor.user.uid finds the instance")
    func instanceRoleSession() throws {
        let dir = try TempDirectory()
        let (_, enricher) = try Self.sampleEnricher(dir)
        let out = enricher.enrich(Self.apiEvent(["actor.user.uid": "AROAX:i-0a1b2c3d4e5f60002"]))
        #expect(out.value(at: "vigil.asset.name") == "payments-db-1")
        #expect(out.value(at: "vigil.asset.criticality") == "critical")
        #expect(out.value(at: "vigil.asset.protected") == true)
        #expect(out.value(at: "vigil.asset_match") == "actor_instance_id")
        #expect(out.value(at: "device.ip") == "10.0.3.17")
    }

    @Test("lookups run in the documented order and the first hit wins")
    func order() throws {
        let dir = try TempDirectory()
        let (_, enricher) = try Self.sampleEnricher(dir)
        // A resource instance id beats everything after it.
        let both = enricher.enrich(Self.apiEvent([
            "resources": [["type": "AWS::EC2::Instance", "uid": "arn:aws:ec2:us-east-1:111122223333:instance/i-0a1b2c3d4e5f60003"]],
            "actor.user.credential_uid": "AKIAIOSFODNN7EXAMPLE",
            "src_endpoint.ip": "198.51.100.10",
        ]))
        #expect(both.value(at: "vigil.asset.name") == "ci-runner-1")
        #expect(both.value(at: "vigil.asset_match") == "instance_id")

        // An unknown instance id falls through to the access key.
        let key = enricher.enrich(Self.apiEvent([
            "resources": [["uid": "i-0fffffffffffffff0"], ["uid": "arn:aws:s3:::somewhere"]],
            "actor.user.credential_uid": "AKIAIOSFODNN7EXAMPLE",
            "actor.user.name": "bob",
        ]))
        #expect(key.value(at: "vigil.asset.kind") == "access_key")
        #expect(key.value(at: "vigil.asset.user") == "alice")
        #expect(key.value(at: "vigil.asset_match") == "access_key")
        #expect(key["device"] == nil)  // only instances get a device

        // Destination IP, then user name.
        let dst = enricher.enrich(Self.apiEvent(["src_endpoint.ip": "203.0.113.7", "dst_endpoint.ip": "10.0.2.5"]))
        #expect(dst.value(at: "vigil.asset_match") == "dst_ip" && dst.value(at: "vigil.asset.name") == "ci-runner-1")
        let user = enricher.enrich(Self.apiEvent(["src_endpoint.ip": "203.0.113.7", "actor.user.name": "bob"]))
        #expect(user.value(at: "vigil.asset_match") == "user_name")
        #expect(user.value(at: "vigil.asset.owner") == "team-payments")
        #expect(enricher.knownCount == 4)
    }

    @Test("an unknown IP is marked unknown, counted, and otherwise left alone")
    func unknown() throws {
        let dir = try TempDirectory()
        let (_, enricher) = try Self.sampleEnricher(dir)
        let event = Self.apiEvent(["src_endpoint.ip": "203.0.113.250"])
        let out = enricher.enrich(event)
        #expect(out.value(at: "vigil.asset_status") == "unknown")
        #expect(out.value(at: "vigil.asset") == nil)
        var stripped = out
        stripped["vigil"] = nil
        #expect(stripped == event)
        #expect(enricher.unknownCount == 1 && enricher.knownCount == 0 && enricher.errorCount == 0)
        _ = enricher.enrich(Self.apiEvent([:]))  // nothing to look up at all
        #expect(enricher.unknownCount == 2)
    }

    @Test("two enrichers over two stores with the same imports agree byte for byte")
    func deterministic() throws {
        let dir = try TempDirectory()
        let (_, first) = try Self.sampleEnricher(dir, name: "a.sqlite")
        let (_, second) = try Self.sampleEnricher(dir, name: "b.sqlite")
        let events = [
            Self.apiEvent(["src_endpoint.ip": "198.51.100.10"]),
            Self.apiEvent(["actor.user.uid": "AROAX:i-0a1b2c3d4e5f60002"]),
            Self.apiEvent(["actor.user.credential_uid": "AKIAIOSFODNN7EXAMPLE"]),
            Self.apiEvent(["actor.user.name": "alice"]),
            Self.apiEvent(["dst_endpoint.ip": "198.51.100.30"]),
            Self.apiEvent(["src_endpoint.ip": "192.0.2.1"]),
        ]
        for event in events {
            #expect(first.enrich(event).serialized() == second.enrich(event).serialized())
        }
        // Re-enriching an enriched event changes nothing.
        let once = first.enrich(events[0])
        #expect(first.enrich(once).serialized() == once.serialized())
    }

    @Test("the cache serves stale answers until invalidated")
    func invalidation() throws {
        let dir = try TempDirectory()
        let (store, enricher) = try Self.sampleEnricher(dir)
        let event = Self.apiEvent(["src_endpoint.ip": "10.0.1.10"])
        #expect(enricher.enrich(event).value(at: "vigil.asset.owner") == "team-platform")

        var bastion = try #require(try store.asset(id: "i-0a1b2c3d4e5f60001"))
        bastion.owner = "team-security"
        try store.upsert(bastion, at: 2_000)
        #expect(enricher.enrich(event).value(at: "vigil.asset.owner") == "team-platform")  // cached
        enricher.invalidate(assetID: bastion.id)
        #expect(enricher.enrich(event).value(at: "vigil.asset.owner") == "team-security")
    }

    @Test("misses are cached too, and an invalidation clears them")
    func cachedMisses() throws {
        let dir = try TempDirectory()
        let (store, enricher) = try Self.sampleEnricher(dir)
        let event = Self.apiEvent(["src_endpoint.ip": "10.0.7.7"])
        #expect(enricher.enrich(event).value(at: "vigil.asset_status") == "unknown")
        let newcomer = Asset(id: "i-0a1b2c3d4e5f60009", kind: "instance", name: "new-1", privateIPs: ["10.0.7.7"])
        try store.upsert(newcomer, at: 2_000)
        #expect(enricher.enrich(event).value(at: "vigil.asset_status") == "unknown")
        enricher.invalidate(assetID: newcomer.id)
        #expect(enricher.enrich(event).value(at: "vigil.asset.name") == "new-1")
    }

    @Test("a bounded cache still answers correctly when it overflows")
    func boundedCache() throws {
        let dir = try TempDirectory()
        let store = try dir.store()
        _ = try store.importCSV(path: sampleInventoryPath, at: 1_000)
        let enricher = Enricher(store: store, cacheCapacity: 2)
        for round in 0..<3 {
            for ip in ["10.0.1.10", "10.0.3.17", "10.0.2.5", "192.0.2.\(round)"] {
                _ = enricher.enrich(Self.apiEvent(["src_endpoint.ip": .string(ip)]))
            }
        }
        #expect(enricher.knownCount == 9 && enricher.unknownCount == 3)
    }

    @Test("instance ids are recognised strictly")
    func instanceIDs() {
        #expect(AssetJoin.isInstanceID("i-0a1b2c3d4e5f60001"))
        #expect(AssetJoin.isInstanceID("i-1234abcd"))
        #expect(!AssetJoin.isInstanceID("i-0A1B2C3D4E5F60001"))
        #expect(!AssetJoin.isInstanceID("i-0a1b2c3d4e5f6000"))
        #expect(!AssetJoin.isInstanceID("ami-0a1b2c3d"))
        #expect(AssetJoin.trailingInstanceID("AROAEXAMPLE:i-0abc1234") == "i-0abc1234")
        #expect(AssetJoin.trailingInstanceID("arn:aws:sts::1:assumed-role/r/i-0abc1234") == "i-0abc1234")
        #expect(AssetJoin.trailingInstanceID("AROAEXAMPLE:alice") == nil)
        #expect(AssetJoin.trailingInstanceID("i-0abc1234") == "i-0abc1234")
        #expect(AssetJoin.trailingInstanceID("arn:aws:ec2:us-east-1:1:instance/i-0abc1234") == "i-0abc1234")
        #expect(AssetJoin.trailingInstanceID("i-0abc1234:") == nil)
        #expect(AssetJoin.trailingInstanceID("") == nil)
        #expect(AssetJoin.trailingInstanceID("ü/i-0abc1234") == "i-0abc1234")
        #expect(!AssetJoin.isInstanceID("i-0abc123é"))
    }
}

@Suite("Enricher store failures")
struct EnricherFailureTests {
    @Test("a store that fails marks the event error and counts it, without throwing")
    func storeError() throws {
        let dir = try TempDirectory()
        let path = dir.path("doomed.sqlite")
        let store = try InventoryStore(path: path)
        _ = try store.importCSV(path: sampleInventoryPath, at: 1_000)
        let enricher = Enricher(store: store)
        // Overwrite the database under the open store: every read now fails.
        for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: path + suffix) {
            try Data(repeating: 0x5A, count: 65_536).write(to: URL(fileURLWithPath: path + suffix))
        }
        let out = enricher.enrich(EnricherTests.apiEvent(["src_endpoint.ip": "10.0.1.10"]))
        #expect(out.value(at: "vigil.asset_status") == "error")
        #expect(out.value(at: "vigil.asset") == nil)
        #expect(enricher.errorCount == 1 && enricher.knownCount == 0 && enricher.unknownCount == 0)
    }
}
