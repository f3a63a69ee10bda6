import ArgumentParser
import Foundation
import OCSF
import Pipeline
import Stages

/// `vigil dlq`: the dead-letter topic.
struct DLQCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dlq",
        abstract: "Work with the dead-letter topic (<prefix>dlq).",
        discussion: """
            Examples:
              vigil dlq replay --stage ingest --since now-24h --dry-run
              vigil dlq replay --stage ingest --since 2026-11-20T00:00:00Z
            """,
        subcommands: [DLQReplay.self])
}

/// `vigil dlq replay`: re-send dead letters to the topic they came from.
struct DLQReplay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Send dead letters back to their stage's input topic, with their original bytes, key and headers.",
        discussion: """
            Reads <prefix>dlq from the beginning (or from --since, by the letters' timestamps, which are the original inputs' timestamps), selects the letters of --stage by their vigil-dlq-stage header, and produces each again with its original bytes, key, timestamp and headers minus the vigil-dlq-* ones, to the topic its vigil-dlq-topic header names (else the stage's input topic: ingest <prefix>raw, enrich <prefix>events, detect <prefix>enriched, respond <prefix>alerts). Letters whose topic does not exist are skipped and counted.

            Not idempotent: nothing is removed from the DLQ or remembered, so every run re-sends every letter it selects; bound it with --since. Re-sent inputs get the same deterministic event, alert and command ids as any redelivery, so downstream sees recognizable duplicates at worst; a letter that fails again goes back to the DLQ as a new letter. Run with --dry-run first: it lists each letter (stage, error code, origin, size; never the payload) and what it would send where.

            The last stdout line is a JSON summary: {"read":N, "selected":N, "sent":N, "skipped":N, "dry_run":B, "stages":{"vigil-ingest":{"selected":N, "sent":N, "skipped":N}}, "topics":{"vigil.raw":N}}

            Examples:
              vigil dlq replay --dry-run
              vigil dlq replay --stage ingest --since now-6h
              vigil dlq replay --stage enrich --since 2026-11-20T09:00:00Z
            """)
    @OptionGroup var kafka: KafkaOptions
    @Option(help: "Only letters of this stage: ingest, enrich, detect or respond.") var stage: String?
    @Option(help: "Only letters timestamped at or after this time (RFC 3339, epoch ms, now-6h).") var since: String?
    @Flag(help: "List what would be sent; send nothing.") var dryRun = false

    func validate() throws {
        if let stage, !DeadLetterReplay.stages.contains(stage) {
            throw ValidationError("--stage must be one of \(DeadLetterReplay.stages.joined(separator: ", "))")
        }
        if let since, ReplayRange.parseTime(since, now: wallClockMillis()) == nil {
            throw ValidationError("--since: not a time: '\(since)'")
        }
    }

    func run() async throws {
        let start = since.flatMap { ReplayRange.parseTime($0, now: wallClockMillis()) }
        let outcome = try await DeadLetterReplay.run(topics: kafka.topics, config: kafka.kafkaConfig(clientID: "vigil-dlq"), stage: stage,
                                                     since: start, dryRun: dryRun, logger: cliLogger("vigil-dlq")) { line in
            emit(line)
        }
        emit(outcome.summary.jsonText)
    }
}
