import ArgumentParser
import Foundation
import Kafka
import Logging
import OCSF
import Pipeline
import Stages
import Yams

/// One service of a compose file, as the harness runs it.
struct ComposeService: Equatable {
    var name: String
    var command: [String]
    var environment: [String: String]
    var replicas: Int
    /// `restart: "no"`: a job run to completion before the others start (topic-init).
    var oneShot: Bool

    /// The services of a compose document that run Vigil executables (`kafka` is replaced by
    /// the embedded broker). `${VAR:-default}` values are read from `environment`.
    static func parse(_ text: String, environment: [String: String]) throws -> [ComposeService] {
        guard let document = try Yams.load(yaml: text) as? [String: Any], let services = document["services"] as? [String: Any] else {
            throw ValidationError("the compose file has no services mapping")
        }
        var out: [ComposeService] = []
        for (name, value) in services.sorted(by: { $0.key < $1.key }) {
            guard let service = value as? [String: Any], let command = service["command"] as? [String],
                  let executable = command.first, executable == "vigil" || executable.hasPrefix("vigil-") else { continue }
            var env: [String: String] = [:]
            if let mapping = service["environment"] as? [String: Any] {
                for (key, raw) in mapping { env[key] = interpolate("\(raw)", environment: environment) }
            }
            let replicas = ((service["deploy"] as? [String: Any])?["replicas"] as? Int) ?? 1
            let restart = service["restart"].map { "\($0)" }
            out.append(ComposeService(name: name, command: command, environment: env, replicas: max(1, replicas), oneShot: restart == "no"))
        }
        return out
    }

    /// `${NAME:-default}` and `${NAME}` from `environment`; other text as it is.
    static func interpolate(_ value: String, environment: [String: String]) -> String {
        guard value.hasPrefix("${"), value.hasSuffix("}") else { return value }
        let inner = value.dropFirst(2).dropLast()
        if let range = inner.range(of: ":-") {
            let name = String(inner[..<range.lowerBound])
            let fallback = String(inner[range.upperBound...])
            if let set = environment[name], !set.isEmpty { return set }
            return fallback
        }
        return environment[String(inner)] ?? ""
    }
}

