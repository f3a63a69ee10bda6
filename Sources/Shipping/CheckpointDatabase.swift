import Foundation
import GRDB

/// Opening and error mapping shared by the shippers' SQLite checkpoints (`S3Checkpoint`,
/// `FileCheckpoint`): one `DatabaseQueue` per file for the life of the checkpoint, migrated
/// when it opens.
enum CheckpointDatabase {
    /// Opens (creating when absent) the file at `path` and runs `migrator` on it.
    static func open(path: String, label: String, migrator: DatabaseMigrator) throws(ShippingError) -> DatabaseQueue {
        var configuration = Configuration()
        configuration.label = label
        // A second shipper on the same file (a mistake, but a possible one) waits for the lock
        // briefly instead of failing at once.
        configuration.busyMode = .timeout(5)
        do {
            let queue = try DatabaseQueue(path: path, configuration: configuration)
            try migrator.migrate(queue)
            return queue
        } catch {
            throw failure(error, "cannot open or migrate the checkpoint \(path)")
        }
    }

    /// A `checkpoint_failed` error for a GRDB failure. GRDB's own description can quote the
    /// SQL arguments (object keys, paths), so only the SQLite code is kept.
    static func failure(_ error: any Error, _ reason: String) -> ShippingError {
        if let database = error as? DatabaseError {
            let busy = database.resultCode == .SQLITE_BUSY || database.resultCode == .SQLITE_LOCKED
            return ShippingError(code: "checkpoint_failed", isRetriable: busy,
                                 underlying: "sqlite \(database.extendedResultCode.rawValue)", reason: reason)
        }
        return ShippingError(code: "checkpoint_failed", reason: reason)
    }

    /// Milliseconds since 1970, for the `recorded_at` columns.
    static func nowMillis() -> Int64 {
        Int64((Date().timeIntervalSince1970 * 1000).rounded())
    }
}
