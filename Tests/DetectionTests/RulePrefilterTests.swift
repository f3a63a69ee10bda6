@testable import Detection
import OCSF
import Testing

/// The select step's prefilter may only skip rules that cannot match: for every rule and every
/// event, a match implies the prefilter kept the rule.
@Suite("Rule prefilter")
struct RulePrefilterTests {
    /// Rules beside the shipped pack that exercise what the index must get right: `in`, a
    /// test outside the top-level `all`, a case-insensitive test, numbers written as text and
    /// as decimals.
    static let crafted = """
        id: p.in
        version: 1
        title: in
        severity: low
        match:
          all:
            - {field: api.operation, in: [CreateUser, DeleteUser]}
            - {field: class_uid, equals: 6003}
        ---
        id: p.any
        version: 1
        title: any
        severity: low
        match:
          any:
            - {field: api.operation, equals: CreateUser}
            - {field: status_id, equals: 2}
        ---
        id: p.nocase
        version: 1
        title: case-insensitive
        severity: low
        match:
          all:
            - {field: api.operation, equals: createuser, case_insensitive: true}
            - {field: status_id, equals: "1"}
        ---
        id: p.decimal
        version: 1
        title: decimal operand
        severity: low
        match: {field: dst_endpoint.port, equals: 22.0}
        ---
        id: p.not
        version: 1
        title: not
        severity: low
        match:
          all:
            - {field: class_uid, equals: 3002}
            - not: {field: status_id, equals: 1}
        """

    /// Events whose indexed fields take every operand of every rule, and variants of them: as
    /// text, as a decimal, inside an array, null, an object, another value, absent.
    static func events(rules: [Rule], count: Int, seed: UInt64) -> [JSON] {
        var operands: [String: [JSON]] = [:]
        for rule in rules {
            for test in RulePrefilter.indexable(rule.match) { operands[test.path, default: []] += test.values }
        }
        operands["status_id", default: []] += [1, 2]
        var generator = SeededGenerator(seed: seed)
        func variant(of value: JSON) -> JSON? {
            switch Int.random(in: 0..<10, using: &generator) {
            case 0: return nil
            case 1: return .null
            case 2: return .object(["v": value])
            case 3: return .array([.string("other"), value])
            case 4: return value.scalarText.map { .string($0) }
            case 5: return value.doubleValue.map { .double($0) }
            case 6: return value.scalarText.map { .string($0.uppercased()) }
            default: return value
            }
        }
        return (0..<count).map { index in
            var event = OCSFEvent.base(class: .apiActivity, activityID: 1, activityName: "Create", time: t0 + Int64(index),
                                       status: .success, uid: "e\(index)", product: "CloudTrail", vendor: "AWS")
            for (path, values) in operands.sorted(by: { $0.key < $1.key }) {
                if let value = variant(of: values.randomElement(using: &generator)!) { event.set(path, value) } else { event.set(path, nil) }
            }
            return event
        }
    }

    @Test("a rule that matches is never skipped")
    func soundness() throws {
        let rules = try loadShippedRules().rules + rulesFrom(Self.crafted).rules
        var builder = FieldPaths.Builder()
        let prefilter = RulePrefilter(rules: rules, paths: &builder)
        let compiled = rules.map { CompiledCondition($0.match, paths: &builder) }
        let paths = builder.build()
        var matches = 0
        var skipped = 0
        for event in Self.events(rules: rules, count: 20_000, seed: 7) {
            var fields = EventFields(event, paths: paths)
            let passed = prefilter.passedTests(&fields)
            for (index, rule) in rules.enumerated() {
                let kept = prefilter.mayMatch(rule: index, passed: passed)
                let matched = evaluate(rule.match, on: event)
                if matched {
                    matches += 1
                    if !kept { Issue.record("rule \(rule.id) skipped for an event it matches: \(event.jsonText)") }
                }
                if !kept { skipped += 1 }
                // The compiled form, reading through the event's shared cache, agrees.
                if compiled[index].matches(&fields) != matched {
                    Issue.record("rule \(rule.id): compiled condition disagrees (\(!matched)) on \(event.jsonText)")
                }
            }
        }
        // Both sides are exercised: rules match, and rules are skipped.
        #expect(matches > 1_000, "\(matches) matches")
        #expect(skipped > 100_000, "\(skipped) skipped")
    }

