import Foundation
import Inventory
import OCSF
import Testing

@Suite("Inventory import")
struct InventoryImportTests {
    @Test("the sample CSV imports and answers every kind of lookup")
    func sampleLookups() throws {
        let dir = try TempDirectory()
        let store = try dir.store()
        let summary = try store.importCSV(path: sampleInventoryPath, at: 1_000)
        #expect(summary == ImportSummary(imported: 11, updated: 0))
        #expect(try store.all().count == 11)

        let bastion = try #require(try store.lookup(ip: "10.0.1.10"))
        #expect(bastion.id == "i-0a1b2c3d4e5f60001")
        #expect(bastion.name == "bastion-1")
        #expect(bastion.owner == "team-platform")
        #expect(bastion.environment == "production")
        #expect(bastion.criticality == "high")
        #expect(bastion.internetExposed && !bastion.protected)
        #expect(bastion.publicIPs == ["198.51.100.10"])
        #expect(bastion.securityGroups == ["sg-0bastion"])
        #expect(bastion.tags == ["env": "production", "role": "bastion"])
        #expect(bastion.firstSeen == 1_000 && bastion.lastSeen == 1_000)
        #expect(try store.lookup(ip: "198.51.100.10")?.id == bastion.id)
        #expect(try store.lookup(networkInterface: "eni-0a1b2c3d4e5f60001")?.id == bastion.id)

        let db = try #require(try store.asset(id: "i-0a1b2c3d4e5f60002"))
        #expect(db.name == "payments-db-1" && db.criticality == "critical" && db.protected && !db.internetExposed)
        #expect(db.privateIPs == ["10.0.3.17"] && db.publicIPs.isEmpty)
        #expect(db.tags == ["env": "production", "data": "pci"])
        #expect(try store.lookup(ip: "198.51.100.20")?.name == "ci-runner-1")
        #expect(try store.lookup(ip: "10.0.2.5")?.environment == "staging")

        let key = try #require(try store.lookup(accessKeyID: "AKIAIOSFODNN7EXAMPLE"))
        #expect(key.kind == "access_key" && key.user == "alice" && key.owner == "alice")
        #expect(try store.lookup(accessKeyID: "i-0a1b2c3d4e5f60001") == nil)  // not an access key

        #expect(try store.lookup(userName: "alice")?.id == "arn:aws:iam::111122223333:user/alice")
        #expect(try store.lookup(userName: "alice")?.owner == "team-platform")
        #expect(try store.lookup(userName: "arn:aws:iam::111122223333:user/bob")?.owner == "team-payments")
        // An ARN with a path falls back to the trailing name within the same account only.
        #expect(try store.lookup(userName: "arn:aws:iam::111122223333:user/eng/bob")?.name == "bob")
        #expect(try store.lookup(userName: "arn:aws:iam::999999999999:user/bob") == nil)
        #expect(try store.lookup(userName: "mallory") == nil)
        #expect(try store.lookup(ip: "203.0.113.99") == nil)

        // The quoted tags field keeps its comma.
        #expect(try store.asset(id: "sg-0bastion")?.tags["purpose"] == "ssh from office, vpn")
    }

    @Test("re-importing an unchanged file adds no history")
    func reimportUnchanged() throws {
        let dir = try TempDirectory()
        let store = try dir.store()
        _ = try store.importCSV(path: sampleInventoryPath, at: 1_000)
        let again = try store.importCSV(path: sampleInventoryPath, at: 2_000)
        #expect(again == ImportSummary(imported: 0, updated: 0, unchanged: 11))
        #expect(try store.history(id: "i-0a1b2c3d4e5f60001").count == 1)
        let bastion = try #require(try store.asset(id: "i-0a1b2c3d4e5f60001"))
        #expect(bastion.firstSeen == 1_000 && bastion.lastSeen == 2_000)
    }

    @Test("a bad boolean names line 3 and the column, without echoing the value")
    func badBoolean() throws {
        let dir = try TempDirectory()
        let csv = dir.path("bad.csv")
        try Data((inventoryHeader + "\n"
            + "i-00000001,instance,,,,,,,true,false,,,,,,,\n"
            + "i-00000002,instance,,,,,,,s3cr3t,false,,,,,,,\n").utf8).write(to: URL(fileURLWithPath: csv))
        let store = try dir.store()
        let error = try #require(#expect(throws: InventoryError.self) { _ = try store.importCSV(path: csv, at: 1) })
        #expect(error.code == "bad_boolean")
        #expect(error.line == 3)
        #expect(error.column == "internet_exposed")
        #expect(!error.isRetriable)
        #expect(error.description.contains("line 3"))
        #expect(!error.description.contains("s3cr3t"))
    }

