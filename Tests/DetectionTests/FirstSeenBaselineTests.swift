import Detection
import OCSF
import Testing

/// New destination ports per source address: look-back 1h, at least 10 minutes and 5 events of history.
let firstSeenYAML = """
    id: t.first_seen
    version: 1
    title: T
    severity: low
    match: {field: class_uid, equals: 4001}
    first_seen:
      group_by: [src_endpoint.ip]
      field: dst_endpoint.port
      lookback: 1h
      min_history: 10m
      min_events: 5
    """

/// Flows at `t0 + seconds` to `port`.
func portFlows(_ items: [(seconds: Double, port: Int64)], source: String = "198.51.100.23", prefix: String = "p") -> [JSON] {
    items.enumerated().map { flow(source, port: $1.port, atSeconds: $1.seconds, uid: "\(prefix)\($0)") }
}

@Suite("First seen")
struct FirstSeenTests {
    let rules: RuleSet

    init() throws {
        rules = try rulesFrom(firstSeenYAML)
    }

    /// Five flows to port 443 over ten minutes: a mature history.
    let history: [(seconds: Double, port: Int64)] = [(0, 443), (150, 443), (300, 443), (450, 443), (600, 443)]

    @Test func aNewValueAfterEnoughHistoryFires() throws {
        let alerts = DetectRun(rules: rules, events: portFlows(history + [(601, 22)])).alerts
        try #require(alerts.count == 1)
        #expect(alerts[0].value(at: "metadata.uid") == .string(StableID.hash(["t.first_seen", "1", "198.51.100.23", "p5"])))
        #expect(alerts[0].value(at: "vigil.window.start") == .int(t0 + 601_000))
        #expect(alerts[0].value(at: "vigil.window.end") == .int(t0 + 601_000))
        #expect(alerts[0].value(at: "vigil.first_seen") == ["field": "dst_endpoint.port", "value": "22", "known_values": 1, "key_events": 5])
        // The value is known from then on.
        #expect(DetectRun(rules: rules, events: portFlows(history + [(601, 22), (700, 22)])).alerts.count == 1)
    }

    @Test func notBeforeTheMinimumHistory() {
        // Ten minutes less a millisecond after the first event.
        #expect(DetectRun(rules: rules, events: portFlows(history.dropLast() + [(599.999, 22)])).alerts.isEmpty)
        // Exactly ten minutes, but only four events before it.
        #expect(DetectRun(rules: rules, events: portFlows([(0, 443), (200, 443), (400, 443), (500, 443), (600, 22)])).alerts.isEmpty)
        // Exactly ten minutes with five events before it.
        #expect(DetectRun(rules: rules, events: portFlows([(0, 443), (100, 443), (200, 443), (400, 443), (500, 443), (600, 22)])).alerts.count == 1)
        // Values seen while the history was young are known.
        #expect(DetectRun(rules: rules, events: portFlows([(0, 22)] + history.map { ($0.seconds + 1, $0.port) } + [(700, 22)])).alerts.isEmpty)
    }

    @Test func aValueUnusedForTheLookBackIsNewAgain() {
        let base = [(0.0, Int64(22))] + (1...8).map { (Double($0) * 450, Int64(443)) }
        #expect(DetectRun(rules: rules, events: portFlows(base + [(3599.999, 22)])).alerts.isEmpty)
        #expect(DetectRun(rules: rules, events: portFlows(base + [(3600, 22)])).alerts.count == 1)
    }

    @Test func outOfOrderWithinLatenessGivesTheSameAlerts() {
        let events = portFlows(history + [(601, 22), (605, 8080), (610, 22), (615, 3389)])
        let reference = DetectRun(rules: rules, events: events).alerts.map(\.jsonText)
        #expect(reference.count == 3)
        var generator = SeededGenerator(seed: 5)
        for _ in 0..<10 {
            let shuffled = shuffledWithinBlocks(events, block: 25_000, using: &generator)
            #expect(DetectRun(rules: rules, events: shuffled).alerts.map(\.jsonText) == reference)
        }
    }

