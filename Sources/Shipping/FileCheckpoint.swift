import GRDB

/// Where following a file has got to: the file (by inode) and the byte offset just after the
/// last line the broker acknowledged.
public struct FilePosition: Sendable, Equatable {
    /// The inode of the file read at that point (the followed path, or the rotated file still
    /// being finished).
    public var inode: UInt64
    /// The offset of the first byte not yet shipped; always at the start of a line.
    public var offset: Int64

    /// Makes a position.
    public init(inode: UInt64, offset: Int64) {
        self.inode = inode
        self.offset = offset
    }
}

/// The file follower's memory: one position per followed path, in a SQLite file.
///
/// Positions are written only after the lines before them were acknowledged by the broker, so
/// a restart resumes at a line boundary: whole lines are neither lost nor sent twice, except
/// those in flight at a crash (at-least-once).
///
/// Table `followed_file`: `path` (primary key), `inode`, `offset`, `recorded_at` (epoch ms).
public final class FileCheckpoint: Sendable {
    /// The file this checkpoint lives in.
    public let path: String
    private let queue: any DatabaseWriter

    static let migrator: DatabaseMigrator = {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-followed-file") { db in
            try db.execute(sql: """
                CREATE TABLE followed_file (
                    path TEXT PRIMARY KEY NOT NULL,
                    inode INTEGER NOT NULL,
                    offset INTEGER NOT NULL,
                    recorded_at INTEGER NOT NULL
                ) WITHOUT ROWID
                """)
        }
        return migrator
    }()

    /// Opens (creating when absent) and migrates the checkpoint file.
    public init(path: String) throws(ShippingError) {
        self.path = path
        queue = try CheckpointDatabase.open(path: path, label: "vigil.ship.files", migrator: Self.migrator)
    }

    /// Every recorded position, by followed path.
    public func positions() async throws(ShippingError) -> [String: FilePosition] {
        do {
            return try await queue.read { db in
                var found: [String: FilePosition] = [:]
                let rows = try Row.fetchCursor(db, sql: "SELECT path, inode, offset FROM followed_file")
                while let row = try rows.next() {
                    // SQLite integers are signed 64-bit; inodes are stored by bit pattern.
                    let inode: Int64 = row["inode"]
                    found[row["path"]] = FilePosition(inode: UInt64(bitPattern: inode), offset: row["offset"])
                }
                return found
            }
        } catch {
            throw CheckpointDatabase.failure(error, "cannot read the checkpoint \(path)")
        }
    }

    /// Records positions, all in one transaction.
    public func record(_ positions: [String: FilePosition]) async throws(ShippingError) {
        if positions.isEmpty { return }
        let now = CheckpointDatabase.nowMillis()
        do {
            try await queue.write { db in
                let statement = try db.cachedStatement(sql: """
                    INSERT INTO followed_file (path, inode, offset, recorded_at) VALUES (?, ?, ?, ?)
                    ON CONFLICT (path) DO UPDATE SET inode = excluded.inode, offset = excluded.offset,
                        recorded_at = excluded.recorded_at
                    """)
                for (path, position) in positions {
                    try statement.execute(arguments: [path, Int64(bitPattern: position.inode), position.offset, now])
                }
            }
        } catch {
            throw CheckpointDatabase.failure(error, "cannot write the checkpoint \(path)")
        }
    }
}
