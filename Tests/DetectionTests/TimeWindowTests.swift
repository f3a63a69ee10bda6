import Detection
import OCSF
import Testing

/// A rule over Network Activity grouped by source address with the given `window:` members
/// (type, lengths), aggregate and threshold; `rule` adds rule-level keys such as `suppress`.
func windowRule(_ window: String, aggregate: String = "count", threshold: String, id: String = "t.window",
                rule: String = "") -> String {
    """
    id: \(id)
    version: 1
    title: T
    severity: low
    match: {field: class_uid, equals: 4001}
    \(rule)
    window:
      group_by: [src_endpoint.ip]
      \(window)
      aggregate: \(aggregate)
      threshold: "\(threshold)"
    """
}

/// Flows from `source` at `t0 + seconds`.
func flows(_ seconds: [Double], source: String = "198.51.100.23", prefix: String = "f") -> [JSON] {
    seconds.enumerated().map { flow(source, atSeconds: $1, uid: "\(prefix)\($0)") }
}

@Suite("Tumbling windows")
struct TumblingWindowTests {
    let tumbling = "type: tumbling\n  size: 1m"

    @Test func startIsInclusiveAndEndExclusive() throws {
        let rules = try rulesFrom(windowRule(tumbling, threshold: ">= 3"))
        let alerts = DetectRun(rules: rules, events: flows([0, 30, 59.999])).alerts
        try #require(alerts.count == 1)
        let id = StableID.hash(["t.window", "1", "198.51.100.23", String(t0), String(t0 + 60_000)])
        #expect(alerts[0].value(at: "metadata.uid") == .string(id))
        #expect(alerts[0].value(at: "vigil.window.start") == .int(t0))
        #expect(alerts[0].value(at: "vigil.window.end") == .int(t0 + 60_000))
        #expect(alerts[0]["time"] == .int(t0 + 60_000))
        #expect(alerts[0].value(at: "vigil.count") == 3)
        // An event at the end belongs to the next window.
        #expect(DetectRun(rules: rules, events: flows([0, 30, 60])).alerts.isEmpty)
        // Windows are aligned to the epoch, not to the first event.
        #expect(DetectRun(rules: rules, events: flows([-1, 0, 30])).alerts.isEmpty)
    }

    @Test func firesWhenTheWatermarkReachesEndPlusGrace() throws {
        let rules = try rulesFrom(windowRule(tumbling + "\n  grace: 5s", threshold: ">= 3"))
        var events = flows([0, 10, 20])
        // Lateness 30 s: an event at 94.999 s puts the watermark at 64.999 s < 65 s.
        events.append(flow("192.0.2.1", atSeconds: 94.999, uid: "other-0"))
        #expect(DetectRun(rules: rules, events: events, flush: false).alerts.isEmpty)
        events.append(flow("192.0.2.1", atSeconds: 95, uid: "other-1"))
        let run = DetectRun(rules: rules, events: events, flush: false)
        #expect(run.alerts.count == 1)
        #expect(run.aggregator.watermark == t0 + 65_000)
        #expect(run.aggregator.openKeys == 1)
    }

    @Test func lateBeyondGraceIsCountedNotApplied() throws {
        let rules = try rulesFrom(windowRule(tumbling, threshold: ">= 3"))
        // The third event comes after the watermark (100 s - 30 s) passed the window's end.
        let events = flows([0, 10]) + [flow("192.0.2.1", atSeconds: 100, uid: "x"), flow(atSeconds: 20, uid: "late")]
        let run = DetectRun(rules: rules, events: events)
        #expect(run.alerts.isEmpty)
        #expect(run.aggregator.lateRecords == 1)
        // Within lateness it counts.
        let inTime = flows([0, 10]) + [flow("192.0.2.1", atSeconds: 45, uid: "x"), flow(atSeconds: 20, uid: "ok")]
        #expect(DetectRun(rules: rules, events: inTime).alerts.count == 1)
    }

