import Detection
import Inventory
import Kafka
import OCSF
import Pipeline
import Response

/// Where a replay starts: the topic it reads decides which stages run.
public enum ReplayInput: String, Sendable, CaseIterable {
    /// `raw`: normalize, enrich, detect, respond.
    case raw
    /// `events`: enrich, detect, respond.
    case events
    /// `enriched`: detect, respond (the events exactly as production's detect saw them).
    case enriched

    /// The kind of `topic`: a bare name (`raw`), or a topic name ending in `.raw`,
    /// `.events` or `.enriched` (`vigil.raw`, `prod.vigil.enriched`).
    public init?(topic: String) {
        if let kind = ReplayInput(rawValue: topic) {
            self = kind
            return
        }
        for kind in ReplayInput.allCases where topic.hasSuffix("." + kind.rawValue) {
            self = kind
            return
        }
        return nil
    }
}

/// The stages from a replay's input topic onward, in one process, in event-time mode: the
/// production processors (`IngestProcessor`, `EnrichProcessor`, the select and aggregate steps
/// through `OfflineDetector`, `RespondProcessor`) chained record by record, as `Offline` chains
/// them for files. Pure apart from the inventory lookups: no Kafka, no clock in its outputs.
///
/// Windows are never advanced by the wall clock; `finish()` flushes every window. Alerts are
/// held until then and come out sorted by (time, alert id), and commands are planned over
/// that order with every action forced to dry run, so the same input and rules give the same
/// alerts and commands byte for byte however the input partitions interleaved.
public struct ReplayPipeline: Sendable {
    /// Stage names written in dead letters' `vigil-dlq-stage` header, as the stages write them.
    public static let stageNames: [String: String] = [
        "ingest": "vigil-ingest", "enrich": "vigil-enrich", "detect": "vigil-detect", "respond": "vigil-respond",
    ]

    let input: ReplayInput
    /// The output topics (a namespace such as `case-42.vigil.`).
    public let topics: Topics
    var ingest: IngestProcessor?
    var enrich: EnrichProcessor?
    var detector: OfflineDetector
    var respond: RespondProcessor
    var alerts: [(time: Int64, id: String, record: OutgoingRecord)] = []
    var derived: Int64 = 0

    /// Counts of what went through.
    public private(set) var counts = Counts()

    /// What a replay produced, stage by stage.
    public struct Counts: Sendable, Equatable {
        /// Input records processed.
        public var inputs = 0
        /// Normalized events (raw input only).
        public var events = 0
        /// Enriched events (raw and events input).
        public var enriched = 0
        /// Alerts, after de-duplication by id.
        public var alerts = 0
        /// Commands planned (all dry run).
        public var commands = 0
        /// Dead letters, by stage name.
        public var deadLetters: [String: Int] = [:]
    }

    /// A pipeline from `input` onward writing to `topics`. `enricher` is required for `raw`
    /// and `events` input; `inventory`, when given, sizes blast-radius groups as in vigil-respond.
    public init(input: ReplayInput, topics: Topics, rules: RuleSet, playbooks: PlaybookSet, enricher: Enricher?,
                inventory: InventoryStore? = nil, metrics: MetricsRegistry = MetricsRegistry()) throws(ConfigError) {
        self.input = input
        self.topics = topics
        if input == .raw { ingest = IngestProcessor(topics: topics, metrics: metrics) }
        if input != .enriched {
            guard let enricher else { throw ConfigError("a replay from \(input.rawValue) needs an inventory to enrich with") }
            enrich = EnrichProcessor(enricher: enricher, topics: topics, metrics: metrics)
        }
        detector = OfflineDetector(rules: rules, topics: topics, metrics: metrics)
        let dryRun: PlaybookSet
        do {
            dryRun = try PlaybookSet(playbooks: playbooks.playbooks.map { playbook in
                var playbook = playbook
                playbook.actions = playbook.actions.map { action in
                    var action = action
                    action.mode = .dryRun
                    return action
                }
                return playbook
            })
        } catch {
            throw ConfigError("playbooks: \(error)")
        }
        respond = RespondProcessor(playbooks: dryRun, topics: topics, metrics: metrics, inventory: inventory)
    }

