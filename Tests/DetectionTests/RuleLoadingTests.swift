import Detection
import Foundation
import OCSF
import Testing

@Suite("Rule files")
struct RuleLoadingTests {
    @Test func shippedRulesLoad() throws {
        let rules = try loadShippedRules()
        let ids = rules.rules.map(\.id)
        #expect(ids.contains("aws.cloudtrail.logging_disabled"))
        #expect(ids.contains("aws.console.bruteforce"))

        let logging = try #require(rules.rule(id: "aws.cloudtrail.logging_disabled"))
        #expect(logging.severity == .high)
        #expect(logging.attack == ["T1562.008"])
        #expect(logging.window == nil)
        #expect(logging.file?.hasSuffix("rules/aws/cloudtrail_logging_disabled.yaml") == true)

        let brute = try #require(rules.rule(id: "aws.console.bruteforce"))
        let window = try #require(brute.window)
        #expect(window.groupBy == ["actor.user.name"])
        #expect(window.kind == .sliding)
        #expect(window.sizeMillis == 300_000)
        #expect(window.aggregate == .count)
        #expect(window.threshold == Threshold(op: .greaterThanOrEqual, value: 5))
        #expect(window.latenessMillis == 30_000)
        #expect(window.graceMillis == 0)
    }

    @Test func windowDefaultsAndDurations() throws {
        let yaml = """
            id: t.window
            version: 1
            title: T
            severity: low
            match: {field: a, exists: true}
            window: {group_by: a, type: sliding, size: 1h, threshold: "> 10", grace: 500ms}
            """
        let window = try #require(try RuleSet.parse(yaml: yaml, file: "w.yaml")[0].window)
        #expect(window.sizeMillis == 3_600_000)
        #expect(window.graceMillis == 500)
        #expect(window.latenessMillis == WindowSpec.defaultLatenessMillis)
        #expect(window.threshold == Threshold(op: .greaterThan, value: 10))
    }

    static let header = """
        id: test.rule
        version: 1
        title: Test
        severity: low

        """

