import GRDB

/// What happened to an object, as the checkpoint records it.
public enum S3ObjectOutcome: String, Sendable, Equatable {
    /// Produced to the raw topic and acknowledged by the broker.
    case shipped
    /// Larger than the maximum record size: reported, not produced.
    case skippedTooLarge = "skipped_too_large"
}

/// One recorded object.
public struct S3CheckpointEntry: Sendable, Equatable {
    /// The object key.
    public var key: String
    /// The entity tag it had when it was recorded.
    public var etag: String
    /// Its size in bytes.
    public var size: Int
    /// What was done with it.
    public var outcome: S3ObjectOutcome

    /// Makes an entry.
    public init(key: String, etag: String, size: Int, outcome: S3ObjectOutcome) {
        self.key = key
        self.etag = etag
        self.size = size
        self.outcome = outcome
    }
}

/// The S3 shipper's memory: which objects (bucket, key, etag) are done, in a SQLite file.
///
/// The shipper records an object only after the broker acknowledged it, so a crash between the
/// two repeats at most the objects in flight and never skips one. A changed etag (the object
/// was rewritten) makes the object new again.
///
/// Table `s3_object`: `bucket`, `key` (primary key together), `etag`, `size`, `outcome`
/// (`shipped` or `skipped_too_large`), `recorded_at` (epoch ms).
public final class S3Checkpoint: Sendable {
    /// The file this checkpoint lives in.
    public let path: String
    private let queue: any DatabaseWriter

    static let migrator: DatabaseMigrator = {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-s3-object") { db in
            try db.execute(sql: """
                CREATE TABLE s3_object (
                    bucket TEXT NOT NULL,
                    key TEXT NOT NULL,
                    etag TEXT NOT NULL,
                    size INTEGER NOT NULL,
                    outcome TEXT NOT NULL,
                    recorded_at INTEGER NOT NULL,
                    PRIMARY KEY (bucket, key)
                ) WITHOUT ROWID
                """)
        }
        return migrator
    }()

    /// Opens (creating when absent) and migrates the checkpoint file.
    public init(path: String) throws(ShippingError) {
        self.path = path
        queue = try CheckpointDatabase.open(path: path, label: "vigil.ship.s3", migrator: Self.migrator)
    }

    /// The recorded entries among `keys` of `bucket`, by key (one listing page at a time, so
    /// memory stays bounded however many objects the bucket holds).
    public func entries(bucket: String, keys: [String]) async throws(ShippingError) -> [String: S3CheckpointEntry] {
        if keys.isEmpty { return [:] }
        do {
            return try await queue.read { db in
                var found: [String: S3CheckpointEntry] = [:]
                // SQLite allows 32,766 parameters; a listing page has at most 1,000 keys.
                for chunk in stride(from: 0, to: keys.count, by: 500).map({ keys[$0..<min($0 + 500, keys.count)] }) {
                    let marks = Array(repeating: "?", count: chunk.count).joined(separator: ",")
                    let rows = try Row.fetchCursor(db, sql: "SELECT key, etag, size, outcome FROM s3_object WHERE bucket = ? AND key IN (\(marks))",
                                                   arguments: StatementArguments([bucket] + Array(chunk)))
                    while let row = try rows.next() {
                        let entry = Self.entry(row)
                        found[entry.key] = entry
                    }
                }
                return found
            }
        } catch {
            throw CheckpointDatabase.failure(error, "cannot read the checkpoint \(path)")
        }
    }

    /// The recorded entry of one object, when there is one.
    public func entry(bucket: String, key: String) async throws(ShippingError) -> S3CheckpointEntry? {
        try await entries(bucket: bucket, keys: [key])[key]
    }

    /// Records objects as done, all in one transaction.
    public func record(bucket: String, _ entries: [S3CheckpointEntry]) async throws(ShippingError) {
        if entries.isEmpty { return }
        let now = CheckpointDatabase.nowMillis()
        do {
            try await queue.write { db in
                let statement = try db.cachedStatement(sql: """
                    INSERT INTO s3_object (bucket, key, etag, size, outcome, recorded_at) VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT (bucket, key) DO UPDATE SET etag = excluded.etag, size = excluded.size,
                        outcome = excluded.outcome, recorded_at = excluded.recorded_at
                    """)
                for entry in entries {
                    try statement.execute(arguments: [bucket, entry.key, entry.etag, entry.size, entry.outcome.rawValue, now])
                }
            }
        } catch {
            throw CheckpointDatabase.failure(error, "cannot write the checkpoint \(path)")
        }
    }

    /// How many objects are recorded, for one bucket or all, with one outcome or any.
    public func count(bucket: String? = nil, outcome: S3ObjectOutcome? = nil) async throws(ShippingError) -> Int {
        do {
            return try await queue.read { db in
                try Int.fetchOne(db, sql: """
                    SELECT COUNT(*) FROM s3_object WHERE (?1 IS NULL OR bucket = ?1) AND (?2 IS NULL OR outcome = ?2)
                    """, arguments: [bucket, outcome?.rawValue]) ?? 0
            }
        } catch {
            throw CheckpointDatabase.failure(error, "cannot read the checkpoint \(path)")
        }
    }

    private static func entry(_ row: Row) -> S3CheckpointEntry {
        let outcome: String = row["outcome"]
        // An outcome this version does not know was written by a newer one that finished the
        // object; take it as done.
        return S3CheckpointEntry(key: row["key"], etag: row["etag"], size: row["size"],
                                 outcome: S3ObjectOutcome(rawValue: outcome) ?? .shipped)
    }
}