    @Test("a row with the wrong number of fields names its line")
    func wrongColumnCount() throws {
        let dir = try TempDirectory()
        let csv = try dir.write("short.csv", inventoryHeader + "\n"
            + "i-00000001,instance,,,,,,,true,false,,,,,,,\n"
            + "i-00000002,instance,,,,,,,true,false,,,,,,,\n"
            + "i-00000003,instance,only,four\n")
        let error = try #require(#expect(throws: InventoryError.self) { _ = try InventoryStore(path: dir.path("i.sqlite")).importCSV(path: csv, at: 1) })
        #expect(error.code == "csv_column_count")
        #expect(error.line == 4)
    }

    @Test("a missing id names its line and the id column")
    func missingID() throws {
        let dir = try TempDirectory()
        let csv = try dir.write("noid.csv", "id,kind,name\n,instance,web-1\n")
        let error = try #require(#expect(throws: InventoryError.self) { _ = try InventoryStore(path: dir.path("i.sqlite")).importCSV(path: csv, at: 1) })
        #expect(error.code == "missing_field")
        #expect(error.line == 2)
        #expect(error.column == "id")
    }

    @Test("an unknown criticality, an unknown column and a missing kind column are rejected")
    func otherRowErrors() throws {
        let dir = try TempDirectory()
        let store = try dir.store()
        let badCriticality = try dir.write("c.csv", "id,kind,criticality\ni-00000001,instance,High\ni-00000002,instance,severe\n")
        let e1 = try #require(#expect(throws: InventoryError.self) { _ = try store.importCSV(path: badCriticality, at: 1) })
        #expect(e1.code == "bad_criticality" && e1.line == 3 && e1.column == "criticality")

        let unknownColumn = try dir.write("u.csv", "id,kind,colour\ni-00000001,instance,red\n")
        let e2 = try #require(#expect(throws: InventoryError.self) { _ = try store.importCSV(path: unknownColumn, at: 1) })
        #expect(e2.code == "csv_unknown_column" && e2.line == 1 && e2.column == "colour")

        let noKind = try dir.write("k.csv", "id,name\ni-00000001,web\n")
        let e3 = try #require(#expect(throws: InventoryError.self) { _ = try store.importCSV(path: noKind, at: 1) })
        #expect(e3.code == "csv_missing_column" && e3.column == "kind")

        let badTags = try dir.write("t.csv", "id,kind,tags\ni-00000001,instance,env\n")
        let e4 = try #require(#expect(throws: InventoryError.self) { _ = try store.importCSV(path: badTags, at: 1) })
        #expect(e4.code == "bad_tags" && e4.line == 2)

        let missing = #expect(throws: InventoryError.self) { _ = try store.importCSV(path: dir.path("absent.csv"), at: 1) }
        #expect(missing?.code == "file_unreadable")
        #expect(try store.all().isEmpty)
    }

    @Test("a failed import commits nothing")
    func failedImportLeavesStoreUnchanged() throws {
        let dir = try TempDirectory()
        let store = try dir.store()
        _ = try store.importCSV(path: sampleInventoryPath, at: 1_000)
        let before = try store.all()
        let beforeHistory = try store.history(id: "i-0a1b2c3d4e5f60001")

        // Row 2 is valid and would change bastion-1 and add a new asset; row 3 is bad.
        let csv = try dir.write("partial.csv", inventoryHeader + "\n"
            + "i-0a1b2c3d4e5f60001,instance,111122223333,us-east-1,bastion-1,team-security,production,high,true,false,10.0.1.10,,,,,,\n"
            + "i-0a1b2c3d4e5f6000f,instance,111122223333,us-east-1,new-1,team-x,production,high,perhaps,false,10.0.9.9,,,,,,\n")
        let error = try #require(#expect(throws: InventoryError.self) { _ = try store.importCSV(path: csv, at: 2_000) })
        #expect(error.line == 3)
        #expect(try store.all() == before)
        #expect(try store.history(id: "i-0a1b2c3d4e5f60001") == beforeHistory)
        #expect(try store.lookup(ip: "10.0.9.9") == nil)
    }