    /// Each case: the YAML, the line the error must name, and a word of the reason.
    static let invalidCases: [(name: String, yaml: String, line: Int, code: RuleError.Code, reason: String)] = [
        ("unknown key", header + "match: {field: a, equals: x}\ncolour: red\n", 6, .invalidRule, "unknown key 'colour'"),
        ("bad op", header + "match:\n  field: a\n  matches: x\n", 7, .invalidRule, "unknown key 'matches'"),
        ("two ops", header + "match:\n  field: a\n  equals: x\n  prefix: y\n", 6, .invalidRule, "exactly one operator"),
        ("bad regex", header + "match:\n  field: a\n  regex: \"([a-z\"\n", 7, .invalidRule, "regular expression"),
        ("bad cidr", header + "match:\n  field: ip\n  cidr: [10.0.0.0/8, 10.0.0.0/33]\n", 7, .invalidRule, "prefix length"),
        ("missing id", "version: 1\ntitle: T\nseverity: low\nmatch: {field: a, exists: true}\n", 1, .invalidRule, "missing 'id'"),
        ("missing id in second document",
         header + "match: {field: a, exists: true}\n---\nversion: 1\ntitle: U\nseverity: low\nmatch: {field: a, exists: true}\n",
         7, .invalidRule, "missing 'id'"),
        ("bad severity", "id: t\nversion: 1\ntitle: T\nseverity: severe\nmatch: {field: a, exists: true}\n", 4, .invalidRule, "severity"),
        ("bad version", "id: t\nversion: one\ntitle: T\nseverity: low\nmatch: {field: a, exists: true}\n", 2, .invalidRule, "version"),
        ("bad technique", header + "attack: [Evasion]\nmatch: {field: a, exists: true}\n", 5, .invalidRule, "ATT&CK"),
        ("bad duration", header + "match: {field: a, exists: true}\nwindow:\n  group_by: [a]\n  type: sliding\n  size: 5 minutes\n  threshold: \">= 5\"\n",
         9, .invalidRule, "duration"),
        ("zero size", header + "match: {field: a, exists: true}\nwindow:\n  group_by: [a]\n  type: sliding\n  size: 0s\n  threshold: \">= 5\"\n",
         9, .invalidRule, "longer than zero"),
        ("bad threshold", header + "match: {field: a, exists: true}\nwindow:\n  group_by: [a]\n  type: sliding\n  size: 5m\n  threshold: at least 5\n",
         10, .invalidRule, "threshold"),
        ("unreachable threshold", header + "match: {field: a, exists: true}\nwindow:\n  group_by: [a]\n  type: sliding\n  size: 5m\n  threshold: \"< 3\"\n",
         10, .invalidRule, "threshold"),
        ("bad window type", header + "match: {field: a, exists: true}\nwindow:\n  group_by: [a]\n  type: rolling\n  size: 5m\n  threshold: \">= 5\"\n",
         8, .invalidRule, "window type"),
        ("unknown aggregate", header + "match: {field: a, exists: true}\nwindow:\n  group_by: [a]\n  type: sliding\n  size: 5m\n  aggregate: median\n  threshold: \">= 5\"\n",
         10, .invalidRule, "unknown aggregate 'median'"),
        ("unknown aggregate with a field", header + "match: {field: a, exists: true}\nwindow:\n  group_by: [a]\n  type: sliding\n  size: 5m\n  aggregate: {median: b}\n  threshold: \">= 5\"\n",
         10, .invalidRule, "unknown aggregate 'median'"),
        ("aggregate without its field", header + "match: {field: a, exists: true}\nwindow:\n  group_by: [a]\n  type: sliding\n  size: 5m\n  aggregate: distinct\n  threshold: \">= 5\"\n",
         10, .invalidRule, "needs a field"),
        ("aggregate with an empty field", header + "match: {field: a, exists: true}\nwindow:\n  group_by: [a]\n  type: sliding\n  size: 5m\n  aggregate: {sum: \"\"}\n  threshold: \">= 5\"\n",
         10, .invalidRule, "needs a field path"),
        ("aggregate with a null field", header + "match: {field: a, exists: true}\nwindow:\n  group_by: [a]\n  type: sliding\n  size: 5m\n  aggregate: {max: ~}\n  threshold: \">= 5\"\n",
         10, .invalidRule, "needs a field path"),
        ("aggregate with a bad field path", header + "match: {field: a, exists: true}\nwindow:\n  group_by: [a]\n  type: sliding\n  size: 5m\n  aggregate: {min: a..b}\n  threshold: \">= 5\"\n",
         10, .invalidRule, "dotted names"),
        ("two aggregates", header + "match: {field: a, exists: true}\nwindow:\n  group_by: [a]\n  type: sliding\n  size: 5m\n  aggregate: {sum: a, max: b}\n  threshold: \">= 5\"\n",
         10, .invalidRule, "aggregate must be"),
        ("count with a field", header + "match: {field: a, exists: true}\nwindow:\n  group_by: [a]\n  type: sliding\n  size: 5m\n  aggregate: {count: a}\n  threshold: \">= 5\"\n",
         10, .invalidRule, "takes no field"),
        ("numeric threshold not a number", header + "match: {field: a, exists: true}\nwindow:\n  group_by: [a]\n  type: sliding\n  size: 5m\n  aggregate: {sum: b}\n  threshold: \"> lots\"\n",
         11, .invalidRule, "threshold must look like"),
        ("numeric threshold below", header + "match: {field: a, exists: true}\nwindow:\n  group_by: [a]\n  type: sliding\n  size: 5m\n  aggregate: {avg: b}\n  threshold: \"< 3.5\"\n",
         11, .invalidRule, "must use >, >= or =="),
        ("distinct threshold not whole", header + "match: {field: a, exists: true}\nwindow:\n  group_by: [a]\n  type: sliding\n  size: 5m\n  aggregate: {distinct: b}\n  threshold: \">= 2.5\"\n",
         11, .invalidRule, "whole number"),
        ("equals list", header + "match:\n  field: a\n  equals: [x, y]\n", 7, .invalidRule, "single value"),
        ("empty all", header + "match:\n  all: []\n", 6, .invalidRule, "non-empty list"),
        ("bad id", "id: has space\nversion: 1\ntitle: T\nseverity: low\nmatch: {field: a, exists: true}\n", 1, .invalidRule, "id may hold"),
        ("broken yaml", header + "match: {field: a, equals: [x\n", 6, .invalidYAML, "not valid YAML"),
        ("duplicate id in file", header + "match: {field: a, exists: true}\n---\n" + header + "match: {field: a, exists: true}\n",
         7, .duplicateRuleID, "defined twice"),
    ]