struct Harness: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the compose deployment as local processes on the embedded broker, feed the samples, check the outcome.",
        discussion: """
            Reads the compose file (the same one `docker compose` runs), starts the embedded broker in place of its kafka service, runs its one-shot jobs (topic-init) to completion, then starts every Vigil service with its command, environment and replica count as local processes (paths under /usr/local/share/vigil/ are this repository's folders, /var/lib/vigil/ a work directory per replica; metrics ports are turned off, since replicas share one host). It ships samples/ into <prefix>raw and waits until the expected rules have alerted and commands were planned, then prints one JSON summary line and exits 0, or 1 when an expectation failed.

            Fault scenarios (--scenario): each starts a fresh embedded broker and the compose services (two replicas of every stage unless --replicas says otherwise), ships a generated CloudTrail load (fixed seed; brute force for several users, some followed by a success, StopLogging and DeleteTrail, root activity, new access keys, administrator policies, among routine API calls and sign-ins) at a steady pace, and compares what reaches the topics with what the offline chain (normalize, enrich, detect, respond in-process, same rules, playbooks and inventory) makes of the same records:
              kill       SIGKILL one replica of ingest, enrich, detect and respond in turn, --fault-interval seconds apart, each restarted at once (default 20,000 records)
              sigterm    the same with SIGTERM: each must exit 0 before it is restarted
              malformed  10% malformed raw records (truncated JSON, invalid UTF-8, wrong types, not an object; --huge-record adds a 2 MB one) among good ones (default 100,000 + 10,000): each must be dead-lettered once with a vigil-dlq-error-code header, every good record's event must arrive
              all        every scenario in turn
            A scenario passes when every expected alert id and event uid arrived (lost == 0), duplicates carry identical ids (same alert id, same rule, group and window), every expected command was planned and executed, no command was executed by two executor copies (ledgers in each respond replica's work directory), and the run finished within --timeout. The last stdout line is one JSON object per scenario (a JSON array for all): {"scenario","passed","input","events","alerts_expected","alerts_seen","lost","duplicate_commands_executed","dlq","seconds",...}; the exit status is 0 only when every scenario passed.

            Examples:
              vigil harness
              vigil harness --replicas 3 --expect-rule aws.console.bruteforce
              vigil harness --scenario kill
              vigil harness --scenario malformed --records 3000 --malformed 300
              vigil harness --scenario all --records 5000 --work-dir /tmp/vigil-faults
            """)
    @Option(help: "The compose file. Default: the bundled compose/docker-compose.yml.") var compose: String?
    @Option(help: "Replicas of every stage, instead of the compose file's.") var replicas: Int?
    @Option(help: "Directory of sample data. Default: the bundled samples/.") var samples: String?
    @Option(name: .customLong("expect-rule"), help: "A rule that must alert (repeatable). Default: the rules the samples trigger.")
    var expectRules: [String] = []
    @Option(help: "At least this many commands must be planned.") var expectCommands: Int = 1
    @Option(help: "Seconds without new records before the run counts as finished.") var settle: Int = 10
    @Option(help: "Give up after this many seconds.") var timeout: Int = 300
    @Option(help: "Keep logs and per-replica state here (default: a temporary directory).") var workDir: String?
    @Option(help: "Run a fault scenario instead of the samples check: kill, sigterm, malformed or all.") var scenario: HarnessScenario?
    @Option(help: "Good raw records of a scenario's load (default 20000; 100000 for malformed).") var records: Int?
    @Option(help: "Malformed raw records mixed in (default: a tenth of --records in the malformed scenario, else 0).") var malformed: Int?
    @Flag(help: "The malformed scenario also ships one 2 MB broken record (skipped, and said so, if the broker refuses it).")
    var hugeRecord = false
    @Option(help: "Seed of the generated load.") var seed: UInt64 = 20_261_127
    @Option(help: "Seconds from now to the load's first event time (default: records/100, at least 30).")
    var eventLead: Int?
    @Option(help: "Seconds between faults (kill, sigterm); the first comes this long after shipping starts.") var faultInterval: Int = 4
    @Option(help: "Seconds over which a scenario's load is shipped.") var shipSeconds: Int = 20

    func validate() throws {
        if let replicas, !(1...16).contains(replicas) { throw ValidationError("--replicas must be 1...16") }
        if let records, records < 100 { throw ValidationError("--records must be at least 100") }
        if let malformed, malformed < 0 { throw ValidationError("--malformed must not be negative") }
        if faultInterval < 1 || shipSeconds < 1 { throw ValidationError("--fault-interval and --ship-seconds must be positive") }
    }

    func run() async throws {
        let logger = cliLogger("vigil-harness")
        let composePath = compose ?? bundledDirectory("compose") + "/docker-compose.yml"
        guard let text = try? String(contentsOfFile: composePath, encoding: .utf8) else {
            throw ValidationError("cannot read the compose file \(composePath)")
        }
        let environment = ProcessInfo.processInfo.environment
        let services = try ComposeService.parse(text, environment: environment)
        guard !services.isEmpty else { throw ValidationError("\(composePath) has no services running vigil executables") }
        if let scenario {
            try await runScenarios(scenario, services: services, environment: environment, logger: logger)
            return
        }
        let rules = expectRules.isEmpty ? ["aws.cloudtrail.logging_disabled", "aws.console.bruteforce"] : expectRules

        guard let binary = EmbeddedBroker.locateBinary() else {
            throw ValidationError("the embedded broker (tools/bin/tansu) is not installed: run scripts/setup")
        }
        let broker = try await EmbeddedBroker.start(binary: binary, logger: logger)
        defer { broker.stop() }
        let work = workDir ?? NSTemporaryDirectory() + "vigil-harness-\(ProcessInfo.processInfo.processIdentifier)"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let share = URL(fileURLWithPath: bundledDirectory("rules")).deletingLastPathComponent().path
        let binDir = URL(fileURLWithPath: Bundle.main.executablePath ?? CommandLine.arguments[0]).deletingLastPathComponent().path
        let topics = Topics(prefix: services.compactMap { $0.environment["VIGIL_TOPIC_PREFIX"] }.first ?? "vigil.")
        say("embedded broker on \(broker.bootstrapServers); \(services.count) services from \(composePath)")

        func launch(_ service: ComposeService, replica: Int) throws -> Process {
            let state = "\(work)/\(service.name)-\(replica)"
            try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
            let arguments = service.command.dropFirst().map { argument -> String in
                if argument.hasPrefix("/usr/local/share/vigil/") { return share + "/" + argument.dropFirst("/usr/local/share/vigil/".count) }
                if argument.hasPrefix("/var/lib/vigil/") { return state + "/" + argument.dropFirst("/var/lib/vigil/".count) }
                return argument
            }
            var env = environment.merging(service.environment) { _, new in new }
            env["VIGIL_BROKERS"] = broker.bootstrapServers
            env["VIGIL_METRICS_PORT"] = "0"
            // The embedded broker joins groups slowly with librdkafka's default session timeout.
            env["VIGIL_KAFKA_SESSION_TIMEOUT_MS"] = env["VIGIL_KAFKA_SESSION_TIMEOUT_MS"] ?? "6000"
            env["VIGIL_KAFKA_HEARTBEAT_INTERVAL_MS"] = env["VIGIL_KAFKA_HEARTBEAT_INTERVAL_MS"] ?? "500"
            let path = binDir + "/" + service.command[0]
            guard FileManager.default.isExecutableFile(atPath: path) else {
                throw ValidationError("\(service.command[0]) not found next to vigil (\(binDir)); run `make build`")
            }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: path)
            process.arguments = arguments
            process.environment = env
            process.currentDirectoryURL = URL(fileURLWithPath: state)
            _ = FileManager.default.createFile(atPath: state + ".log", contents: nil)
            let log = FileHandle(forWritingAtPath: state + ".log")
            process.standardOutput = log
            process.standardError = log
            try process.run()
            return process
        }

        for job in services where job.oneShot {
            let process = try launch(job, replica: 1)
            while process.isRunning { try await Task.sleep(for: .milliseconds(100)) }
            guard process.terminationStatus == 0 else {
                throw ValidationError("\(job.name) failed (status \(process.terminationStatus)); see \(work)/\(job.name)-1.log")
            }
            say("\(job.name) done")
        }
        var children: [Process] = []
        defer { stopChildren(children) }
        var counts: [String: Int] = [:]
        for service in services where !service.oneShot {
            let copies = replicas ?? service.replicas
            counts[service.name] = copies
            for replica in 1...copies { children.append(try launch(service, replica: replica)) }
        }
        say("started " + counts.sorted { $0.key < $1.key }.map { "\($0.key) x\($0.value)" }.joined(separator: ", ") + " (logs in \(work))")

        var config = KafkaConfig.fromEnvironment(environment, base: KafkaConfig(clientID: "vigil-harness"))
        config.bootstrapServers = broker.bootstrapServers
        let watcher = try KafkaConsumer(config: config, groupID: nil, logger: logger)
        let admin = try KafkaAdmin(config: config, logger: logger)
        let metadata = try await admin.listTopics()
        let watched = [topics.alerts, topics.commands, topics.commandResults, topics.deadLetters]
        try watcher.assign(metadata.filter { watched.contains($0.name) }.flatMap { topic in
            topic.partitions.map { TopicPartitionOffset(TopicPartition(topic: topic.name, partition: $0), offset: KafkaConsumer.beginning) }
        })
        let shipped = try await shipSamples(from: samples ?? bundledDirectory("samples"), topics: topics, config: config, logger: logger)
        say("shipped \(shipped) sample files")

        var seen: [String: Int] = [:]
        var alertRules: Set<String> = []
        var alertIDs: Set<String> = []
        var lastChange = ContinuousClock.now
        let deadline = ContinuousClock.now + .seconds(timeout)
        func satisfied() -> Bool { Set(rules).isSubset(of: alertRules) && (seen[topics.commands] ?? 0) >= expectCommands }
        while ContinuousClock.now < deadline {
            for record in try await watcher.poll(maxRecords: 500, timeout: .milliseconds(200)).records {
                seen[record.topic, default: 0] += 1
                lastChange = ContinuousClock.now
                if record.topic == topics.alerts, let alert = try? JSON.parse(record.value) {
                    if let rule = alert.value(at: "vigil.rule.id")?.stringValue { alertRules.insert(rule) }
                    if let id = alert.value(at: "metadata.uid")?.stringValue { alertIDs.insert(id) }
                }
            }
            if let dead = children.first(where: { !$0.isRunning }) {
                throw ValidationError("\(dead.executableURL?.lastPathComponent ?? "a stage") exited (status \(dead.terminationStatus)); logs in \(work)")
            }
            if satisfied() && ContinuousClock.now - lastChange > .seconds(settle) { break }
        }
        await watcher.close()
        let ok = satisfied()
        let summary: JSON = [
            "ok": .bool(ok),
            "services": .object(counts.mapValues { .int(Int64($0)) }),
            "alerts": .int(Int64(seen[topics.alerts] ?? 0)),
            "distinct_alerts": .int(Int64(alertIDs.count)),
            "rules": .array(alertRules.sorted().map { .string($0) }),
            "commands": .int(Int64(seen[topics.commands] ?? 0)),
            "results": .int(Int64(seen[topics.commandResults] ?? 0)),
            "dlq": .int(Int64(seen[topics.deadLetters] ?? 0)),
        ]
        if !ok {
            say("expectations not met: rules \(rules.filter { !alertRules.contains($0) }), commands \(seen[topics.commands] ?? 0) of \(expectCommands)")
        }
        emit(summary.jsonText)
        if !ok { throw ExitCode(1) }
    }

    /// `--scenario`: each scenario on a fresh broker, one JSON object per scenario on the last
    /// line (an array for `all`); exit 1 when one failed.
    private func runScenarios(_ scenario: HarnessScenario, services: [ComposeService], environment: [String: String],
                              logger: Logger) async throws {
        let work = workDir ?? NSTemporaryDirectory() + "vigil-harness-\(ProcessInfo.processInfo.processIdentifier)"
        let sampleDir = samples ?? bundledDirectory("samples")
        let settings = ScenarioSettings(
            records: records, malformed: malformed, hugeRecord: hugeRecord, seed: seed, eventLead: eventLead, replicas: replicas ?? 2, timeout: timeout,
            settle: settle, faultInterval: faultInterval, shipSeconds: shipSeconds, work: work,
            share: URL(fileURLWithPath: bundledDirectory("rules")).deletingLastPathComponent().path,
            binDir: URL(fileURLWithPath: Bundle.main.executablePath ?? CommandLine.arguments[0]).deletingLastPathComponent().path,
            rules: bundledDirectory("rules"), playbooks: bundledDirectory("playbooks"), inventoryCSV: sampleDir + "/inventory.csv")
        var results: [JSON] = []
        for name in scenario.expanded {
            let result = try await ScenarioRunner.run(name, services: services, settings: settings, environment: environment,
                                                      logger: logger, say: say)
            say("\(name.rawValue): \(result["passed"] == true ? "passed" : "FAILED") \(result.jsonText)")
            results.append(result)
        }
        emit(scenario == .all ? JSON.array(results).jsonText : results[0].jsonText)
        if !results.allSatisfy({ $0["passed"] == true }) { throw ExitCode(1) }
    }

    private func say(_ line: String) { emit("vigil harness: \(line)") }
}
