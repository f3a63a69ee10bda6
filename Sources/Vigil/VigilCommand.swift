import ArgumentParser
import Detection
import Foundation
import Inventory
import Kafka
import Logging
import Normalize
import OCSF
import Pipeline
import Response
import Stages
import Synchronization

/// `vigil`: the operator's command line.
@main
struct VigilCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vigil",
        abstract: "Continuous security monitoring for cloud estates, as a streaming pipeline over Kafka.",
        discussion: """
            The pipeline runs as four stage executables (vigil-ingest, vigil-enrich, vigil-detect, vigil-respond). This command starts a demo, ships logs, runs the stages offline over files, checks and tests rules, approves, rejects and reverts response commands and shows their ledger, and manages topics and the inventory.

            Examples:
              vigil demo --once        # everything on an embedded broker
              vigil normalize --source cloudtrail trail.json | vigil detect
              vigil ship --brokers kafka:9092 --source cloudtrail logs/*.json
              vigil rules test rules
              vigil approve <command id> --by alice
            """,
        subcommands: [Demo.self, Broker.self, Topics_.self, Ship.self, NormalizeCommand.self, EnrichOffline.self,
                      DetectOffline.self, RespondOffline.self, Approve.self, Reject.self, Revert.self, LedgerCommand.self, Harness.self,
                      InventoryCommand.self, Passthrough.self, RulesCommand.self, ReplayCommand.self, DLQCommand.self])
}

/// Options for commands that talk to Kafka.
struct KafkaOptions: ParsableArguments {
    @Option(help: "Kafka bootstrap servers (or VIGIL_BROKERS). Default 127.0.0.1:9092.")
    var brokers: String?
    @Option(help: "Topic name prefix (or VIGIL_TOPIC_PREFIX). Default 'vigil.'.")
    var topicPrefix: String?

    func kafkaConfig(clientID: String) -> KafkaConfig {
        let environment = ProcessInfo.processInfo.environment
        var config = KafkaConfig.fromEnvironment(environment, base: KafkaConfig(clientID: clientID))
        if let brokers { config.bootstrapServers = brokers }
        return config
    }

    var topics: Topics {
        Topics(prefix: topicPrefix ?? ProcessInfo.processInfo.environment["VIGIL_TOPIC_PREFIX"] ?? "vigil.")
    }
}

/// A logger for CLI commands: warnings and worse, as JSON lines on stderr.
func cliLogger(_ label: String, level: Logger.Level = .warning) -> Logger {
    var logger = Logger(label: label) { label in JSONLogHandler(label: label, level: level) }
    logger.logLevel = level
    return logger
}

struct Broker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the embedded Kafka-protocol broker in the foreground (in-memory; for demos and tests).",
        discussion: """
            Creates Vigil's topics on it unless --no-topics is given. Stop with Ctrl-C.

            Example:
              vigil broker --port 9092 &
              vigil-ingest --brokers 127.0.0.1:9092
            """)
    @Option(help: "Port to listen on (loopback).") var port: Int = 9092
    @Option(help: "Partitions per topic.") var partitions: Int32 = 4
    @Flag(help: "Do not create Vigil's topics.") var noTopics = false
    @Option(help: "Topic name prefix.") var topicPrefix: String = "vigil."

    func run() async throws {
        guard let binary = EmbeddedBroker.locateBinary() else {
            throw ValidationError("the embedded broker (tools/bin/tansu) is not installed: run scripts/setup")
        }
        let logger = cliLogger("vigil-broker", level: .info)
        let broker = try await EmbeddedBroker.start(binary: binary, port: port, logger: logger, output: FileHandle.standardError)
        if !noTopics {
            let admin = try KafkaAdmin(config: KafkaConfig(bootstrapServers: broker.bootstrapServers), logger: logger)
            try await admin.createTopics(Topics(prefix: topicPrefix).specs(partitions: partitions, replicationFactor: 1))
        }
        print("broker listening on \(broker.bootstrapServers); Ctrl-C to stop")
        // Stop the broker process on SIGINT/SIGTERM rather than leave it running.
        let interrupted = InterruptFlag()
        while broker.isRunning && !interrupted.isSet {
            try? await Task.sleep(for: .milliseconds(200))
        }
        broker.stop()
    }
}