    @Test func valuesExpireAfterTheLookBackAndReleaseTheirOffsets() throws {
        let selector = RuleSelector(rules: rules)
        var aggregator = WindowAggregator(rules: rules)
        for (offset, event) in portFlows([(0, 22), (10, 443)]).enumerated() {
            guard case .partial(let partial) = selector.select(event).first else { continue }
            _ = aggregator.add(partial, offset: Int64(offset))
        }
        #expect(aggregator.oldestRetainedOffset() == 0)
        _ = aggregator.advanceWatermark(to: t0 + 3_600_000)
        #expect(aggregator.oldestRetainedOffset() == 1)
        _ = aggregator.advanceWatermark(to: t0 + 3_610_000)
        #expect(aggregator.oldestRetainedOffset() == nil)
        #expect(aggregator.openKeys == 0)
    }
}

/// Flows per source counted per minute against the last 5 minutes.
func baselineYAML(method: String = "zscore", extra: String = "") -> String {
    """
    id: t.baseline
    version: 1
    title: T
    severity: low
    match: {field: class_uid, equals: 4001}
    baseline:
      group_by: [src_endpoint.ip]
      interval: 1m
      aggregate: count
      method: \(method)
      history: 5
      min_history: 3
      threshold: 3
      \(extra)
    """
}

/// `counts[i]` flows in minute `i` from `t0`.
func perMinute(_ counts: [Int], source: String = "198.51.100.23") -> [JSON] {
    var events: [JSON] = []
    for (minute, count) in counts.enumerated() {
        for index in 0..<count {
            events.append(flow(source, bytes: 100, atSeconds: Double(minute * 60 + index), uid: "m\(minute)-\(index)"))
        }
    }
    return events
}

