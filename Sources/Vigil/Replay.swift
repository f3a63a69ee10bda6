import ArgumentParser
import Detection
import Foundation
import OCSF
import Pipeline
import Response
import Stages

/// `vigil replay`: re-run a time range of a topic through the stages, for an investigation or
/// to see what a rule change would have caught.
struct ReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Re-run a time range of vigil.raw, vigil.events or vigil.enriched through the stages, in event time, with every response a dry run.",
        discussion: """
            Reads every partition of the input topic without a consumer group (nothing is committed; production's stages are not disturbed), from offsetsForTimes(--from) to the end each partition had when the replay started, and skips records whose time is outside [--from, --to] (the Kafka timestamp: event time on events and enriched, shipping time on raw). The stages from that topic onward run in this process: raw -> normalize -> enrich -> detect (select and aggregate, windows closed by event time only, every window flushed at the end) -> respond (every action forced to dry run; nothing reaches the executor).

            Outputs go to namespaced topics (--namespace case-42 writes case-42.vigil.events, case-42.vigil.enriched, case-42.vigil.alerts, case-42.vigil.commands, case-42.vigil.dlq), or with --out to a JSON-lines file of alerts, each followed by its commands, one object per line tagged by kind ({"kind":"alert","alert":{...}}, {"kind":"command","command":{...}}). Alerts are sorted by (time, id): the same input and rules give a byte-identical file run after run. With neither, only the summary (and the diff) is printed.

            --diff compares the replayed alerts with those production emitted over the same range (vigil.alerts, or --diff-topic), by alert time and id: new (only in the replay), missing (only in production), changed (same finding, different rule version, severity, count or aggregate). Alerts near --from whose windows began earlier may differ: start the replay a window length earlier to compare them.

            Times: RFC 3339 (2026-11-20T10:00:00Z), epoch milliseconds, now, or now-15m / now-2h / now-7d. Progress goes to stderr; the last stdout line is a JSON summary:
            {"topic":..., "read":N, "in_range":N, "events":N, "enriched":N, "alerts":N, "commands":N, "dead_letters":N, "records_per_second":N, "diff":{"new":N, "missing":N, "changed":N, "same":N,...}}

            Examples:
              vigil replay --from 2026-11-20T09:00:00Z \\
                --to 2026-11-20T10:00:00Z --namespace case-42
              vigil replay --from now-24h --to now --topic vigil.raw \\
                --inventory /var/lib/vigil/inventory.sqlite --out case-42.jsonl
              vigil replay --from now-7d --to now --rules rules-next --diff
              vigil replay --from now-1h --to now --diff \\
                --diff-topic case-41.vigil.alerts
            """)
    @OptionGroup var kafka: KafkaOptions
    @Option(help: "Start of the range (inclusive).") var from: String
    @Option(help: "End of the range (inclusive).") var to: String
    @Option(help: "Input topic: vigil.raw, vigil.events or vigil.enriched (or raw, events, enriched under --topic-prefix).")
    var topic: String = "enriched"
    @Option(help: "Directory of YAML rules. Default: the bundled rules/.") var rules: String?
    @Option(help: "Directory of YAML playbooks. Default: the bundled playbooks/.") var playbooks: String?
    @Option(help: "Inventory SQLite file for enrich (raw and events input). Default: an empty inventory.") var inventory: String?
    @Option(help: "Write outputs to <NAME>.<prefix>* topics.") var namespace: String?
    @Option(help: "Write alerts and commands to this JSON-lines file.") var out: String?
    @Flag(help: "Compare the replayed alerts with production's over the same range.") var diff = false
    @Option(help: "Topic of the alerts to compare with. Default: <prefix>alerts.") var diffTopic: String?
    @Option(help: "Most lines listed per kind (new, missing, changed) in the diff report.") var diffLimit: Int = 50
    @Flag(help: "No progress lines on stderr.") var quiet = false

    func validate() throws {
        if namespace != nil && out != nil { throw ValidationError("--namespace and --out exclude each other") }
        if let namespace, !ReplayConfiguration.isValidNamespace(namespace) {
            throw ValidationError("--namespace may hold only letters, digits, '.', '_' and '-'")
        }
        guard ReplayInput(topic: topic) != nil else {
            throw ValidationError("--topic must be raw, events or enriched (e.g. vigil.raw), not '\(topic)'")
        }
        let now = wallClockMillis()
        guard let start = ReplayRange.parseTime(from, now: now) else { throw ValidationError("--from: not a time: '\(from)'") }
        guard let end = ReplayRange.parseTime(to, now: now) else { throw ValidationError("--to: not a time: '\(to)'") }
        guard start <= end else { throw ValidationError("--from is after --to") }
        if diffTopic != nil && !diff { throw ValidationError("--diff-topic needs --diff") }
        guard diffLimit >= 0 else { throw ValidationError("--diff-limit must not be negative") }
    }

    func run() async throws {
        let topics = kafka.topics
        let kind = ReplayInput(topic: topic)!
        let inputTopic = ReplayInput(rawValue: topic) != nil ? topics.prefix + topic : topic
        let now = wallClockMillis()
        let range = try ReplayRange(from: ReplayRange.parseTime(from, now: now)!, to: ReplayRange.parseTime(to, now: now)!)
        let ruleSet = try RuleSet.load(directory: rules ?? bundledDirectory("rules"))
        let playbookSet = try PlaybookSet.load(directory: playbooks ?? bundledDirectory("playbooks"))
        let destination: ReplayDestination = namespace.map { .namespace($0) } ?? out.map { .file($0) } ?? .discard
        let configuration = ReplayConfiguration(
            kafka: kafka.kafkaConfig(clientID: "vigil-replay"), topics: topics, inputTopic: inputTopic, input: kind, range: range,
            rules: ruleSet, playbooks: playbookSet, inventoryPath: inventory, destination: destination,
            diffTopic: diff ? (diffTopic ?? topics.alerts) : nil)
        let quiet = self.quiet
        Offline.writeError("vigil replay: \(inputTopic) over \(range), \(ruleSet.rules.count) rules, \(playbookSet.playbooks.count) playbooks (dry run)")
        let result = try await ReplayRunner.run(configuration, logger: cliLogger("vigil-replay")) { line in
            if !quiet { Offline.writeError(line) }
        }
        for (stage, count) in result.counts.deadLetters.sorted(by: { $0.key < $1.key }) {
            Offline.writeError("vigil replay: \(count) dead letter(s) from \(stage)"
                               + (result.outputTopics.map { " on \($0.deadLetters)" } ?? ""))
        }
        if let topics = result.outputTopics {
            Offline.writeError("vigil replay: outputs on \(topics.prefix)* (alerts on \(topics.alerts))")
        }
        if let diff = result.diff, let diffTopic = configuration.diffTopic {
            for line in diff.report(topic: diffTopic, range: range, limit: diffLimit) { emit(line) }
        }
        emit(result.summary(configuration: configuration).jsonText)
    }
}