    /// Runs one input record through the stages. Returns the records to write now (events,
    /// enriched events and dead letters on `topics`); alerts are held for `finish()`.
    public mutating func process(_ record: ConsumedRecord) -> [OutgoingRecord] {
        counts.inputs += 1
        var out: [OutgoingRecord] = []
        var events: [ConsumedRecord] = [record]
        if var ingest {
            events = run(&ingest, stage: "ingest", on: [record], into: &out, derivedTopic: topics.events)
            self.ingest = ingest
            counts.events += events.count
        }
        var enriched = events
        if var enrich {
            enriched = run(&enrich, stage: "enrich", on: events, into: &out, derivedTopic: topics.enriched)
            self.enrich = enrich
            counts.enriched += enriched.count
        }
        for event in enriched {
            let output = detector.process(event)
            for letter in output.deadLetters { out.append(deadLetter(stage: "detect", input: event, letter: letter)) }
            hold(output.records)
        }
        return out
    }

    /// End of input: flushes every window, then plans the commands. Returns the alerts sorted
    /// by (time, alert id), each followed by its commands, and the respond stage's dead letters.
    public mutating func finish() -> (alerts: [OutgoingRecord], commands: [[OutgoingRecord]], deadLetters: [OutgoingRecord]) {
        hold(detector.finish())
        // Stable: equal (time, id) pairs keep processing order; the first of an id is kept.
        let sorted = alerts.enumerated().sorted { lhs, rhs in
            (lhs.element.time, lhs.element.id, lhs.offset) < (rhs.element.time, rhs.element.id, rhs.offset)
        }.map(\.element)
        var unique: [OutgoingRecord] = []
        var seen: Set<String> = []
        for alert in sorted where seen.insert(alert.id).inserted { unique.append(alert.record) }
        alerts = []
        counts.alerts = unique.count
        var commands: [[OutgoingRecord]] = []
        var letters: [OutgoingRecord] = []
        for (index, alert) in unique.enumerated() {
            let consumed = ConsumedRecord(topic: topics.alerts, partition: 0, offset: Int64(index), key: alert.key,
                                          value: alert.value, headers: alert.headers, timestamp: alert.timestamp)
            let output = respond.process(consumed)
            commands.append(output.records)
            counts.commands += output.records.count
            for letter in output.deadLetters { letters.append(deadLetter(stage: "respond", input: consumed, letter: letter)) }
        }
        return (unique, commands, letters)
    }

    private mutating func hold(_ records: [OutgoingRecord]) {
        for record in records where record.topic == topics.alerts {
            let id = record.key.map { String(decoding: $0, as: UTF8.self) } ?? ""
            alerts.append((record.timestamp ?? 0, id, record))
        }
    }

    /// Runs `processor` over `inputs`; its records on `derivedTopic` become the next stage's
    /// inputs (and are also returned to be written), its dead letters go to `out`.
    private mutating func run(_ processor: inout some StageProcessor, stage: String, on inputs: [ConsumedRecord],
                              into out: inout [OutgoingRecord], derivedTopic: String) -> [ConsumedRecord] {
        var next: [ConsumedRecord] = []
        for input in inputs {
            let output = processor.process(input)
            // Only the stage's main output: a replay never writes inventory changes.
            for record in output.records where record.topic == derivedTopic {
                out.append(record)
                // As the next stage would read it from the namespace topic.
                next.append(ConsumedRecord(topic: record.topic, partition: input.partition, offset: derived, key: record.key,
                                           value: record.value, headers: record.headers, timestamp: record.timestamp))
                derived += 1
            }
            for letter in output.deadLetters { out.append(deadLetter(stage: stage, input: input, letter: letter)) }
        }
        return next
    }

    private mutating func deadLetter(stage: String, input: ConsumedRecord, letter: DeadLetter) -> OutgoingRecord {
        let name = Self.stageNames[stage] ?? stage
        counts.deadLetters[name, default: 0] += 1
        return deadLetterRecord(stage: name, topics: topics, input: input, letter: letter)
    }
}
