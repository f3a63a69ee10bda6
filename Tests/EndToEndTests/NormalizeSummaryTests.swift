import Foundation
import Kafka
import OCSF
import Pipeline
import Stages
import Testing

/// `vigil normalize --summary`: the per-source counts written to stderr after normalizing, on a
/// small CloudTrail file with a known number of bad lines. Needs only the built `vigil`.
@Suite("vigil normalize --summary", .enabled(if: FileManager.default.isExecutableFile(atPath: Binaries.directory + "/vigil")))
struct NormalizeSummaryTests {
    static let event = #"{"eventVersion":"1.08","eventTime":"2024-05-01T12:00:00Z","eventSource":"iam.amazonaws.com","eventName":"ListUsers","awsRegion":"us-east-1","eventID":"EVENT","userIdentity":{"type":"IAMUser","userName":"alice"}}"#

    /// Six records, one per line: two good events, a line that is not JSON, an event whose time
    /// is not a timestamp, a digest (skipped), and a Records file with one good and one entry
    /// without eventName (dead-lettered alone).
    static let lines: [String] = [
        event.replacingOccurrences(of: "EVENT", with: "e-1"),
        event.replacingOccurrences(of: "EVENT", with: "e-2"),
        #"{"eventName": "ListUsers", "#,
        event.replacingOccurrences(of: "EVENT", with: "e-3").replacingOccurrences(of: "2024-05-01T12:00:00Z", with: "yesterday"),
        #"{"awsAccountId":"123456789012","digestStartTime":"2024-05-01T11:00:00Z","digestEndTime":"2024-05-01T12:00:00Z","digestSignatureAlgorithm":"SHA256withRSA"}"#,
        #"{"Records":[\#(event.replacingOccurrences(of: "EVENT", with: "e-4")),{"eventTime":"2024-05-01T12:00:00Z","eventSource":"iam.amazonaws.com"}]}"#,
    ]

    /// Runs `vigil normalize` with `arguments` over the file; returns its exit status, the stdout
    /// lines, and the stderr lines.
    func normalize(_ arguments: [String]) throws -> (status: Int32, events: [String], errors: [String]) {
        let directory = NSTemporaryDirectory() + "vigil-normalize-summary-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = directory + "/trail.jsonl"
        try Data((Self.lines.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: file))
        let outFile = directory + "/out", errFile = directory + "/err"
        _ = FileManager.default.createFile(atPath: outFile, contents: nil)
        _ = FileManager.default.createFile(atPath: errFile, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Binaries.directory + "/vigil")
        process.arguments = ["normalize"] + arguments + [file]
        process.standardOutput = FileHandle(forWritingAtPath: outFile)
        process.standardError = FileHandle(forWritingAtPath: errFile)
        try process.run()
        while process.isRunning { usleep(20_000) }
        func lines(_ path: String) -> [String] {
            String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self).split(separator: "\n").map(String.init)
        }
        return (process.terminationStatus, lines(outFile), lines(errFile))
    }

    func summary(_ errors: [String]) throws -> JSON {
        let line = try #require(errors.last { $0.hasPrefix(#"{"summary""#) })
        return try #require(try JSON.parse(Array(line.utf8))["summary"])
    }

    func count(_ summary: JSON, _ path: String) -> Int64? { summary.value(at: path)?.intValue }

    @Test("With --source: records, entries, events, dead letters by code and skipped, as a table and a JSON line")
    func declared() throws {
        let run = try normalize(["--summary", "--source", "cloudtrail"])
        #expect(run.status == 2, "dead letters make the exit status 2")
        #expect(run.events.count == 3)
        let summary = try summary(run.errors)
        #expect(summary.value(at: "sources")?.objectValue?.keys.sorted() == ["cloudtrail"])
        #expect(count(summary, "sources.cloudtrail.records") == 6)
        #expect(count(summary, "sources.cloudtrail.detected") == 0)
        #expect(count(summary, "sources.cloudtrail.events") == 3)
        #expect(count(summary, "sources.cloudtrail.dead_lettered") == 3)
        #expect(summary.value(at: "sources.cloudtrail.dead_letters") == ["invalid_json": 1, "invalid_time": 1, "missing_field": 1])
        #expect(count(summary, "sources.cloudtrail.skipped") == 1)
        #expect(count(summary, "sources.cloudtrail.entries") == 7)
        #expect(count(summary, "total.records") == 6)
        // The dead-letter reports come first (one per dead letter), then the table, then the JSON line.
        #expect(run.errors.filter { $0.contains(#""stage":"normalize""#) }.count == 3)
        let header = try #require(run.errors.firstIndex { $0.hasPrefix("source ") })
        #expect(run.errors[header].split(separator: " ", omittingEmptySubsequences: true).prefix(4) == ["source", "records", "detected", "entries"])
        let row = run.errors[header + 1].split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        #expect(Array(row.prefix(7)) == ["cloudtrail", "6", "0", "7", "3", "3", "1"])
        #expect(run.errors[header + 1].hasSuffix("invalid_json 1, invalid_time 1, missing_field 1"))
        #expect(run.errors[header + 2].hasPrefix("total"))
    }

    @Test("Without --source: detected records are counted, and what no parser took is under unknown")
    func detected() throws {
        let run = try normalize(["--summary"])
        let summary = try summary(run.errors)
        #expect(count(summary, "sources.cloudtrail.records") == 5)
        #expect(count(summary, "sources.cloudtrail.detected") == 5)
        #expect(count(summary, "sources.cloudtrail.events") == 3)
        #expect(summary.value(at: "sources.cloudtrail.dead_letters") == ["invalid_time": 1, "missing_field": 1])
        #expect(count(summary, "sources.unknown.records") == 1)
        #expect(summary.value(at: "sources.unknown.dead_letters") == ["invalid_json": 1])
        #expect(count(summary, "total.dead_lettered") == 3)
    }

    @Test("Without --summary nothing but dead letters goes to stderr")
    func quiet() throws {
        let run = try normalize(["--source", "cloudtrail"])
        #expect(run.events.count == 3)
        #expect(run.errors.count == 3)
        #expect(run.errors.allSatisfy { $0.contains(#""stage":"normalize""#) })
    }
}