    @Test("quoted fields keep commas, doubled quotes and line breaks; later lines are still counted right")
    func quotedFields() throws {
        let dir = try TempDirectory()
        let store = try dir.store()
        let csv = try dir.write("quoted.csv", "\u{FEFF}id,kind,name,owner,tags,private_ips\r\n"
            + "i-00000001,instance,\"web, frontend\",\"the \"\"platform\"\" team\",\"env=prod;note=a,b\",\"10.0.0.1; 10.0.0.2\"\r\n"
            + "\r\n"
            + "i-00000002,instance,\"multi\nline\",ops,,\r\n"
            + "i-00000003,instance,x,ops,,,extra\r\n")
        let error = try #require(#expect(throws: InventoryError.self) { _ = try store.importCSV(path: csv, at: 1) })
        // Header line 1, row line 2, blank line 3, a record on lines 4-5, the bad row on line 6.
        #expect(error.code == "csv_column_count" && error.line == 6)

        let good = try dir.write("good.csv", "\u{FEFF}id,kind,name,owner,tags,private_ips\r\n"
            + "i-00000001,instance,\"web, frontend\",\"the \"\"platform\"\" team\",\"env=prod;note=a,b\",\"10.0.0.1; 10.0.0.2\"\r\n"
            + "i-00000002,instance,\"multi\nline\",ops,,\r\n")
        #expect(try store.importCSV(path: good, at: 1) == ImportSummary(imported: 2, updated: 0))
        let web = try #require(try store.asset(id: "i-00000001"))
        #expect(web.name == "web, frontend")
        #expect(web.owner == "the \"platform\" team")
        #expect(web.tags == ["env": "prod", "note": "a,b"])
        #expect(web.privateIPs == ["10.0.0.1", "10.0.0.2"])
        #expect(try store.lookup(ip: "10.0.0.2")?.id == "i-00000001")
        #expect(try store.asset(id: "i-00000002")?.name == "multi\nline")

        let unterminated = try dir.write("open.csv", "id,kind,name\ni-00000001,instance,\"never closed\n")
        let e2 = try #require(#expect(throws: InventoryError.self) { _ = try store.importCSV(path: unterminated, at: 1) })
        #expect(e2.code == "csv_unterminated_quote" && e2.line == 2)
        let stray = try dir.write("stray.csv", "id,kind,name\ni-00000001,instance,5\" disk\n")
        let e3 = try #require(#expect(throws: InventoryError.self) { _ = try store.importCSV(path: stray, at: 1) })
        #expect(e3.code == "csv_bad_quote" && e3.line == 2)
    }

    @Test("JSON import takes snake_case objects and names the failing item and field")
    func jsonImport() throws {
        let dir = try TempDirectory()
        let store = try dir.store()
        let json = try dir.write("assets.json", """
            [
              {"id": "i-00000001", "kind": "instance", "name": "web-1", "internet_exposed": true,
               "private_ips": ["10.1.0.1"], "public_ips": "203.0.113.5", "tags": {"env": "prod"},
               "criticality": "HIGH", "first_seen": "2024-05-01T00:00:00Z"},
              {"id": "AKIAEXAMPLE2", "kind": "access_key", "user": "carol", "protected": "yes"}
            ]
            """)
        #expect(try store.importJSON(path: json, at: 5) == ImportSummary(imported: 2, updated: 0))
        let web = try #require(try store.lookup(ip: "203.0.113.5"))
        #expect(web.name == "web-1" && web.internetExposed && web.criticality == "high")
        #expect(web.tags == ["env": "prod"] && web.privateIPs == ["10.1.0.1"])
        #expect(web.firstSeen == Timestamp.parseISO8601("2024-05-01T00:00:00Z"))
        #expect(try store.lookup(accessKeyID: "AKIAEXAMPLE2")?.protected == true)

        let bad = try dir.write("bad.json", """
            [{"id": "a", "kind": "bucket"}, {"id": "b", "kind": "bucket", "internet_exposed": "sometimes"}]
            """)
        let e1 = try #require(#expect(throws: InventoryError.self) { _ = try store.importJSON(path: bad, at: 6) })
        #expect(e1.code == "bad_boolean" && e1.item == 2 && e1.column == "internet_exposed")
        #expect(try store.asset(id: "a") == nil)

        let typo = try dir.write("typo.json", #"[{"id": "a", "kind": "bucket", "ownr": "x"}]"#)
        let e2 = try #require(#expect(throws: InventoryError.self) { _ = try store.importJSON(path: typo, at: 6) })
        #expect(e2.code == "unknown_field" && e2.item == 1 && e2.column == "ownr")

        let object = try dir.write("object.json", #"{"id": "a"}"#)
        let e3 = #expect(throws: InventoryError.self) { _ = try store.importJSON(path: object, at: 6) }
        #expect(e3?.code == "json_not_array")
        let broken = try dir.write("broken.json", "[{")
        let e4 = #expect(throws: InventoryError.self) { _ = try store.importJSON(path: broken, at: 6) }
        #expect(e4?.code == "json_invalid")
    }

    @Test("Codable uses the same snake_case keys and defaults")
    func codable() throws {
        let data = Data(#"{"id":"i-00000001","kind":"instance","internet_exposed":true,"private_ips":["10.0.0.1"]}"#.utf8)
        let asset = try JSONDecoder().decode(Asset.self, from: data)
        #expect(asset == Asset(id: "i-00000001", kind: "instance", internetExposed: true, privateIPs: ["10.0.0.1"]))
        let back = try JSONDecoder().decode(Asset.self, from: try JSONEncoder().encode(asset))
        #expect(back == asset)
        #expect(try Asset(json: asset.jsonValue) == asset)
    }
}