    @Test func lessThanAndBetweenThresholds() throws {
        // Window 0: 2 events, window 1: 3, window 2: 5.
        let events = flows([0, 10, 60, 70, 80, 120, 121, 122, 123, 124])
        func windows(_ threshold: String) throws -> [JSON?] {
            try DetectRun(rules: rulesFrom(windowRule(tumbling, threshold: threshold)), events: events).alerts
                .map { $0.value(at: "vigil.window.start") }
        }
        #expect(try windows("< 3") == [.int(t0)])
        #expect(try windows("<= 3") == [.int(t0), .int(t0 + 60_000)])
        #expect(try windows("== 3") == [.int(t0 + 60_000)])
        #expect(try windows("between 3 and 5") == [.int(t0 + 60_000), .int(t0 + 120_000)])
        #expect(try windows("> 3") == [.int(t0 + 120_000)])
        let between = try DetectRun(rules: rulesFrom(windowRule(tumbling, threshold: "between 2 and 2")), events: events).alerts
        #expect(between.first?.value(at: "vigil.aggregate.threshold") == "between 2 and 2")
    }

    @Test func slidingCatchesABurstThatStraddlesATumblingBoundary() throws {
        let yaml = windowRule("type: sliding\n  size: 1m", threshold: ">= 4", id: "t.sliding") + "\n---\n"
            + windowRule(tumbling, threshold: ">= 4", id: "t.tumbling")
        let rules = try RuleSet(rules: RuleSet.parse(yaml: yaml, file: "t.yaml"))
        // Four events in 40 s, two each side of the minute.
        let alerts = DetectRun(rules: rules, events: flows([40, 50, 70, 80])).alerts
        #expect(alerts.map { $0.value(at: "vigil.rule.id") } == ["t.sliding"])
    }
}

@Suite("Hopping and session windows")
struct HoppingSessionWindowTests {
    @Test func hoppingWindowsOverlap() throws {
        let rules = try rulesFrom(windowRule("type: hopping\n  size: 1m\n  advance: 30s", threshold: ">= 3"))
        // [0, 60) holds 2, [30, 90) holds 3, [60, 120) holds 1.
        let alerts = DetectRun(rules: rules, events: flows([40, 50, 70])).alerts
        try #require(alerts.count == 1)
        #expect(alerts[0].value(at: "vigil.window.start") == .int(t0 + 30_000))
        #expect(alerts[0].value(at: "vigil.window.end") == .int(t0 + 90_000))
        // Every window an event is in fires when each qualifies, in order of end.
        let all = DetectRun(rules: try rulesFrom(windowRule("type: hopping\n  size: 1m\n  advance: 30s", threshold: ">= 1")),
                            events: flows([40])).alerts
        #expect(all.map { $0.value(at: "vigil.window.start") } == [.int(t0), .int(t0 + 30_000)])
    }

    @Test func sessionSpansFirstEventToLastPlusGap() throws {
        let rules = try rulesFrom(windowRule("type: session\n  gap: 30s", threshold: ">= 3"))
        let alerts = DetectRun(rules: rules, events: flows([0, 20, 45, 100])).alerts
        try #require(alerts.count == 1)
        #expect(alerts[0].value(at: "vigil.window.start") == .int(t0))
        #expect(alerts[0].value(at: "vigil.window.end") == .int(t0 + 75_000))
        #expect(alerts[0].value(at: "vigil.count") == 3)
        // A gap of exactly 30 s starts a new session.
        #expect(DetectRun(rules: rules, events: flows([0, 20, 50])).alerts.isEmpty)
    }

    @Test func aBridgingEventMergesTwoSessions() throws {
        let rules = try rulesFrom(windowRule("type: session\n  gap: 30s", threshold: ">= 1"))
        let apart = DetectRun(rules: rules, events: flows([0, 40])).alerts
        #expect(apart.map { $0.value(at: "vigil.count") } == [1, 1])
        // The event at 20 s arrives last (within lateness) and joins both into one session.
        let bridged = DetectRun(rules: rules, events: flows([0, 40]) + [flow(atSeconds: 20, uid: "bridge")]).alerts
        try #require(bridged.count == 1)
        #expect(bridged[0].value(at: "vigil.count") == 3)
        #expect(bridged[0].value(at: "vigil.window.start") == .int(t0))
        #expect(bridged[0].value(at: "vigil.window.end") == .int(t0 + 70_000))
    }