/// The ingest stage's own part of normalization: format detection counted per source as
/// detected or declared, and the ingest time in `metadata.processed_time` (never `time`).
@Suite("Ingest: detected vs declared, processed_time")
struct IngestAccountingTests {
    @Test("vigil_ingest_records_total counts detected and declared records apart; processed_time is the ingest clock")
    func detectedDeclaredProcessedTime() throws {
        let metrics = MetricsRegistry()
        var ingest = IngestProcessor(topics: Topics(), metrics: metrics, clock: { 1_800_000_000_000 })
        let line = Array(NormalizeSummaryTests.event.replacingOccurrences(of: "EVENT", with: "e-1").utf8)
        let declared = ingest.process(ConsumedRecord(topic: "vigil.raw", partition: 0, offset: 0, value: line,
                                                     headers: [KafkaHeader(VigilHeader.source, "cloudtrail")], timestamp: 1_700_000_000_000))
        _ = ingest.process(ConsumedRecord(topic: "vigil.raw", partition: 0, offset: 1, value: line, timestamp: 1_700_000_000_000))
        _ = ingest.process(ConsumedRecord(topic: "vigil.raw", partition: 0, offset: 2, value: Array("not a log".utf8)))
        #expect(metrics.counter("vigil_ingest_records_total", labels: ["source": "cloudtrail", "detected": "false"]) == 1)
        #expect(metrics.counter("vigil_ingest_records_total", labels: ["source": "cloudtrail", "detected": "true"]) == 1)
        #expect(metrics.counter("vigil_ingest_records_total", labels: ["source": "unknown", "detected": "true"]) == 1)
        let event = try JSON.parse(try #require(declared.records.first).value)
        #expect(event.value(at: "metadata.processed_time")?.intValue == 1_800_000_000_000)
        #expect(event.value(at: "time")?.intValue == 1_714_564_800_000)  // the event's own time, 2024-05-01T12:00:00Z
    }
}