@Suite("Baseline")
struct BaselineTests {
    @Test func aSpikeAboveTheHistoryFires() throws {
        let rules = try rulesFrom(baselineYAML())
        // History 4, 6, 4, 6: mean 5, stddev 1; 8 is a score of 3.
        let alerts = DetectRun(rules: rules, events: perMinute([4, 6, 4, 6, 8])).alerts
        try #require(alerts.count == 1)
        #expect(alerts[0].value(at: "vigil.window.start") == .int(t0 + 240_000))
        #expect(alerts[0].value(at: "vigil.window.end") == .int(t0 + 300_000))
        #expect(alerts[0].value(at: "metadata.uid")
            == .string(StableID.hash(["t.baseline", "1", "198.51.100.23", String(t0 + 240_000), String(t0 + 300_000)])))
        #expect(alerts[0].value(at: "vigil.count") == 8)
        #expect(alerts[0].value(at: "vigil.baseline") == ["method": "zscore", "mean": 5, "stddev": 1, "score": 3, "intervals": 4])
        #expect(alerts[0].value(at: "vigil.aggregate.value") == 8)
        #expect(DetectRun(rules: rules, events: perMinute([4, 6, 4, 6, 7])).alerts.isEmpty)
    }

    @Test func needsTheMinimumHistoryAndValue() throws {
        let rules = try rulesFrom(baselineYAML())
        #expect(DetectRun(rules: rules, events: perMinute([5, 5, 20])).alerts.isEmpty)
        #expect(DetectRun(rules: rules, events: perMinute([5, 5, 5, 20])).alerts.count == 1)
        let floored = try rulesFrom(baselineYAML(extra: "min_value: 21"))
        #expect(DetectRun(rules: floored, events: perMinute([5, 5, 5, 20])).alerts.isEmpty)
    }

    @Test func emptyIntervalsCountAsZero() throws {
        let rules = try rulesFrom(baselineYAML())
        // Minutes 0-3 hold 2, 0, 2, 0 (mean 1, stddev 1); minute 4 holds 4: score 3.
        #expect(DetectRun(rules: rules, events: perMinute([2, 0, 2, 0, 4])).alerts.count == 1)
        #expect(DetectRun(rules: rules, events: perMinute([2, 2, 2, 2, 4])).alerts.isEmpty)
    }

    @Test func ewmaWeighsRecentIntervals() throws {
        let rules = try rulesFrom(baselineYAML(method: "ewma"))
        let alerts = DetectRun(rules: rules, events: perMinute([5, 5, 5, 5, 9])).alerts
        try #require(alerts.count == 1)
        #expect(alerts[0].value(at: "vigil.baseline.method") == "ewma")
        #expect(alerts[0].value(at: "vigil.baseline.mean") == 5)
        #expect(DetectRun(rules: rules, events: perMinute([5, 5, 5, 5, 7])).alerts.isEmpty)
    }

    @Test func anIdleKeyStartsOverAndReleasesItsState() throws {
        let rules = try rulesFrom(baselineYAML())
        var run = DetectRun(rules: rules, events: perMinute([5, 5, 5]), flush: false)
        _ = run.aggregator.advanceWatermark(to: t0 + 180_000)
        #expect(run.aggregator.openKeys == 1)
        #expect(run.aggregator.oldestRetainedOffset() == nil)
        // Five empty minutes after the last closed one (at 3 m): the key is forgotten.
        _ = run.aggregator.advanceWatermark(to: t0 + 480_000)
        #expect(run.aggregator.openKeys == 0)
    }

    @Test func outOfOrderWithinLatenessGivesTheSameAlerts() throws {
        let rules = try rulesFrom(baselineYAML(method: "ewma"))
        let events = perMinute([4, 6, 4, 6, 9, 3, 5, 12])
        let reference = DetectRun(rules: rules, events: events).alerts.map(\.jsonText)
        #expect(!reference.isEmpty)
        var generator = SeededGenerator(seed: 8)
        for instances in 1...3 {
            let shuffled = shuffledWithinBlocks(events, block: 25_000, using: &generator)
            let run = PartitionedRun(rules: rules, events: shuffled, instances: instances)
            #expect(run.lateRecords == 0)
            #expect(run.alerts == reference.sorted())
        }
    }

    static let invalid: [(yaml: String, line: Int, reason: String)] = [
        (baselineYAML(extra: "aggregate: {distinct: a}").replacingOccurrences("aggregate: count\n  ", ""), 13, "'count' or {sum: FIELD}"),
        (baselineYAML().replacingOccurrences("min_history: 3", "min_history: 6"), 12, "min_history must be a whole number from 1 to 5"),
        (baselineYAML().replacingOccurrences("threshold: 3", "threshold: -1"), 13, "threshold must be a positive number"),
        (baselineYAML().replacingOccurrences("method: zscore", "method: median"), 10, "method must be one of"),
        (baselineYAML().replacingOccurrences("threshold: 3\n", ""), 7, "missing 'threshold'"),
        (firstSeenYAML.replacingOccurrences("min_history: 10m", "min_history: 2h"), 10, "shorter than lookback"),
        (firstSeenYAML.replacingOccurrences("field: dst_endpoint.port", "field: src_endpoint.ip"), 8, "not be one of the group_by"),
        (firstSeenYAML.replacingOccurrences("min_events: 5", "min_events: -1"), 11, "min_events"),
        (firstSeenYAML + "\nsuppress: 1h\nwindow: {group_by: a, type: tumbling, size: 1m, threshold: \">= 1\"}", 7, "at most one of"),
    ]

    @Test(arguments: invalid.indices)
    func invalidSpecsNameTheLine(_ index: Int) {
        let sample = Self.invalid[index]
        do {
            _ = try RuleSet.parse(yaml: sample.yaml, file: "b.yaml")
            Issue.record("parsed case \(index)")
        } catch {
            #expect(error.line == sample.line, "\(index): \(error)")
            #expect(error.reason.contains(sample.reason), "\(index): \(error)")
        }
    }
}

extension String {
    /// `self` with every `target` replaced (Foundation-free).
    func replacingOccurrences(_ target: String, _ replacement: String) -> String {
        replacing(target, with: replacement)
    }
}