struct Topics_: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topics",
        abstract: "Create, list or describe Vigil's topics.",
        discussion: """
            describe shows, per partition of every topic under the prefix, the kept offsets (low, high), the records kept, and for the topics a stage consumes, that stage group's committed offset and lag (records not yet processed). Groups are the default stage group ids (vigil-ingest, vigil-enrich, vigil-detect-select, vigil-detect-aggregate, vigil-respond, vigil-respond-executor); --group TOPIC=GROUP names another.

            Examples:
              vigil topics create --brokers kafka:9092 --partitions 12 --replication-factor 3
              vigil topics list --brokers kafka:9092
              vigil topics describe --brokers kafka:9092
              vigil topics describe --group raw=ingest-eu --json
            """)
    @Argument(help: "create | list | describe") var action: String
    @OptionGroup var kafka: KafkaOptions
    @Option(help: "Partitions per topic (create).") var partitions: Int32 = 4
    @Option(help: "Replication factor (create); -1 = the broker's default.") var replicationFactor: Int32 = -1
    @Option(help: "TOPIC=GROUP: the group that consumes a topic (name without the prefix), when not the default (describe).")
    var group: [String] = []
    @Flag(help: "JSON lines instead of a table (describe).") var json = false

    func validate() throws {
        guard ["create", "list", "describe"].contains(action) else { throw ValidationError("action must be 'create', 'list' or 'describe'") }
        guard partitions > 0 else { throw ValidationError("--partitions must be positive") }
        for item in group where item.split(separator: "=").count != 2 {
            throw ValidationError("--group takes TOPIC=GROUP, e.g. raw=ingest-eu")
        }
    }

    func run() async throws {
        let config = kafka.kafkaConfig(clientID: "vigil-topics")
        let logger = cliLogger("vigil-topics")
        switch action {
        case "create":
            let admin = try KafkaAdmin(config: config, logger: logger)
            let created = try await admin.createTopics(kafka.topics.specs(partitions: partitions, replicationFactor: replicationFactor))
            print(created.isEmpty ? "all topics already exist" : "created: \(created.sorted().joined(separator: ", "))")
        case "list":
            let admin = try KafkaAdmin(config: config, logger: logger)
            for topic in try await admin.listTopics() where topic.name.hasPrefix(kafka.topics.prefix) {
                print("\(topic.name)\t\(topic.partitions.count) partitions")
            }
        default:
            var overrides: [String: String] = [:]
            for item in group {
                let parts = item.split(separator: "=").map(String.init)
                overrides[parts[0]] = parts[1]
            }
            let rows = try await TopicStatus.describe(kafka.topics, config: config,
                                                      groups: TopicStatus.groups(kafka.topics, overrides: overrides), logger: logger)
            if json {
                for row in rows {
                    var record: JSON = ["topic": .string(row.topic), "partition": .int(Int64(row.partition)), "low": .int(row.low),
                                        "high": .int(row.high), "records": .int(row.records)]
                    if let group = row.group { record["group"] = .string(group) }
                    if let committed = row.committed { record["committed"] = .int(committed) }
                    if let lag = row.lag { record["lag"] = .int(lag) }
                    print(record.jsonText)
                }
                return
            }
            func pad(_ text: String, _ width: Int) -> String { text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count) }
            print(pad("TOPIC", 28) + pad("PART", 6) + pad("LOW", 12) + pad("HIGH", 12) + pad("RECORDS", 12) + pad("GROUP", 26) + pad("COMMITTED", 12) + "LAG")
            for row in rows {
                print(pad(row.topic, 28) + pad(String(row.partition), 6) + pad(String(row.low), 12) + pad(String(row.high), 12)
                      + pad(String(row.records), 12) + pad(row.group ?? "-", 26) + pad(row.committed.map(String.init) ?? "-", 12)
                      + (row.lag.map(String.init) ?? "-"))
            }
        }
    }
}

struct NormalizeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "normalize",
        abstract: "Normalize log files to OCSF events (JSON lines on stdout; dead letters on stderr).",
        discussion: """
            --summary then writes to stderr, after the dead letters, a table per source (records, of which detected, entries, events, dead letters, skipped entries such as CloudTrail digests, dead letters by code) and one JSON line {"summary": {"sources": {...}, "total": {...}}}.

            Exit status 2 when anything was dead-lettered.

            Examples:
              vigil normalize --source cloudtrail samples/cloudtrail/*.json
              zcat trail.json.gz | vigil normalize --source cloudtrail --whole
              vigil normalize --summary --source vpcflow flows/*.log > /dev/null
            """)
    @Option(help: "Log source; omit to detect it per record.") var source: String?
    @Flag(help: "One record per line (default for .jsonl/.ndjson/.log files and standard input).") var lines = false
    @Flag(help: "Treat standard input as one record instead of lines.") var whole = false
    @Flag(help: "At the end, write per-source counts to stderr: a table, then one JSON line.") var summary = false
    @Argument(help: "Files (standard input when none).") var files: [String] = []

    func run() async throws {
        var inputs = try Offline.read(files, lines: lines)
        if whole && files.isEmpty { inputs = [Offline.Input(origin: "stdin", bytes: inputs.flatMap { $0.bytes + [0x0A] })] }
        let topics = Topics()
        let tally = NormalizeTally()
        var normalizer = Normalizer()
        if summary { normalizer.observer = tally.record }
        var processor = IngestProcessor(topics: topics, metrics: MetricsRegistry(), normalizer: normalizer)
        let (_, dead) = Offline.run(stage: "normalize", inputs: inputs, topic: "file", processor: &processor,
                                    emit: [topics.events], source: source)
        if summary {
            Offline.writeError(tally.summary.table)
            Offline.writeError(tally.summary.json.jsonText)
        }
        if dead > 0 { throw ExitCode(2) }
    }
}

