import OCSF
import YAMLFiles
import Yams

/// One rule's test fixture (`rules/tests/<rule id>.yaml`): cases of timestamped input with
/// the exact set of alerts each must produce. docs/rules.md, "Testing rules", has the format.
///
/// This is the parsed file only; running it (normalizing raw records, detecting) is
/// `RuleTests` in Stages, which owns the parsers and the offline detector.
public struct RuleFixture: Sendable {
    /// The rule the fixture is for (`rule:`, else the file name without `.yaml`).
    public var rule: String
    /// The file it was read from.
    public var file: String?
    /// Its cases, in file order.
    public var cases: [Case]

    /// A fixture.
    public init(rule: String, file: String?, cases: [Case]) {
        self.rule = rule
        self.file = file
        self.cases = cases
    }

    /// One case: input events in order, and the alerts the whole rule set must raise.
    public struct Case: Sendable {
        /// What the case shows, in words.
        public var name: String
        /// The line of the case in its file.
        public var line: Int?
        /// The inputs, fed to the detector in this order.
        public var inputs: [Input]
        /// Every alert expected from the case (exact set; `[]` for a near miss).
        public var expected: [ExpectedAlert]

        /// A case.
        public init(name: String, line: Int?, inputs: [Input], expected: [ExpectedAlert]) {
            self.name = name
            self.line = line
            self.inputs = inputs
            self.expected = expected
        }
    }

    /// One input item: raw source records run through Normalize, or one OCSF event as-is.
    public struct Input: Sendable {
        /// What the item holds.
        public enum Payload: Sendable {
            /// Raw records of a log source (`source` is a Normalize source name); each is one
            /// Kafka record's worth of bytes.
            case raw(source: String, records: [[UInt8]])
            /// An OCSF event (already normalized, possibly enriched).
            case event(JSON)
        }

        /// The records or event.
        public var payload: Payload
        /// When set, every event the item yields is replayed once per time, in this order, with
        /// `time` replaced and `metadata.uid` suffixed `#1`, `#2`, ... so the copies differ.
        public var times: [Int64]?
        /// The record time handed to parsers that need one (a syslog line's year).
        public var receivedTime: Int64

        /// An input item.
        public init(payload: Payload, times: [Int64]? = nil, receivedTime: Int64 = RuleFixture.defaultReceivedTime) {
            self.payload = payload
            self.times = times
            self.receivedTime = receivedTime
        }
    }

    /// An expected alert: the rule always; group key, count, window and aggregate value when given.
    public struct ExpectedAlert: Sendable, Equatable, CustomStringConvertible {
        /// The rule id.
        public var rule: String
        /// The window rule's group key, compared when set.
        public var group: String?
        /// The number of events counted, compared when set.
        public var count: Int?
        /// The window [start, end] in epoch milliseconds, compared when set.
        public var window: ClosedRange<Int64>?
        /// The value of an aggregate other than `count` (`vigil.aggregate.value`), compared when set.
        public var value: Double?

        /// An expected alert.
        public init(rule: String, group: String? = nil, count: Int? = nil, window: ClosedRange<Int64>? = nil, value: Double? = nil) {
            self.rule = rule
            self.group = group
            self.count = count
            self.window = window
            self.value = value
        }

        /// `aws.console.bruteforce group=alice count=5 window=[...]`, naming only what is set.
        public var description: String {
            var text = rule
            if let group { text += " group=\(group)" }
            if let count { text += " count=\(count)" }
            if let window {
                text += " window=[\(Timestamp.formatISO8601(window.lowerBound)), \(Timestamp.formatISO8601(window.upperBound))]"
            }
            if let value { text += " value=\(JSON.double(value).scalarText ?? "")" }
            return text
        }
    }

    /// The record time used when an input names none: 2024-06-01T00:00:00Z, fixed so results
    /// never depend on the day the tests run.
    public static let defaultReceivedTime: Int64 = 1_717_200_000_000