    @Test func sessionIsCutAtMaxSize() throws {
        let rules = try rulesFrom(windowRule("type: session\n  gap: 30s\n  max_size: 1m", threshold: ">= 1"))
        let alerts = DetectRun(rules: rules, events: flows([0, 20, 40, 60, 80, 100])).alerts
        #expect(alerts.map { $0.value(at: "vigil.count") } == [3, 3])
        #expect(alerts.map { $0.value(at: "vigil.window.end") } == [.int(t0 + 60_000), .int(t0 + 120_000)])
    }

    static let kinds = ["type: tumbling\n  size: 1m", "type: hopping\n  size: 2m\n  advance: 1m", "type: session\n  gap: 30s"]
    static let aggregates: [(String, Double)] = [
        ("count", 4), ("{distinct: dst_endpoint.port}", 3), ("{sum: traffic.bytes_out}", 90),
        ("{min: traffic.bytes_out}", 10), ("{max: traffic.bytes_out}", 30), ("{avg: traffic.bytes_out}", 22.5),
    ]

    @Test(arguments: kinds, aggregates.indices)
    func everyAggregateWorksForEveryType(_ kind: String, _ index: Int) throws {
        let (aggregate, expected) = Self.aggregates[index]
        let events = zip([22, 80, 80, 443] as [Int64], [10, 20, 30, 30] as [JSON]).enumerated().map { offset, pair in
            flow(port: pair.0, bytes: pair.1, atSeconds: Double(61 + offset * 5), uid: "a\(offset)")
        }
        let text = JSON.double(expected).scalarText!
        let alerts = DetectRun(rules: try rulesFrom(windowRule(kind, aggregate: aggregate, threshold: "== \(text)")), events: events).alerts
        try #require(alerts.count >= 1, "\(kind) \(aggregate)")
        #expect(alerts[0].value(at: "vigil.aggregate.value")?.doubleValue == expected)
        #expect(alerts[0].value(at: "vigil.count") == 4)
        let below = try rulesFrom(windowRule(kind, aggregate: aggregate, threshold: "< \(text)"))
        #expect(DetectRun(rules: below, events: events).alerts.isEmpty, "\(kind) \(aggregate)")
    }

    @Test func retainedOffsetCoversOpenWindowsAndMovesOnWhenTheyClose() throws {
        let rules = try rulesFrom(windowRule("type: tumbling\n  size: 1m", threshold: ">= 1"))
        let selector = RuleSelector(rules: rules)
        var aggregator = WindowAggregator(rules: rules)
        var fired: [JSON] = []
        for (offset, event) in (flows([10], source: "192.0.2.9", prefix: "a") + flows([20, 70, 80])).enumerated() {
            guard case .partial(let partial) = selector.select(event).first else { continue }
            fired += aggregator.add(partial, offset: Int64(offset))
        }
        // Watermark 50 s: nothing closed, offset 0 still needed.
        #expect(fired.isEmpty)
        #expect(aggregator.oldestRetainedOffset() == 0)
        // At 60 s both keys' first windows close; what remains is the window at 60-120 s.
        fired += aggregator.advanceWatermark(to: t0 + 60_000)
        #expect(fired.count == 2)
        #expect(aggregator.oldestRetainedOffset() == 2)
        #expect(aggregator.openKeys == 1)
        #expect(aggregator.flush().count == 1)
        #expect(aggregator.oldestRetainedOffset() == nil)
    }
}