struct EnrichOffline: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enrich",
        abstract: "Join OCSF events (JSON lines) with the inventory.",
        discussion: """
            Example:
              vigil normalize samples/cloudtrail/*.json | vigil enrich --inventory inv.sqlite --import samples/inventory.csv
            """)
    @Option(help: "Inventory SQLite file.") var inventory: String = "vigil-inventory.sqlite"
    @Option(name: .customLong("import"), help: "CSV or JSON inventory file to import first.") var importFile: String?
    @Argument(help: "Event files (standard input when none).") var files: [String] = []

    func run() async throws {
        let store = try InventoryStore(path: inventory)
        if let importFile {
            _ = try store.importFile(path: importFile, at: wallClockMillis())
        }
        let topics = Topics()
        var processor = EnrichProcessor(enricher: Enricher(store: store), store: store, topics: topics, metrics: MetricsRegistry())
        let (_, dead) = Offline.run(stage: "enrich", inputs: try Offline.read(files, lines: true), topic: topics.events,
                                    processor: &processor, emit: [topics.enriched])
        if dead > 0 { throw ExitCode(2) }
    }
}

struct DetectOffline: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detect",
        abstract: "Run rules over OCSF events (JSON lines) and print alerts; windows close at end of input.",
        discussion: """
            Example:
              vigil normalize samples/cloudtrail/*.json | vigil detect --rules rules
            """)
    @Option(help: "Directory of YAML rules. Default: the bundled rules/.") var rules: String?
    @Argument(help: "Event files (standard input when none).") var files: [String] = []

    func run() async throws {
        let ruleSet = try RuleSet.load(directory: rules ?? bundledDirectory("rules"))
        let topics = Topics()
        var detector = OfflineDetector(rules: ruleSet, topics: topics, metrics: MetricsRegistry())
        let (_, dead) = Offline.run(stage: "detect", inputs: try Offline.read(files, lines: true), topic: topics.enriched,
                                    processor: &detector, emit: [topics.alerts])
        for alert in detector.finish() { print(String(decoding: alert.value, as: UTF8.self)) }
        if dead > 0 { throw ExitCode(2) }
    }
}

struct Passthrough: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy a topic to another through the stage runner with no work (benchmark baseline).",
        discussion: """
            Prints {"records":N,"seconds":S} last, S from the first input to the last delivered output.

            Example:
              vigil passthrough --brokers 127.0.0.1:9092 --from bench.in --to bench.out --exit-when-idle 3
            """)
    @OptionGroup var kafka: KafkaOptions
    @Option(help: "Input topic (not prefixed).") var from: String
    @Option(help: "Output topic (not prefixed).") var to: String
    @Option(help: "Consumer group.") var group: String = "vigil-passthrough"
    @Option(help: "Exit after this many idle seconds once records have flowed; 0 = run until signalled.") var exitWhenIdle: Int = 0
    @Option(help: "Records per poll and produce batch.") var batchSize: Int = 1000
    @Option(help: "Read alignment skew in milliseconds, as the stages' option; 0 turns it off.") var maxReadSkewMs: Int = 5000

    func run() async throws {
        var config = StageConfig(stage: "vigil-passthrough")
        config.maxReadSkew = maxReadSkewMs > 0 ? .milliseconds(maxReadSkewMs) : nil
        config.kafka = kafka.kafkaConfig(clientID: "vigil-passthrough")
        config.groupID = group
        config.metricsPort = 0
        config.batchSize = batchSize
        config.exitWhenIdle = exitWhenIdle > 0 ? .seconds(exitWhenIdle) : nil
        let runner = StageRunner(config: config, inputTopics: [from], processor: PassthroughProcessor(destination: to),
                                 metrics: MetricsRegistry(), health: HealthState(), logger: cliLogger("vigil-passthrough"))
        try await runner.run()
        let stats = runner.stats.withLock { $0 }
        var seconds = 0.0
        if let first = stats.firstInput, let last = stats.lastDelivered {
            let elapsed = last - first
            seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        }
        print(#"{"records":\#(stats.inputs),"seconds":\#(String(format: "%.3f", seconds))}"#)
    }
}
