import Foundation
import Inventory

/// A fresh directory per test, removed when the test is done with it.
final class TempDirectory {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("vigil-inventory-tests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    /// Writes `text` to a file in the directory and returns its path.
    func write(_ name: String, _ text: String) throws -> String {
        let path = path(name)
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// A new store in a new SQLite file.
    func store(_ name: String = "inventory.sqlite") throws -> InventoryStore {
        try InventoryStore(path: path(name))
    }
}

/// `samples/inventory.csv` at the repository root.
let sampleInventoryPath: String = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("samples/inventory.csv").path

let inventoryHeader =
    "id,kind,account,region,name,owner,environment,criticality,internet_exposed,protected,"
    + "private_ips,public_ips,network_interfaces,image_id,security_groups,user,tags"
