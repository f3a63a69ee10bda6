import ArgumentParser
import Foundation
import Kafka
import OCSF
import Pipeline
import Response
import Stages

/// Options of commands that carry out response actions.
struct ExecutorOptions: ParsableArguments {
    @Option(help: "The executor's SQLite ledger.") var ledger: String = "vigil-ledger.sqlite"
    @Option(help: "AWS endpoint override, e.g. a local moto server (or VIGIL_AWS_ENDPOINT).") var awsEndpoint: String?
    @Option(help: "AWS region (or AWS_REGION / AWS_DEFAULT_REGION). Default us-east-1.") var region: String?

    func executor(forceDryRun: Bool = false) throws -> Executor {
        try ExecutorSetup.make(ledgerPath: ledger, awsEndpoint: awsEndpoint, region: region, forceDryRun: forceDryRun)
    }
}

struct RespondOffline: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "respond",
        abstract: "Turn alerts (JSON lines) into commands as the playbooks say; with --execute, carry them out.",
        discussion: """
            Without --execute the commands are printed (JSON lines) and nothing is done. With --execute each command goes through the executor as in vigil-respond: guards already applied, dry runs recorded, enforce-mode actions performed against AWS (--aws-endpoint for a local emulator) and webhooks, every outcome recorded in the ledger and printed as a result line. Pending commands wait in the ledger; approvals travel through the broker (vigil approve).

            Examples:
              vigil normalize samples/cloudtrail/*.json | vigil detect | vigil respond --playbooks playbooks
              vigil respond --playbooks playbooks --execute --aws-endpoint http://127.0.0.1:5000 alerts.jsonl
              vigil ledger --ledger vigil-ledger.sqlite
            """)
    @Option(help: "Directory of YAML playbooks. Default: the bundled playbooks/.") var playbooks: String?
    @Flag(help: "Carry the commands out (and record them in the ledger).") var execute = false
    @OptionGroup var executorOptions: ExecutorOptions
    @Argument(help: "Alert files (standard input when none).") var files: [String] = []

    func run() async throws {
        let set = try PlaybookSet.load(directory: playbooks ?? bundledDirectory("playbooks"))
        let topics = Topics()
        var processor = RespondProcessor(playbooks: set, topics: topics, metrics: MetricsRegistry())
        var commands: [String] = []
        let (_, dead) = Offline.run(stage: "respond", inputs: try Offline.read(files, lines: true), topic: topics.alerts,
                                    processor: &processor, emit: [topics.commands],
                                    stdout: { execute ? commands.append($0) : print($0) })
        if execute {
            let executor = try executorOptions.executor()
            var failed = 0
            for line in commands {
                for result in try await executor.handle(try JSON.parse(line)) {
                    print(result.jsonText)
                    if result["status"]?.stringValue == "failed" { failed += 1 }
                }
            }
            if failed > 0 { Offline.writeError("vigil respond: \(failed) command(s) failed; see the ledger") }
        }
        if dead > 0 { throw ExitCode(2) }
    }
}

/// Finds a command on `<prefix>commands` and publishes a decision on it.
enum Decision {
    static func publish(id: String, approve: Bool, by person: String, note: String?, kafka: KafkaOptions) async throws {
        let config = kafka.kafkaConfig(clientID: "vigil-approve")
        let logger = cliLogger("vigil-approve")
        var latest: JSON?
        try await TopicScan.read(kafka.topics.commands, config: config, logger: logger) { record in
            guard let command = try? JSON.parse(record.value), command["command_id"]?.stringValue == id else { return }
            latest = command
        }
        guard let command = latest else { throw ValidationError("no command \(id) on \(kafka.topics.commands)") }
        let status = command["status"]?.stringValue ?? ""
        guard status == "pending" else {
            throw ValidationError("command \(id) is \(status), not pending\(status == "approved" || status == "rejected" ? " (already decided by \(command["decided_by"]?.stringValue ?? "someone"))" : "")")
        }
        let decision = ResponseCommand.decision(on: command, approve: approve, by: person,
                                                at: Int64(Date().timeIntervalSince1970 * 1000), note: note)
        let producer = try KafkaProducer(config: config, logger: logger)
        let target = command["target"]?.stringValue ?? id
        try await producer.send([OutgoingRecord(topic: kafka.topics.commands, key: Array(target.utf8), value: decision.serialized())])
        await producer.close()
        print("\(approve ? "approved" : "rejected") \(id): \(command["action"]?.stringValue ?? "") on \(target) (playbook \(command["playbook"]?.stringValue ?? ""))")
    }

    static var defaultPerson: String {
        ProcessInfo.processInfo.environment["VIGIL_USER"] ?? ProcessInfo.processInfo.environment["USER"] ?? "unknown"
    }
}

/// What `vigil approve` and `vigil reject` take.
struct DecisionOptions: ParsableArguments {
    @OptionGroup var kafka: KafkaOptions
    @Option(help: "Who decides (default VIGIL_USER or USER).") var by: String?
    @Option(help: "Why, for the audit trail.") var note: String?
    @Argument(help: "The command id (vigil ledger --status pending lists them).") var id: String

    func publish(approve: Bool) async throws {
        try await Decision.publish(id: id, approve: approve, by: by ?? Decision.defaultPerson, note: note, kafka: kafka)
    }
}

