import OCSF
import Synchronization

/// Per-source accounting of what normalization made of a set of raw records (`vigil normalize
/// --summary`, `scripts/sample-report`): records in, and what their entries became: events,
/// dead letters by failure code, or deliberately skipped entries (CloudTrail digests, SNS
/// subscription confirmations, empty osquery results).
public struct NormalizeSummary: Sendable, Equatable {
    /// The counts of one source (the parser that took the records, or `unknown`).
    public struct Counts: Sendable, Equatable {
        /// Raw records normalized.
        public var records = 0
        /// Of those, records whose source was detected (no `vigil-source` header).
        public var detected = 0
        /// OCSF events produced.
        public var events = 0
        /// Failures (each one dead letter: an entry, or a whole record) by `NormalizeFailure.code`.
        public var deadLetters: [String: Int] = [:]
        /// Entries deliberately skipped.
        public var skipped = 0

        /// Counts that are all zero.
        public init() {}

        /// Dead letters of every code.
        public var deadLettered: Int { deadLetters.values.reduce(0, +) }
        /// What the records held: every entry became an event, a dead letter or a skip.
        public var entries: Int { events + deadLettered + skipped }

        mutating func add(_ other: Counts) {
            records += other.records
            detected += other.detected
            events += other.events
            skipped += other.skipped
            deadLetters.merge(other.deadLetters, uniquingKeysWith: +)
        }

        /// `{records, detected, entries, events, dead_lettered, dead_letters: {code: n}, skipped}`.
        public var json: JSON {
            .object(["records": .int(Int64(records)), "detected": .int(Int64(detected)), "entries": .int(Int64(entries)),
                     "events": .int(Int64(events)), "dead_lettered": .int(Int64(deadLettered)),
                     "dead_letters": .object(deadLetters.mapValues { .int(Int64($0)) }), "skipped": .int(Int64(skipped))])
        }

        /// `invalid_time 2, missing_field 1` (codes in name order), or `-` when there are none.
        public var deadLettersText: String {
            let parts = deadLetters.filter { $0.value > 0 }.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
            return parts.isEmpty ? "-" : parts.joined(separator: ", ")
        }
    }

    /// Counts by source name.
    public private(set) var sources: [String: Counts] = [:]

    /// An empty summary.
    public init() {}

    /// Counts one record's result under its source.
    public mutating func add(_ result: NormalizeResult) {
        var counts = sources[result.source] ?? Counts()
        counts.records += 1
        if result.detected { counts.detected += 1 }
        counts.events += result.events.count
        counts.skipped += result.skipped
        for failure in result.failures { counts.deadLetters[failure.code, default: 0] += 1 }
        sources[result.source] = counts
    }

    /// Every source added up.
    public var total: Counts {
        var total = Counts()
        for counts in sources.values { total.add(counts) }
        return total
    }

    /// `{"summary": {"sources": {<source>: counts}, "total": counts}}` (see `Counts.json`): one
    /// line for a machine, told apart from dead-letter reports by its `summary` key.
    public var json: JSON {
        .object(["summary": .object(["sources": .object(sources.mapValues(\.json)), "total": total.json])])
    }

    /// A table for people: one row per source (by name), then the total.
    public var table: String {
        let header = ["source", "records", "detected", "entries", "events", "dead-lettered", "skipped", "dead letters by code"]
        func row(_ name: String, _ counts: Counts) -> [String] {
            [name, String(counts.records), String(counts.detected), String(counts.entries), String(counts.events),
             String(counts.deadLettered), String(counts.skipped), counts.deadLettersText]
        }
        let rows = [header] + sources.sorted { $0.key < $1.key }.map { row($0.key, $0.value) } + [row("total", total)]
        let widths = header.indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { cells in
            cells.enumerated().map { column, cell in
                let pad = String(repeating: " ", count: widths[column] - cell.count)
                // Names and the code list left-aligned, counts right-aligned.
                return column == 0 || column == header.count - 1 ? cell + pad : pad + cell
            }.joined(separator: "  ").trimmingSuffixSpaces()
        }.joined(separator: "\n")
    }
}

/// A `NormalizeSummary` that `Normalizer.observer` can add to from any thread.
public final class NormalizeTally: Sendable {
    private let state = Mutex(NormalizeSummary())

    /// An empty tally.
    public init() {}

    /// Adds one result (pass as `Normalizer.observer`).
    public func record(_ result: NormalizeResult) {
        state.withLock { $0.add(result) }
    }

    /// What has been added so far.
    public var summary: NormalizeSummary {
        state.withLock { $0 }
    }
}

extension String {
    fileprivate func trimmingSuffixSpaces() -> String {
        var text = self
        while text.last == " " { text.removeLast() }
        return text
    }
}
