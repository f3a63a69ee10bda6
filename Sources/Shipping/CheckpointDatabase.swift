import Foundation
import GRDB
import LocalDatabase

/// Opening and error mapping shared by the shippers' SQLite checkpoints (`S3Checkpoint`,
/// `FileCheckpoint`): one `DatabaseQueue` per file for the life of the checkpoint, migrated
/// when it opens.
enum CheckpointDatabase {
    /// Opens (creating when absent) the file at `path` and runs `migrator` on it.
    static func open(path: String, label: String, migrator: DatabaseMigrator) throws(ShippingError) -> any DatabaseWriter {
        // A queue: one shipper writes; a second one on the same file (a mistake, but a
        // possible one) waits for the lock briefly instead of failing at once.
        do {
            return try LocalDatabase.open(path: path, label: label, pool: false, migrator: migrator)
        } catch {
            throw failure(error, "cannot open or migrate the checkpoint \(path)")
        }
    }

    /// A `checkpoint_failed` error for a GRDB failure. GRDB's own description can quote the
    /// SQL arguments (object keys, paths), so only the SQLite code is kept.
    static func failure(_ error: any Error, _ reason: String) -> ShippingError {
        if let failure = LocalDatabase.sqliteFailure(error) {
            return ShippingError(code: "checkpoint_failed", isRetriable: failure.busy, underlying: "sqlite \(failure.code)", reason: reason)
        }
        return ShippingError(code: "checkpoint_failed", reason: reason)
    }

    /// Milliseconds since 1970, for the `recorded_at` columns.
    static func nowMillis() -> Int64 {
        Int64((Date().timeIntervalSince1970 * 1000).rounded())
    }
}
