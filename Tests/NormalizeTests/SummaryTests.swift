import Normalize
import OCSF
import Testing

/// `NormalizeSummary` and `Normalizer.observer`: the per-source accounting behind
/// `vigil normalize --summary` and `scripts/sample-report`.
@Suite("Normalize summary")
struct SummaryTests {
    @Test("The observer sees every result; the summary counts records, events, dead letters by code and skips per source")
    func counts() throws {
        let tally = NormalizeTally()
        var normalizer = Normalizer()
        normalizer.observer = tally.record
        let records: [RawRecord] = [
            // A Records file: one event, one entry without eventName.
            RawRecord(bytes: Array(#"{"Records":[{"eventTime":"2024-05-01T12:00:00Z","eventSource":"iam.amazonaws.com","eventName":"ListUsers"},{"eventTime":"2024-05-01T12:00:00Z"}]}"#.utf8),
                      source: "cloudtrail"),
            // A digest: skipped.
            RawRecord(bytes: try fixture("own/digest.json"), source: "cloudtrail"),
            // Detected syslog; and an unknown header.
            RawRecord(bytes: Array("Mar 14 09:12:01 web-1 sshd[4242]: Failed password for invalid user admin from 203.0.113.7 port 52311 ssh2".utf8),
                      recordTime: 1_710_000_000_000),
            RawRecord(bytes: Array("{}".utf8), source: "nosuch"),
        ]
        var events = 0
        for record in records { events += normalizer.normalize(record).events.count }
        let summary = tally.summary
        #expect(events == 2)
        #expect(summary.sources.keys.sorted() == ["cloudtrail", "syslog", "unknown"])
        let cloudTrail = try #require(summary.sources["cloudtrail"])
        #expect(cloudTrail.records == 2 && cloudTrail.detected == 0 && cloudTrail.events == 1 && cloudTrail.skipped == 1)
        #expect(cloudTrail.deadLetters == ["missing_field": 1])
        #expect(cloudTrail.entries == 3)
        #expect(summary.sources["syslog"]?.detected == 1)
        #expect(summary.sources["unknown"]?.deadLetters == ["unknown_source": 1])
        #expect(summary.total.records == 4 && summary.total.events == 2 && summary.total.deadLettered == 2 && summary.total.skipped == 1)

        #expect(summary.json.value(at: "summary.sources.cloudtrail.dead_letters.missing_field")?.intValue == 1)
        #expect(summary.json.value(at: "summary.total.entries")?.intValue == 5)
        let table = summary.table.split(separator: "\n").map(String.init)
        #expect(table.count == 5)
        #expect(table[0].hasPrefix("source "))
        #expect(table[1].split(separator: " ").map(String.init) == ["cloudtrail", "2", "0", "3", "1", "1", "1", "missing_field", "1"])
        #expect(table[4].hasPrefix("total "))
    }

    @Test("Without an observer nothing is counted and the result is the same")
    func noObserver() {
        let record = RawRecord(bytes: Array("{}".utf8), source: "cloudtrail")
        let plain = Normalizer().normalize(record)
        var observed = Normalizer()
        let tally = NormalizeTally()
        observed.observer = tally.record
        let seen = observed.normalize(record)
        #expect(plain.failures == seen.failures && plain.source == seen.source)
        #expect(tally.summary.total.records == 1)
        #expect(NormalizeTally().summary == NormalizeSummary())
    }
}
