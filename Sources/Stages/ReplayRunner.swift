import Detection
import Foundation
import Inventory
import Kafka
import Logging
import OCSF
import Pipeline
import Response

/// Where a replay's outputs go.
public enum ReplayDestination: Sendable, Equatable {
    /// Namespaced topics: `<namespace>.<prefix>events`, `...alerts`, `...commands`, `...dlq`.
    case namespace(String)
    /// A JSON-lines file of alerts and commands, each line `{"kind":"alert","alert":{...}}` or
    /// `{"kind":"command","command":{...}}`.
    case file(String)
    /// Nowhere: counts and the diff only.
    case discard
}

/// Everything a replay needs.
public struct ReplayConfiguration: Sendable {
    /// Broker connection.
    public var kafka: KafkaConfig
    /// Production's topic names (the input and `--diff` topics live here).
    public var topics: Topics
    /// The input topic's full name (`vigil.raw`).
    public var inputTopic: String
    /// Which stages run, from the input topic's kind.
    public var input: ReplayInput
    /// The time range.
    public var range: ReplayRange
    /// Rules for detect.
    public var rules: RuleSet
    /// Playbooks for respond (every action forced to dry run).
    public var playbooks: PlaybookSet
    /// Inventory SQLite file for enrich (raw and events input) and blast-radius sizing;
    /// `nil`: an empty inventory (every asset unknown).
    public var inventoryPath: String?
    /// Where outputs go.
    public var destination: ReplayDestination
    /// Compare with the alerts on this topic over the same range (`--diff`); `nil`: no diff.
    public var diffTopic: String?
    /// Reader tuning.
    public var reader = ReplayTopicReader.Settings()

    /// A configuration.
    public init(kafka: KafkaConfig, topics: Topics, inputTopic: String, input: ReplayInput, range: ReplayRange, rules: RuleSet,
                playbooks: PlaybookSet, inventoryPath: String? = nil, destination: ReplayDestination, diffTopic: String? = nil) {
        self.kafka = kafka
        self.topics = topics
        self.inputTopic = inputTopic
        self.input = input
        self.range = range
        self.rules = rules
        self.playbooks = playbooks
        self.inventoryPath = inventoryPath
        self.destination = destination
        self.diffTopic = diffTopic
    }

    /// The namespaced output topics for `namespace` (`case-42` → `case-42.vigil.alerts`).
    public static func outputTopics(namespace: String, production: Topics) -> Topics {
        Topics(prefix: namespace + "." + production.prefix)
    }

    /// Whether `name` can prefix topic names: letters, digits, `.`, `_`, `-`.
    public static func isValidNamespace(_ name: String) -> Bool {
        !name.isEmpty && name.count < 200 && name.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || "._-".unicodeScalars.contains($0)
        }
    }
}

/// What a replay did.
public struct ReplayResult: Sendable {
    /// The input read.
    public var read: ReplayReadStats
    /// What went through the stages.
    public var counts: ReplayPipeline.Counts
    /// The alerts, sorted by (time, id).
    public var alerts: [JSON]
    /// The comparison with production (`--diff`).
    public var diff: ReplayDiff?
    /// Output topics written (namespace destination).
    public var outputTopics: Topics?
    /// Seconds from start to the last output written.
    public var seconds: Double

    /// Input records per second over the whole run.
    public var rate: Double { seconds > 0 ? Double(read.read) / seconds : 0 }

