import Foundation
import GRDB
import LocalDatabase
import OCSF

/// One command as the ledger knows it: its current state and what was done.
public struct LedgerEntry: Sendable, Equatable {
    /// The command id (idempotency key).
    public var commandID: String
    /// The action.
    public var action: String
    /// What it acts on.
    public var target: String
    /// `dry_run` or `enforce`.
    public var mode: String
    /// `pending`, `approved`, `started`, `succeeded`, `dry_run`, `failed`, `blocked`,
    /// `rejected`, `expired` or `reverted`.
    public var status: String
    /// The alert behind it.
    public var alertID: String
    /// That alert's rule.
    public var ruleID: String
    /// The playbook that planned it.
    public var playbook: String
    /// Why it exists (which playbook matched which rule), or why it was blocked.
    public var reason: String
    /// Who approved (or rejected) it.
    public var decidedBy: String?
    /// Calls made so far.
    public var attempts: Int
    /// When this executor first saw it (epoch ms, wall clock).
    public var receivedAt: Int64
    /// When its state last changed (epoch ms, wall clock).
    public var updatedAt: Int64
    /// The target's state before the action (original security groups, key status), recorded
    /// before the call so a revert, or a restart after a crash, knows it.
    public var priorState: JSON?
    /// What was done (snapshot ids, the isolation group), or would be done for a dry run.
    public var detail: JSON?
    /// The last failure.
    public var error: String?
    /// When an automatic revert is due (epoch ms), if one is.
    public var revertDue: Int64?
    /// The command as received.
    public var command: JSON

    /// Terminal states: nothing more will happen to the command (except a revert of a
    /// `succeeded` one).
    public var isFinal: Bool {
        ["succeeded", "dry_run", "failed", "blocked", "rejected", "expired", "reverted"].contains(status)
    }
}

/// One change of a command's state, for `vigil ledger history`.
public struct LedgerEvent: Sendable, Equatable {
    /// When (epoch ms, wall clock).
    public var time: Int64
    /// The state entered.
    public var status: String
    /// Why, or what happened.
    public var note: String?
}

/// The executor's audit trail and idempotency record: every command it saw, what it did and
/// why, in one SQLite file (WAL; one pool per file for the life of the process).
///
/// A command is written as `started`, with the target's prior state, before its call, and as
/// `succeeded` or `failed` after it, each in one transaction. A command found `started` after
/// a restart is in doubt; the executor then checks the target's actual state before acting
/// again (docs/response.md).
public final class Ledger: Sendable {
    /// The database file, or `:memory:`.
    public let path: String
    private let database: any DatabaseWriter

