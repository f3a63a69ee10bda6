import ArgumentParser
import Detection
import Foundation
import Inventory
import Kafka
import Logging
import Pipeline
import Response
import ServiceLifecycle
import UnixSignals

/// Options every stage executable shares.
public struct StageOptions: ParsableArguments {
    @Option(help: "YAML configuration file (or VIGIL_CONFIG).")
    public var config: String?
    @Option(help: "Kafka bootstrap servers, host:port[,host:port] (or VIGIL_BROKERS). Default 127.0.0.1:9092.")
    public var brokers: String?
    @Option(help: "Topic name prefix (or VIGIL_TOPIC_PREFIX). Default 'vigil.'.")
    public var topicPrefix: String?
    @Option(help: "Consumer group (or VIGIL_GROUP_ID). Default: the stage name; every copy of a stage shares it.")
    public var group: String?
    @Option(help: "Port of /metrics, /healthz and /readyz; 0 turns it off (or VIGIL_METRICS_PORT).")
    public var metricsPort: Int?
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical (or VIGIL_LOG_LEVEL).")
    public var logLevel: String?
    @Option(help: "Read alignment: milliseconds an input partition's record times may run ahead of the slowest partition of its topic before it waits (or VIGIL_MAX_READ_SKEW_MS); 0 turns it off. Default 5000 (detect's aggregate step and respond's executor never align).")
    public var maxReadSkewMs: Int?

    public init() {}

    /// The configuration: flags over environment over file over defaults.
    public func load(stage: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> StageConfig {
        var config = try StageConfig.load(stage: stage, file: self.config, environment: environment)
        if let brokers { config.kafka.bootstrapServers = brokers }
        if let topicPrefix { config.topics = Topics(prefix: topicPrefix) }
        if let group { config.groupID = group }
        if let metricsPort { config.metricsPort = metricsPort }
        if let logLevel {
            guard let level = Logger.Level(rawValue: logLevel) else { throw ValidationError("unknown log level '\(logLevel)'") }
            config.logLevel = level
        }
        if let maxReadSkewMs {
            guard maxReadSkewMs >= 0 else { throw ValidationError("--max-read-skew-ms must be 0 (off) or a positive number of milliseconds") }
            config.maxReadSkew = maxReadSkewMs == 0 ? nil : .milliseconds(maxReadSkewMs)
        }
        try config.validate()
        return config
    }
}

/// Runs stage runners and the metrics endpoint in one service group, graceful on SIGTERM/SIGINT.
public enum StageLauncher {
    /// Runs until a signal arrives or a runner stops (then the others stop too).
    public static func run(config: StageConfig, runners: [StageRunner], services extra: [any Service] = [],
                           metrics: MetricsRegistry, health: HealthState, logger: Logger) async throws {
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if config.metricsPort > 0 {
            services.append(.init(service: MetricsServer(host: config.metricsHost, port: config.metricsPort, metrics: metrics,
                                                         health: health, logger: logger)))
        }
        for service in runners as [any Service] + extra {
            services.append(.init(service: service, successTerminationBehavior: .gracefullyShutdownGroup,
                                  failureTerminationBehavior: .gracefullyShutdownGroup))
        }
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }

    /// Installs JSON logs at the configured level and returns the stage's logger.
    public static func bootstrapLogging(_ config: StageConfig) -> Logger {
        JSONLogHandler.bootstrap(level: config.logLevel)
        var logger = Logger(label: config.stage)
        logger[metadataKey: "stage"] = .string(config.stage)
        return logger
    }
}

extension InventoryStore {
    /// Imports a JSON file (`.json`) or a CSV file (anything else).
    public func importFile(path: String, at time: Int64) throws(InventoryError) -> ImportSummary {
        path.hasSuffix(".json") ? try importJSON(path: path, at: time) : try importCSV(path: path, at: time)
    }

