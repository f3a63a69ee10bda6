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
            // The harness service of docker-compose.test.yml is the harness itself, not part of the deployment.
            if executable == "vigil" && command.dropFirst().first == "harness" { continue }
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

            Against a deployment that runs elsewhere (docker compose with compose/docker-compose.test.yml, or any Kafka): --bootstrap HOST:PORT uses that broker instead of starting one, and --no-services starts no stage either; the harness waits for the topics, ships the samples and checks the same expectations. Reading starts at the beginning of the topics, so run it against a fresh deployment.

            Fault scenarios (--scenario): each starts a fresh embedded broker and the compose services (two replicas of every stage unless --replicas says otherwise), ships a generated CloudTrail load (fixed seed; brute force for several users, some followed by a success, StopLogging and DeleteTrail, root activity, new access keys, administrator policies, among routine API calls and sign-ins) at a steady pace, and compares what reaches the topics with what the offline chain (normalize, enrich, detect, respond in-process, same rules, playbooks and inventory) makes of the same records:
              kill            SIGKILL one replica of ingest, enrich, detect and respond in turn, --fault-interval seconds apart, each restarted at once (default 20,000 records)
              sigterm         the same with SIGTERM: each must exit 0 before it is restarted
              malformed       10% malformed raw records (truncated JSON, invalid UTF-8, wrong types, not an object; --huge-record adds a 2 MB one) among good ones (default 100,000 + 10,000): each must be dead-lettered once with a vigil-dlq-error-code header, every good record's event must arrive
              broker-restart  the broker runs on durable storage (S3 on a moto server the harness starts: tools/venv/bin/moto_server or VIGIL_MOTO); halfway through shipping it is SIGKILLed and restarted on the same port and storage --broker-down seconds later; no stage may exit (default 5,000 records: every broker request is a round trip to moto; the topics get 2 partitions and the clients no idempotence, see docs/operations.md)
              all             every scenario in turn
            A scenario passes when every expected alert id and event uid arrived (lost == 0), duplicates carry identical ids (same alert id, same rule, group and window), every expected command was planned and executed, no command was executed by two executor copies (ledgers in each respond replica's work directory), and the run finished within --timeout. The last stdout line is one JSON object per scenario (a JSON array for all): {"scenario","passed","input","events","alerts_expected","alerts_seen","lost","duplicate_commands_executed","dlq","seconds",...}; the exit status is 0 only when every scenario passed.

            SIGINT or SIGTERM stops every process the run started (stages, broker, moto; a second signal kills them at once) and exits with 128 + the signal's number.

            Examples:
              vigil harness
              vigil harness --replicas 3 --expect-rule aws.console.bruteforce
              vigil harness --bootstrap kafka:9092 --no-services   # compose/docker-compose.test.yml
              vigil harness --scenario kill
              vigil harness --scenario broker-restart --records 5000 --broker-down 5
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
    @Option(help: "Use this broker (host:port list) instead of starting the embedded one (samples check only).")
    var bootstrap: String?
    @Flag(help: "Start no stage: the deployment at --bootstrap runs them (docker compose).") var noServices = false
    @Option(help: "Run a fault scenario instead of the samples check: kill, sigterm, malformed, broker-restart or all.")
    var scenario: HarnessScenario?
    @Option(help: "Good raw records of a scenario's load (default 20000; 100000 for malformed, 5000 for broker-restart).") var records: Int?
    @Option(help: "Malformed raw records mixed in (default: a tenth of --records in the malformed scenario, else 0).") var malformed: Int?
    @Flag(help: "The malformed scenario also ships one 2 MB broken record (skipped, and said so, if the broker refuses it).")
    var hugeRecord = false
    @Option(help: "Seed of the generated load.") var seed: UInt64 = 20_261_127
    @Option(help: "Seconds from now to the load's first event time (default: records/100, at least 30).")
    var eventLead: Int?
    @Option(help: "Seconds between faults (kill, sigterm); the first comes this long after shipping starts.") var faultInterval: Int = 4
    @Option(help: "Seconds over which a scenario's load is shipped.") var shipSeconds: Int = 20
    @Option(help: "Seconds the broker stays down in broker-restart.") var brokerDown: Int = 3

    func validate() throws {
        if let replicas, !(1...16).contains(replicas) { throw ValidationError("--replicas must be 1...16") }
        if let records, records < 100 { throw ValidationError("--records must be at least 100") }
        if let malformed, malformed < 0 { throw ValidationError("--malformed must not be negative") }
        if faultInterval < 1 || shipSeconds < 1 { throw ValidationError("--fault-interval and --ship-seconds must be positive") }
        if brokerDown < 0 { throw ValidationError("--broker-down must not be negative") }
        if noServices && bootstrap == nil {
            throw ValidationError("--no-services needs --bootstrap HOST:PORT (the broker of the deployment that runs the stages)")
        }
        if let bootstrap, bootstrap.isEmpty || bootstrap.contains(" ") {
            throw ValidationError("--bootstrap takes a host:port list, e.g. kafka:9092")
        }
        if scenario != nil && bootstrap != nil {
            throw ValidationError("--scenario runs on a fresh embedded broker it starts, kills and restarts; --bootstrap is for the samples check")
        }
    }

    func run() async throws {
        let interrupt = InterruptFlag { signal, count in
            HarnessInterrupt.record(signal)
            let name = HarnessInterrupt.name(signal)
            if count == 1 {
                emit("vigil harness: \(name) received; stopping every process this run started (send it again to kill them at once)")
                // The run loops notice within a second and stop everything in order; this is
                // for a run stuck where no loop looks.
                DispatchQueue.global().asyncAfter(deadline: .now() + 90) {
                    HarnessChildren.killAll()
                    emit("vigil harness: interrupted by \(name); processes not stopped within 90 s were killed")
                    Foundation.exit(128 + signal)
                }
            } else {
                HarnessChildren.killAll()
                emit("vigil harness: \(name) again; killed every process this run started")
                Foundation.exit(128 + signal)
            }
        }
        defer { withExtendedLifetime(interrupt) {} }
        do {
            try await runHarness()
        } catch let interrupted as HarnessInterrupted {
            // The defers of the scopes the error left have stopped stages, broker and moto.
            let left = HarnessChildren.names
            if !left.isEmpty { HarnessChildren.killAll() }
            emit("vigil harness: \(interrupted); stopped every process this run started"
                 + (left.isEmpty ? "" : " (killed \(left.joined(separator: ", ")))"))
            throw ExitCode(128 + interrupted.signal)
        } catch {
            // Interrupted while a Kafka call or a child failed in the meantime: still an interrupt.
            if let signal = HarnessInterrupt.signal {
                HarnessChildren.killAll()
                emit("vigil harness: interrupted by \(HarnessInterrupt.name(signal)) (\(error)); stopped every process this run started")
                throw ExitCode(128 + signal)
            }
            throw error
        }
    }

    private func runHarness() async throws {
        let logger = cliLogger("vigil-harness")
        let environment = ProcessInfo.processInfo.environment
        let composePath = compose ?? bundledDirectory("compose") + "/docker-compose.yml"
        var services: [ComposeService] = []
        if let text = try? String(contentsOfFile: composePath, encoding: .utf8) {
            services = try ComposeService.parse(text, environment: environment)
        } else if !noServices || compose != nil {
            // With --no-services the compose file only names the topic prefix; the image has none.
            throw ValidationError("cannot read the compose file \(composePath)")
        }
        guard noServices || !services.isEmpty else { throw ValidationError("\(composePath) has no services running vigil executables") }
        if let scenario {
            try await runScenarios(scenario, services: services, environment: environment, logger: logger)
            return
        }
        try await runSamplesCheck(services: services, composePath: composePath, environment: environment, logger: logger)
    }

    /// The samples check: samples/ through the compose services, expected rules and commands.
    private func runSamplesCheck(services: [ComposeService], composePath: String, environment: [String: String],
                                 logger: Logger) async throws {
        let rules = expectRules.isEmpty ? ["aws.cloudtrail.logging_disabled", "aws.console.bruteforce"] : expectRules
        let work = workDir ?? NSTemporaryDirectory() + "vigil-harness-\(ProcessInfo.processInfo.processIdentifier)"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let topics = Topics(prefix: services.compactMap { $0.environment["VIGIL_TOPIC_PREFIX"] }.first
                            ?? environment["VIGIL_TOPIC_PREFIX"] ?? "vigil.")

        let broker: HarnessBroker
        if let bootstrap {
            broker = .external(bootstrap)
        } else {
            broker = try await HarnessBroker.start(durable: false, work: work, environment: environment)
        }
        defer { broker.stop() }
        var cluster: HarnessCluster?
        // Declared after the broker: the stages stop first.
        defer { cluster?.stopAll() }
        if noServices {
            say("broker \(broker.bootstrapServers); the deployment runs the stages")
        } else {
            say("\(bootstrap == nil ? "embedded broker" : "broker") on \(broker.bootstrapServers); \(services.count) services from \(composePath)")
            let started = HarnessCluster(services: services, work: work,
                                         share: URL(fileURLWithPath: bundledDirectory("rules")).deletingLastPathComponent().path,
                                         binDir: URL(fileURLWithPath: Bundle.main.executablePath ?? CommandLine.arguments[0]).deletingLastPathComponent().path,
                                         brokers: broker.bootstrapServers, environment: environment)
            cluster = started
            try await started.runJobs(say: say)
            try started.startAll(replicas: replicas)
            say("started " + started.counts.sorted { $0.key < $1.key }.map { "\($0.key) x\($0.value)" }.joined(separator: ", ") + " (logs in \(work))")
        }
        let deadline = ContinuousClock.now + .seconds(timeout)

        var config = KafkaConfig.fromEnvironment(environment, base: KafkaConfig(clientID: "vigil-harness"))
        config.bootstrapServers = broker.bootstrapServers
        let watched = [topics.alerts, topics.commands, topics.commandResults, topics.deadLetters]
        // The deployment's topic-init may still be at work: wait for the topics.
        let admin = try KafkaAdmin(config: config, logger: logger)
        var metadata: [TopicMetadata] = []
        var waitingSaid = false
        while true {
            try HarnessInterrupt.check()
            metadata = (try? await admin.listTopics()) ?? []
            let names = Set(metadata.map(\.name))
            if names.contains(topics.raw) && watched.allSatisfy(names.contains) { break }
            guard ContinuousClock.now < deadline else {
                throw ValidationError("the topics \(([topics.raw] + watched).filter { !names.contains($0) }.joined(separator: ", ")) do not exist on \(broker.bootstrapServers)")
            }
            if !waitingSaid {
                say("waiting for the topics on \(broker.bootstrapServers)")
                waitingSaid = true
            }
            try await harnessSleep(.seconds(1))
        }
        let watcher = try KafkaConsumer(config: config, groupID: nil, logger: logger)
        try watcher.assign(metadata.filter { watched.contains($0.name) }.flatMap { topic in
            topic.partitions.map { TopicPartitionOffset(TopicPartition(topic: topic.name, partition: $0), offset: KafkaConsumer.beginning) }
        })
        let shipped = try await shipSamples(from: samples ?? bundledDirectory("samples"), topics: topics, config: config, logger: logger)
        say("shipped \(shipped) sample files")

        var seen: [String: Int] = [:]
        var alertRules: Set<String> = []
        var alertIDs: Set<String> = []
        var lastChange = ContinuousClock.now
        func satisfied() -> Bool { Set(rules).isSubset(of: alertRules) && (seen[topics.commands] ?? 0) >= expectCommands }
        while ContinuousClock.now < deadline {
            try HarnessInterrupt.check()
            for record in try await watcher.poll(maxRecords: 500, timeout: .milliseconds(200)).records {
                seen[record.topic, default: 0] += 1
                lastChange = ContinuousClock.now
                if record.topic == topics.alerts, let alert = try? JSON.parse(record.value) {
                    if let rule = alert.value(at: "vigil.rule.id")?.stringValue { alertRules.insert(rule) }
                    if let id = alert.value(at: "metadata.uid")?.stringValue { alertIDs.insert(id) }
                }
            }
            try HarnessInterrupt.check()
            if let (service, replica) = cluster?.exited().first {
                let status = cluster?.process(service.name, replica: replica)?.terminationStatus ?? -1
                throw ValidationError("\(service.name)-\(replica) exited (status \(status)); logs in \(work)")
            }
            if satisfied() && ContinuousClock.now - lastChange > .seconds(settle) { break }
        }
        await watcher.close()
        let ok = satisfied()
        let summary: JSON = [
            "ok": .bool(ok),
            "broker": .string(bootstrap == nil ? "embedded" : "external"),
            "services": .object((cluster?.counts ?? [:]).mapValues { .int(Int64($0)) }),
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
            settle: settle, faultInterval: faultInterval, shipSeconds: shipSeconds, brokerDown: brokerDown, work: work,
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
