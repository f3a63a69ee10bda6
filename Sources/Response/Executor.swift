import AWS
import Foundation
import Logging
import OCSF

/// Settings of the executor, with documented defaults.
public struct ExecutorConfig: Sendable {
    /// Calls per command before a retriable failure (throttling, 5xx, network) becomes final.
    /// A notify action's `attempts` param overrides it. Default 3.
    public var maxAttempts = 3
    /// The first retry's delay; each further retry doubles it, up to 30 s. Default 500 ms.
    public var backoff: Duration = .milliseconds(500)
    /// Treat every command as a dry run (replays, rehearsals). Default off.
    public var forceDryRun = false
    /// Where webhook URLs named by variable are looked up (`VIGIL_WEBHOOK_<CHANNEL>`).
    public var environment: [String: String] = ProcessInfo.processInfo.environment
    /// Fault injection for the crash-safety test only: after an action's call returns and
    /// before the ledger records it, the process kills itself (`VIGIL_FAULT=crash_after_call`).
    public var crashAfterCall = false

    /// Defaults.
    public init() {}
}

/// Carries out commands: idempotently (the command id is the idempotency key, kept in the
/// ledger), with retries and backoff for retriable failures, and an outcome record for every
/// command it decides on (for `<prefix>command-results`).
///
/// Called by one runner at a time (the stage's processor, or the offline CLI), never
/// concurrently for the same ledger.
public struct Executor: Sendable {
    /// The audit trail.
    public let ledger: Ledger
    /// AWS actions, when AWS is configured; enforce-mode AWS commands fail `not_configured`
    /// without it.
    public let cloud: CloudActions?
    /// Why AWS is not configured, for the failure message.
    public let cloudProblem: String?
    /// Webhook delivery.
    public let notifier: WebhookNotifier
    /// Settings.
    public let config: ExecutorConfig
    let logger: Logger

    /// An executor over `ledger`.
    public init(ledger: Ledger, cloud: CloudActions?, cloudProblem: String? = nil, notifier: WebhookNotifier = WebhookNotifier(),
                config: ExecutorConfig = ExecutorConfig(), logger: Logger = Logger(label: "vigil.executor")) {
        self.ledger = ledger
        self.cloud = cloud
        self.cloudProblem = cloudProblem
        self.notifier = notifier
        self.config = config
        self.logger = logger
    }

    static func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    /// Handles one command record from `<prefix>commands`; returns the outcome records (none
    /// for a command already decided: a repeat is a no-op). Throws only when the ledger fails,
    /// or for a record that is not a command.
    public func handle(_ record: JSON) async throws(ResponseError) -> [JSON] {
        let command = try ResponseCommand(json: record)
        let now = Self.now()
        let existing = try ledger.entry(command.id)
        switch command.status {
        case "blocked":
            guard existing == nil else { return [] }
            let reason = "blocked by \(record["blocked_by"]?.stringValue ?? "a guard"): \(record["blocked_reason"]?.stringValue ?? "")"
            let entry = try ledger.record(command, status: "blocked", now: now, note: reason, reason: reason).entry
            return [result(entry)]
        case "pending":
            guard existing == nil else { return [] }
            let entry = try ledger.record(command, status: "pending", now: now, note: "waiting for vigil approve \(command.id)").entry
            return [result(entry)]
        case "rejected":
            if let existing, existing.status != "pending" { return [] }
            try ledger.record(command, status: "pending", now: now)
            let entry = try ledger.update(command.id, status: "rejected", now: now, note: "rejected by \(command.decidedBy ?? "unknown")",
                                          change: .init(decidedBy: command.decidedBy ?? "unknown"))
            return [result(entry)]
        case "approved":
            if let existing, existing.status != "pending" && existing.status != "started" { return [] }
            let (entry, _) = try ledger.record(command, status: "pending", now: now)
            if entry.status == "pending" {
                let ttl = command.approvalTTLMillis ?? 86_400_000
                if entry.receivedAt + ttl < now {
                    let expired = try ledger.update(command.id, status: "expired", now: now, note: "approval came after the approval window")
                    return [result(expired)]
                }
                try ledger.update(command.id, status: "approved", now: now, note: "approved by \(command.decidedBy ?? "unknown")",
                                  change: .init(decidedBy: command.decidedBy ?? "unknown"))
            }
            return [try await execute(command, resuming: entry.status == "started")]
        case "planned":
            if let existing {
                // `started`: this executor died mid-command; the action checks the target's
                // state, so finishing it does not repeat what was done.
                guard existing.status == "started" else { return [] }
                return [try await execute(command, resuming: true)]
            }
            try ledger.record(command, status: "planned", now: now)
            return [try await execute(command, resuming: false)]
        default:
            throw ResponseError(code: .invalidCommand, reason: "unknown command status '\(command.status.prefix(40))'")
        }
    }

    /// Expires pending commands whose approval window has passed and carries out automatic
    /// reverts that are due; returns their outcome records.
    public func sweep() async throws(ResponseError) -> [JSON] {
        let now = Self.now()
        var results: [JSON] = []
        for entry in try ledger.expiredPending(now: now) {
            results.append(result(try ledger.update(entry.commandID, status: "expired", now: now, note: "no decision within the approval window")))
        }
        for entry in try ledger.dueReverts(now: now) {
            guard let original = try? ResponseCommand(json: entry.command) else { continue }
            try ledger.update(entry.commandID, status: "succeeded", now: now, note: "automatic revert due", change: .init(revertDue: .some(nil)))
            results += try await handle(ResponseCommand.revert(of: original, by: "revert_after", at: now))
        }
        return results
    }

