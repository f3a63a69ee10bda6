import Detection
import Foundation
import Inventory
import Kafka
import Normalize
import OCSF
import Pipeline
import Response

/// The stages without Kafka, composable with pipes: JSON lines in, JSON lines out on stdout,
/// dead letters as JSON lines on stderr. The same processors as the Kafka stages run here.
public enum Offline {
    /// One input unit: a whole file, or one line of a JSON-lines file.
    public struct Input: Sendable {
        /// Where it came from (`file:line` or `file`), for dead-letter reports.
        public var origin: String
        /// Its bytes.
        public var bytes: [UInt8]

        /// An input unit.
        public init(origin: String, bytes: [UInt8]) {
            self.origin = origin
            self.bytes = bytes
        }
    }

    /// Reads `paths` (or standard input when empty). A file is one record unless `lines` is
    /// set or its name ends in .jsonl, .ndjson or .log, in which case each non-empty line is one.
    public static func read(_ paths: [String], lines forceLines: Bool) throws -> [Input] {
        var inputs: [Input] = []
        let sources: [(String, Data)] = try paths.isEmpty
            ? [("stdin", FileHandle.standardInput.readDataToEndOfFile())]
            : paths.map { path in
                guard let data = FileManager.default.contents(atPath: path) else { throw ConfigError("cannot read \(path)") }
                return (path, data)
            }
        for (origin, data) in sources {
            let byLine = forceLines || origin == "stdin" || [".jsonl", ".ndjson", ".log"].contains(where: origin.hasSuffix)
            if byLine {
                var number = 0
                for line in data.split(separator: 0x0A, omittingEmptySubsequences: false) {
                    number += 1
                    let trimmed = line.drop(while: { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D })
                    if trimmed.isEmpty { continue }
                    inputs.append(Input(origin: "\(origin):\(number)", bytes: Array(line)))
                }
            } else {
                inputs.append(Input(origin: origin, bytes: Array(data)))
            }
        }
        return inputs
    }

    /// Runs `processor` over the inputs as if they were records of `topic`. Writes outputs whose topic is in `emit` to stdout and dead letters to stderr.
    /// Returns (outputs written, dead letters).
    @discardableResult
    public static func run(stage: String, inputs: [Input], topic: String, processor: inout some StageProcessor,
                           emit: Set<String>, source: String? = nil,
                           stdout: (String) -> Void = { print($0) }, stderr: (String) -> Void = Offline.writeError) -> (Int, Int) {
        var written = 0
        var dead = 0
        // Offline inputs are stamped with the time they are read, as a shipper would stamp them.
        let readTime = wallClockMillis()
        for (index, input) in inputs.enumerated() {
            let headers = source.map { [KafkaHeader(VigilHeader.source, $0)] } ?? []
            let record = ConsumedRecord(topic: topic, partition: 0, offset: Int64(index), value: input.bytes, headers: headers,
                                        timestamp: readTime)
            let output = processor.process(record)
            for out in output.records where emit.contains(out.topic) {
                stdout(String(decoding: out.value, as: UTF8.self))
                written += 1
            }
            for letter in output.deadLetters {
                dead += 1
                var report: [String: JSON] = ["stage": .string(stage), "code": .string(letter.code), "error": .string(letter.reason),
                                              "input": .string(input.origin)]
                if let entry = letter.entryIndex { report["entry"] = .int(Int64(entry)) }
                stderr(JSON.object(report).jsonText)
            }
        }
        return (written, dead)
    }

    /// Writes a line to standard error.
    public static func writeError(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}

/// Offline detection: select and aggregate in one process, every window flushed at end of input.
public struct OfflineDetector: StageProcessor {
    var select: DetectSelectProcessor
    var aggregator: PartitionAggregator
    let topics: Topics
    var nextOffset: Int64 = 0

    /// A detector for `rules`.
    public init(rules: RuleSet, topics: Topics, metrics: MetricsRegistry) {
        select = DetectSelectProcessor(rules: rules, topics: topics, metrics: metrics)
        aggregator = PartitionAggregator(rules: rules)
        self.topics = topics
    }

    public mutating func process(_ record: ConsumedRecord) -> StageOutput {
        var output = select.process(record)
        var alerts: [OutgoingRecord] = []
        for out in output.records {
            if out.topic == topics.detectPartials, let partial = try? Partial(json: JSON.parse(out.value)) {
                alerts += aggregator.add(partial, offset: nextOffset).map { alertRecord($0, topics: topics) }
                nextOffset += 1
            } else {
                alerts.append(out)
            }
        }
        output.records = alerts
        return output
    }

    /// Fires every window still open (end of input).
    public mutating func finish() -> [OutgoingRecord] {
        aggregator.flush().map { alertRecord($0, topics: topics) }
    }
}
