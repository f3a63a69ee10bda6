import Foundation
import Inventory
import Testing

@Suite("Inventory store")
struct InventoryStoreTests {
    static let v1 = Asset(id: "i-0123456789abcdef0", kind: "instance", name: "api-1", owner: "team-a",
                          criticality: "medium", privateIPs: ["10.9.0.1"])

    @Test("counts current assets by tag value (blast-radius group sizes), tag names with ':' included")
    func countByTag() throws {
        let store = try InventoryStore(path: ":memory:")
        for (index, group) in ["web", "web", "web", "api"].enumerated() {
            _ = try store.upsert(Asset(id: "i-\(index)", kind: "instance", tags: ["aws:autoscaling:groupName": group, "team": "a\"b"]), at: 1)
        }
        #expect(try store.count(tag: "aws:autoscaling:groupName", value: "web") == 3)
        #expect(try store.count(tag: "aws:autoscaling:groupName", value: "api") == 1)
        #expect(try store.count(tag: "aws:autoscaling:groupName", value: "db") == 0)
        #expect(try store.count(tag: "team", value: "a\"b") == 4)
        try store.delete(id: "i-0", at: 2)
        #expect(try store.count(tag: "aws:autoscaling:groupName", value: "web") == 2)
    }

    @Test("history answers as of a time")
    func history() throws {
        let dir = try TempDirectory()
        let store = try dir.store()
        var v2 = Self.v1
        v2.owner = "team-b"
        v2.privateIPs = ["10.9.0.2"]
        #expect(try store.upsert(Self.v1, at: 100) == .inserted)
        #expect(try store.upsert(v2, at: 200) == .updated)

        #expect(try store.asset(id: Self.v1.id, at: 50) == nil)
        #expect(try store.asset(id: Self.v1.id, at: 100)?.owner == "team-a")
        #expect(try store.asset(id: Self.v1.id, at: 150)?.owner == "team-a")
        #expect(try store.asset(id: Self.v1.id, at: 200)?.owner == "team-b")
        #expect(try store.asset(id: Self.v1.id, at: 250)?.owner == "team-b")
        #expect(try store.asset(id: Self.v1.id)?.owner == "team-b")
        // First seen survives the change; last seen moves.
        #expect(try store.asset(id: Self.v1.id)?.firstSeen == 100)
        #expect(try store.asset(id: Self.v1.id)?.lastSeen == 200)

        let versions = try store.history(id: Self.v1.id)
        #expect(versions.map(\.validFrom) == [100, 200])
        #expect(versions.map(\.validTo) == [200, nil])
        #expect(versions.map { $0.asset?.owner } == ["team-a", "team-b"])

        // Current lookups follow the new address only.
        #expect(try store.lookup(ip: "10.9.0.1") == nil)
        #expect(try store.lookup(ip: "10.9.0.2")?.owner == "team-b")
    }

    @Test("delete removes the current asset but keeps the past")
    func delete() throws {
        let dir = try TempDirectory()
        let store = try dir.store()
        try store.upsert(Self.v1, at: 100)
        try store.delete(id: Self.v1.id, at: 300)
        #expect(try store.asset(id: Self.v1.id) == nil)
        #expect(try store.lookup(ip: "10.9.0.1") == nil)
        #expect(try store.all().isEmpty)
        #expect(try store.asset(id: Self.v1.id, at: 150)?.name == "api-1")
        #expect(try store.asset(id: Self.v1.id, at: 300) == nil)
        #expect(try store.asset(id: Self.v1.id, at: 400) == nil)
        let versions = try store.history(id: Self.v1.id)
        #expect(versions.count == 2)
        #expect(versions.last == AssetVersion(validFrom: 300, validTo: nil, asset: nil))

        // Deleting again is a no-op; re-creating opens a new version after the deletion.
        try store.delete(id: Self.v1.id, at: 350)
        #expect(try store.history(id: Self.v1.id).count == 2)
        #expect(try store.upsert(Self.v1, at: 500) == .inserted)
        #expect(try store.asset(id: Self.v1.id, at: 400) == nil)
        #expect(try store.asset(id: Self.v1.id, at: 600)?.firstSeen == 500)
        #expect(try store.history(id: Self.v1.id).map(\.validTo) == [300, 500, nil])
    }

    @Test("unchanged upserts add no version; late changes never rewrite the past")
    func versionsStayOrdered() throws {
        let dir = try TempDirectory()
        let store = try dir.store()
        try store.upsert(Self.v1, at: 100)
        #expect(try store.upsert(Self.v1, at: 150) == .unchanged)
        #expect(try store.history(id: Self.v1.id).count == 1)
        #expect(try store.asset(id: Self.v1.id)?.lastSeen == 150)

        var late = Self.v1
        late.owner = "team-late"
        // Stamped before the open version started: recorded at its start instead.
        #expect(try store.upsert(late, at: 50) == .updated)
        let versions = try store.history(id: Self.v1.id)
        #expect(versions.count == 1)
        #expect(versions[0].validFrom == 100 && versions[0].asset?.owner == "team-late")
        #expect(try store.asset(id: Self.v1.id, at: 75) == nil)
    }

    @Test("reopening the file keeps the data and re-running migrations is harmless")
    func reopen() throws {
        let dir = try TempDirectory()
        let path = dir.path("reopen.sqlite")
        var expected: [Asset] = []
        do {
            let store = try InventoryStore(path: path)
            _ = try store.importCSV(path: sampleInventoryPath, at: 1_000)
            try store.upsert(Self.v1, at: 2_000)
            expected = try store.all()
        }
        let reopened = try InventoryStore(path: path)
        #expect(try reopened.all() == expected)
        #expect(try reopened.lookup(ip: "10.9.0.1")?.id == Self.v1.id)
        #expect(try reopened.asset(id: Self.v1.id, at: 2_500)?.name == "api-1")
        let third = try InventoryStore(path: path)  // a second live handle on the same file
        #expect(try third.all().count == expected.count)
    }

    @Test("an in-memory store works the same")
    func inMemory() throws {
        let store = try InventoryStore(path: ":memory:")
        try store.upsert(Self.v1, at: 1)
        #expect(try store.lookup(ip: "10.9.0.1")?.name == "api-1")
    }

    @Test("a file that is not a database fails to open with a clear code")
    func notADatabase() throws {
        let dir = try TempDirectory()
        let path = try dir.write("garbage.sqlite", String(repeating: "not sqlite at all ", count: 400))
        let error = try #require(#expect(throws: InventoryError.self) { _ = try InventoryStore(path: path) })
        #expect(error.code == "open_failed")
        #expect(error.sqliteCode != nil)
    }

    @Test("a batch upsert is one transaction and reports what changed")
    func batchUpsert() throws {
        let dir = try TempDirectory()
        let store = try dir.store()
        var changed = Self.v1
        changed.criticality = "critical"
        let other = Asset(id: "arn:aws:s3:::logs", kind: "bucket")
        #expect(try store.upsert([Self.v1, other], at: 10) == ImportSummary(imported: 2, updated: 0))
        #expect(try store.upsert([changed, other], at: 20) == ImportSummary(imported: 0, updated: 1, unchanged: 1))
    }
}
