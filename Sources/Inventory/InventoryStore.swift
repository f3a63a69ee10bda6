import GRDB
import LocalDatabase
import OCSF

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What an import did: how many assets were new to the store, how many existing assets changed,
/// and how many rows matched what was already stored (those only refresh `last_seen`).
public struct ImportSummary: Sendable, Equatable {
    /// Assets the store did not hold before.
    public var imported: Int
    /// Assets the store held whose content changed (a new history version each).
    public var updated: Int
    /// Rows identical to the stored asset apart from first/last-seen times.
    public var unchanged: Int

    /// Makes a summary.
    public init(imported: Int = 0, updated: Int = 0, unchanged: Int = 0) {
        self.imported = imported
        self.updated = updated
        self.unchanged = unchanged
    }
}

/// What an upsert did to the store.
public enum AssetChange: Sendable, Equatable {
    /// The asset was new (or had been deleted).
    case inserted
    /// The asset existed and its content changed: a new history version was written.
    case updated
    /// The asset existed with the same content; only `last_seen` moved.
    case unchanged
}

/// One entry of an asset's history: the asset as it was from `validFrom` (inclusive) until
/// `validTo` (exclusive; `nil` while current). `asset` is `nil` for a deletion.
public struct AssetVersion: Sendable, Equatable {
    /// Start of the interval, epoch milliseconds, inclusive.
    public var validFrom: Int64
    /// End of the interval, epoch milliseconds, exclusive; `nil` for the current version.
    public var validTo: Int64?
    /// The asset in that interval, or `nil` when it was deleted.
    public var asset: Asset?

    /// Makes a version.
    public init(validFrom: Int64, validTo: Int64?, asset: Asset?) {
        self.validFrom = validFrom
        self.validTo = validTo
        self.asset = asset
    }
}

/// A stretch of time during which a lookup answers with one asset (or with none).
public struct AssetSpan: Sendable, Equatable {
    /// Start, epoch milliseconds, inclusive.
    public var from: Int64
    /// End, epoch milliseconds, exclusive; `nil` while current.
    public var to: Int64?
    /// The answer in that stretch; `nil` when nothing answered (deleted, not yet attached).
    public var asset: Asset?

    /// Makes a span.
    public init(from: Int64, to: Int64?, asset: Asset?) {
        self.from = from
        self.to = to
        self.asset = asset
    }
}

/// What one lookup key answers with over time, oldest first, spans not overlapping.
public struct AssetTimeline: Sendable, Equatable {
    /// The spans, oldest first.
    public var spans: [AssetSpan]

    /// Makes a timeline.
    public init(spans: [AssetSpan]) { self.spans = spans }

    /// The asset at `time` (epoch ms); `nil` time means now (the open span). Before the first
    /// span the first span answers when `extendingBack` (the default): an inventory imported
    /// today still describes yesterday's events, since nothing older is known.
    public func asset(at time: Int64?, extendingBack: Bool = true) -> Asset? {
        spanIndex(at: time, extendingBack: extendingBack).flatMap { spans[$0].asset }
    }

    /// The index of the span that answers for `time` (see ``asset(at:extendingBack:)``).
    public func spanIndex(at time: Int64?, extendingBack: Bool = true) -> Int? {
        guard !spans.isEmpty else { return nil }
        guard let time else { return spans[spans.count - 1].to == nil ? spans.count - 1 : nil }
        if time < spans[0].from { return extendingBack ? 0 : nil }
        // Binary search for the last span starting at or before `time`.
        var low = 0, high = spans.count - 1
        while low < high {
            let mid = (low + high + 1) / 2
            if spans[mid].from <= time { low = mid } else { high = mid - 1 }
        }
        if let to = spans[low].to, time >= to { return nil }
        return low
    }

    /// Whether any span answers with this asset id.
    public func mentions(_ id: String) -> Bool { spans.contains { $0.asset?.id == id } }
}

/// The SQLite asset inventory: current assets with their addresses indexed for lookups, and a
/// version history so a question can be answered as of a past time.
///
/// One connection pool per file for the life of the object; the schema is migrated when the store
/// opens; every change (an upsert, a delete, a whole import) is one write transaction, so readers
/// never see an asset without its addresses or a history with two open versions.
///
/// History is append-only in time: a change stamped earlier than the asset's current version is
/// recorded at that version's start instead (the latest write wins; the past is never rewritten).
public final class InventoryStore: Sendable {
    /// The database file, or `:memory:`.
    public let path: String
    private let database: any DatabaseWriter

