import Detection
import Foundation
import OCSF
import Stages
import Testing

/// The built-in rule pack (`rules/`) and its fixtures (`rules/tests/`), run the way
/// `vigil rules test` runs them; and StreamAlert's CloudTrail rule test events as an outside check.
@Suite struct RulePackTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    static let rulesDirectory = repository + "/rules"

    static let builtInIDs: Set<String> = [
        "aws.root.usage", "aws.iam.access_key_created", "aws.iam.policy_admin_attached", "aws.ec2.sg_open_to_world",
        "aws.s3.bucket_public", "aws.ec2.unapproved_image", "aws.console.bruteforce", "aws.cloudtrail.logging_disabled",
        "host.ssh.bruteforce", "fim.critical_file_changed", "vuln.critical_on_exposed_asset", "config.noncompliant",
        "net.port_scan", "aws.console.bruteforce_then_success", "host.ssh.bruteforce_then_success",
        "aws.api.new_region", "aws.api.call_volume_anomaly", "net.egress_spike",
    ]

    static func loadPack() throws -> (RuleSet, [RuleFixture]) {
        (try RuleSet.load(directory: rulesDirectory), try RuleFixture.load(directory: rulesDirectory + "/tests"))
    }

    @Test func wholePackLoadsWithTheContractIDs() throws {
        let rules = try RuleSet.load(directory: Self.rulesDirectory)
        #expect(Set(rules.rules.map(\.id)) == Self.builtInIDs)
        for rule in rules.rules {
            #expect(!rule.description.isEmpty, "\(rule.id) has no description")
        }
        // Every rule but the compliance one names ATT&CK techniques.
        #expect(rules.rules.filter { $0.attack.isEmpty }.map(\.id) == ["config.noncompliant"])
    }

    @Test func everyFixturePassesWithRealAlerts() throws {
        let (rules, fixtures) = try Self.loadPack()
        let report = RuleTests.run(fixtures, rules: rules)
        for result in report.results where !result.passed {
            Issue.record("\(result.rule): \(result.name)\n\(result.diff.joined(separator: "\n"))")
        }
        #expect(report.passed)
        #expect(report.rulesWithoutFixture.isEmpty)
        #expect(report.results.count >= 80)
        // Each rule has a case that fires it and a near miss that fires nothing.
        for id in Self.builtInIDs {
            let mine = report.results.filter { $0.rule == id }
            #expect(mine.contains { $0.actual.contains { $0.rule == id } }, "\(id) never fires")
            #expect(mine.contains { $0.actual.isEmpty }, "\(id) has no near miss")
        }
        // Pass means the real alerts equal the expected ones, not merely "no error".
        for (fixture, result) in zip(fixtures.flatMap { f in f.cases.map { _ in f } }, report.results) {
            let testCase = fixture.cases.first { $0.name == result.name }!
            #expect(result.actual.count == testCase.expected.count, "\(result.rule): \(result.name)")
        }
    }

    @Test func windowCasesGiveTheExactWindows() throws {
        let (rules, fixtures) = try Self.loadPack()
        let console = try #require(fixtures.first { $0.rule == "aws.console.bruteforce" })
        let tenFailures = try #require(console.cases.first { $0.name.hasPrefix("ten failures") })
        let result = RuleTests.run(tenFailures, of: console, rules: rules)
        let at = { (text: String) in Timestamp.parseISO8601(text)! }
        #expect(result.actual == [
            RuleTests.ActualAlert(rule: "aws.console.bruteforce", group: "alice", count: 5,
                                  window: at("2024-05-01T12:00:00Z")...at("2024-05-01T12:01:20Z")),
            RuleTests.ActualAlert(rule: "aws.console.bruteforce", group: "alice", count: 5,
                                  window: at("2024-05-01T12:01:40Z")...at("2024-05-01T12:03:00Z")),
        ])
        let late = try #require(console.cases.first { $0.name.hasPrefix("late beyond lateness") })
        #expect(RuleTests.run(late, of: console, rules: rules).actual.isEmpty)
    }

    @Test func brokenFixtureFailsWithADiff() throws {
        let rules = try RuleSet.load(directory: Self.rulesDirectory)
        let fixture = try RuleFixture.parse(yaml: """
            rule: aws.cloudtrail.logging_disabled
            cases:
              - name: wrong expectation
                input:
                  - event: {class_uid: 6003, time: 2024-05-01T12:00:00Z, metadata: {uid: e1},
                            api: {operation: StopLogging, service: {name: cloudtrail.amazonaws.com}}}
                expect:
                  - {rule: aws.cloudtrail.logging_disabled, count: 2}
              - name: near miss that is not one
                input:
                  - event: {class_uid: 6003, time: 2024-05-01T12:00:00Z, metadata: {uid: e2},
                            api: {operation: DeleteTrail, service: {name: cloudtrail.amazonaws.com}}}
                expect: []
              - name: unparseable input
                input:
                  - source: cloudtrail
                    raw: '{"eventName": "StopLogging"}'
                expect: []
            """, file: "broken.yaml")
        let report = RuleTests.run([fixture], rules: rules)
        let noon = Timestamp.formatISO8601(Timestamp.parseISO8601("2024-05-01T12:00:00Z")!)
        #expect(report.results.map(\.passed) == [false, false, false])
        #expect(!report.passed)
        #expect(report.results[0].diff == [
            "- expected aws.cloudtrail.logging_disabled count=2",
            "+ actual   aws.cloudtrail.logging_disabled count=1 window=[\(noon), \(noon)]",
        ])
        #expect(report.results[1].diff.count == 1 && report.results[1].diff[0].hasPrefix("+ actual   aws.cloudtrail.logging_disabled"))
        #expect(report.results[2].diff.first?.hasPrefix("! input 1 record 1: invalid_time") == true)
        // The other eleven rules have no fixture in this run.
        #expect(report.rulesWithoutFixture.count == Self.builtInIDs.count - 1)
    }

    @Test func fixtureProblemsNameFileAndLine() {
        #expect(throws: RuleError(code: .invalidFixture, file: "x.yaml", line: 4,
                                  reason: "an input has exactly one of 'raw' (with 'source') or 'event'")) {
            try RuleFixture.parse(yaml: "cases:\n  - name: a\n    input:\n      - at: 2024-05-01T12:00:00Z\n    expect: []\n",
                                  file: "x.yaml")
        }
        #expect(throws: RuleError.self) {
            try RuleFixture.parse(yaml: "cases:\n  - name: a\n    input: []\n    expect: []\n", file: "x.yaml")
        }
    }

    @Test func ruleLoaderSkipsTheTestsDirectory() throws {
        // rules/tests holds fixtures, which are not rules; loading must not try to read them as rules.
        let rules = try RuleSet.load(directory: Self.rulesDirectory)
        #expect(rules.rules.allSatisfy { !($0.file ?? "").contains("/tests/") })
    }

    /// StreamAlert's rule test events (Apache-2.0, Tests/RulePackFixtures/streamalert) against the
    /// built-in rules that cover the same ground. Records are CloudTrail events, EventBridge
    /// envelopes or `Records` files; StreamAlert writes `"..."` for most values, so event times
    /// are replaced with a fixed one (rule logic is what is checked, not the parser).
    @Test func streamAlertCloudTrailEvents() throws {
        let rules = try RuleSet.load(directory: Self.rulesDirectory)
        let path = Self.repository + "/Tests/RulePackFixtures/streamalert/cloudtrail_rule_events.jsonl"
        let text = try String(contentsOfFile: path, encoding: .utf8)
        // StreamAlert rule → the built-in rule expected to agree with it, per record.
        func expectedVigilRules(streamAlertRules: [String], file: String, index: Int64) -> Set<String>? {
            switch (file, index) {
            case ("cloudtrail_root_account_usage", _):
                return streamAlertRules.isEmpty ? [] : ["aws.root.usage"]
            case ("cloudtrail_security_group_ingress_anywhere", _):
                return streamAlertRules.isEmpty ? [] : ["aws.ec2.sg_open_to_world"]
            case ("cloudtrail_put_bucket_acl", _):
                return streamAlertRules.isEmpty ? [] : ["aws.s3.bucket_public"]
            case ("cloudtrail_public_resources", 0):  // the S3 one; the others are other services
                return ["aws.s3.bucket_public"]
            case ("cloudtrail_public_resources", _):
                return []
            case ("cloudtrail_critical_api_calls", 3):  // StopLogging
                return ["aws.cloudtrail.logging_disabled"]
            case ("cloudtrail_critical_api_calls", 11), ("cloudtrail_critical_api_calls", 12), ("cloudtrail_critical_api_calls", 14):
                return ["aws.s3.bucket_public"]  // public access block removed or switched off
            case ("cloudtrail_critical_api_calls", 2):
                return nil  // UpdateTrail: StreamAlert alerts, ours deliberately does not (docs/rules.md)
            case ("cloudtrail_critical_api_calls", _):
                return []  // subnet/VPC/DB/flow-log/GuardDuty/Config changes: no built-in rule yet
            case ("cloudtrail_aws_config", _):
                return []  // PutEvaluations API calls; config.noncompliant reads AWS Config notifications
            default:
                return nil
            }
        }
        var checked = 0
        var agreed = 0
        var firing = 0
        var skipped = 0
        var unparseable = 0
        for line in text.split(separator: "\n") {
            let record = try JSON.parse(String(line))
            let file = (record["source_file"]?.stringValue ?? "").split(separator: "/").last.map { String($0.dropLast(5)) } ?? ""
            let index = record["index"]?.intValue ?? -1
            let streamAlertRules = record["expected_rules"]?.arrayValue?.compactMap(\.stringValue) ?? []
            guard let expected = expectedVigilRules(streamAlertRules: streamAlertRules, file: file, index: index),
                  let data = record["data"] else { skipped += 1; continue }
            let bytes = Self.withFixedTimes(data).serialized()
            let testCase = RuleFixture.Case(name: "\(file)#\(index)", line: nil,
                                            inputs: [RuleFixture.Input(payload: .raw(source: "cloudtrail", records: [bytes]))],
                                            expected: expected.map { RuleFixture.ExpectedAlert(rule: $0) })
            let result = RuleTests.run(testCase, of: RuleFixture(rule: "streamalert", file: path, cases: [testCase]), rules: rules)
            checked += 1
            // A placeholder-only envelope the parser cannot read (StreamAlert's `"..."` eventSource
            // hides that it is CloudTrail) is counted, not compared.
            if !result.problems.isEmpty { unparseable += 1; continue }
            if !expected.isEmpty { firing += 1 }
            if result.passed { agreed += 1 } else {
                Issue.record("\(file)#\(index): \(result.diff.joined(separator: "; "))")
            }
        }
        // 36 records copied: 1 not mapped (UpdateTrail), 1 unreadable placeholder envelope, 34
        // compared: 8 where StreamAlert's rule and ours both fire, 26 where ours must stay silent.
        #expect(checked == 35)
        #expect(unparseable == 1)
        #expect(firing == 8)
        #expect(agreed == checked - unparseable)
        #expect(skipped == 1)
    }

    /// `data` with every `"..."` (or missing) `eventTime` set to a fixed time, wherever the
    /// CloudTrail event sits: top level, EventBridge `detail`, or `Records`.
    static func withFixedTimes(_ data: JSON) -> JSON {
        func fix(_ event: JSON) -> JSON {
            var event = event
            if event["eventTime"]?.stringValue.flatMap(Timestamp.parseISO8601) == nil { event["eventTime"] = "2024-05-01T12:00:00Z" }
            return event
        }
        var data = data
        if let records = data["Records"]?.arrayValue {
            data["Records"] = .array(records.map(fix))
        } else if data["detail"]?.objectValue != nil {
            data["detail"] = fix(data["detail"]!)
        } else {
            data = fix(data)
        }
        return data
    }
}
