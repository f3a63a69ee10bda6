import ArgumentParser
import Foundation
import Kafka
import Logging
import OCSF
import Pipeline
import Stages
import Synchronization

struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the whole pipeline on the bundled samples and show alerts and commands as they happen.",
        discussion: """
            Starts the embedded broker (unless --brokers is given), creates the topics, starts vigil-ingest, vigil-enrich, vigil-detect and vigil-respond as child processes, ships samples/ into <prefix>raw and prints alerts and commands. With --once it exits when the data has flowed through and prints a JSON summary as its last line:
            {"raw":N,"events":N,"enriched":N,"alerts":N,"commands":N,"results":N,"dlq":N}

            vigil-respond runs with its executor (ledger in the work directory): dry runs are recorded, commands that need approval stay pending (`vigil approve ID --brokers ...` while the demo runs), and every outcome appears as a RESULT line.

            Examples:
              vigil demo --once
              vigil demo --brokers kafka:9092 --topic-prefix demo.vigil.
            """)
    @OptionGroup var kafka: KafkaOptions
    @Flag(help: "Exit once the samples have flowed through (quiet for --settle seconds).") var once = false
    @Option(help: "Directory of sample data. Default: the bundled samples/.") var samples: String?
    @Option(help: "Partitions per topic.") var partitions: Int32 = 4
    @Option(help: "Seconds without new records before --once considers the run finished.") var settle: Int = 10
    @Option(help: "With --once, give up after this many seconds.") var timeout: Int = 180
    @Option(help: "Keep stage logs and the inventory in this directory (default: a temporary one).") var workDir: String?

    func run() async throws {
        let logger = cliLogger("vigil-demo")
        // Ctrl-C (or SIGTERM) ends the watch loop; the summary is printed and everything stopped.
        let interrupted = InterruptFlag()

        // 1. Broker.
        var broker: EmbeddedBroker?
        var bootstrap = kafka.brokers ?? ProcessInfo.processInfo.environment["VIGIL_BROKERS"]
        if bootstrap == nil {
            guard let binary = EmbeddedBroker.locateBinary() else {
                throw ValidationError("the embedded broker (tools/bin/tansu) is not installed: run scripts/setup, or pass --brokers")
            }
            broker = try await EmbeddedBroker.start(binary: binary, logger: logger)
            bootstrap = broker!.bootstrapServers
            say("embedded broker on \(bootstrap!)")
        }
        defer { broker?.stop() }
        var config = kafka.kafkaConfig(clientID: "vigil-demo")
        config.bootstrapServers = bootstrap!
        let topics = kafka.topics

        // 2. Topics.
        let admin = try KafkaAdmin(config: config, logger: logger)
        try await admin.createTopics(topics.specs(partitions: partitions, replicationFactor: broker == nil ? -1 : 1))
        say("topics ready under prefix '\(topics.prefix)'")

        // 3. Stages as child processes.
        let work = workDir ?? NSTemporaryDirectory() + "vigil-demo-\(ProcessInfo.processInfo.processIdentifier)"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let sampleDir = samples ?? bundledDirectory("samples")
        var environment = ProcessInfo.processInfo.environment
        environment["VIGIL_BROKERS"] = bootstrap!
        environment["VIGIL_TOPIC_PREFIX"] = topics.prefix
        environment["VIGIL_METRICS_PORT"] = environment["VIGIL_METRICS_PORT"] ?? "0"
        if broker != nil {
            // The embedded broker joins groups slowly with librdkafka's 45 s default session timeout.
            environment["VIGIL_KAFKA_SESSION_TIMEOUT_MS"] = environment["VIGIL_KAFKA_SESSION_TIMEOUT_MS"] ?? "6000"
            environment["VIGIL_KAFKA_HEARTBEAT_INTERVAL_MS"] = environment["VIGIL_KAFKA_HEARTBEAT_INTERVAL_MS"] ?? "500"
        }
        let binDir = URL(fileURLWithPath: Bundle.main.executablePath ?? CommandLine.arguments[0]).deletingLastPathComponent().path
        let stageArgs: [(String, [String])] = [
            ("vigil-ingest", []),
            ("vigil-enrich", ["--inventory", work + "/inventory.sqlite", "--import", sampleDir + "/inventory.csv"]),
            ("vigil-detect", ["--rules", bundledDirectory("rules")]),
            // The executor runs in the same process; AWS is not configured for the demo, so
            // enforce-mode AWS commands wait for approval (pending) and dry runs are recorded.
            ("vigil-respond", ["--playbooks", bundledDirectory("playbooks"), "--execute", "--ledger", work + "/ledger.sqlite"]),
        ]
        var children: [Process] = []
        defer { stopChildren(children) }
        for (name, arguments) in stageArgs {
            let path = binDir + "/" + name
            guard FileManager.default.isExecutableFile(atPath: path) else {
                throw ValidationError("\(name) not found next to vigil (\(binDir)); run `make build`")
            }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: path)
            process.arguments = arguments
            process.environment = environment
            _ = FileManager.default.createFile(atPath: "\(work)/\(name).log", contents: nil)
            let log = FileHandle(forWritingAtPath: "\(work)/\(name).log")
            process.standardOutput = log
            process.standardError = log
            try process.run()
            children.append(process)
        }
        say("stages started (logs in \(work))" + (once ? "" : "; Ctrl-C to stop"))

        // 4. Watch every topic from the beginning.
        let watcher = try KafkaConsumer(config: config, groupID: nil, logger: logger)
        let watched = [topics.raw, topics.events, topics.enriched, topics.alerts, topics.commands, topics.commandResults, topics.deadLetters]
        try watcher.assign(watched.flatMap { topic in
            (0..<partitions).map { TopicPartitionOffset(TopicPartition(topic: topic, partition: $0), offset: KafkaConsumer.beginning) }
        })

        // 5. Ship the samples.
        let shipped = try await shipSamples(from: sampleDir, topics: topics, config: config, logger: logger)
        say("shipped \(shipped) sample files into \(topics.raw)")

        // 6. Show what happens.
        var counts: [String: Int] = [:]
        var lastChange = ContinuousClock.now
        let deadline = ContinuousClock.now + .seconds(timeout)
        while !interrupted.isSet {
            let batch = try await watcher.poll(maxRecords: 500, timeout: .milliseconds(200))
            for record in batch.records {
                counts[record.topic, default: 0] += 1
                lastChange = ContinuousClock.now
                show(record, topics: topics)
            }
            if let dead = children.first(where: { !$0.isRunning }) {
                throw ValidationError("\(dead.executableURL?.lastPathComponent ?? "a stage") exited (status \(dead.terminationStatus)); see its log in \(work)")
            }
            if once && (counts[topics.alerts] ?? 0) > 0 && ContinuousClock.now - lastChange > .seconds(settle) { break }
            if once && ContinuousClock.now > deadline {
                throw ValidationError("the samples did not flow through within \(timeout) s; stage logs are in \(work)")
            }
        }
        await watcher.close()

        let summary: JSON = [
            "raw": .int(Int64(counts[topics.raw] ?? 0)), "events": .int(Int64(counts[topics.events] ?? 0)),
            "enriched": .int(Int64(counts[topics.enriched] ?? 0)), "alerts": .int(Int64(counts[topics.alerts] ?? 0)),
            "commands": .int(Int64(counts[topics.commands] ?? 0)), "results": .int(Int64(counts[topics.commandResults] ?? 0)),
            "dlq": .int(Int64(counts[topics.deadLetters] ?? 0)),
        ]
        say("summary: raw records \(counts[topics.raw] ?? 0) -> events \(counts[topics.events] ?? 0) -> enriched "
            + "\(counts[topics.enriched] ?? 0) -> alerts \(counts[topics.alerts] ?? 0) -> commands \(counts[topics.commands] ?? 0) -> "
            + "results \(counts[topics.commandResults] ?? 0); "
            + "dead letters \(counts[topics.deadLetters] ?? 0)")
        emit(summary.jsonText)
    }

    private func say(_ line: String) {
        emit("vigil demo: \(line)")
    }

    private func show(_ record: ConsumedRecord, topics: Topics) {
        guard let value = try? JSON.parse(record.value) else {
            if record.topic == topics.deadLetters { showDeadLetter(record) }
            return
        }
        switch record.topic {
        case topics.alerts:
            let severity = value["severity"]?.stringValue ?? "?"
            let rule = value.value(at: "vigil.rule.id")?.stringValue ?? "?"
            let title = value.value(at: "finding_info.title")?.stringValue ?? ""
            let asset = value.value(at: "vigil.asset.name")?.stringValue
            var facts: [String] = []
            if let owner = value.value(at: "vigil.asset.owner")?.stringValue { facts.append("owner \(owner)") }
            if let environment = value.value(at: "vigil.asset.environment")?.stringValue { facts.append(environment) }
            if let exposed = value.value(at: "vigil.asset.internet_exposed")?.boolValue { facts.append(exposed ? "internet-exposed" : "internal") }
            if let critical = value.value(at: "vigil.asset.vulnerabilities.critical")?.intValue, critical > 0 {
                facts.append("\(critical) critical CVEs")
            }
            let actor = value.value(at: "actor.user.name")?.stringValue ?? value.value(at: "vigil.group_key")?.stringValue ?? "?"
            var line = "ALERT    [\(severity)] \(rule): \(title) | actor \(actor)"
            if let count = value.value(at: "vigil.count")?.intValue { line += " | \(count) events" }
            if let asset { line += " | asset \(asset)" + (facts.isEmpty ? "" : " (\(facts.joined(separator: ", ")))") }
            emit(line)
        case topics.commands:
            let action = value["action"]?.stringValue ?? "?"
            let mode = value["mode"]?.stringValue ?? "?"
            let target = value["target"]?.stringValue ?? "?"
            let rule = value["rule_id"]?.stringValue ?? "?"
            let status = value["status"]?.stringValue ?? "?"
            var line = "COMMAND  \(action) (\(mode), \(status)) -> \(target.isEmpty ? "no target" : target) for \(rule) [id \(value["command_id"]?.stringValue ?? "?")]"
            if let why = value["blocked_reason"]?.stringValue { line += " | \(why)" }
            if status == "pending" { line += " | approve with: vigil approve \(value["command_id"]?.stringValue ?? "?")" }
            emit(line)
        case topics.commandResults:
            let action = value["action"]?.stringValue ?? "?"
            let status = value["status"]?.stringValue ?? "?"
            var line = "RESULT   \(action) -> \(value["target"]?.stringValue ?? "?"): \(status)"
            if let would = value.value(at: "detail.would")?.stringValue { line += " (would \(would))" }
            if let error = value["error"]?.stringValue { line += " | \(error)" }
            emit(line)
        case topics.deadLetters:
            showDeadLetter(record)
        default:
            return
        }
    }

    private func showDeadLetter(_ record: ConsumedRecord) {
        let code = record.headers.text(VigilHeader.dlqErrorCode) ?? "?"
        let reason = record.headers.text(VigilHeader.dlqError) ?? ""
        let stage = record.headers.text(VigilHeader.dlqStage) ?? "?"
        emit("DEAD     \(stage): \(code): \(reason) (from \(record.headers.text(VigilHeader.dlqTopic) ?? "?")"
              + "[\(record.headers.text(VigilHeader.dlqPartition) ?? "?")]@\(record.headers.text(VigilHeader.dlqOffset) ?? "?"))")
    }


}