    @Test("the field cache finds what JSON.value(at:) finds, for every path of the pack and its prefixes")
    func fieldCache() throws {
        let rules = try loadShippedRules().rules + rulesFrom(Self.crafted).rules
        var builder = FieldPaths.Builder()
        var probes: [(String, Int)] = []
        func probe(_ path: String) { probes.append((path, builder.node(path))) }
        for rule in rules {
            for test in Self.fieldTests(rule.match) {
                let components = test.path.split(separator: ".")
                for length in 1...components.count { probe(components.prefix(length).joined(separator: ".")) }
            }
        }
        for path in ["unmapped.requestParameters.instancesSet.items.0.imageId", "resources.1.uid", "resources.x", "a..b", "time"] {
            probe(path)
        }
        let paths = builder.build()
        var events = Self.events(rules: rules, count: 500, seed: 11)
        events.append(["resources": [["uid": "r0"], ["uid": "r1"]], "a": ["": ["b": 1]], "time": 5])
        events.append(.array([1, 2]))
        var found = 0
        for event in events {
            var fields = EventFields(event, paths: paths)
            // Twice: the second read comes from the cache.
            for (path, node) in probes + probes {
                let expected = event.value(at: path)
                if fields.value(node) != expected { Issue.record("\(path): cache \(String(describing: fields.value(node))), want \(String(describing: expected))") }
                if expected != nil { found += 1 }
            }
        }
        #expect(found > 10_000, "\(found) values found")
        // The same from the events' bytes, scanned, not parsed; and from documents only bytes
        // can spell: repeated members (the last counts), escaped names, odd spacing.
        var documents = events.filter { $0.objectValue != nil }.map { $0.serialized() }
        documents += [
            #"{"api":{"operation":"ConsoleLogin"},"api":{"service":{"name":"signin.amazonaws.com"}},"time":1}"#,
            #"{"api":{"operation":"ConsoleLogin"},"api":null,"class_uid":3002}"#,
            #"{"\u0061pi" : {"operation" : "StopLogging"} , "class_uid" : 6003 , "actor":{"user":{"name":"x"}},"actor":7}"#,
            #"{"resources":[{"uid":"r0"}],"resources":{"1":{"uid":"r1"}}}"#,
        ].map { Array($0.utf8) }
        var scannedFound = 0
        for bytes in documents {
            let event = try JSON.parse(bytes)
            var fields = EventFields(scanned: try #require(try JSON.scan(bytes, plan: paths.plan)), paths: paths)
            for (path, node) in probes + probes {
                let expected = event.value(at: path)
                if fields.value(node) != expected {
                    Issue.record("\(path): scanned \(String(describing: fields.value(node))), want \(String(describing: expected)) in \(event.jsonText)")
                }
                if expected != nil { scannedFound += 1 }
            }
            #expect(fields.document() == event)
        }
        #expect(scannedFound >= found)
    }

    @Test("selecting from an event's bytes selects what selecting from the parsed event does")
    func selectionFromBytes() throws {
        let rules = try loadShippedRules()
        let selector = RuleSelector(rules: rules)
        var selected = 0
        for (index, event) in Self.events(rules: rules.rules, count: 5_000, seed: 13).enumerated() {
            var event = event
            // Some without `metadata.uid`: their uid is hashed from the whole event.
            if index % 7 == 0 { event.set("metadata.uid", nil) }
            let fromTree = selector.select(event)
            let fromBytes = try #require(try selector.select(bytes: event.serialized()))
            if fromTree != fromBytes { Issue.record("selections differ for \(event.jsonText)") }
            selected += fromTree.count
        }
        #expect(selected > 500, "\(selected) selections")
        #expect(try selector.select(bytes: Array("[1]".utf8)) == nil)
        #expect(throws: JSONParseError.self) { try selector.select(bytes: Array(#"{"class_uid":3002"#.utf8)) }
    }

    static func fieldTests(_ condition: Condition) -> [FieldTest] {
        switch condition {
        case .all(let members), .any(let members): members.flatMap(fieldTests)
        case .not(let member): fieldTests(member)
        case .field(let test): [test]
        }
    }

    @Test("the selector's output is unchanged: a console failure selects the sign-in rules only")
    func selection() throws {
        let rules = try loadShippedRules()
        let selector = RuleSelector(rules: rules)
        let selected = selector.select(consoleLogin(user: "alice", at: t0, uid: "f1")).map { selection -> String in
            switch selection {
            case .alert(let alert): alert.value(at: "vigil.rule.id")?.stringValue ?? "?"
            case .partial(let partial): partial.ruleID
            }
        }
        let expected = rules.rules.filter { evaluate($0.match, on: consoleLogin(user: "alice", at: t0, uid: "f1")) }.map(\.id)
        #expect(selected == expected)
        #expect(selected.contains("aws.console.bruteforce"))
    }
}
