import GRDB

/// How Vigil opens its local SQLite files (the inventory, the executor's ledger, the shippers'
/// checkpoints): one connection (queue) or WAL pool per file for the life of the process, a
/// short busy timeout so a second process holding the lock briefly is waited for, and the
/// file's migrations run before anything else touches it. `:memory:` gives a private
/// in-memory database. Errors are GRDB's; each module maps them to its own error type.
public enum LocalDatabase {
    /// Opens (creating when absent) the database at `path` and migrates it. `pool` asks for a
    /// WAL pool (concurrent readers) instead of a single queue; in-memory databases are queues.
    public static func open(path: String, label: String, pool: Bool, migrator: DatabaseMigrator) throws -> any DatabaseWriter {
        var configuration = Configuration()
        configuration.label = label
        configuration.busyMode = .timeout(5)
        let database: any DatabaseWriter
        if path == ":memory:" {
            database = try DatabaseQueue(configuration: configuration)
        } else if pool {
            database = try DatabasePool(path: path, configuration: configuration)
        } else {
            database = try DatabaseQueue(path: path, configuration: configuration)
        }
        try migrator.migrate(database)
        return database
    }

    /// The SQLite extended result code behind a GRDB failure, and whether it means the
    /// database was busy or locked (worth trying again); `nil` for other errors. Only the code
    /// is kept: GRDB's descriptions can quote SQL arguments (keys, names, paths).
    public static func sqliteFailure(_ error: any Error) -> (code: Int32, busy: Bool)? {
        guard let database = error as? DatabaseError else { return nil }
        let busy = database.resultCode == .SQLITE_BUSY || database.resultCode == .SQLITE_LOCKED
        return (database.extendedResultCode.rawValue, busy)
    }
}
