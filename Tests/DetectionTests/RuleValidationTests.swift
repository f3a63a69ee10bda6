import Detection
import OCSF
import Testing

@Suite("Rule validation: window types, suppress, sequence, absence")
struct RuleValidationTests {
    static let header = "id: test.rule\nversion: 1\ntitle: Test\nseverity: low\n"
    static let match = "match: {field: a, exists: true}\n"

    /// A window block (after `window:`) with the given member lines.
    static func window(_ lines: String) -> String {
        header + match + "window:\n  group_by: [a]\n" + lines
    }

    /// Each case: the YAML, the line the error must name, and a word of the reason.
    static let invalidCases: [(name: String, yaml: String, line: Int, reason: String)] = [
        ("hopping without advance", window("  type: hopping\n  size: 5m\n  threshold: \">= 5\"\n"), 7, "missing 'advance'"),
        ("hopping advance beyond size", window("  type: hopping\n  size: 5m\n  advance: 10m\n  threshold: \">= 5\"\n"), 10,
         "must not exceed its size"),
        ("hopping with too many windows", window("  type: hopping\n  size: 1h\n  advance: 1s\n  threshold: \">= 5\"\n"), 10,
         "at most 100 advances"),
        ("tumbling with advance", window("  type: tumbling\n  size: 5m\n  advance: 1m\n  threshold: \">= 5\"\n"), 10,
         "takes size, not advance"),
        ("tumbling with gap", window("  type: tumbling\n  size: 5m\n  gap: 1m\n  threshold: \">= 5\"\n"), 10, "not gap"),
        ("session with size", window("  type: session\n  size: 5m\n  threshold: \">= 5\"\n"), 9, "takes gap and max_size, not size"),
        ("session without gap", window("  type: session\n  threshold: \">= 5\"\n"), 7, "missing 'gap'"),
        ("session max below gap", window("  type: session\n  gap: 5m\n  max_size: 1m\n  threshold: \">= 5\"\n"), 10,
         "at least its gap"),
        ("sliding below", window("  type: sliding\n  size: 5m\n  threshold: \"< 5\"\n"), 10, "must use >, >= or =="),
        ("sliding between", window("  type: sliding\n  size: 5m\n  threshold: \"between 2 and 5\"\n"), 10, "must use >, >= or =="),
        ("between reversed", window("  type: tumbling\n  size: 5m\n  threshold: \"between 5 and 2\"\n"), 10, "lower bound first"),
        ("between malformed", window("  type: tumbling\n  size: 5m\n  threshold: \"between 5 or 2\"\n"), 10, "threshold must look like"),
        ("count below one", window("  type: tumbling\n  size: 5m\n  threshold: \"< 1\"\n"), 10, "one or more events reach"),
        ("count between fractions", window("  type: session\n  gap: 5m\n  threshold: \"between 1.5 and 3\"\n"), 10, "whole number"),
        ("suppress on a single-event rule", header + match + "suppress: 1h\n", 6, "suppress needs a group key"),
        ("bad suppress", window("  type: tumbling\n  size: 5m\n  threshold: \">= 5\"\n") + "suppress: often\n", 11, "duration"),
        ("window and sequence", window("  type: tumbling\n  size: 5m\n  threshold: \">= 5\"\n")
            + "sequence:\n  group_by: [a]\n  within: 5m\n  steps: [{match: {field: a, exists: true}}, {match: {field: b, exists: true}}]\n",
         12, "at most one of"),
        ("sequence of one step", header + "sequence:\n  group_by: [a]\n  within: 5m\n  steps:\n    - match: {field: a, exists: true}\n",
         9, "2 to 20 steps"),
        ("sequence step count zero",
         header + "sequence:\n  group_by: [a]\n  within: 5m\n  steps:\n    - match: {field: a, exists: true}\n      count: 0\n    - match: {field: b, exists: true}\n",
         10, "step count"),
        ("sequence step without match",
         header + "sequence:\n  group_by: [a]\n  within: 5m\n  steps:\n    - count: 2\n    - match: {field: b, exists: true}\n",
         9, "missing 'match'"),
        ("sequence without within",
         header + "sequence:\n  group_by: [a]\n  steps:\n    - match: {field: a, exists: true}\n    - match: {field: b, exists: true}\n",
         6, "missing 'within'"),
        ("sequence unknown key",
         header + "sequence:\n  group_by: [a]\n  within: 5m\n  order: strict\n  steps: [{match: {field: a, exists: true}}, {match: {field: b, exists: true}}]\n",
         8, "unknown key 'order'"),
        ("absence same events",
         header + "absence:\n  group_by: [a]\n  trigger: {field: a, exists: true}\n  expected: {field: a, exists: true}\n  within: 5m\n",
         8, "must differ"),
        ("absence without expected", header + "absence:\n  group_by: [a]\n  trigger: {field: a, exists: true}\n  within: 5m\n",
         6, "missing 'expected'"),
        ("no match and no steps", header + "tags: [x]\n", 1, "missing 'match'"),
    ]