@Suite("Determinism across arrival order and aggregator copies")
struct DeterminismTests {
    static let rulesYAML = [
        windowRule("type: sliding\n  size: 1m", threshold: ">= 4", id: "d.sliding"),
        windowRule("type: tumbling\n  size: 1m", aggregate: "{sum: traffic.bytes_out}", threshold: "between 30 and 200", id: "d.tumbling"),
        windowRule("type: hopping\n  size: 2m\n  advance: 1m", aggregate: "{distinct: dst_endpoint.port}", threshold: ">= 3", id: "d.hopping"),
        windowRule("type: session\n  gap: 5s", aggregate: "{avg: traffic.bytes_out}", threshold: "> 12.5", id: "d.session"),
        windowRule("type: tumbling\n  size: 30s", threshold: "< 6", id: "d.suppressed", rule: "suppress: 2m"),
        """
        id: d.sequence
        version: 1
        title: T
        severity: low
        suppress: 90s
        sequence:
          group_by: [src_endpoint.ip]
          within: 1m
          steps:
            - {match: {field: dst_endpoint.port, equals: 22}, count: 2}
            - match: {field: dst_endpoint.port, equals: 443}
        """,
        """
        id: d.absence
        version: 1
        title: T
        severity: low
        absence:
          group_by: [src_endpoint.ip]
          trigger: {field: dst_endpoint.port, equals: 8080}
          expected: {field: dst_endpoint.port, equals: 80}
          within: 10s
        """,
        """
        id: d.first_seen
        version: 1
        title: T
        severity: low
        match: {field: class_uid, equals: 4001}
        first_seen:
          group_by: [src_endpoint.ip]
          field: dst_endpoint.port
          lookback: 30s
          min_history: 20s
          min_events: 10
        """,
        """
        id: d.baseline
        version: 1
        title: T
        severity: low
        match: {field: class_uid, equals: 4001}
        baseline:
          group_by: [src_endpoint.ip]
          interval: 20s
          aggregate: {sum: traffic.bytes_out}
          method: ewma
          history: 6
          min_history: 3
          threshold: 1.5
        """,
    ].joined(separator: "\n---\n")

    /// Flows from four sources over ten minutes at pseudo-random times, ports and sizes.
    static func events() -> [JSON] {
        var generator = SeededGenerator(seed: 7)
        var events: [JSON] = []
        for index in 0..<400 {
            let source = "10.0.0.\(Int.random(in: 1...4, using: &generator))"
            let millis = Double(Int.random(in: 0..<600_000, using: &generator)) / 1000
            let port = Int64([22, 80, 443, 8080][Int.random(in: 0..<4, using: &generator)])
            let bytes: JSON = .double(Double(Int.random(in: 1...40, using: &generator)) / 2)
            events.append(flow(source, port: port, bytes: bytes, atSeconds: millis, uid: "e\(index)"))
        }
        return events.sorted { OCSFEvent.time($0)! < OCSFEvent.time($1)! }
    }

    /// `rule group [start, end] count` of an alert's JSON text.
    static func summary(_ text: String) -> String {
        guard let alert = try? JSON.parse(text) else { return text }
        let fields = ["vigil.rule.id", "vigil.group_key", "vigil.window.start", "vigil.window.end", "vigil.count"]
        return fields.map { alert.value(at: $0)?.scalarText ?? "-" }.joined(separator: " ")
    }

    @Test func shuffledWithinLatenessAndSplitAcrossCopiesGivesIdenticalAlerts() throws {
        let rules = try RuleSet(rules: RuleSet.parse(yaml: Self.rulesYAML, file: "d.yaml"))
        let events = Self.events()
        let reference = PartitionedRun(rules: rules, events: events, instances: 1)
        #expect(reference.alerts.count > 20)
        let firing = Set(reference.alerts.compactMap { try? JSON.parse($0).value(at: "vigil.rule.id")?.stringValue })
        #expect(firing == ["d.sliding", "d.tumbling", "d.hopping", "d.session", "d.suppressed", "d.sequence", "d.absence",
                          "d.first_seen", "d.baseline"])
        #expect(reference.aggregators[0].suppressedAlerts > 0)
        var generator = SeededGenerator(seed: 99)
        for round in 0..<4 {
            let shuffled = shuffledWithinBlocks(events, block: 25_000, using: &generator)
            for instances in 1...3 {
                let run = PartitionedRun(rules: rules, events: shuffled, instances: instances)
                #expect(run.lateRecords == 0)
                let missing = Set(reference.alerts).subtracting(run.alerts).map(Self.summary).sorted()
                let extra = Set(run.alerts).subtracting(reference.alerts).map(Self.summary).sorted()
                #expect(missing.isEmpty && extra.isEmpty && run.alerts.count == reference.alerts.count,
                        "round \(round), \(instances) instance(s): missing \(missing), extra \(extra)")
            }
        }
    }
}