    /// Imports a file like ``importFile(path:at:)`` and returns the changes it made, as full
    /// asset states for the `inventory` topic.
    public func importChanges(path: String, at time: Int64) throws(InventoryError) -> [InventoryChange] {
        let assets = try Self.readAssets(path: path)
        var changes: [InventoryChange] = []
        for id in try upsertReporting(assets, at: time).changed {
            if let stored = try asset(id: id) { changes.append(InventoryChange(.upsert(stored), time: time, source: "import")) }
        }
        return changes
    }
}

/// Where bundled rules and playbooks are when no directory is given: `VIGIL_HOME`, else the
/// working directory or a parent of it, else a parent of the executable (a source checkout).
public func bundledDirectory(_ name: String) -> String {
    let fileManager = FileManager.default
    var starts: [String] = []
    if let home = ProcessInfo.processInfo.environment["VIGIL_HOME"] { starts.append(home) }
    starts.append(fileManager.currentDirectoryPath)
    if let executable = Bundle.main.executablePath { starts.append((executable as NSString).deletingLastPathComponent) }
    for start in starts {
        var directory = URL(fileURLWithPath: start)
        for _ in 0..<8 {
            let candidate = directory.appendingPathComponent(name).path
            var isDirectory: ObjCBool = false
            if fileManager.fileExists(atPath: candidate, isDirectory: &isDirectory), isDirectory.boolValue { return candidate }
            directory.deleteLastPathComponent()
        }
    }
    return name
}

/// `vigil-ingest`: raw logs to OCSF events.
public struct IngestCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "vigil-ingest",
        abstract: "Normalize raw logs from <prefix>raw into OCSF events on <prefix>events.",
        discussion: """
            Records that cannot be parsed go to <prefix>dlq with the reason in headers. Run as many copies as the raw topic has partitions; they share the consumer group.

            Examples:
              vigil-ingest --brokers kafka-1:9092,kafka-2:9092
              VIGIL_KAFKA_SECURITY_PROTOCOL=SASL_SSL VIGIL_KAFKA_SASL_MECHANISM=SCRAM-SHA-512 vigil-ingest --config /etc/vigil/ingest.yaml
            """)
    @OptionGroup public var options: StageOptions

    public init() {}

    public func run() async throws {
        let config = try options.load(stage: "vigil-ingest")
        let logger = StageLauncher.bootstrapLogging(config)
        let metrics = MetricsRegistry()
        let health = HealthState()
        let runner = StageRunner(config: config, inputTopics: [config.topics.raw],
                                 processor: IngestProcessor(topics: config.topics, metrics: metrics),
                                 metrics: metrics, health: health, logger: logger)
        try await StageLauncher.run(config: config, runners: [runner], metrics: metrics, health: health, logger: logger)
    }
}

/// `vigil-enrich`: events joined with the asset inventory.
public struct EnrichCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "vigil-enrich",
        abstract: "Join <prefix>events with the asset inventory and write <prefix>enriched.",
        discussion: """
            The inventory is a SQLite file per copy (see `vigil inventory import`). Before joining its group the stage reads the whole <prefix>inventory topic into it, then follows it; AWS Config items and vulnerability findings it sees change the inventory and are published there, so every copy converges. Lookups are made as of each event's time. Unknown assets are marked `vigil.asset_status = "unknown"`, never dropped.

            Examples:
              vigil-enrich --inventory /var/lib/vigil/inventory.sqlite
              vigil-enrich --inventory inv.sqlite --import samples/inventory.csv
            """)
    @OptionGroup public var options: StageOptions
    @Option(help: "Inventory SQLite file (or the `inventory` setting). Default vigil-inventory.sqlite.")
    public var inventory: String?
    @Option(name: .customLong("import"), help: "CSV or JSON inventory file to import at start.")
    public var importFile: String?

    public init() {}

    public func run() async throws {
        let config = try options.load(stage: "vigil-enrich")
        let logger = StageLauncher.bootstrapLogging(config)
        let store = try InventoryStore(path: inventory ?? config.settings["inventory"] ?? "vigil-inventory.sqlite")
        let enricher = Enricher(store: store)
        let metrics = MetricsRegistry()
        let health = HealthState()
        if let importFile {
            // Imported here and published, so every other copy gets the same assets.
            let changes = try store.importChanges(path: importFile, at: wallClockMillis())
            try await InventoryPublisher.publish(changes, kafka: config.kafka, topics: config.topics, logger: logger)
            logger.info("inventory imported", metadata: ["changed": "\(changes.count)"])
        }
        let follower = try InventoryFollower(kafka: config.kafka, topics: config.topics, store: store, enricher: enricher,
                                             metrics: metrics, logger: logger)
        let runner = StageRunner(config: config, inputTopics: [config.topics.events],
                                 processor: EnrichProcessor(enricher: enricher, store: store, topics: config.topics, metrics: metrics),
                                 metrics: metrics, health: health, logger: logger,
                                 prepare: { try await follower.waitUntilLoaded() })
        try await StageLauncher.run(config: config, runners: [runner], services: [follower], metrics: metrics, health: health,
                                    logger: logger)
    }
}