    /// Opens (creating if needed) the ledger at `path`; `:memory:` for a private one.
    public init(path: String) throws(ResponseError) {
        self.path = path
        // A pool: `vigil ledger` reads while the executor writes.
        do {
            database = try LocalDatabase.open(path: path, label: "vigil.ledger", pool: true, migrator: Self.migrator)
        } catch {
            throw ResponseError(code: .ledgerFailed, reason: "cannot open or migrate the ledger at \(path): \(Self.describe(error))")
        }
    }

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-ledger") { db in
            try db.execute(sql: """
                CREATE TABLE command (
                    command_id TEXT PRIMARY KEY NOT NULL,
                    action TEXT NOT NULL,
                    target TEXT NOT NULL,
                    mode TEXT NOT NULL,
                    status TEXT NOT NULL,
                    alert_id TEXT NOT NULL DEFAULT '',
                    rule_id TEXT NOT NULL DEFAULT '',
                    playbook TEXT NOT NULL DEFAULT '',
                    reason TEXT NOT NULL DEFAULT '',
                    decided_by TEXT,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    received_at INTEGER NOT NULL,
                    updated_at INTEGER NOT NULL,
                    prior_state TEXT,
                    detail TEXT,
                    error TEXT,
                    revert_due INTEGER,
                    command TEXT NOT NULL
                );
                CREATE INDEX command_status ON command(status, updated_at);
                CREATE INDEX command_revert_due ON command(revert_due) WHERE revert_due IS NOT NULL;
                CREATE TABLE command_event (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    command_id TEXT NOT NULL,
                    time INTEGER NOT NULL,
                    status TEXT NOT NULL,
                    note TEXT
                );
                CREATE INDEX command_event_command ON command_event(command_id, seq);
                """)
        }
        return migrator
    }

    /// The SQLite code only: GRDB's messages can quote SQL arguments (alert ids, targets).
    private static func describe(_ error: any Error) -> String {
        LocalDatabase.sqliteFailure(error).map { "sqlite \($0.code)" } ?? String(describing: type(of: error))
    }

    private func write<T>(_ what: String, _ body: (Database) throws -> T) throws(ResponseError) -> T {
        do { return try database.write(body) } catch let error as ResponseError { throw error } catch {
            throw ResponseError(code: .ledgerFailed, reason: "\(what): \(Self.describe(error))",
                                isRetriable: LocalDatabase.sqliteFailure(error)?.busy ?? false)
        }
    }

    private func read<T>(_ what: String, _ body: (Database) throws -> T) throws(ResponseError) -> T {
        do { return try database.read(body) } catch {
            throw ResponseError(code: .ledgerFailed, reason: "\(what): \(Self.describe(error))")
        }
    }

    /// The entry of `commandID`, if the ledger has it.
    public func entry(_ commandID: String) throws(ResponseError) -> LedgerEntry? {
        try read("read command") { db in
            try Row.fetchOne(db, sql: "SELECT * FROM command WHERE command_id = ?", arguments: [commandID]).map(Self.entry)
        }
    }

    /// Records `command` in `status` unless the ledger already has it; returns the entry as
    /// stored (the existing one when there was one) and whether it was new.
    @discardableResult
    public func record(_ command: ResponseCommand, status: String, now: Int64, note: String? = nil,
                       reason: String? = nil) throws(ResponseError) -> (entry: LedgerEntry, inserted: Bool) {
        try write("record command") { db in
            if let row = try Row.fetchOne(db, sql: "SELECT * FROM command WHERE command_id = ?", arguments: [command.id]) {
                return (Self.entry(row), false)
            }
            try db.execute(sql: """
                INSERT INTO command (command_id, action, target, mode, status, alert_id, rule_id, playbook, reason,
                                     decided_by, received_at, updated_at, command)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [command.id, command.action.rawValue, command.target, command.mode.rawValue, status,
                                 command.alertID, command.ruleID, command.playbook,
                                 reason ?? command.json["reason"]?.stringValue ?? "", command.decidedBy, now, now,
                                 command.json.jsonText])
            try Self.event(db, command.id, now, status, note)
            let row = try Row.fetchOne(db, sql: "SELECT * FROM command WHERE command_id = ?", arguments: [command.id])!
            return (Self.entry(row), true)
        }
    }

    /// What `update` changes besides the status; `nil` members are left as they are.
    public struct Change: Sendable {
        /// Add one to the attempts.
        public var addAttempt = false
        /// The prior state, written only when none is recorded yet (a retry or a restart
        /// must not overwrite the original groups with the isolation group).
        public var priorState: JSON?
        /// What was done.
        public var detail: JSON?
        /// The failure; an empty string clears it.
        public var error: String?
        /// Who decided.
        public var decidedBy: String?
        /// When an automatic revert is due; `.some(nil)` clears it.
        public var revertDue: Int64??

        /// No change besides the status.
        public init(addAttempt: Bool = false, priorState: JSON? = nil, detail: JSON? = nil, error: String? = nil,
                    decidedBy: String? = nil, revertDue: Int64?? = nil) {
            self.addAttempt = addAttempt
            self.priorState = priorState
            self.detail = detail
            self.error = error
            self.decidedBy = decidedBy
            self.revertDue = revertDue
        }
    }

    /// Moves `commandID` to `status` (in one transaction with its history event) and returns
    /// the entry as it now is; `not_found` when the ledger does not have it.
    @discardableResult
    public func update(_ commandID: String, status: String, now: Int64, note: String? = nil,
                       change: Change = Change()) throws(ResponseError) -> LedgerEntry {
        try write("update command") { db in
            guard try Row.fetchOne(db, sql: "SELECT 1 FROM command WHERE command_id = ?", arguments: [commandID]) != nil else {
                throw ResponseError(code: .notFound, reason: "the ledger has no command \(commandID)")
            }
            var sets = ["status = ?", "updated_at = ?"]
            var arguments: StatementArguments = [status, now]
            if change.addAttempt { sets.append("attempts = attempts + 1") }
            if let prior = change.priorState {
                sets.append("prior_state = COALESCE(prior_state, ?)")
                arguments += [prior.jsonText]
            }
            if let detail = change.detail {
                sets.append("detail = ?")
                arguments += [detail.jsonText]
            }
            if let error = change.error {
                sets.append("error = ?")
                arguments += [error.isEmpty ? nil : error]
            }
            if let person = change.decidedBy {
                sets.append("decided_by = ?")
                arguments += [person]
            }
            if let due = change.revertDue {
                sets.append("revert_due = ?")
                arguments += [due]
            }
            arguments += [commandID]
            try db.execute(sql: "UPDATE command SET \(sets.joined(separator: ", ")) WHERE command_id = ?", arguments: arguments)
            try Self.event(db, commandID, now, status, note)
            return Self.entry(try Row.fetchOne(db, sql: "SELECT * FROM command WHERE command_id = ?", arguments: [commandID])!)
        }
    }

    /// The newest entries first, optionally only those in `status`.
    public func list(status: String? = nil, limit: Int = 100) throws(ResponseError) -> [LedgerEntry] {
        try read("list commands") { db in
            let rows: [Row]
            if let status {
                rows = try Row.fetchAll(db, sql: "SELECT * FROM command WHERE status = ? ORDER BY updated_at DESC, command_id LIMIT ?",
                                        arguments: [status, limit])
            } else {
                rows = try Row.fetchAll(db, sql: "SELECT * FROM command ORDER BY updated_at DESC, command_id LIMIT ?", arguments: [limit])
            }
            return rows.map(Self.entry)
        }
    }

    /// Every state change of `commandID`, oldest first.
    public func history(_ commandID: String) throws(ResponseError) -> [LedgerEvent] {
        try read("read history") { db in
            try Row.fetchAll(db, sql: "SELECT time, status, note FROM command_event WHERE command_id = ? ORDER BY seq",
                             arguments: [commandID]).map { LedgerEvent(time: $0["time"], status: $0["status"], note: $0["note"]) }
        }
    }

    /// Succeeded commands whose automatic revert is due at `now`.
    public func dueReverts(now: Int64) throws(ResponseError) -> [LedgerEntry] {
        try read("read due reverts") { db in
            try Row.fetchAll(db, sql: "SELECT * FROM command WHERE revert_due IS NOT NULL AND revert_due <= ? AND status = 'succeeded' ORDER BY revert_due",
                             arguments: [now]).map(Self.entry)
        }
    }

    /// Pending commands whose approval window ended before `now`.
    public func expiredPending(now: Int64) throws(ResponseError) -> [LedgerEntry] {
        try read("read pending") { db in
            try Row.fetchAll(db, sql: "SELECT * FROM command WHERE status = 'pending' ORDER BY received_at").map(Self.entry)
        }.filter { entry in
            let ttl = entry.command["approval_ttl_ms"]?.intValue ?? 86_400_000
            return entry.receivedAt + ttl < now
        }
    }

    private static func event(_ db: Database, _ id: String, _ time: Int64, _ status: String, _ note: String?) throws {
        try db.execute(sql: "INSERT INTO command_event (command_id, time, status, note) VALUES (?, ?, ?, ?)",
                       arguments: [id, time, status, note])
    }

    private static func entry(_ row: Row) -> LedgerEntry {
        func json(_ column: String) -> JSON? {
            guard let text: String = row[column] else { return nil }
            return try? JSON.parse(Array(text.utf8))
        }
        return LedgerEntry(
            commandID: row["command_id"], action: row["action"], target: row["target"], mode: row["mode"],
            status: row["status"], alertID: row["alert_id"], ruleID: row["rule_id"], playbook: row["playbook"],
            reason: row["reason"], decidedBy: row["decided_by"], attempts: row["attempts"],
            receivedAt: row["received_at"], updatedAt: row["updated_at"], priorState: json("prior_state"),
            detail: json("detail"), error: row["error"], revertDue: row["revert_due"], command: json("command") ?? .null)
    }
}