    @Test(arguments: invalidCases.indices)
    func invalidRuleNamesFileAndLine(_ index: Int) {
        let sample = Self.invalidCases[index]
        do {
            let rules = try RuleSet.parse(yaml: sample.yaml, file: "rules/bad.yaml")
            Issue.record("\(sample.name): parsed \(rules.count) rule(s)")
        } catch {
            #expect(error.file == "rules/bad.yaml", "\(sample.name)")
            #expect(error.line == sample.line, "\(sample.name): \(error)")
            #expect(error.code == sample.code, "\(sample.name): \(error)")
            #expect(error.reason.contains(sample.reason), "\(sample.name): \(error)")
            #expect(error.description.hasPrefix("rules/bad.yaml:\(sample.line): "), "\(sample.name)")
            #expect(!error.isRetriable)
        }
    }

    @Test func duplicateIDsAcrossFilesAreRejected() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-rules-\(UInt64.random(in: 0 ... .max))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let rule = Self.header + "match: {field: a, exists: true}\n"
        try rule.write(toFile: directory + "/a.yaml", atomically: true, encoding: .utf8)
        try rule.write(toFile: directory + "/b.yml", atomically: true, encoding: .utf8)
        try "ignored".write(toFile: directory + "/README.md", atomically: true, encoding: .utf8)
        #expect {
            try RuleSet.load(directory: directory)
        } throws: { error in
            guard let error = error as? RuleError else { return false }
            return error.code == .duplicateRuleID && error.file == directory + "/b.yml"
        }
        try FileManager.default.removeItem(atPath: directory + "/b.yml")
        #expect(try RuleSet.load(directory: directory).rules.count == 1)
    }

    @Test func missingDirectoryIsUnreadable() {
        #expect {
            try RuleSet.load(directory: "/nonexistent/vigil/rules")
        } throws: { error in
            (error as? RuleError)?.code == .unreadableFile
        }
    }

    @Test func errorDescriptionCarriesNoPartialData() {
        let record: JSON = ["rule_id": "r", "rule_version": 1, "group_key": "secret-user", "group": ["actor.user.name": 7]]
        do {
            _ = try Partial(json: record)
            Issue.record("accepted a malformed partial")
        } catch {
            #expect(error.code == .invalidPartial)
            #expect(!error.description.contains("secret-user"))
        }
    }

    @Test func partialSourceRoundTripsAndIsOptional() throws {
        var partial = Partial(ruleID: "r", ruleVersion: 1, groupKey: "alice", groupValues: ["actor.user.name": "alice"],
                              eventTime: 5, eventUID: "e1")
        #expect(partial.json()["src"] == nil)
        #expect(try Partial(json: partial.json()).source == nil)
        partial.source = "vigil.enriched/3"
        #expect(try Partial(json: JSON.parse(partial.json().serialized())) == partial)
        var bad = partial.json()
        bad["src"] = 3
        #expect(throws: RuleError.self) { try Partial(json: bad) }
    }
}