/// `vigil-detect`: rules over event time, as a select and an aggregate runner.
public struct DetectCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "vigil-detect",
        abstract: "Run detection rules over <prefix>enriched and write alerts to <prefix>alerts.",
        discussion: """
            Two consumer groups run in each process: <group>-select evaluates matches and writes partial records keyed by rule and group to <prefix>detect.partials; <group>-aggregate owns those keys and evaluates windows in event time. Results do not depend on how many copies run.

            Every --snapshot-interval seconds the aggregate step writes each partials partition's state (windows, sequences, suppressions, watermarks) with the offset it resumes from to <prefix>detect.state (compacted; created when missing). A copy that takes a partition over, after a crash or a rebalance, resumes from that snapshot and fires exactly the alerts the old owner would have.

            Examples:
              vigil-detect --rules /etc/vigil/rules
              vigil-detect --rules rules --idle-advance 0     # never move watermarks with the wall clock
              vigil-detect --rules rules --max-keys-per-rule 20000
              vigil-detect --rules rules --snapshot-interval 30   # fewer, larger state writes
            """)
    @OptionGroup public var options: StageOptions
    @Option(help: "Directory of YAML rules (or the `rules` setting). Default: the bundled rules/.")
    public var rules: String?
    @Option(help: "Seconds a partials partition may be idle before its watermark follows the wall clock (live mode); 0 disables.")
    public var idleAdvance: Int = 5
    @Option(help: "Group keys a rule without max_keys may hold per partials partition (or the `max_keys_per_rule` setting); beyond it the least recently active key is evicted. Default 100000.")
    public var maxKeysPerRule: Int?
    @Option(help: "Seconds between two snapshots of a partials partition's aggregate state to <prefix>detect.state, which a copy taking the partition over resumes from (at least ten times the last snapshot's encoding time); 0 disables (a takeover then rebuilds from the partials, not exactly).")
    public var snapshotInterval: Int = 5

    public init() {}

    public func validate() throws {
        if let maxKeysPerRule, maxKeysPerRule < 1 { throw ValidationError("--max-keys-per-rule must be at least 1") }
        if snapshotInterval < 0 { throw ValidationError("--snapshot-interval must be 0 (off) or more seconds") }
    }

    public func run() async throws {
        let config = try options.load(stage: "vigil-detect")
        let logger = StageLauncher.bootstrapLogging(config)
        let directory = rules ?? config.settings["rules"] ?? bundledDirectory("rules")
        let ruleSet = try RuleSet.load(directory: directory)
        logger.info("rules loaded", metadata: ["count": "\(ruleSet.rules.count)", "directory": .string(directory)])
        var maxKeys = WindowAggregator.defaultMaxKeysPerRule
        if let maxKeysPerRule {
            maxKeys = maxKeysPerRule
        } else if let setting = config.settings["max_keys_per_rule"] {
            guard let value = Int(setting), value >= 1 else {
                throw ValidationError("the max_keys_per_rule setting must be a whole number >= 1")
            }
            maxKeys = value
        }
        let metrics = MetricsRegistry()
        let health = HealthState()
        var selectConfig = config
        selectConfig.groupID = config.groupID + "-select"
        var aggregateConfig = config
        aggregateConfig.groupID = config.groupID + "-aggregate"
        // Each partials partition's windows are its own and their watermarks already wait for
        // the slowest source: nothing is merged across partitions in time order, so read
        // alignment would only hold partitions back, even when asked for the select step.
        aggregateConfig.maxReadSkew = nil
        let select = StageRunner(config: selectConfig, inputTopics: [config.topics.enriched],
                                 processor: DetectSelectProcessor(rules: ruleSet, topics: config.topics, metrics: metrics),
                                 metrics: metrics, health: health, logger: logger)
        // The select step's input partitions: each holds the aggregate watermarks back until it
        // is heard from (a backlog is read a partition run at a time). Unknown when the topic
        // does not exist yet; sources are then learned from the partials.
        var sources: [String] = []
        do {
            let topic = config.topics.enriched
            if let metadata = try await KafkaAdmin(config: config.kafka, logger: logger).listTopics().first(where: { $0.name == topic }) {
                sources = metadata.partitions.map { "\(topic)/\($0)" }
            }
        } catch {
            logger.warning("could not list the input partitions; sources are learned from the partials",
                           metadata: ["error": .string("\(error)")])
        }
        var stateStore: AggregateStateStore?
        if snapshotInterval > 0 {
            do {
                stateStore = try await AggregateStateStore.open(kafka: config.kafka, topics: config.topics, logger: logger)
            } catch {
                logger.warning("no state topic: aggregate state is not snapshotted, and a takeover rebuilds it from the partials (not exactly)",
                               metadata: ["topic": .string(config.topics.detectState), "error": .string("\(error)")])
            }
        }
        let aggregate = StageRunner(config: aggregateConfig, inputTopics: [config.topics.detectPartials],
                                    processor: DetectAggregateProcessor(rules: ruleSet, topics: config.topics, metrics: metrics,
                                                                        idleAdvanceMillis: idleAdvance > 0 ? Int64(idleAdvance) * 1000 : nil,
                                                                        maxKeysPerRule: maxKeys, sourcePartitions: sources,
                                                                        stateStore: stateStore, snapshotIntervalMillis: Int64(snapshotInterval) * 1000),
                                    metrics: metrics, health: health, logger: logger)
        try await StageLauncher.run(config: config, runners: [select, aggregate], metrics: metrics, health: health, logger: logger)
    }
}

