import Detection
import OCSF
import Testing

/// A rule set of one sliding window rule over Network Activity events grouped by source
/// address, with `aggregate` and `threshold` as written in YAML.
func aggregateRules(_ aggregate: String, threshold: String, size: String = "1m") throws -> RuleSet {
    let yaml = """
        id: t.aggregate
        version: 1
        title: T
        severity: low
        match: {field: class_uid, equals: 4001}
        window:
          group_by: [src_endpoint.ip]
          type: sliding
          size: \(size)
          aggregate: \(aggregate)
          threshold: "\(threshold)"
        """
    return try RuleSet(rules: RuleSet.parse(yaml: yaml, file: "t.yaml"))
}

/// A Network Activity event from `source` at `t0 + seconds`, with the destination port and
/// bytes out when given.
func flow(_ source: String = "198.51.100.23", port: Int64? = nil, bytes: JSON? = nil, atSeconds seconds: Double, uid: String) -> JSON {
    var event = OCSFEvent.base(
        class: .networkActivity, activityID: 5, activityName: "Refuse", time: t0 + Int64(seconds * 1000),
        status: .failure, uid: uid, product: "Amazon VPC", vendor: "AWS")
    event.set("src_endpoint.ip", .string(source))
    if let port { event.set("dst_endpoint.port", .int(port)) }
    if let bytes { event.set("traffic.bytes_out", bytes) }
    return event
}

/// Events with `bytes` out, one per second from `t0`.
func byteFlows(_ bytes: [JSON], everySeconds step: Double = 1) -> [JSON] {
    bytes.enumerated().map { index, value in flow(bytes: value, atSeconds: Double(index) * step, uid: "b\(index)") }
}