    /// The summary object printed as the last line of `vigil replay`.
    public func summary(configuration: ReplayConfiguration) -> JSON {
        var summary: JSON = [
            "topic": .string(configuration.inputTopic),
            "from": .string(Timestamp.formatISO8601(configuration.range.from)),
            "to": .string(Timestamp.formatISO8601(configuration.range.to)),
            "partitions": .int(Int64(read.partitions)),
            "read": .int(Int64(read.read)),
            "in_range": .int(Int64(read.inRange)),
            "skipped_before": .int(Int64(read.before)),
            "skipped_after": .int(Int64(read.after)),
            "events": .int(Int64(counts.events)),
            "enriched": .int(Int64(counts.enriched)),
            "alerts": .int(Int64(counts.alerts)),
            "commands": .int(Int64(counts.commands)),
            "dead_letters": .int(Int64(counts.deadLetters.values.reduce(0, +))),
            "seconds": .double((seconds * 1000).rounded() / 1000),
            "records_per_second": .int(Int64(rate.rounded())),
        ]
        if read.untimed > 0 { summary["skipped_untimed"] = .int(Int64(read.untimed)) }
        switch configuration.destination {
        case .namespace(let name): summary["namespace"] = .string(name)
        case .file(let path): summary["out"] = .string(path)
        case .discard: break
        }
        if let diff { summary["diff"] = diff.counts }
        return summary
    }
}

/// `vigil replay`: reads a topic over a time range and runs the stages from it onward in one
/// process (`ReplayPipeline`), writing to namespaced topics or a file, never touching
/// production's topics, consumer groups or executor.
public enum ReplayRunner {
    /// Runs a replay. `progress` receives a human line about once a second.
    public static func run(_ configuration: ReplayConfiguration, logger: Logger,
                           progress: (String) -> Void = { _ in }) async throws -> ReplayResult {
        let started = ContinuousClock.now
        let production = configuration.topics
        let outputTopics: Topics
        switch configuration.destination {
        case .namespace(let name): outputTopics = ReplayConfiguration.outputTopics(namespace: name, production: production)
        case .file, .discard: outputTopics = ReplayConfiguration.outputTopics(namespace: "replay", production: production)
        }

        // Inventory: the given file, or an empty one in a temporary directory.
        var store: InventoryStore?
        var temporary: String?
        if let path = configuration.inventoryPath {
            store = try InventoryStore(path: path)
        } else if configuration.input != .enriched {
            let directory = NSTemporaryDirectory() + "vigil-replay-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            temporary = directory
            store = try InventoryStore(path: directory + "/inventory.sqlite")
            logger.warning("no inventory given: every asset is unknown to the replay's enrich step")
        }
        defer { if let temporary { try? FileManager.default.removeItem(atPath: temporary) } }
        var pipeline = try ReplayPipeline(input: configuration.input, topics: outputTopics, rules: configuration.rules,
                                          playbooks: configuration.playbooks, enricher: store.map { Enricher(store: $0) },
                                          inventory: configuration.inventoryPath == nil ? nil : store)

        // Outputs.
        var producer: KafkaProducer?
        if case .namespace = configuration.destination {
            let admin = try KafkaAdmin(config: configuration.kafka, logger: logger)
            let existing = try await admin.listTopics()
            let partitions = Int32(existing.first { $0.name == configuration.inputTopic }?.partitions.count ?? 1)
            var wanted = [outputTopics.alerts, outputTopics.commands, outputTopics.deadLetters]
            if configuration.input == .raw { wanted.append(outputTopics.events) }
            if configuration.input != .enriched { wanted.append(outputTopics.enriched) }
            let specs = outputTopics.specs(partitions: max(1, partitions)).filter { wanted.contains($0.name) }
            if existing.contains(where: { $0.name == outputTopics.alerts }) {
                logger.warning("namespace topics exist already; a second replay into them repeats its alerts (same ids)",
                               metadata: ["topic": .string(outputTopics.alerts)])
            }
            try await admin.createTopics(specs)
            producer = try KafkaProducer(config: configuration.kafka, logger: logger)
        }

        let timeOf: (ConsumedRecord) -> Int64? = configuration.input == .raw
            ? { $0.timestamp }
            : { $0.timestamp ?? (try? JSON.parse($0.value)).flatMap(OCSFEvent.time) }
        let read: ReplayReadStats
        do {
            read = try await ReplayTopicReader.read(
                topic: configuration.inputTopic, range: configuration.range, config: configuration.kafka, logger: logger,
                settings: configuration.reader, timeOf: timeOf,
                progress: { stats in progress(Self.progressLine(stats, range: configuration.range)) }
            ) { records in
                var out: [OutgoingRecord] = []
                for record in records { out += pipeline.process(record) }
                if let producer, !out.isEmpty { try await producer.send(out) }
            }
        } catch {
            await producer?.close(timeout: .seconds(5))
            throw error
        }
        let finished = pipeline.finish()
        if let producer {
            do {
                try await producer.send(finished.alerts + finished.commands.flatMap { $0 } + finished.deadLetters)
            } catch {
                await producer.close(timeout: .seconds(5))
                throw error
            }
            await producer.close()
        }
        if case .file(let path) = configuration.destination {
            try writeFile(path: path, alerts: finished.alerts, commands: finished.commands)
        }
        let alerts = finished.alerts.compactMap { try? JSON.parse($0.value) }
        var result = ReplayResult(read: read, counts: pipeline.counts, alerts: alerts, diff: nil,
                                  outputTopics: producer == nil ? nil : outputTopics, seconds: 0)
        var done = read
        done.position = configuration.range.to
        progress(Self.progressLine(done, range: configuration.range) + ", done")

        if let diffTopic = configuration.diffTopic {
            let productionAlerts = try await readAlerts(topic: diffTopic, range: configuration.range, config: configuration.kafka,
                                                        logger: logger, settings: configuration.reader)
            // Both sides by alert time: a replay from raw can derive alerts dated outside the range.
            result.diff = ReplayDiff(production: productionAlerts,
                                     replay: alerts.filter { ($0["time"]?.intValue).map(configuration.range.contains) ?? false })
        }
        result.seconds = ReplayTopicReader.seconds(ContinuousClock.now - started)
        return result
    }