    /// Parses one fixture file; `file` is named in errors.
    ///
    /// - Throws: `RuleError` with code `invalid_fixture` (or `invalid_yaml`) naming file and line.
    public static func parse(yaml: String, file: String) throws(RuleError) -> RuleFixture {
        let reader = YAMLReader(file: file)
        do throws(YAMLProblem) {
            let documents = try reader.documents(yaml)
            guard documents.count == 1, let root = documents.first else {
                throw YAMLProblem(kind: .invalid, file: file, reason: "a fixture file holds exactly one YAML document")
            }
            return try reader.fixture(root, defaultRule: fileStem(file))
        } catch {
            throw RuleError(fixture: error)
        }
    }

    /// Loads every fixture under `directory` (recursively, path order).
    public static func load(directory: String) throws(RuleError) -> [RuleFixture] {
        let files: [(path: String, text: String)]
        do throws(YAMLProblem) { files = try YAMLDirectory.files(in: directory) } catch { throw RuleError(fixture: error) }
        var fixtures: [RuleFixture] = []
        for file in files { fixtures.append(try parse(yaml: file.text, file: file.path)) }
        return fixtures
    }

    /// `aws.root.usage` for `rules/tests/aws.root.usage.yaml`.
    static func fileStem(_ path: String) -> String {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        for suffix in [".yaml", ".yml"] where name.hasSuffix(suffix) { return String(name.dropLast(suffix.count)) }
        return name
    }
}

extension RuleError {
    /// The error for a problem in a fixture file.
    init(fixture problem: YAMLProblem) {
        self.init(code: problem.code(unreadable: .unreadableFile, syntax: .invalidYAML, invalid: .invalidFixture),
                  file: problem.file, line: problem.line, reason: problem.reason)
    }
}

/// The fixture parser.
extension YAMLReader {
    func fixture(_ node: Node, defaultRule: String) throws(YAMLProblem) -> RuleFixture {
        let members = try mapping(node, allowed: ["rule", "cases"], what: "fixture")
        let rule = try members["rule"].map { n throws(YAMLProblem) in try string(n, what: "rule") } ?? defaultRule
        let casesNode = try required(members, "cases", in: node, what: "fixture")
        guard let sequence = casesNode.sequence, !sequence.isEmpty else {
            throw problem(casesNode, "cases must be a non-empty list")
        }
        var cases: [RuleFixture.Case] = []
        var names: Set<String> = []
        for item in sequence {
            let testCase = try fixtureCase(item)
            guard names.insert(testCase.name).inserted else { throw problem(item, "case name '\(testCase.name)' is used twice") }
            cases.append(testCase)
        }
        return RuleFixture(rule: rule, file: file, cases: cases)
    }

    func fixtureCase(_ node: Node) throws(YAMLProblem) -> RuleFixture.Case {
        let members = try mapping(node, allowed: ["name", "input", "expect"], what: "case")
        let name = try string(required(members, "name", in: node, what: "case"), what: "name")
        let inputNode = try required(members, "input", in: node, what: "case")
        guard let inputItems = inputNode.sequence, !inputItems.isEmpty else {
            throw problem(inputNode, "input must be a non-empty list")
        }
        var inputs: [RuleFixture.Input] = []
        for item in inputItems { inputs.append(try fixtureInput(item)) }
        let expectNode = try required(members, "expect", in: node, what: "case")
        guard let expectItems = expectNode.sequence else {
            throw problem(expectNode, "expect must be a list of alerts ([] when none is expected)")
        }
        var expected: [RuleFixture.ExpectedAlert] = []
        for item in expectItems { expected.append(try expectedAlert(item)) }
        return RuleFixture.Case(name: name, line: node.mark?.line, inputs: inputs, expected: expected)
    }