    /// Opens (creating if needed) the inventory at `path` and migrates its schema.
    /// `:memory:` gives a private in-memory store.
    public init(path: String) throws(InventoryError) {
        self.path = path
        // A pool: enrichment reads while an import (possibly another process) writes.
        do {
            database = try LocalDatabase.open(path: path, label: "vigil.inventory", pool: true, migrator: Self.migrator)
        } catch {
            var wrapped = InventoryError.wrapping(error)
            if wrapped.code == "database_error" { wrapped.code = "open_failed" }
            throw wrapped
        }
    }

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-assets") { db in
            try db.execute(sql: """
                CREATE TABLE asset (
                    id TEXT PRIMARY KEY NOT NULL,
                    kind TEXT NOT NULL,
                    account TEXT, region TEXT, name TEXT, owner TEXT, environment TEXT, criticality TEXT,
                    internet_exposed INTEGER NOT NULL DEFAULT 0,
                    protected INTEGER NOT NULL DEFAULT 0,
                    tags TEXT NOT NULL DEFAULT '{}',
                    private_ips TEXT NOT NULL DEFAULT '[]',
                    public_ips TEXT NOT NULL DEFAULT '[]',
                    network_interfaces TEXT NOT NULL DEFAULT '[]',
                    image_id TEXT,
                    security_groups TEXT NOT NULL DEFAULT '[]',
                    user_name TEXT,
                    first_seen INTEGER NOT NULL,
                    last_seen INTEGER NOT NULL
                );
                CREATE INDEX asset_kind_name ON asset(kind, name);
                CREATE INDEX asset_kind_user ON asset(kind, user_name);
                -- Lookup keys of current assets: private_ip, public_ip, network_interface.
                CREATE TABLE asset_address (
                    address TEXT NOT NULL,
                    kind TEXT NOT NULL,
                    asset_id TEXT NOT NULL REFERENCES asset(id) ON DELETE CASCADE,
                    PRIMARY KEY (address, kind, asset_id)
                ) WITHOUT ROWID;
                CREATE INDEX asset_address_asset ON asset_address(asset_id);
                -- History: [valid_from, valid_to); body NULL marks a deletion; one open row per asset.
                CREATE TABLE asset_version (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    asset_id TEXT NOT NULL,
                    valid_from INTEGER NOT NULL,
                    valid_to INTEGER,
                    body TEXT
                );
                CREATE INDEX asset_version_asset ON asset_version(asset_id, valid_from);
                CREATE UNIQUE INDEX asset_version_open ON asset_version(asset_id) WHERE valid_to IS NULL;
                """)
        }
        migrator.registerMigration("v2-vulnerabilities-address-history") { db in
            try db.execute(sql: """
                ALTER TABLE asset ADD COLUMN vulnerabilities TEXT NOT NULL DEFAULT '[]';
                -- Which asset held an address when: [valid_from, valid_to), for lookups as of an event's time.
                CREATE TABLE address_history (
                    address TEXT NOT NULL,
                    kind TEXT NOT NULL,
                    asset_id TEXT NOT NULL,
                    asset_kind TEXT NOT NULL,
                    valid_from INTEGER NOT NULL,
                    valid_to INTEGER
                );
                CREATE INDEX address_history_address ON address_history(address, kind);
                CREATE INDEX address_history_open ON address_history(asset_id) WHERE valid_to IS NULL;
                INSERT INTO address_history (address, kind, asset_id, asset_kind, valid_from, valid_to)
                    SELECT x.address, x.kind, x.asset_id, a.kind, v.valid_from, NULL
                    FROM asset_address x JOIN asset a ON a.id = x.asset_id
                    JOIN asset_version v ON v.asset_id = x.asset_id AND v.valid_to IS NULL;
                """)
        }
        return migrator
    }

    // MARK: - Changes

    /// Inserts or replaces the asset as of `time` (epoch ms). A changed asset gets a new history
    /// version; an identical one only moves `last_seen`. `firstSeen`/`lastSeen` left `nil` are
    /// filled from the stored asset and `time`.
    ///
    /// Vulnerabilities come from findings, not from the sources that describe assets (imports,
    /// syncs, Config items), so by default the stored asset keeps its open vulnerabilities.
    /// `keepingVulnerabilities: false` stores the asset exactly as given: the form for findings
    /// and for full asset states read back from the `inventory` topic.
    @discardableResult
    public func upsert(_ asset: Asset, at time: Int64, keepingVulnerabilities: Bool = true) throws(InventoryError) -> AssetChange {
        try writing { db in try Self.apply(asset, at: time, keepingVulnerabilities: keepingVulnerabilities, db) }
    }

    /// Upserts many assets in one transaction: all or none are stored.
    @discardableResult
    public func upsert(_ assets: [Asset], at time: Int64) throws(InventoryError) -> ImportSummary {
        try upsertReporting(assets, at: time).summary
    }

    /// Upserts many assets in one transaction and says which of them changed the store (so
    /// they can be published to other copies).
    public func upsertReporting(_ assets: [Asset], at time: Int64) throws(InventoryError) -> (summary: ImportSummary, changed: [String]) {
        try writing { db in
            var summary = ImportSummary()
            var changed: [String] = []
            for asset in assets {
                let change = try Self.apply(asset, at: time, keepingVulnerabilities: true, db)
                summary.count(change)
                if change != .unchanged { changed.append(asset.id) }
            }
            return (summary, changed)
        }
    }

    /// Removes the asset as of `time`: it stops answering current lookups, and its history records
    /// the deletion. Deleting an absent asset does nothing.
    @discardableResult
    public func delete(id: String, at time: Int64) throws(InventoryError) -> Bool {
        try writing { db in
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM asset WHERE id = ?", arguments: [id]) == true else { return false }
            let effective = try Self.openVersion(id: id, from: time, body: nil, db)
            try Self.closeAddresses(id: id, at: effective, db)
            try db.execute(sql: "DELETE FROM asset_address WHERE asset_id = ?", arguments: [id])
            try db.execute(sql: "DELETE FROM asset WHERE id = ?", arguments: [id])
            return true
        }
    }

    /// Imports an inventory CSV (header row required; see docs/inventory.md) as of `time`, in one
    /// transaction: a bad row fails the whole import, naming its line and column.
    public func importCSV(path: String, at time: Int64) throws(InventoryError) -> ImportSummary {
        try upsert(try Self.csvAssets(path: path), at: time)
    }

    /// Imports a JSON array of asset objects with the CSV column names as keys, in one transaction:
    /// a bad item fails the whole import, naming its position and field.
    public func importJSON(path: String, at time: Int64) throws(InventoryError) -> ImportSummary {
        try upsert(try Self.jsonAssets(path: path), at: time)
    }

    /// The assets of an import file: JSON (`.json`) or CSV (anything else), validated whole.
    public static func readAssets(path: String) throws(InventoryError) -> [Asset] {
        path.hasSuffix(".json") ? try jsonAssets(path: path) : try csvAssets(path: path)
    }

    static func csvAssets(path: String) throws(InventoryError) -> [Asset] {
        try InventoryCSV.assets(try readFile(path)).map(\.asset)
    }

    static func jsonAssets(path: String) throws(InventoryError) -> [Asset] {
        let document: JSON
        do {
            document = try JSON.parse(try readFile(path))
        } catch let error as InventoryError {
            throw error
        } catch {
            throw InventoryError(code: "json_invalid")
        }
        guard let items = document.arrayValue else { throw InventoryError(code: "json_not_array") }
        var assets: [Asset] = []
        assets.reserveCapacity(items.count)
        for (offset, item) in items.enumerated() {
            do {
                assets.append(try Asset(json: item))
            } catch {
                var located = error
                located.item = offset + 1
                throw located
            }
        }
        return assets
    }

    // MARK: - Reads

    /// The current asset with this id.
    public func asset(id: String) throws(InventoryError) -> Asset? {
        try reading { db in try Row.fetchOne(db, sql: "SELECT * FROM asset WHERE id = ?", arguments: [id]).map(Self.asset(row:)) }
    }

    /// The asset with this id as it was at `time` (epoch ms), `nil` if it did not exist then.
    public func asset(id: String, at time: Int64) throws(InventoryError) -> Asset? {
        try reading { db in
            let body = try String?.fetchOne(db, sql: """
                SELECT body FROM asset_version
                WHERE asset_id = ? AND valid_from <= ? AND (valid_to IS NULL OR valid_to > ?)
                ORDER BY valid_from DESC LIMIT 1
                """, arguments: [id, time, time])
            return try body.flatMap { $0 }.map(Self.asset(body:))
        }
    }

    /// The current asset with this private or public IP. When several share it, an instance is
    /// preferred, then a network interface, then the smallest id.
    public func lookup(ip: String) throws(InventoryError) -> Asset? {
        try lookup(address: Self.normalizedAddress(ip), kinds: ["private_ip", "public_ip"])
    }

    /// The current asset attached to this network interface id (an instance before the ENI itself).
    public func lookup(networkInterface: String) throws(InventoryError) -> Asset? {
        try lookup(address: Self.normalizedAddress(networkInterface), kinds: ["network_interface"])
    }

    /// The current `access_key` asset with this access key id.
    public func lookup(accessKeyID: String) throws(InventoryError) -> Asset? {
        try reading { db in
            try Row.fetchOne(db, sql: "SELECT * FROM asset WHERE id = ? AND kind = 'access_key'",
                             arguments: [accessKeyID]).map(Self.asset(row:))
        }
    }

    /// The current `iam_user` asset with this user name (its `user`, else its `name`) or ARN. An
    /// ARN that is not itself an asset id falls back to its trailing user name within its account.
    public func lookup(userName: String) throws(InventoryError) -> Asset? {
        try reading { db in
            if userName.hasPrefix("arn:") {
                if let row = try Row.fetchOne(db, sql: "SELECT * FROM asset WHERE id = ? AND kind = 'iam_user'",
                                              arguments: [userName]) {
                    return try Self.asset(row: row)
                }
                // arn:aws:iam::<account>:user/<path/>name
                let parts = userName.split(separator: ":", maxSplits: 5, omittingEmptySubsequences: false)
                guard parts.count == 6, parts[5].hasPrefix("user/"), let name = parts[5].split(separator: "/").last
                else { return nil }
                return try Row.fetchOne(db, sql: """
                    SELECT * FROM asset WHERE kind = 'iam_user' AND account = ? AND (user_name = ? OR name = ?)
                    ORDER BY user_name = ? DESC, id LIMIT 1
                    """, arguments: [String(parts[4]), String(name), String(name), String(name)]).map(Self.asset(row:))
            }
            return try Row.fetchOne(db, sql: """
                SELECT * FROM asset WHERE kind = 'iam_user' AND (user_name = ? OR name = ?)
                ORDER BY user_name = ? DESC, id LIMIT 1
                """, arguments: [userName, userName, userName]).map(Self.asset(row:))
        }
    }

    /// How many current assets carry `tag` with `value`: the size of a group such as an
    /// auto-scaling group, for the response blast-radius guard.
    public func count(tag: String, value: String) throws(InventoryError) -> Int {
        // A JSON path member is quoted so tag names with ':' or '.' work.
        var escaped = ""
        for character in tag {
            if character == "\\" || character == "\"" { escaped.append("\\") }
            escaped.append(character)
        }
        let path = "$.\"" + escaped + "\""
        return try reading { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM asset WHERE json_extract(tags, ?) = ?", arguments: [path, value]) ?? 0
        }
    }

    /// Every current asset, ordered by id.
    public func all() throws(InventoryError) -> [Asset] {
        try reading { db in try Row.fetchAll(db, sql: "SELECT * FROM asset ORDER BY id").map(Self.asset(row:)) }
    }

    /// The asset's versions, oldest first; a deletion appears as a version whose `asset` is `nil`.
    public func history(id: String) throws(InventoryError) -> [AssetVersion] {
        try reading { db in
            try Row.fetchAll(db, sql: """
                SELECT valid_from, valid_to, body FROM asset_version WHERE asset_id = ? ORDER BY valid_from, seq
                """, arguments: [id]).map { row in
                let body: String? = row["body"]
                return AssetVersion(validFrom: row["valid_from"], validTo: row["valid_to"],
                                    asset: try body.map(Self.asset(body:)))
            }
        }
    }

    // MARK: - Timelines (lookups as of a time)

    /// What the inventory says an id answers with over time: the asset's versions, oldest first,
    /// with deletions as spans without an asset. Empty when the id was never stored.
    public func timeline(id: String) throws(InventoryError) -> AssetTimeline {
        try reading { db in AssetTimeline(spans: try Self.versions(id: id, db)) }
    }

    /// Which asset held this private or public IP over time (when several held it at once: an
    /// instance first, then a network interface, then the smallest id), as that asset was then.
    public func timeline(ip: String) throws(InventoryError) -> AssetTimeline {
        try timeline(address: Self.normalizedAddress(ip), kinds: ["private_ip", "public_ip"])
    }

    /// Which asset was attached to this network interface id over time.
    public func timeline(networkInterface: String) throws(InventoryError) -> AssetTimeline {
        try timeline(address: Self.normalizedAddress(networkInterface), kinds: ["network_interface"])
    }

    /// The history of the access key with this id (`access_key` versions only).
    public func timeline(accessKeyID: String) throws(InventoryError) -> AssetTimeline {
        try reading { db in
            AssetTimeline(spans: try Self.versions(id: accessKeyID, db).filter { $0.asset == nil || $0.asset?.kind == "access_key" })
        }
    }

    /// The history of the IAM user the name or ARN answers with now (see ``lookup(userName:)``).
    public func timeline(userName: String) throws(InventoryError) -> AssetTimeline {
        guard let current = try lookup(userName: userName) else { return AssetTimeline(spans: []) }
        return try timeline(id: current.id)
    }

    private func timeline(address: String, kinds: [String]) throws(InventoryError) -> AssetTimeline {
        try reading { db in
            // Cached statements: a miss is one of these per lookup key, and parsing the SQL
            // again every time cost more than running it.
            let rows = try Row.fetchAll(db.cachedStatement(sql: """
                SELECT asset_id, asset_kind, valid_from, valid_to FROM address_history
                WHERE address = ? AND kind IN (\(kinds.map { _ in "?" }.joined(separator: ",")))
                """), arguments: StatementArguments([address] + kinds))
            guard !rows.isEmpty else { return AssetTimeline(spans: []) }
            struct Held { var id: String; var rank: Int; var from: Int64; var to: Int64? }
            let held = rows.map { row -> Held in
                let kind: String = row["asset_kind"]
                let rank = kind == "instance" ? 0 : kind == "network_interface" ? 1 : 2
                return Held(id: row["asset_id"], rank: rank, from: row["valid_from"], to: row["valid_to"])
            }
            var versions: [String: [AssetSpan]] = [:]
            for id in Set(held.map(\.id)) { versions[id] = try Self.versions(id: id, db) }
            var bounds = Set<Int64>()
            for h in held {
                bounds.insert(h.from)
                if let to = h.to { bounds.insert(to) }
            }
            for spans in versions.values {
                for span in spans {
                    bounds.insert(span.from)
                    if let to = span.to { bounds.insert(to) }
                }
            }
            let sorted = bounds.sorted()
            var spans: [AssetSpan] = []
            for (index, start) in sorted.enumerated() {
                let end = index + 1 < sorted.count ? sorted[index + 1] : nil
                let holder = held.filter { $0.from <= start && ($0.to.map { start < $0 } ?? true) }
                    .min { ($0.rank, $0.id) < ($1.rank, $1.id) }
                let asset = holder.flatMap { h in AssetTimeline(spans: versions[h.id] ?? []).asset(at: start, extendingBack: false) }
                if let last = spans.last, last.asset == asset {
                    spans[spans.count - 1].to = end
                } else if spans.isEmpty && asset == nil {
                    continue  // before anything held the address
                } else {
                    spans.append(AssetSpan(from: start, to: end, asset: asset))
                }
            }
            return AssetTimeline(spans: spans)
        }
    }

    private static func versions(id: String, _ db: Database) throws -> [AssetSpan] {
        try Row.fetchAll(db.cachedStatement(sql: "SELECT valid_from, valid_to, body FROM asset_version WHERE asset_id = ? ORDER BY valid_from, seq"),
                         arguments: [id]).map { row in
            let body: String? = row["body"]
            return AssetSpan(from: row["valid_from"], to: row["valid_to"], asset: try body.map(asset(body:)))
        }
    }

    // MARK: - Internals

    private func lookup(address: String, kinds: [String]) throws(InventoryError) -> Asset? {
        try reading { db in
            try Row.fetchOne(db, sql: """
                SELECT a.* FROM asset_address x JOIN asset a ON a.id = x.asset_id
                WHERE x.address = ? AND x.kind IN (\(kinds.map { _ in "?" }.joined(separator: ",")))
                ORDER BY CASE a.kind WHEN 'instance' THEN 0 WHEN 'network_interface' THEN 1 ELSE 2 END, a.id
                LIMIT 1
                """, arguments: StatementArguments([address] + kinds)).map(Self.asset(row:))
        }
    }

    private func reading<T>(_ body: (Database) throws -> T) throws(InventoryError) -> T {
        do { return try database.read(body) } catch { throw InventoryError.wrapping(error) }
    }

    private func writing<T>(_ body: (Database) throws -> T) throws(InventoryError) -> T {
        do { return try database.write(body) } catch { throw InventoryError.wrapping(error) }
    }

    /// The upsert itself, inside the caller's write transaction.
    private static func apply(_ given: Asset, at time: Int64, keepingVulnerabilities: Bool, _ db: Database) throws -> AssetChange {
        let current = try Row.fetchOne(db, sql: "SELECT * FROM asset WHERE id = ?", arguments: [given.id])
            .map(asset(row:))
        var incoming = given
        if keepingVulnerabilities, let current { incoming.vulnerabilities = current.vulnerabilities }
        var stored = incoming
        stored.lastSeen = max(incoming.lastSeen ?? time, current?.lastSeen ?? Int64.min)
        if let current, current.content == incoming.content {
            try db.execute(sql: "UPDATE asset SET last_seen = ? WHERE id = ?", arguments: [stored.lastSeen, incoming.id])
            return .unchanged
        }
        stored.firstSeen = incoming.firstSeen ?? current?.firstSeen ?? time
        let effective = try openVersion(id: stored.id, from: time, body: stored.jsonValue.jsonText, db)
        try db.execute(sql: """
            INSERT INTO asset (id, kind, account, region, name, owner, environment, criticality, internet_exposed,
                protected, tags, private_ips, public_ips, network_interfaces, image_id, security_groups, user_name,
                first_seen, last_seen, vulnerabilities)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(id) DO UPDATE SET kind = excluded.kind, account = excluded.account, region = excluded.region,
                name = excluded.name, owner = excluded.owner, environment = excluded.environment,
                criticality = excluded.criticality, internet_exposed = excluded.internet_exposed,
                protected = excluded.protected, tags = excluded.tags, private_ips = excluded.private_ips,
                public_ips = excluded.public_ips, network_interfaces = excluded.network_interfaces,
                image_id = excluded.image_id, security_groups = excluded.security_groups,
                user_name = excluded.user_name, first_seen = excluded.first_seen, last_seen = excluded.last_seen,
                vulnerabilities = excluded.vulnerabilities
            """, arguments: [
                stored.id, stored.kind, stored.account, stored.region, stored.name, stored.owner, stored.environment,
                stored.criticality, stored.internetExposed, stored.protected,
                JSON.object(stored.tags.mapValues { .string($0) }).jsonText,
                listText(stored.privateIPs), listText(stored.publicIPs), listText(stored.networkInterfaces),
                stored.imageID, listText(stored.securityGroups), stored.user, stored.firstSeen, stored.lastSeen,
                JSON.array(stored.vulnerabilities.map(\.jsonValue)).jsonText,
            ])
        try db.execute(sql: "DELETE FROM asset_address WHERE asset_id = ?", arguments: [stored.id])
        try closeAddresses(id: stored.id, at: effective, db)
        let addresses = stored.privateIPs.map { ($0, "private_ip") } + stored.publicIPs.map { ($0, "public_ip") }
            + stored.networkInterfaces.map { ($0, "network_interface") }
            + (stored.kind == "network_interface" ? [(stored.id, "network_interface")] : [])
        for (address, kind) in addresses {
            try db.execute(sql: "INSERT OR IGNORE INTO asset_address (address, kind, asset_id) VALUES (?, ?, ?)",
                           arguments: [normalizedAddress(address), kind, stored.id])
            try db.execute(sql: """
                INSERT INTO address_history (address, kind, asset_id, asset_kind, valid_from, valid_to) VALUES (?, ?, ?, ?, ?, NULL)
                """, arguments: [normalizedAddress(address), kind, stored.id, stored.kind, effective])
        }
        return current == nil ? .inserted : .updated
    }

    /// Ends the asset's open address intervals at `time`; an interval that would be empty (it
    /// opened at `time` or later) is removed.
    private static func closeAddresses(id: String, at time: Int64, _ db: Database) throws {
        try db.execute(sql: "DELETE FROM address_history WHERE asset_id = ? AND valid_to IS NULL AND valid_from >= ?",
                       arguments: [id, time])
        try db.execute(sql: "UPDATE address_history SET valid_to = ? WHERE asset_id = ? AND valid_to IS NULL",
                       arguments: [time, id])
    }

    /// Closes the asset's open version and opens one from `time` with `body` (`nil`: deleted).
    /// A time earlier than the open version's start is moved up to it, and a version opening at the
    /// same instant as the open one replaces it, so intervals never overlap or run backwards.
    /// Returns the time the new version really starts at.
    @discardableResult
    private static func openVersion(id: String, from time: Int64, body: String?, _ db: Database) throws -> Int64 {
        if let open = try Row.fetchOne(db, sql: "SELECT seq, valid_from FROM asset_version WHERE asset_id = ? AND valid_to IS NULL",
                                       arguments: [id]) {
            let seq: Int64 = open["seq"]
            let openFrom: Int64 = open["valid_from"]
            if time <= openFrom {
                try db.execute(sql: "UPDATE asset_version SET body = ? WHERE seq = ?", arguments: [body, seq])
                return openFrom
            }
            try db.execute(sql: "UPDATE asset_version SET valid_to = ? WHERE seq = ?", arguments: [time, seq])
        } else if body == nil {
            return time
        }
        try db.execute(sql: "INSERT INTO asset_version (asset_id, valid_from, valid_to, body) VALUES (?, ?, NULL, ?)",
                       arguments: [id, time, body])
        return time
    }

    private static func asset(row: Row) throws -> Asset {
        func list(_ column: String) throws -> [String] {
            let text: String = row[column]
            guard let items = (try? JSON.parse(text))?.arrayValue else { throw InventoryError(code: "corrupt_record", column: column) }
            return items.compactMap(\.stringValue)
        }
        let tagText: String = row["tags"]
        guard let tagObject = (try? JSON.parse(tagText))?.objectValue else {
            throw InventoryError(code: "corrupt_record", column: "tags")
        }
        return Asset(
            id: row["id"], kind: row["kind"], account: row["account"], region: row["region"], name: row["name"],
            owner: row["owner"], environment: row["environment"], criticality: row["criticality"],
            internetExposed: row["internet_exposed"], protected: row["protected"],
            tags: tagObject.compactMapValues(\.stringValue),
            privateIPs: try list("private_ips"), publicIPs: try list("public_ips"),
            networkInterfaces: try list("network_interfaces"), imageID: row["image_id"],
            securityGroups: try list("security_groups"), user: row["user_name"],
            vulnerabilities: try vulnerabilities(row), firstSeen: row["first_seen"], lastSeen: row["last_seen"]
        )
    }

    private static func vulnerabilities(_ row: Row) throws -> [AssetVulnerability] {
        let text: String = row["vulnerabilities"]
        guard let items = (try? JSON.parse(text))?.arrayValue else { throw InventoryError(code: "corrupt_record", column: "vulnerabilities") }
        var out: [AssetVulnerability] = []
        for item in items { out.append(try AssetVulnerability(json: item)) }
        return out
    }

    private static func asset(body: String) throws -> Asset {
        guard let json = try? JSON.parse(body), let asset = try? Asset(json: json) else {
            throw InventoryError(code: "corrupt_record")
        }
        return asset
    }

    private static func listText(_ items: [String]) -> String {
        JSON.array(items.map { .string($0) }).jsonText
    }

    /// IPv6 text is case-insensitive; ids and IPv4 are unaffected by lower-casing.
    static func normalizedAddress(_ address: String) -> String {
        AssetFields.trim(address).lowercased()
    }

    private static func readFile(_ path: String) throws(InventoryError) -> [UInt8] {
        do {
            return Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw InventoryError(code: "file_unreadable")
        }
    }
}

extension ImportSummary {
    mutating func count(_ change: AssetChange) {
        switch change {
        case .inserted: imported += 1
        case .updated: updated += 1
        case .unchanged: unchanged += 1
        }
    }
}

extension InventoryError {
    /// Maps whatever a database call threw to the module's error: SQLite busy/locked is retriable.
    static func wrapping(_ error: any Error) -> InventoryError {
        if let error = error as? InventoryError { return error }
        if let failure = LocalDatabase.sqliteFailure(error) {
            return InventoryError(code: failure.busy ? "database_busy" : "database_error", isRetriable: failure.busy,
                                  sqliteCode: failure.code)
        }
        return InventoryError(code: "database_error")
    }
}