    /// The alerts on `topic` whose alert time is in `range`.
    public static func readAlerts(topic: String, range: ReplayRange, config: KafkaConfig, logger: Logger,
                                  settings: ReplayTopicReader.Settings = .init()) async throws -> [JSON] {
        var alerts: [JSON] = []
        try await ReplayTopicReader.read(
            topic: topic, range: range, config: config, logger: logger, settings: settings,
            timeOf: { (try? JSON.parse($0.value)).flatMap(OCSFEvent.time) ?? $0.timestamp }
        ) { records in
            for record in records { if let alert = try? JSON.parse(record.value) { alerts.append(alert) } }
        }
        return alerts
    }

    /// One JSON line per alert, each followed by its commands; written to a temporary file
    /// and renamed, so a reader never sees half a replay.
    static func writeFile(path: String, alerts: [OutgoingRecord], commands: [[OutgoingRecord]]) throws {
        var bytes: [UInt8] = []
        func line(kind: String, _ value: [UInt8]) {
            bytes += Array(#"{"kind":""#.utf8) + Array(kind.utf8) + Array(#"",""#.utf8) + Array(kind.utf8) + Array(#"":"#.utf8)
            bytes += value
            bytes += Array("}\n".utf8)
        }
        for (alert, planned) in zip(alerts, commands) {
            line(kind: "alert", alert.value)
            for command in planned { line(kind: "command", command.value) }
        }
        let url = URL(fileURLWithPath: path)
        let partial = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).partial")
        do {
            try Data(bytes).write(to: partial)
            if FileManager.default.fileExists(atPath: path) { try FileManager.default.removeItem(at: url) }
            try FileManager.default.moveItem(at: partial, to: url)
        } catch {
            throw ConfigError("cannot write \(path): \(error.localizedDescription)")
        }
    }

    /// `vigil replay: 120000 read, 118000 in range, 64% of the range, 41000 records/s`.
    static func progressLine(_ stats: ReplayReadStats, range: ReplayRange) -> String {
        let percent = stats.position.map { Int((range.fraction($0) * 100).rounded(.down)) } ?? 0
        return "vigil replay: \(stats.read) read, \(stats.inRange) in range, \(percent)% of the range, \(Int(stats.rate.rounded())) records/s"
    }
}
