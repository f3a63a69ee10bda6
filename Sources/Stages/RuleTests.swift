import Detection
import Kafka
import Normalize
import OCSF
import Pipeline

/// Runs rule test fixtures (`rules/tests/*.yaml`, see `RuleFixture`) through the real
/// Normalize parsers and the offline detector, and compares the alerts with the expected set.
///
/// Pure: no files, no clock, no Kafka. `vigil rules test` and the tests call it.
public enum RuleTests {
    /// What an alert is, as far as a fixture compares it.
    public struct ActualAlert: Sendable, Equatable, CustomStringConvertible {
        /// The rule id.
        public var rule: String
        /// The group key (window rules only).
        public var group: String?
        /// Events counted (1 for single-event rules).
        public var count: Int
        /// The window (single-event rules: the event time, twice).
        public var window: ClosedRange<Int64>
        /// The value of an aggregate other than `count` (`vigil.aggregate.value`); `nil` for
        /// counts and single-event rules.
        public var value: Double?

        /// An alert summary.
        public init(rule: String, group: String?, count: Int, window: ClosedRange<Int64>, value: Double? = nil) {
            self.rule = rule
            self.group = group
            self.count = count
            self.window = window
            self.value = value
        }

        /// Reads the summary from an alert (Detection Finding) built by `AlertBuilder`.
        public init?(alert: JSON) {
            guard let rule = alert.value(at: "vigil.rule.id")?.stringValue,
                  let start = alert.value(at: "vigil.window.start")?.intValue,
                  let end = alert.value(at: "vigil.window.end")?.intValue, start <= end
            else { return nil }
            // A count's value is `count` itself; only other aggregates (which name a field) add one.
            let value = alert.value(at: "vigil.aggregate.field") == nil ? nil : alert.value(at: "vigil.aggregate.value")?.doubleValue
            self.init(rule: rule, group: alert.value(at: "vigil.group_key")?.stringValue,
                      count: Int(alert.value(at: "vigil.count")?.intValue ?? 1), window: start...end, value: value)
        }

        /// Whether `expected` describes this alert (fields it leaves out match anything).
        public func isDescribed(by expected: RuleFixture.ExpectedAlert) -> Bool {
            expected.rule == rule && (expected.group == nil || expected.group == group)
                && (expected.count == nil || expected.count == count) && (expected.window == nil || expected.window == window)
                && (expected.value == nil || expected.value == value)
        }

        /// `aws.console.bruteforce group=alice count=5 window=[start, end]`.
        public var description: String {
            RuleFixture.ExpectedAlert(rule: rule, group: group, count: count, window: window, value: value).description
        }
    }

    /// The outcome of one case.
    public struct CaseResult: Sendable {
        /// The rule the fixture is for.
        public var rule: String
        /// The fixture file.
        public var file: String?
        /// The case name.
        public var name: String
        /// The case's line in the file.
        public var line: Int?
        /// Every alert the rule set raised, in output order.
        public var actual: [ActualAlert]
        /// Expected alerts no actual alert matched.
        public var missing: [RuleFixture.ExpectedAlert]
        /// Actual alerts no expected alert matched.
        public var unexpected: [ActualAlert]
        /// Inputs that could not be turned into events (normalize failures, dead letters).
        public var problems: [String]

        /// Whether the alerts were exactly those expected and every input was usable.
        public var passed: Bool { missing.isEmpty && unexpected.isEmpty && problems.isEmpty }

        /// `file:line` of the case (or the rule id when the file is unknown).
        public var location: String {
            guard let file else { return rule }
            return line.map { "\(file):\($0)" } ?? file
        }

        /// The diff for a failed case: `- expected ...` for missing alerts, `+ actual ...` for
        /// unexpected ones, `! ...` for unusable inputs.
        public var diff: [String] {
            problems.map { "! \($0)" } + missing.map { "- expected \($0)" } + unexpected.map { "+ actual   \($0)" }
        }
    }

    /// The outcome of a whole run.
    public struct Report: Sendable {
        /// Every case, fixtures in load order, cases in file order.
        public var results: [CaseResult]
        /// Rules of the set with no fixture file.
        public var rulesWithoutFixture: [String]
        /// Fixtures naming a rule the set does not have: (rule, file).
        public var fixturesWithoutRule: [(rule: String, file: String?)]

        /// Cases that passed.
        public var passedCount: Int { results.filter(\.passed).count }
        /// Whether every case passed and every rule has a fixture.
        public var passed: Bool {
            results.allSatisfy(\.passed) && rulesWithoutFixture.isEmpty && fixturesWithoutRule.isEmpty
        }
    }