    /// Plans and carries out the revert of `commandID` (by hand: `vigil revert`).
    public func revert(_ commandID: String, by person: String) async throws(ResponseError) -> [JSON] {
        guard let entry = try ledger.entry(commandID), let original = try? ResponseCommand(json: entry.command) else {
            throw ResponseError(code: .notFound, reason: "the ledger has no command \(commandID)")
        }
        guard original.action.isRevertible else {
            throw ResponseError(code: .invalidState, reason: "\(original.action.rawValue) cannot be reverted")
        }
        guard entry.status == "succeeded" else {
            throw ResponseError(code: .invalidState, reason: "command \(commandID) is \(entry.status); only a succeeded one can be reverted")
        }
        return try await handle(ResponseCommand.revert(of: original, by: person, at: Self.now()))
    }

    /// Carries out an allowed command, or records its dry run.
    func execute(_ command: ResponseCommand, resuming: Bool) async throws(ResponseError) -> JSON {
        if command.mode == .dryRun || config.forceDryRun {
            let entry = try ledger.update(command.id, status: "dry_run", now: Self.now(), note: "dry run: recorded, not performed",
                                          change: .init(detail: ["would": .string(Self.describe(command))]))
            return result(entry)
        }
        let attempts = command.action == .notify ? Int(command.params["attempts"] ?? "") ?? config.maxAttempts : config.maxAttempts
        var delay = config.backoff
        var lastError: ResponseError?
        for attempt in 1...max(1, attempts) {
            try ledger.update(command.id, status: "started", now: Self.now(), note: resuming && attempt == 1 ? "resumed after a restart" : "attempt \(attempt)",
                              change: .init(addAttempt: true))
            do throws(ResponseError) {
                let detail = try await perform(command)
                if config.crashAfterCall {
                    logger.critical("fault injection: crashing after the call, before the ledger update", metadata: ["command": .string(command.id)])
                    kill(getpid(), SIGKILL)
                }
                let due: Int64?? = command.revertAfterMillis.map { .some(Self.now() + $0) }
                let entry = try ledger.update(command.id, status: "succeeded", now: Self.now(), note: Self.describe(command),
                                              change: .init(detail: detail, error: "", revertDue: due))
                if command.action == .revert, let original = command.revertOf {
                    try ledger.update(original, status: "reverted", now: Self.now(), note: "reverted by \(command.id) (\(command.decidedBy ?? "unknown"))",
                                      change: .init(revertDue: .some(nil)))
                }
                return result(entry)
            } catch {
                lastError = error
                if error.code == .ledgerFailed { throw error }
                logger.warning("command failed", metadata: ["command": .string(command.id), "action": .string(command.action.rawValue),
                                                            "attempt": .stringConvertible(attempt), "error": .string(error.description)])
                guard error.isRetriable, attempt < attempts else { break }
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(30))
            }
        }
        let error = lastError ?? ResponseError(code: .invalidState, reason: "no attempt was made")
        let status = error.code == .protectedTarget ? "blocked" : "failed"
        let entry = try ledger.update(command.id, status: status, now: Self.now(), note: error.description, change: .init(error: error.description))
        return result(entry)
    }

    /// One call of the command's action.
    func perform(_ command: ResponseCommand) async throws(ResponseError) -> JSON {
        if command.action == .notify {
            let url = try WebhookNotifier.url(for: command, environment: config.environment)
            try await notifier.post(to: url, body: WebhookNotifier.body(for: command), idempotencyKey: command.id)
            return ["channel": .string(command.target), "format": .string(command.params["format"] ?? "json")]
        }
        guard let cloud else {
            throw ResponseError(code: .notConfigured, reason: "AWS is not configured: \(cloudProblem ?? "no credentials")")
        }
        // The prior state is recorded before the call, once: after a restart the recorded one
        // (the original groups) is used, not what the half-done action left.
        var prior = try ledger.entry(command.id)?.priorState
        if prior == nil, let state = try await cloud.priorState(of: command) {
            prior = try ledger.update(command.id, status: "started", now: Self.now(), note: "prior state recorded",
                                      change: .init(priorState: state)).priorState
        }
        return try await cloud.perform(command, prior: prior, ledger: ledger)
    }

    static func describe(_ command: ResponseCommand) -> String {
        switch command.action {
        case .notify: "notify channel \(command.target)"
        case .quarantineInstance: "replace the security groups of \(command.target) with \(command.params["isolation_group"] ?? CloudActions.defaultIsolationGroup)"
        case .snapshotVolumes: "snapshot every volume of \(command.target)"
        case .disableAccessKey: "set access key \(command.target) inactive"
        case .tagResource: "tag \(command.target) with \(command.params["tags"] ?? "")"
        case .revert: "revert \(command.revertOf ?? "") on \(command.target)"
        }
    }

    /// The outcome record of a ledger entry, for `<prefix>command-results`.
    public func result(_ entry: LedgerEntry) -> JSON {
        var record: JSON = [
            "command_id": .string(entry.commandID),
            "action": .string(entry.action),
            "target": .string(entry.target),
            "mode": .string(entry.mode),
            "status": .string(entry.status),
            "attempts": .int(Int64(entry.attempts)),
            "alert_id": .string(entry.alertID),
            "rule_id": .string(entry.ruleID),
            "playbook": .string(entry.playbook),
            "time": .int(entry.updatedAt),
        ]
        if let person = entry.decidedBy { record["decided_by"] = .string(person) }
        if let detail = entry.detail { record["detail"] = detail }
        if let error = entry.error { record["error"] = .string(error) }
        if let revertOf = entry.command["revert_of"] { record["revert_of"] = revertOf }
        return record
    }
}