/// `vigil-respond`: alerts to gated commands.
public struct RespondCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "vigil-respond",
        abstract: "Turn <prefix>alerts into commands on <prefix>commands, as the playbooks say; with --execute, carry them out.",
        discussion: """
            Commands are keyed by target and identified by hash(alert id, action, target), so an alert delivered twice yields one command. Guards run before a command is emitted: protected assets, environment scope, rate limits, blast radius and approvals (status planned, pending or blocked). Actions stay dry runs unless a playbook says `mode: enforce`.

            With --execute the same process also runs the executor (consumer group <group>-executor): it reads <prefix>commands, carries out planned and approved commands idempotently (the command id is the key in the SQLite ledger), retries retriable failures with backoff, and writes every outcome to <prefix>command-results and the ledger. --executor-only runs just the executor, for a separate deployment next to the AWS credentials. AWS settings: --aws-endpoint (or VIGIL_AWS_ENDPOINT), --region (or AWS_REGION / AWS_DEFAULT_REGION), credentials from the standard AWS variables or ~/.aws/credentials. Webhook URLs for notify come from the playbook's params.webhook or from VIGIL_WEBHOOK_<CHANNEL>.

            Examples:
              vigil-respond --playbooks /etc/vigil/playbooks
              vigil-respond --playbooks /etc/vigil/playbooks --execute --ledger /var/lib/vigil/ledger.sqlite
              VIGIL_WEBHOOK_SECURITY_TEAM=https://hooks.example/T0 vigil-respond --executor-only --region eu-west-1
            """)
    @OptionGroup public var options: StageOptions
    @Option(help: "Directory of YAML playbooks (or the `playbooks` setting). Default: the bundled playbooks/.")
    public var playbooks: String?
    @Flag(help: "Also run the executor in this process.")
    public var execute = false
    @Flag(help: "Run only the executor (no planning).")
    public var executorOnly = false
    @Option(help: "The executor's SQLite ledger (or the `ledger` setting). Default vigil-ledger.sqlite.")
    public var ledger: String?
    @Option(help: "AWS endpoint override, e.g. a local moto server (or VIGIL_AWS_ENDPOINT).")
    public var awsEndpoint: String?
    @Option(help: "AWS region (or AWS_REGION / AWS_DEFAULT_REGION). Default us-east-1.")
    public var region: String?
    @Option(help: "Inventory SQLite file (or the `inventory` setting): sizes blast-radius groups for max_percent.")
    public var inventory: String?

    public init() {}

    public func validate() throws {
        if execute && executorOnly { throw ValidationError("--execute and --executor-only exclude each other") }
    }

    public func run() async throws {
        let config = try options.load(stage: "vigil-respond")
        let logger = StageLauncher.bootstrapLogging(config)
        let metrics = MetricsRegistry()
        let health = HealthState()
        var runners: [StageRunner] = []
        if !executorOnly {
            let directory = playbooks ?? config.settings["playbooks"] ?? bundledDirectory("playbooks")
            let playbookSet = try PlaybookSet.load(directory: directory)
            logger.info("playbooks loaded", metadata: ["count": "\(playbookSet.playbooks.count)", "directory": .string(directory)])
            let store = try (inventory ?? config.settings["inventory"]).map { path throws(InventoryError) in try InventoryStore(path: path) }
            runners.append(StageRunner(config: config, inputTopics: [config.topics.alerts],
                                       processor: RespondProcessor(playbooks: playbookSet, topics: config.topics, metrics: metrics,
                                                                   inventory: store),
                                       metrics: metrics, health: health, logger: logger))
        }
        if execute || executorOnly {
            let executor = try ExecutorSetup.make(ledgerPath: ledger ?? config.settings["ledger"] ?? "vigil-ledger.sqlite",
                                                  awsEndpoint: awsEndpoint ?? config.settings["aws_endpoint"],
                                                  region: region ?? config.settings["region"])
            if let problem = executor.cloudProblem {
                logger.warning("AWS is not configured; enforce-mode AWS commands will fail", metadata: ["reason": .string(problem)])
            }
            var executorConfig = config
            executorConfig.groupID = config.groupID + "-executor"
            // Commands are carried out per target, in each partition's order; time order
            // across partitions means nothing here.
            executorConfig.maxReadSkew = nil
            runners.append(StageRunner(config: executorConfig, inputTopics: [config.topics.commands],
                                       processor: ExecutorProcessor(executor: executor, topics: config.topics, metrics: metrics),
                                       metrics: metrics, health: health, logger: logger))
        }
        try await StageLauncher.run(config: config, runners: runners, metrics: metrics, health: health, logger: logger)
    }
}