@Suite("Window aggregates: distinct, sum, min, max, avg")
struct AggregateTests {
    @Test func distinctFiresAtTheThreshold() throws {
        let rules = try aggregateRules("{distinct: dst_endpoint.port}", threshold: ">= 5")
        let events = [22, 80, 443, 8080, 8443].enumerated().map { flow(port: $1, atSeconds: Double($0), uid: "p\($0)") }
        #expect(DetectRun(rules: rules, events: Array(events.prefix(4))).alerts.isEmpty)
        let alerts = DetectRun(rules: rules, events: events).alerts
        try #require(alerts.count == 1)
        #expect(alerts[0].value(at: "vigil.aggregate")
            == ["type": "distinct", "field": "dst_endpoint.port", "value": 5, "threshold": ">= 5"])
        #expect(alerts[0].value(at: "vigil.count") == 5)
        #expect(alerts[0].value(at: "vigil.group_key") == "198.51.100.23")
        #expect(alerts[0].value(at: "vigil.window.start") == .int(t0))
        #expect(alerts[0].value(at: "vigil.window.end") == .int(t0 + 4000))
    }

    @Test func distinctIgnoresRepeats() throws {
        let rules = try aggregateRules("{distinct: dst_endpoint.port}", threshold: ">= 5")
        var ports: [Int64] = [22, 22, 22, 80, 80, 443, 443, 8080, 22]
        var events = ports.enumerated().map { flow(port: $1, atSeconds: Double($0), uid: "p\($0)") }
        #expect(DetectRun(rules: rules, events: events).alerts.isEmpty)
        ports.append(8443)
        events.append(flow(port: 8443, atSeconds: 9, uid: "p9"))
        let alerts = DetectRun(rules: rules, events: events).alerts
        try #require(alerts.count == 1)
        #expect(alerts[0].value(at: "vigil.aggregate.value") == 5)
        #expect(alerts[0].value(at: "vigil.count") == 10)
    }

    @Test func distinctForgetsValuesThatLeaveTheWindowUnlessRepeatedInside() throws {
        let rules = try aggregateRules("{distinct: dst_endpoint.port}", threshold: ">= 3")
        // Port 22 at 0 s leaves the 1m window before 65 s, but its repeat at 50 s stays.
        let withRepeat = [flow(port: 22, atSeconds: 0, uid: "a"), flow(port: 80, atSeconds: 10, uid: "b"),
                          flow(port: 22, atSeconds: 50, uid: "c"), flow(port: 443, atSeconds: 65, uid: "d")]
        let alerts = DetectRun(rules: rules, events: withRepeat).alerts
        try #require(alerts.count == 1)
        #expect(alerts[0].value(at: "vigil.window.start") == .int(t0 + 10_000))
        #expect(alerts[0].value(at: "vigil.window.end") == .int(t0 + 65_000))
        #expect(alerts[0].value(at: "vigil.count") == 3)
        #expect(alerts[0].value(at: "vigil.aggregate.value") == 3)
        var withoutRepeat = withRepeat
        withoutRepeat[2] = flow(port: 80, atSeconds: 50, uid: "c")
        #expect(DetectRun(rules: rules, events: withoutRepeat).alerts.isEmpty)
    }

    @Test func sumFiresWhenTheRunningSumReachesADecimalThreshold() throws {
        let events = byteFlows([100, 200, 300.5])
        #expect(DetectRun(rules: try aggregateRules("{sum: traffic.bytes_out}", threshold: "> 600.5"), events: events).alerts.isEmpty)
        let alerts = DetectRun(rules: try aggregateRules("{sum: traffic.bytes_out}", threshold: ">= 600.5"), events: events).alerts
        try #require(alerts.count == 1)
        #expect(alerts[0].value(at: "vigil.aggregate")
            == ["type": "sum", "field": "traffic.bytes_out", "value": 600.5, "threshold": ">= 600.5"])
        #expect(alerts[0].value(at: "vigil.count") == 3)
    }

    @Test func sumSubtractsWhatLeavesTheWindow() throws {
        let rules = try aggregateRules("{sum: traffic.bytes_out}", threshold: ">= 1000")
        let early = [flow(bytes: 500, atSeconds: 0, uid: "a"), flow(bytes: 200, atSeconds: 30, uid: "b"),
                     flow(bytes: 300, atSeconds: 61, uid: "c")]
        #expect(DetectRun(rules: rules, events: early).alerts.isEmpty)
        let alerts = DetectRun(rules: rules, events: early + [flow(bytes: 500, atSeconds: 70, uid: "d")]).alerts
        try #require(alerts.count == 1)
        #expect(alerts[0].value(at: "vigil.aggregate.value") == 1000)
        #expect(alerts[0].value(at: "vigil.window.start") == .int(t0 + 30_000))
        #expect(alerts[0].value(at: "vigil.count") == 3)
    }

    @Test func avgIsTheMeanOfTheWindow() throws {
        let rules = try aggregateRules("{avg: traffic.bytes_out}", threshold: ">= 30")
        // Means 10, 15, 30.
        let alerts = DetectRun(rules: rules, events: byteFlows([10, 20, 60])).alerts
        try #require(alerts.count == 1)
        #expect(alerts[0].value(at: "vigil.aggregate") == ["type": "avg", "field": "traffic.bytes_out", "value": 30, "threshold": ">= 30"])
        #expect(alerts[0].value(at: "vigil.count") == 3)
        let decimal = DetectRun(rules: try aggregateRules("{avg: traffic.bytes_out}", threshold: "> 2.4"), events: byteFlows([1, 2, 4.5])).alerts
        try #require(decimal.count == 1)
        #expect(decimal[0].value(at: "vigil.aggregate.value") == 2.5)
    }

    @Test func minAndMaxOverTheWindow() throws {
        let minimum = try aggregateRules("{min: traffic.bytes_out}", threshold: "== 1")
        let minAlerts = DetectRun(rules: minimum, events: byteFlows([3, 1, 9])).alerts
        try #require(minAlerts.count == 1)
        #expect(minAlerts[0].value(at: "vigil.aggregate") == ["type": "min", "field": "traffic.bytes_out", "value": 1, "threshold": "== 1"])
        #expect(minAlerts[0].value(at: "vigil.count") == 2)
        // The smaller first value keeps the minimum below 10 while it is in the window.
        #expect(DetectRun(rules: try aggregateRules("{min: traffic.bytes_out}", threshold: ">= 10"), events: byteFlows([3, 12, 15])).alerts
            .isEmpty)
        let maxAlerts = DetectRun(rules: try aggregateRules("{max: traffic.bytes_out}", threshold: ">= 12.5"), events: byteFlows([3, 12.5, 7]))
            .alerts
        try #require(maxAlerts.count == 1)
        #expect(maxAlerts[0].value(at: "vigil.aggregate.value") == 12.5)
        #expect(maxAlerts[0].value(at: "vigil.count") == 2)
        // A large value that left the window no longer counts.
        let spread = byteFlows([20, 1, 1], everySeconds: 40)
        #expect(DetectRun(rules: try aggregateRules("{max: traffic.bytes_out}", threshold: ">= 20"), events: spread).alerts.count == 1)
        let late = [flow(bytes: 20, atSeconds: 0, uid: "a"), flow(bytes: 1, atSeconds: 61, uid: "b")]
        let lateAlerts = DetectRun(rules: try aggregateRules("{max: traffic.bytes_out}", threshold: "> 20"), events: late).alerts
        #expect(lateAlerts.isEmpty)
    }

    @Test func oneAlertPerBurstThenTheAggregateStartsOver() throws {
        let rules = try aggregateRules("{sum: traffic.bytes_out}", threshold: ">= 100")
        let alerts = DetectRun(rules: rules, events: byteFlows(Array(repeating: 40, count: 7))).alerts
        // 40+40+40 fires; the next 40+40+40 fires again; the seventh stays alone.
        try #require(alerts.count == 2)
        #expect(alerts.map { $0.value(at: "vigil.aggregate.value") } == [120, 120])
        #expect(alerts.map { $0.value(at: "vigil.window.start") } == [.int(t0), .int(t0 + 3000)])
    }

    @Test func eventsWithoutAUsableFieldAreNotSelected() throws {
        let numeric = RuleSelector(rules: try aggregateRules("{sum: traffic.bytes_out}", threshold: ">= 1"))
        #expect(numeric.select(flow(atSeconds: 0, uid: "none")).isEmpty)
        #expect(numeric.select(flow(bytes: "100", atSeconds: 0, uid: "text")).isEmpty)
        #expect(numeric.select(flow(bytes: .null, atSeconds: 0, uid: "null")).isEmpty)
        #expect(numeric.select(flow(bytes: true, atSeconds: 0, uid: "bool")).isEmpty)
        guard case .partial(let partial)? = numeric.select(flow(bytes: 2.5, atSeconds: 0, uid: "ok")).first else {
            Issue.record("a numeric value is selected")
            return
        }
        #expect(partial.value == .number(2.5))
        let distinct = RuleSelector(rules: try aggregateRules("{distinct: dst_endpoint.port}", threshold: ">= 2"))
        #expect(distinct.select(flow(atSeconds: 0, uid: "none")).isEmpty)
        guard case .partial(let port)? = distinct.select(flow(port: 22, atSeconds: 0, uid: "ok")).first else {
            Issue.record("a port is selected")
            return
        }
        #expect(port.value == .text("22"))
        let count = RuleSelector(rules: try aggregateRules("count", threshold: ">= 2"))
        guard case .partial(let counted)? = count.select(flow(atSeconds: 0, uid: "none")).first else {
            Issue.record("count needs no field")
            return
        }
        #expect(counted.value == nil)
    }

    /// Each aggregate with a threshold that the fifth of five events meets (min: the first).
    static let fifthEventThresholds = [
        ("{distinct: dst_endpoint.port}", ">= 5"), ("{sum: traffic.bytes_out}", ">= 15"), ("{min: traffic.bytes_out}", "== 1"),
        ("{max: traffic.bytes_out}", ">= 5"), ("{avg: traffic.bytes_out}", ">= 3"), ("count", ">= 5"),
    ]

    @Test(arguments: fifthEventThresholds)
    func outOfOrderWithinLatenessGivesTheSameAlert(_ aggregate: String, _ threshold: String) throws {
        let rules = try aggregateRules(aggregate, threshold: threshold)
        // Bytes 1 to 5, 4 s apart: sums 1, 3, 6, 10, 15; means 1, 1.5, 2, 2.5, 3.
        let events: [JSON] = (0..<5).map { (index: Int) -> JSON in
            let bytes = JSON.int(Int64(index + 1))
            return flow(port: Int64(20 + index), bytes: bytes, atSeconds: Double(index * 4), uid: "e\(index)")
        }
        let inOrder = DetectRun(rules: rules, events: events).alerts.map(\.jsonText)
        try #require(inOrder.count == 1)
        // Reversed: 16 s apart at most, within the 30 s lateness.
        let reversed = DetectRun(rules: rules, events: Array(events.reversed()))
        #expect(reversed.aggregator.lateRecords == 0)
        #expect(reversed.alerts.map(\.jsonText) == inOrder)
        let swapped = DetectRun(rules: rules, events: [events[1], events[0], events[3], events[2], events[4]])
        #expect(swapped.alerts.map(\.jsonText) == inOrder)
    }

    @Test(arguments: ["{distinct: dst_endpoint.port}", "{sum: traffic.bytes_out}", "{avg: traffic.bytes_out}",
                      "{min: traffic.bytes_out}", "{max: traffic.bytes_out}"])
    func shuffledArrivalGivesIdenticalAlertBytes(_ aggregate: String) throws {
        // Decimal values whose floating-point sums depend on the order of operations, ports
        // that repeat, two sources, ties in time: only the (time, uid) order may decide.
        let threshold = switch aggregate {
        case let text where text.contains("distinct"): ">= 4"
        case let text where text.contains("sum"): ">= 1.7"
        case let text where text.contains("avg"): ">= 0.45"
        case let text where text.contains("min"): "== 0.1"
        default: ">= 0.9"
        }
        let rules = try aggregateRules(aggregate, threshold: threshold, size: "10s")
        var events: [JSON] = []
        for index in 0..<40 {
            let source = index % 3 == 0 ? "198.51.100.24" : "198.51.100.23"
            let bytes = JSON.double(Double(index % 10) / 10 + 0.1)
            events.append(flow(source, port: Int64(index % 7), bytes: bytes, atSeconds: Double(index / 2) * 1.3,
                               uid: "e\(String(index, radix: 16))"))
        }
        let reference = DetectRun(rules: rules, events: events).alerts.map(\.jsonText).sorted()
        #expect(reference.count >= 2)
        var generator = SeededGenerator(seed: 7)
        for _ in 0..<20 {
            let run = DetectRun(rules: rules, events: events.shuffled(using: &generator))
            #expect(run.aggregator.lateRecords == 0)
            #expect(run.alerts.map(\.jsonText).sorted() == reference)
        }
    }

    @Test func partialsWithoutTheValueTheirRuleNeedsAreCountedAndDropped() throws {
        let rules = try aggregateRules("{sum: traffic.bytes_out}", threshold: ">= 1")
        var aggregator = WindowAggregator(rules: rules)
        let old = Partial(ruleID: "t.aggregate", ruleVersion: 1, groupKey: "k", groupValues: [:], eventTime: t0, eventUID: "u")
        #expect(aggregator.add(old, offset: 0).isEmpty)
        var text = old
        text.value = .text("12")
        #expect(aggregator.add(text, offset: 1).isEmpty)
        #expect(aggregator.valuelessRecords == 2)
        #expect(aggregator.openKeys == 0)
        var good = old
        good.value = .number(3)
        _ = aggregator.add(good, offset: 2)
        #expect(aggregator.flush().count == 1)
    }
}