    /// Runs every fixture against `rules`, and reports rules without a fixture.
    public static func run(_ fixtures: [RuleFixture], rules: RuleSet, normalizer: Normalizer = Normalizer()) -> Report {
        var results: [CaseResult] = []
        for fixture in fixtures {
            for testCase in fixture.cases { results.append(run(testCase, of: fixture, rules: rules, normalizer: normalizer)) }
        }
        let covered = Set(fixtures.map(\.rule))
        return Report(results: results,
                      rulesWithoutFixture: rules.rules.map(\.id).filter { !covered.contains($0) },
                      fixturesWithoutRule: fixtures.filter { rules.rule(id: $0.rule) == nil }.map { ($0.rule, $0.file) })
    }

    /// Runs one case against the whole rule set (so a rule firing where it should not is seen).
    public static func run(_ testCase: RuleFixture.Case, of fixture: RuleFixture, rules: RuleSet,
                           normalizer: Normalizer = Normalizer()) -> CaseResult {
        let (events, problems) = events(of: testCase, normalizer: normalizer)
        let (alerts, deadLetters) = detect(events, rules: rules)
        let (missing, unexpected) = compare(expected: testCase.expected, actual: alerts)
        return CaseResult(rule: fixture.rule, file: fixture.file, name: testCase.name, line: testCase.line, actual: alerts,
                          missing: missing, unexpected: unexpected, problems: problems + deadLetters)
    }

    /// The OCSF events of a case, in input order, with `at` copies expanded; and the reasons
    /// any input could not be used.
    public static func events(of testCase: RuleFixture.Case, normalizer: Normalizer = Normalizer()) -> ([JSON], [String]) {
        var events: [JSON] = []
        var problems: [String] = []
        for (index, input) in testCase.inputs.enumerated() {
            var produced: [JSON] = []
            switch input.payload {
            case .event(let event):
                produced = [event]
            case .raw(let source, let records):
                for (recordIndex, bytes) in records.enumerated() {
                    let result = normalizer.normalize(RawRecord(bytes: bytes, source: source, recordTime: input.receivedTime))
                    produced += result.events
                    for failure in result.failures {
                        // The failure names a code and the parser's reason, never the record's bytes.
                        problems.append("input \(index + 1) record \(recordIndex + 1): \(failure.code): \(failure.message)")
                    }
                }
            }
            guard let times = input.times else {
                events += produced
                continue
            }
            for (copy, time) in times.enumerated() {
                for var event in produced {
                    event["time"] = .int(time)
                    let uid = event.value(at: "metadata.uid")?.stringValue ?? "input-\(index + 1)"
                    event.set("metadata.uid", .string("\(uid)#\(copy + 1)"))
                    events.append(event)
                }
            }
        }
        return (events, problems)
    }

    /// Select and aggregate `events` in order with the offline detector, flushing every window
    /// at the end; the alerts in output order and descriptions of any dead letters.
    public static func detect(_ events: [JSON], rules: RuleSet) -> ([ActualAlert], [String]) {
        let topics = Topics()
        var detector = OfflineDetector(rules: rules, topics: topics, metrics: MetricsRegistry())
        var records: [OutgoingRecord] = []
        var problems: [String] = []
        for (offset, event) in events.enumerated() {
            let record = ConsumedRecord(topic: topics.enriched, partition: 0, offset: Int64(offset), value: event.serialized(),
                                        timestamp: OCSFEvent.time(event))
            let output = detector.process(record)
            records += output.records.filter { $0.topic == topics.alerts }
            problems += output.deadLetters.map { "event \(offset + 1): \($0.code): \($0.reason)" }
        }
        records += detector.finish()
        let alerts = records.compactMap { record in (try? JSON.parse(record.value)).flatMap(ActualAlert.init(alert:)) }
        return (alerts, problems)
    }

    /// Pairs expected with actual alerts (each used once, first fit in order); what is left
    /// on either side is the difference.
    public static func compare(expected: [RuleFixture.ExpectedAlert], actual: [ActualAlert])
        -> (missing: [RuleFixture.ExpectedAlert], unexpected: [ActualAlert]) {
        var unmatched = actual
        var missing: [RuleFixture.ExpectedAlert] = []
        // Fully specified expectations first, so a loose one cannot take the alert a precise one needs.
        let ordered = expected.enumerated().sorted { specificity($0.element) > specificity($1.element) }
        for (_, item) in ordered {
            if let found = unmatched.firstIndex(where: { $0.isDescribed(by: item) }) {
                unmatched.remove(at: found)
            } else {
                missing.append(item)
            }
        }
        return (missing, unmatched)
    }

    static func specificity(_ item: RuleFixture.ExpectedAlert) -> Int {
        (item.group == nil ? 0 : 1) + (item.count == nil ? 0 : 1) + (item.window == nil ? 0 : 1) + (item.value == nil ? 0 : 1)
    }
}
