import Detection
import OCSF
import Testing

@Suite("Suppression")
struct SuppressTests {
    @Test func oneAlertPerKeyPerPeriodInEventTime() throws {
        let rules = try rulesFrom(windowRule("type: tumbling\n  size: 1m", threshold: ">= 1", rule: "suppress: 3m"))
        // One event in each of five minutes: windows end at 1, 2, 3, 4 and 5 minutes.
        let run = DetectRun(rules: rules, events: flows([10, 70, 130, 190, 250]))
        // The 1-minute alert wins; 2 and 3 fall in its period; 4 opens a new one, which takes 5.
        #expect(run.alerts.map { $0.value(at: "vigil.window.end") } == [.int(t0 + 60_000), .int(t0 + 240_000)])
        #expect(run.aggregator.suppressedAlerts == 3)
        #expect(run.aggregator.suppressedAlertsByRule == ["t.window": 3])
        // Another key has its own period.
        let two = DetectRun(rules: rules, events: flows([10, 70]) + flows([50], source: "192.0.2.1", prefix: "o"))
        #expect(two.alerts.count == 2, "\(two.alerts.map { $0.value(at: "vigil.group_key") })")
    }

    @Test func firstAlertInEventTimeWinsWhateverTheArrivalOrder() throws {
        let rules = try rulesFrom(windowRule("type: sliding\n  size: 1m", threshold: ">= 2", rule: "suppress: 10m"))
        let events = flows([0, 5, 10, 15, 20, 25])
        let reference = DetectRun(rules: rules, events: events).alerts
        try #require(reference.count == 1)
        #expect(reference[0].value(at: "vigil.window.start") == .int(t0))
        var generator = SeededGenerator(seed: 3)
        for _ in 0..<10 {
            let run = DetectRun(rules: rules, events: events.shuffled(using: &generator))
            #expect(run.alerts.map(\.jsonText) == reference.map(\.jsonText))
            #expect(run.aggregator.suppressedAlerts == 2)
        }
    }

    @Test func retainedOffsetHoldsTheSuppressingAlertUntilThePeriodEnds() throws {
        let rules = try rulesFrom(windowRule("type: tumbling\n  size: 1m", threshold: ">= 1", rule: "suppress: 5m"))
        let selector = RuleSelector(rules: rules)
        var aggregator = WindowAggregator(rules: rules)
        var alerts: [JSON] = []
        for (offset, event) in flows([10, 20, 100]).enumerated() {
            guard case .partial(let partial) = selector.select(event).first else { continue }
            alerts += aggregator.add(partial, offset: Int64(offset))
        }
        // Watermark 70 s: the first window fired; its partials (offsets 0, 1) stay retained.
        #expect(alerts.count == 1)
        #expect(aggregator.oldestRetainedOffset() == 0)
        #expect(aggregator.advanceWatermark(to: t0 + 120_000).isEmpty)
        #expect(aggregator.suppressedAlerts == 1)
        #expect(aggregator.oldestRetainedOffset() == 0)
        // No window is open, but the period still holds state an idle partition must release.
        #expect(aggregator.openKeys == 0)
        #expect(aggregator.holdsState)
        // The period ends at 60 s + 5 m.
        #expect(aggregator.advanceWatermark(to: t0 + 360_000).isEmpty)
        #expect(aggregator.oldestRetainedOffset() == nil)
        #expect(!aggregator.holdsState)
    }
}