    @Test(arguments: invalidCases.indices)
    func invalidRuleNamesFileAndLine(_ index: Int) {
        let sample = Self.invalidCases[index]
        do {
            let rules = try RuleSet.parse(yaml: sample.yaml, file: "rules/bad.yaml")
            Issue.record("\(sample.name): parsed \(rules.count) rule(s)")
        } catch {
            #expect(error.code == .invalidRule, "\(sample.name): \(error)")
            #expect(error.line == sample.line, "\(sample.name): \(error)")
            #expect(error.reason.contains(sample.reason), "\(sample.name): \(error)")
            #expect(error.description.hasPrefix("rules/bad.yaml:\(sample.line): "), "\(sample.name)")
        }
    }

    @Test func everyWindowTypeParses() throws {
        let tumbling = try #require(try RuleSet.parse(yaml: Self.window("  type: tumbling\n  size: 5m\n  threshold: \"< 3\"\n  lateness: 1m\n  grace: 10s\n"),
                                                      file: "w.yaml")[0].window)
        #expect(tumbling.kind == .tumbling)
        #expect(tumbling.sizeMillis == 300_000)
        #expect(tumbling.threshold == Threshold(op: .lessThan, value: 3))
        #expect(tumbling.latenessMillis == 60_000)
        #expect(tumbling.graceMillis == 10_000)
        let hopping = try #require(try RuleSet.parse(yaml: Self.window("  type: hopping\n  size: 10m\n  advance: 5m\n  threshold: \"between 1 and 4\"\n"),
                                                     file: "w.yaml")[0].window)
        #expect(hopping.advanceMillis == 300_000)
        #expect(hopping.threshold == Threshold(op: .between, value: 1, upper: 4))
        #expect(hopping.threshold.description == "between 1 and 4")
        let session = try #require(try RuleSet.parse(yaml: Self.window("  type: session\n  gap: 30s\n  max_size: 1h\n  threshold: \"<= 2\"\n"),
                                                     file: "w.yaml")[0].window)
        #expect(session.gapMillis == 30_000)
        #expect(session.sizeMillis == 3_600_000)
    }

    @Test func sequenceAndAbsenceParse() throws {
        let sequence = try RuleSet.parse(yaml: sequenceYAML + "\nsuppress: 1h\n", file: "s.yaml")[0]
        let spec = try #require(sequence.sequence)
        #expect(spec.groupBy == ["actor.user.name"])
        #expect(spec.withinMillis == 300_000)
        #expect(spec.steps.map(\.count) == [3, 1])
        #expect(spec.latenessMillis == WindowSpec.defaultLatenessMillis)
        #expect(sequence.suppressMillis == 3_600_000)
        #expect(sequence.match == .all([]))
        #expect(sequence.isStateful)
        let absence = try #require(try RuleSet.parse(yaml: absenceYAML, file: "a.yaml")[0].absence)
        #expect(absence.withinMillis == 900_000)
        #expect(absence.graceMillis == 0)
    }

    @Test func shippedStatefulRulesLoadAsDocumented() throws {
        let rules = try loadShippedRules()
        let console = try #require(rules.rule(id: "aws.console.bruteforce_then_success")?.sequence)
        #expect(console.groupBy == ["actor.user.name"])
        #expect(console.steps.map(\.count) == [5, 1])
        #expect(console.withinMillis == 600_000)
        let ssh = try #require(rules.rule(id: "host.ssh.bruteforce_then_success")?.sequence)
        #expect(ssh.groupBy == ["src_endpoint.ip"])
        #expect(ssh.steps.map(\.count) == [10, 1])
        let region = try #require(rules.rule(id: "aws.api.new_region")?.firstSeen)
        #expect(region.field == "cloud.region")
        #expect(region.lookbackMillis == 30 * 86_400_000)
        #expect(region.minEvents == 20)
        let volume = try #require(rules.rule(id: "aws.api.call_volume_anomaly")?.baseline)
        #expect(volume.method == .zscore)
        #expect(volume.aggregate == .count)
        let egress = try #require(rules.rule(id: "net.egress_spike")?.baseline)
        #expect(egress.method == .ewma)
        #expect(egress.aggregate == .sum(field: "traffic.bytes"))
    }
}
