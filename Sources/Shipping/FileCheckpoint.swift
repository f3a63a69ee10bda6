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

/// What `vigil ship files` (without `--follow`) has sent of one file: how the file looked and
/// how far the broker acknowledged it.
public struct ShippedFile: Sendable, Equatable {
    /// The file's inode when recorded.
    public var inode: UInt64
    /// The file's size in bytes when recorded.
    public var size: Int64
    /// The file's modification time (nanoseconds since 1970) when recorded.
    public var modifiedNanos: Int64
    /// How many leading bytes `headHash` covers (at most `FileShipper.headBytes`).
    public var headLength: Int64
    /// FNV-1a 64 of the first `headLength` bytes: tells an appended file from a different one
    /// that reuses the inode (a log deleted and created again).
    public var headHash: UInt64
    /// The first byte not yet acknowledged (the whole size once a file record is acknowledged).
    public var offset: Int64
    /// Lines consumed before `offset` (one-record-per-line files), so keys `path:N` continue.
    public var lines: Int64
    /// Whether everything up to `size` was acknowledged.
    public var complete: Bool

    /// Makes a record.
    public init(inode: UInt64, size: Int64, modifiedNanos: Int64, headLength: Int64, headHash: UInt64, offset: Int64,
                lines: Int64, complete: Bool) {
        self.inode = inode
        self.size = size
        self.modifiedNanos = modifiedNanos
        self.headLength = headLength
        self.headHash = headHash
        self.offset = offset
        self.lines = lines
        self.complete = complete
    }
}

/// The file shippers' memory, in a SQLite file: one position per followed path (`--follow`)
/// and one `ShippedFile` per path shipped once (`vigil ship files --checkpoint`).
///
/// Both are written only after the records before them were acknowledged by the broker, so a
/// restart resumes at a record boundary: whole records are neither lost nor sent twice, except
/// those in flight at a crash (at-least-once).
///
/// Table `followed_file`: `path` (primary key), `inode`, `offset`, `recorded_at` (epoch ms).
/// Table `shipped_file`: `path` (primary key), `inode`, `size`, `mtime_ns`, `head_length`,
/// `head_hash`, `offset`, `lines`, `complete`, `recorded_at`.
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
        migrator.registerMigration("v2-shipped-file") { db in
            try db.execute(sql: """
                CREATE TABLE shipped_file (
                    path TEXT PRIMARY KEY NOT NULL,
                    inode INTEGER NOT NULL,
                    size INTEGER NOT NULL,
                    mtime_ns INTEGER NOT NULL,
                    head_length INTEGER NOT NULL,
                    head_hash INTEGER NOT NULL,
                    offset INTEGER NOT NULL,
                    lines INTEGER NOT NULL,
                    complete INTEGER NOT NULL,
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

    /// Every file recorded by `vigil ship files --checkpoint`, by path.
    public func shippedFiles() async throws(ShippingError) -> [String: ShippedFile] {
        do {
            return try await queue.read { db in
                var found: [String: ShippedFile] = [:]
                let rows = try Row.fetchCursor(db, sql: """
                    SELECT path, inode, size, mtime_ns, head_length, head_hash, offset, lines, complete FROM shipped_file
                    """)
                while let row = try rows.next() {
                    // Unsigned values are stored by bit pattern (SQLite integers are signed).
                    let inode: Int64 = row["inode"]
                    let hash: Int64 = row["head_hash"]
                    found[row["path"]] = ShippedFile(inode: UInt64(bitPattern: inode), size: row["size"], modifiedNanos: row["mtime_ns"],
                                                     headLength: row["head_length"], headHash: UInt64(bitPattern: hash),
                                                     offset: row["offset"], lines: row["lines"], complete: row["complete"])
                }
                return found
            }
        } catch {
            throw CheckpointDatabase.failure(error, "cannot read the checkpoint \(path)")
        }
    }

    /// Records shipped files, all in one transaction.
    public func recordShipped(_ files: [String: ShippedFile]) async throws(ShippingError) {
        if files.isEmpty { return }
        let now = CheckpointDatabase.nowMillis()
        do {
            try await queue.write { db in
                let statement = try db.cachedStatement(sql: """
                    INSERT INTO shipped_file (path, inode, size, mtime_ns, head_length, head_hash, offset, lines, complete, recorded_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (path) DO UPDATE SET inode = excluded.inode, size = excluded.size, mtime_ns = excluded.mtime_ns,
                        head_length = excluded.head_length, head_hash = excluded.head_hash, offset = excluded.offset,
                        lines = excluded.lines, complete = excluded.complete, recorded_at = excluded.recorded_at
                    """)
                for (path, file) in files {
                    try statement.execute(arguments: [path, Int64(bitPattern: file.inode), file.size, file.modifiedNanos, file.headLength,
                                                      Int64(bitPattern: file.headHash), file.offset, file.lines, file.complete, now])
                }
            }
        } catch {
            throw CheckpointDatabase.failure(error, "cannot write the checkpoint \(path)")
        }
    }
}