/// Stops child processes: SIGTERM, then SIGKILL for any still running after 20 s.
func stopChildren(_ children: [Process]) {
    for child in children where child.isRunning { child.terminate() }
    let deadline = Date().addingTimeInterval(20)
    for child in children {
        while child.isRunning && Date() < deadline { usleep(50_000) }
        if child.isRunning { kill(child.processIdentifier, SIGKILL) }
    }
}

/// Files under samples/<source>/ are shipped with that source header; malformed/ is shipped
/// as cloudtrail (it is a broken CloudTrail file).
func shipSamples(from directory: String, topics: Topics, config: KafkaConfig, logger: Logger) async throws -> Int {
    let producer = try KafkaProducer(config: config, logger: logger)
    var records: [OutgoingRecord] = []
    let fileManager = FileManager.default
    for sub in (try fileManager.contentsOfDirectory(atPath: directory)).sorted() {
        var isDirectory: ObjCBool = false
        let path = directory + "/" + sub
        guard fileManager.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else { continue }
        let source = sub == "malformed" ? "cloudtrail" : sub
        for file in try fileManager.contentsOfDirectory(atPath: path).sorted() {
            guard let data = fileManager.contents(atPath: path + "/" + file) else { continue }
            records.append(OutgoingRecord(topic: topics.raw, key: Array("\(sub)/\(file)".utf8), value: Array(data),
                                          headers: [KafkaHeader(VigilHeader.source, source)]))
        }
    }
    try await producer.send(records)
    await producer.close()
    return records.count
}


/// Writes a line to standard output at once (the demo is watched live, often through a pipe).
func emit(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