    func fixtureInput(_ node: Node) throws(YAMLProblem) -> RuleFixture.Input {
        let members = try mapping(node, allowed: ["source", "raw", "event", "at", "received"], what: "input")
        let payload: RuleFixture.Input.Payload
        switch (members["raw"], members["event"]) {
        case (let rawNode?, nil):
            let source = try string(required(members, "source", in: node, what: "raw input"), what: "source")
            let records = try stringList(rawNode, what: "raw", allowEmptyList: false)
            payload = .raw(source: source, records: records.map { Array($0.utf8) })
        case (nil, let eventNode?):
            guard members["source"] == nil else { throw problem(members["source"], "'source' goes with 'raw', not 'event'") }
            var event = try jsonValue(eventNode)
            guard event.objectValue != nil else { throw problem(eventNode, "event must be a mapping") }
            // Times may be written as RFC 3339 text; the engine reads epoch milliseconds.
            if let text = event["time"]?.stringValue {
                guard let millis = Timestamp.parseISO8601(text) else { throw problem(eventNode, "event time must be RFC 3339 or epoch milliseconds") }
                event["time"] = .int(millis)
            }
            payload = .event(event)
        default:
            throw problem(node, "an input has exactly one of 'raw' (with 'source') or 'event'")
        }
        var times: [Int64]?
        if let atNode = members["at"] {
            times = try stringList(atNode, what: "at", allowEmptyList: false).map { text throws(YAMLProblem) in
                guard let millis = Timestamp.parseISO8601(text) else { throw problem(atNode, "at must list RFC 3339 times") }
                return millis
            }
        }
        var received = RuleFixture.defaultReceivedTime
        if let receivedNode = members["received"] {
            guard let millis = Timestamp.parseISO8601(try string(receivedNode, what: "received")) else {
                throw problem(receivedNode, "received must be an RFC 3339 time")
            }
            received = millis
        }
        return RuleFixture.Input(payload: payload, times: times, receivedTime: received)
    }

    func expectedAlert(_ node: Node) throws(YAMLProblem) -> RuleFixture.ExpectedAlert {
        let members = try mapping(node, allowed: ["rule", "group", "count", "window", "value"], what: "expected alert")
        let rule = try string(required(members, "rule", in: node, what: "expected alert"), what: "rule")
        let group = try members["group"].map { n throws(YAMLProblem) in try string(n, what: "group", allowEmpty: true) }
        let count = try members["count"].map { n throws(YAMLProblem) in Int(try int(n, what: "count")) }
        var window: ClosedRange<Int64>?
        if let windowNode = members["window"] {
            let bounds = try stringList(windowNode, what: "window").compactMap(Timestamp.parseISO8601)
            guard bounds.count == 2, bounds[0] <= bounds[1] else {
                throw problem(windowNode, "window must be [start, end] as RFC 3339 times, start <= end")
            }
            window = bounds[0]...bounds[1]
        }
        var value: Double?
        if let valueNode = members["value"] {
            guard let number = try scalarJSON(valueNode, what: "value").doubleValue, number.isFinite else {
                throw problem(valueNode, "value must be a number")
            }
            value = number
        }
        return RuleFixture.ExpectedAlert(rule: rule, group: group, count: count, window: window, value: value)
    }

    /// A YAML node as JSON: mappings to objects (string keys), sequences to arrays, scalars
    /// typed as `scalarJSON` types them (quoted scalars stay strings).
    func jsonValue(_ node: Node) throws(YAMLProblem) -> JSON {
        if let mapping = node.mapping {
            var object: [String: JSON] = [:]
            for (key, value) in mapping {
                guard let name = key.scalar?.string else { throw problem(key, "event keys must be plain strings") }
                object[name] = try jsonValue(value)
            }
            return .object(object)
        }
        if let sequence = node.sequence {
            var items: [JSON] = []
            for item in sequence { items.append(try jsonValue(item)) }
            return .array(items)
        }
        return try scalarJSON(node, what: "an event value")
    }
}