@Suite("Partial records with and without a value")
struct PartialValueTests {
    static let base = Partial(
        ruleID: "net.port_scan", ruleVersion: 1, groupKey: "198.51.100.23", groupValues: ["src_endpoint.ip": "198.51.100.23"],
        eventTime: t0, eventUID: "u1", context: ["src_endpoint": ["ip": "198.51.100.23"]])

    @Test(arguments: [nil, AggregateValue.text("22"), .text(""), .number(443), .number(2.75), .number(-1e12)])
    func roundTrip(_ value: AggregateValue?) throws {
        var partial = Self.base
        partial.value = value
        let json = partial.json()
        #expect((json["value"] == nil) == (value == nil))
        #expect(try Partial(json: JSON.parse(json.serialized())) == partial)
    }

    @Test func countPartialsKeepTheirFormat() {
        #expect(Self.base.json().objectValue.map { Set($0.keys) }
            == ["rule_id", "rule_version", "group_key", "group", "time", "event_uid", "context"])
    }

    @Test func oldRecordsWithoutAValueStillRead() throws {
        let text = #"{"rule_id":"aws.console.bruteforce","rule_version":1,"group_key":"alice","group":{"actor.user.name":"alice"},"time":1714564800000,"event_uid":"e1","context":{}}"#
        let partial = try Partial(json: JSON.parse(text))
        #expect(partial.value == nil)
        #expect(partial.eventUID == "e1")
        let withNull = try Partial(json: JSON.parse(text.replacing(#""context":{}"#, with: #""context":{},"value":null"#)))
        #expect(withNull.value == nil)
    }

    @Test(arguments: [JSON.bool(true), ["a": 1], [1, 2]])
    func badValuesAreRejected(_ value: JSON) {
        var json = Self.base.json()
        json["value"] = value
        #expect(throws: RuleError.self) { try Partial(json: json) }
        do {
            _ = try Partial(json: json)
        } catch {
            #expect(error.code == .invalidPartial)
            #expect(error.reason.contains("'value'"))
        }
    }
}

@Suite("Window aggregate specs")
struct AggregateSpecTests {
    @Test func everyAggregateParses() throws {
        let expected: [(String, WindowSpec.Aggregate)] = [
            ("count", .count), ("{distinct: dst_endpoint.port}", .distinct(field: "dst_endpoint.port")),
            ("{sum: traffic.bytes_out}", .sum(field: "traffic.bytes_out")), ("{min: a.b}", .min(field: "a.b")),
            ("{max: a}", .max(field: "a")), ("{avg: traffic.bytes_out}", .avg(field: "traffic.bytes_out")),
        ]
        for (text, aggregate) in expected {
            let window = try #require(try aggregateRules(text, threshold: ">= 5").rules[0].window)
            #expect(window.aggregate == aggregate, "\(text)")
            #expect(window.aggregate.name == text.drop { $0 == "{" }.prefix { $0.isLetter }.description)
        }
        let numeric = try #require(try aggregateRules("{sum: b}", threshold: "> 1.25").rules[0].window)
        #expect(numeric.threshold == Threshold(op: .greaterThan, value: 1.25))
        #expect(try aggregateRules("{max: b}", threshold: "== -3").rules[0].window?.threshold == Threshold(op: .equal, value: -3))
        // Without `aggregate`, a window counts.
        let yaml = "id: t\nversion: 1\ntitle: T\nseverity: low\nmatch: {field: a, exists: true}\n"
            + "window: {group_by: [a], type: sliding, size: 1m, threshold: \">= 2\"}\n"
        #expect(try RuleSet.parse(yaml: yaml, file: "t.yaml")[0].window?.aggregate == .count)
    }

    @Test func shippedPortScanRuleCountsDistinctPorts() throws {
        let rule = try #require(try loadShippedRules().rule(id: "net.port_scan"))
        let window = try #require(rule.window)
        #expect(window.aggregate == .distinct(field: "dst_endpoint.port"))
        #expect(window.groupBy == ["src_endpoint.ip"])
        #expect(window.sizeMillis == 60_000)
        #expect(window.threshold == Threshold(op: .greaterThanOrEqual, value: 20))
        #expect(rule.attack == ["T1046"])
        #expect(rule.severity == .medium)
    }
}