struct Approve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Approve a pending command; the executor then carries it out.",
        discussion: """
            The command is looked up on <prefix>commands; the approval is published there (same key, status approved, who and when) and the executor that owns the target acts on it, unless the approval window has passed. The ledger and <prefix>command-results record who approved.

            Examples:
              vigil approve 3f9c...e1 --by alice --note "confirmed with the payments on-call"
            """)
    @OptionGroup var decision: DecisionOptions

    func run() async throws { try await decision.publish(approve: true) }
}

struct Reject: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Reject a pending command; it is recorded and never carried out.",
        discussion: """
            Examples:
              vigil reject 3f9c...e1 --by alice --note "maintenance window"
            """)
    @OptionGroup var decision: DecisionOptions

    func run() async throws { try await decision.publish(approve: false) }
}

struct Revert: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Undo a quarantine or an access-key disable recorded in the ledger.",
        discussion: """
            Runs where the ledger is (next to the executor), because the ledger holds what to restore: the instance's original security groups, the key's previous status. The revert is itself a command, recorded in the ledger; the original becomes `reverted`.

            Examples:
              vigil revert 3f9c...e1 --ledger /var/lib/vigil/ledger.sqlite --region eu-west-1
            """)
    @OptionGroup var executorOptions: ExecutorOptions
    @Option(help: "Who asks (default VIGIL_USER or USER).") var by: String?
    @Argument(help: "The id of the command to undo.") var id: String

    func run() async throws {
        let executor = try executorOptions.executor()
        for result in try await executor.revert(id, by: by ?? Decision.defaultPerson) {
            print(result.jsonText)
            if result["status"]?.stringValue != "succeeded" { throw ExitCode(1) }
        }
    }
}

struct LedgerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ledger",
        abstract: "What the executor did, when, why, and by whose approval.",
        discussion: """
            Lists commands newest first; with a command id, shows its whole history.

            Examples:
              vigil ledger --ledger vigil-ledger.sqlite
              vigil ledger --status pending
              vigil ledger 3f9c...e1 --json
            """)
    @Option(help: "The executor's SQLite ledger.") var ledger: String = "vigil-ledger.sqlite"
    @Option(help: "Only commands in this state (pending, succeeded, failed, dry_run, blocked, ...).") var status: String?
    @Option(help: "At most this many commands.") var limit: Int = 50
    @Flag(help: "JSON lines instead of a table.") var json = false
    @Argument(help: "A command id: show its history.") var id: String?

    func run() async throws {
        guard FileManager.default.fileExists(atPath: ledger) else { throw ValidationError("no ledger at \(ledger)") }
        let store = try Ledger(path: ledger)
        if let id {
            guard let entry = try store.entry(id) else { throw ValidationError("the ledger has no command \(id)") }
            let history = try store.history(id)
            if json {
                var record = entryJSON(entry)
                record["history"] = .array(history.map { ["time": .int($0.time), "status": .string($0.status), "note": $0.note.map { .string($0) } ?? .null] })
                print(record.jsonText)
            } else {
                print("\(entry.commandID)  \(entry.action) \(entry.target)  \(entry.mode)  \(entry.status)")
                print("  alert \(entry.alertID)  rule \(entry.ruleID)  playbook \(entry.playbook)")
                print("  why: \(entry.reason)")
                if let person = entry.decidedBy { print("  decided by: \(person)") }
                if let detail = entry.detail { print("  detail: \(detail.jsonText)") }
                if let prior = entry.priorState { print("  prior state: \(prior.jsonText)") }
                if let error = entry.error { print("  error: \(error)") }
                for event in history { print("  \(Timestamp.formatISO8601(event.time))  \(event.status)\(event.note.map { "  \($0)" } ?? "")") }
            }
            return
        }
        let entries = try store.list(status: status, limit: limit)
        if json {
            for entry in entries { print(entryJSON(entry).jsonText) }
            return
        }
        print("UPDATED                   STATUS     MODE     ACTION               TARGET                 DECIDED BY  COMMAND")
        for entry in entries {
            func pad(_ text: String, _ width: Int) -> String { text.count >= width ? String(text.prefix(width - 1)) + " " : text + String(repeating: " ", count: width - text.count) }
            print(pad(Timestamp.formatISO8601(entry.updatedAt), 26) + pad(entry.status, 11) + pad(entry.mode, 9) + pad(entry.action, 21)
                  + pad(entry.target, 23) + pad(entry.decidedBy ?? "-", 12) + entry.commandID)
        }
    }

    func entryJSON(_ entry: LedgerEntry) -> JSON {
        var record: JSON = [
            "command_id": .string(entry.commandID), "action": .string(entry.action), "target": .string(entry.target),
            "mode": .string(entry.mode), "status": .string(entry.status), "alert_id": .string(entry.alertID),
            "rule_id": .string(entry.ruleID), "playbook": .string(entry.playbook), "reason": .string(entry.reason),
            "attempts": .int(Int64(entry.attempts)), "received_at": .int(entry.receivedAt), "updated_at": .int(entry.updatedAt),
        ]
        if let person = entry.decidedBy { record["decided_by"] = .string(person) }
        if let detail = entry.detail { record["detail"] = detail }
        if let prior = entry.priorState { record["prior_state"] = prior }
        if let error = entry.error { record["error"] = .string(error) }
        return record
    }
}
