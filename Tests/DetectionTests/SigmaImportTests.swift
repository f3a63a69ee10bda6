import Detection
import Foundation
import OCSF
import Testing

// Shared files used (read-only, skipped cleanly when absent):
//   /work/shared/data/sigma/rules/cloud/aws/cloudtrail/*.yml              57 SigmaHQ CloudTrail rules
//   /work/shared/data/sigma/rules-placeholder/cloud/aws/cloudtrail/*.yml   1 rule using |expand placeholders
//   /work/shared/data/sigma/unsupported/cloud/*.yml                        8 rules SigmaHQ marks unsupported
//                                                                          (legacy `| count()` aggregations, `near`)
//   /work/shared/data/sigma/rules/linux/**                                 39 Linux rules (unsupported logsource)
// The first three are the 66 SigmaHQ AWS CloudTrail rules the conversion rate is measured on.

private let sigmaRoot = "/work/shared/data/sigma"
private let cloudTrailDirectories = [
    "\(sigmaRoot)/rules/cloud/aws/cloudtrail",
    "\(sigmaRoot)/rules-placeholder/cloud/aws/cloudtrail",
    "\(sigmaRoot)/unsupported/cloud",
]
private let haveSigmaData = FileManager.default.fileExists(atPath: cloudTrailDirectories[0])

/// Every *.yml under `directory`, sorted, with its text.
private func sigmaFiles(_ directory: String) throws -> [(path: String, text: String)] {
    let names = try #require(FileManager.default.enumerator(atPath: directory)?.allObjects as? [String])
    return try names.filter { $0.hasSuffix(".yml") }.sorted().map { name in
        let path = directory + "/" + name
        return (path, try String(contentsOfFile: path, encoding: .utf8))
    }
}

private func convertSharedRule(_ relativePath: String) throws -> SigmaImportReport.Outcome {
    let path = "\(sigmaRoot)/\(relativePath)"
    let report = SigmaImport.convert(files: [(path, try String(contentsOfFile: path, encoding: .utf8))])
    try #require(report.outcomes.count == 1)
    return report.outcomes[0]
}

private func field(_ path: String, _ op: FieldTest.Op, _ values: [JSON], ci: Bool = false) throws -> Condition {
    .field(try FieldTest(path: path, op: op, values: values, caseInsensitive: ci))
}

private func temporaryDirectory() throws -> String {
    let path = NSTemporaryDirectory() + "vigil-sigma-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

@Suite("Sigma import: SigmaHQ CloudTrail rules")
struct SigmaImportSharedRulesTests {
    /// Measured 2026-11-27: 58 of 66 (87.9%); re-measured after temporal_ordered became a
    /// sequence: unchanged (none of the 66 is ordered; `near` and the `timeframe` pair are
    /// unordered temporal correlations). The floor guards against regressions.
    static let measuredFloor = 0.87

    @Test(.enabled(if: haveSigmaData, "needs /work/shared/data/sigma"))
    func cloudTrailRulesConvertAtTheMeasuredRateAndLoad() throws {
        var files: [(path: String, text: String)] = []
        for directory in cloudTrailDirectories { files += try sigmaFiles(directory) }
        #expect(files.count == 66)
        let report = SigmaImport.convert(files: files)
        #expect(report.rules == 66)
        #expect(report.converted + report.failed == report.rules)
        #expect(report.rate >= Self.measuredFloor, "rate \(report.rate): \(report.outcomes.compactMap(\.failure))")
        for outcome in report.outcomes where !outcome.converted {
            #expect(!(outcome.failure ?? "").isEmpty)
        }

        // What would be `--out DIR` loads as a rule directory (`vigil rules check DIR`).
        let out = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: out) }
        for outcome in report.written {
            try #require(outcome.yaml).write(toFile: out + "/" + #require(outcome.outputName), atomically: true, encoding: .utf8)
        }
        let loaded = try RuleSet.load(directory: out)
        #expect(loaded.rules.count == report.written.count)
        #expect(loaded.rules.allSatisfy { $0.id.hasPrefix("sigma.") && $0.tags.first == "sigma" && $0.version == 1 })

        let json = report.json()
        #expect(json["rules"] == 66)
        #expect(json["converted"]?.intValue == Int64(report.converted))
        #expect(json["failures"]?.arrayValue?.count == report.failed)
    }

    @Test(.enabled(if: haveSigmaData, "needs /work/shared/data/sigma"))
    func disableLoggingFieldByField() throws {
        let outcome = try convertSharedRule("rules/cloud/aws/cloudtrail/aws_cloudtrail_disable_logging.yml")
        let rule = try #require(outcome.rule, "\(outcome.failure ?? "")")
        #expect(rule.id == "sigma.4db60cc0-36fb-42b7-9b58-a5b53019fb74")
        #expect(outcome.outputName == "aws_cloudtrail_disable_logging.yaml")
        #expect(rule.version == 1)
        #expect(rule.title == "AWS CloudTrail Important Change")
        #expect(rule.severity == .medium)
        #expect(rule.attack == ["T1685.002"])
        #expect(rule.tags == ["sigma", "defense-impairment"])
        #expect(rule.window == nil)
        #expect(rule.match == .all([
            try field("api.service.name", .equals, ["cloudtrail.amazonaws.com"], ci: true),
            try field("api.operation", .in, ["StopLogging", "UpdateTrail", "DeleteTrail"], ci: true),
        ]))
        // Detection Rule License attribution, in the file and in every alert's description.
        let yaml = try #require(outcome.yaml)
        #expect(yaml.contains("# Author: vitaliy0x1. Licensed under the Detection Rule License 1.1"))
        #expect(yaml.contains("aws_cloudtrail_disable_logging.yml"))
        #expect(rule.description.contains("by vitaliy0x1, Detection Rule License 1.1"))
    }

    @Test(.enabled(if: haveSigmaData, "needs /work/shared/data/sigma"))
    func nullValuesAndOneOfPatterns() throws {
        // selection_event_name and 1 of selection_status_*  (errorCode: 'Success' | null)
        let outcome = try convertSharedRule("rules/cloud/aws/cloudtrail/aws_cloudtrail_bucket_deleted.yml")
        let rule = try #require(outcome.rule, "\(outcome.failure ?? "")")
        #expect(rule.match == .all([
            try field("api.operation", .equals, ["DeleteBucket"], ci: true),
            .any([
                try field("api.response.error", .equals, ["Success"], ci: true),
                try field("api.response.error", .exists, [false]),
            ]),
        ]))
    }

    @Test(.enabled(if: haveSigmaData, "needs /work/shared/data/sigma"))
    func regexNotAndMultiPathField() throws {
        let outcome = try convertSharedRule("rules/cloud/aws/cloudtrail/aws_cloudtrail_imds_malicious_usage.yml")
        let rule = try #require(outcome.rule, "\(outcome.failure ?? "")")
        #expect(rule.severity == .high)
        #expect(rule.match == .all([
            try field("actor.user.uid_alt", .regex, [".+:assumed-role/aws:.+"]),
            .not(.any([
                try field("api.service.name", .equals, ["ssm.amazonaws.com"], ci: true),
                try field("api.operation", .equals, ["RegisterManagedInstance"], ci: true),
                try field("src_endpoint.ip", .equals, ["AWS Internal"], ci: true),
                try field("src_endpoint.domain", .equals, ["AWS Internal"], ci: true),
                try field("src_endpoint.name", .equals, ["AWS Internal"], ci: true),
            ])),
        ]))
    }

    @Test(.enabled(if: haveSigmaData, "needs /work/shared/data/sigma"))
    func unmappedContainersAndWildcards() throws {
        // additionalEventData and responseElements stay under `unmapped` in normalized events.
        let mfa = try #require(try convertSharedRule("rules/cloud/aws/cloudtrail/aws_cloudtrail_console_login_success_without_mfa.yml").rule)
        #expect(mfa.match == .all([
            try field("api.operation", .equals, ["ConsoleLogin"], ci: true),
            try field("unmapped.additionalEventData.MFAUsed", .equals, ["NO"], ci: true),
            try field("unmapped.responseElements.ConsoleLogin", .equals, ["Success"], ci: true),
        ]))
        // `|contains: '*'` is "any value"; `|startswith` a prefix.
        let layer = try #require(try convertSharedRule("rules/cloud/aws/cloudtrail/aws_new_lambda_layer_attached.yml").rule)
        #expect(layer.match == .all([
            try field("api.service.name", .equals, ["lambda.amazonaws.com"], ci: true),
            try field("api.operation", .prefix, ["UpdateFunctionConfiguration"], ci: true),
            try field("unmapped.requestParameters.layers", .exists, [true]),
        ]))
    }

    @Test(.enabled(if: haveSigmaData, "needs /work/shared/data/sigma"))
    func legacyCountAggregationBecomesASlidingWindow() throws {
        // selection | count() by sourceIPAddress > 5, timeframe 10m
        let outcome = try convertSharedRule("unsupported/cloud/aws_macic_evasion.yml")
        let rule = try #require(outcome.rule, "\(outcome.failure ?? "")")
        let window = try #require(rule.window)
        #expect(window.groupBy == ["src_endpoint.ip"])
        #expect(window.kind == .sliding)
        #expect(window.sizeMillis == 600_000)
        #expect(window.aggregate == .count)
        #expect(window.threshold == Threshold(op: .greaterThan, value: 5))
        // Without `by`, the whole source is one group.
        let storage = try #require(try convertSharedRule("unsupported/cloud/aws_enum_storage.yml").rule?.window)
        #expect(storage.groupBy == ["metadata.product.name"])
    }

    @Test(.enabled(if: haveSigmaData, "needs /work/shared/data/sigma"))
    func unconvertibleRulesNameTheReason() throws {
        let cases: [(String, String)] = [
            ("rules/cloud/aws/cloudtrail/aws_update_login_profile.yml", "fieldref"),
            ("rules/cloud/aws/cloudtrail/aws_delete_saml_provider.yml", "unmapped field 'status'"),
            ("rules/cloud/aws/cloudtrail/aws_disable_bucket_versioning.yml", "field 'requestParameters' cannot be tested"),
            ("rules-placeholder/cloud/aws/cloudtrail/aws_cloudtrail_console_login_success_from_susp_locations.yml", "expand"),
            ("unsupported/cloud/aws_lambda_function_created_or_invoked.yml", "near"),
            ("unsupported/cloud/aws_ses_messaging_enabled.yml", "timeframe"),
        ]
        for (file, expected) in cases {
            let outcome = try convertSharedRule(file)
            #expect(outcome.yaml == nil)
            #expect(outcome.failure?.contains(expected) == true, "\(file): \(outcome.failure ?? "converted")")
        }
    }

    @Test(.enabled(if: haveSigmaData, "needs /work/shared/data/sigma"))
    func linuxRulesAreAnUnsupportedLogsource() throws {
        let directory = "\(sigmaRoot)/rules/linux"
        let names = try #require(FileManager.default.enumerator(atPath: directory)?.allObjects as? [String])
        let files = try names.filter { $0.hasSuffix(".yml") }.sorted().map { name in
            (directory + "/" + name, try String(contentsOfFile: directory + "/" + name, encoding: .utf8))
        }
        #expect(!files.isEmpty)
        let report = SigmaImport.convert(files: files)
        #expect(report.converted == 0)
        for outcome in report.outcomes {
            #expect(outcome.failure?.contains("unsupported logsource product=linux") == true, "\(outcome.file): \(outcome.failure ?? "")")
        }
    }
}

@Suite("Sigma import: conversion")
struct SigmaImportConversionTests {
    static func convert(_ yaml: String, file: String = "test.yml") -> SigmaImportReport {
        SigmaImport.convert(files: [(file, yaml)])
    }

    static let header = """
        title: Test rule
        id: 11111111-2222-3333-4444-555555555555
        author: Test Author
        level: high
        tags: [attack.t1078.004, attack.initial_access, attack.g0016]
        logsource: {product: aws, service: cloudtrail}

        """

    @Test func modifiersBecomeOperators() throws {
        let report = Self.convert(Self.header + """
            detection:
              selection:
                eventName|startswith: [Delete, Stop]
                userAgent|contains|all: ['aws-cli', 'Python']
                sourceIPAddress|cidr: 203.0.113.0/24
                errorMessage|endswith: denied
                eventSource|re|i: '^S3\\.'
                requestParameters.count|gte: 10
                responseElements.id|exists: true
                awsRegion|cased: us-east-1
                userIdentity.type|neq: Root
                eventID: 'a*b?c'
              condition: selection
            """)
        let outcome = try #require(report.outcomes.first)
        let rule = try #require(outcome.rule, "\(outcome.failure ?? "")")
        #expect(rule.id == "sigma.11111111-2222-3333-4444-555555555555")
        #expect(rule.attack == ["T1078.004"])
        #expect(rule.tags == ["sigma", "initial-access"])
        #expect(rule.severity == .high)
        #expect(rule.match == .all([
            try field("api.operation", .prefix, ["Delete", "Stop"], ci: true),
            try field("http_request.user_agent", .contains, ["aws-cli"], ci: true),
            try field("http_request.user_agent", .contains, ["Python"], ci: true),
            .any([
                try field("src_endpoint.ip", .cidr, ["203.0.113.0/24"]),
                try field("src_endpoint.domain", .cidr, ["203.0.113.0/24"]),
                try field("src_endpoint.name", .cidr, ["203.0.113.0/24"]),
            ]),
            try field("api.response.message", .suffix, ["denied"], ci: true),
            try field("api.service.name", .regex, ["^S3\\."], ci: true),
            try field("unmapped.requestParameters.count", .gte, [10]),
            try field("unmapped.responseElements.id", .exists, [true]),
            try field("cloud.region", .equals, ["us-east-1"]),
            .not(try field("actor.user.type", .equals, ["Root"], ci: true)),
            try field("metadata.uid", .regex, ["(?s)^a.*b.c$"], ci: true),
        ]))
    }

    @Test func listsOfMapsAreAlternatives() throws {
        let report = Self.convert(Self.header + """
            detection:
              selection:
                - eventName: CreateUser
                  eventSource: iam.amazonaws.com
                - eventName: [RunInstances, 42]
              condition: selection
            """)
        let rule = try #require(report.outcomes.first?.rule)
        #expect(rule.match == .any([
            .all([
                try field("api.operation", .equals, ["CreateUser"], ci: true),
                try field("api.service.name", .equals, ["iam.amazonaws.com"], ci: true),
            ]),
            try field("api.operation", .in, ["RunInstances", 42], ci: true),
        ]))
    }

    @Test func conditionsCombineSearches() throws {
        let report = Self.convert(Self.header + """
            detection:
              sel_a: {eventName: A}
              sel_b: {eventName: B}
              filter_x: {awsRegion: x}
              _hidden: {awsRegion: h}
              condition: all of sel_* and not (filter_x or 1 of them)
            """)
        let a = try field("api.operation", .equals, ["A"], ci: true)
        let b = try field("api.operation", .equals, ["B"], ci: true)
        let x = try field("cloud.region", .equals, ["x"], ci: true)
        #expect(report.outcomes.first?.rule?.match == .all([a, b, .not(.any([x, a, b, x]))]))
    }

    @Test func correlationEventCountBecomesAWindowRule() throws {
        let report = Self.convert("""
            title: Failed console login
            id: 0a0a0a0a-0000-0000-0000-000000000001
            name: failed_console_login
            author: Base Author
            logsource: {product: aws, service: cloudtrail}
            detection:
              selection:
                eventName: ConsoleLogin
                errorMessage: Failed authentication
              condition: selection
            level: low
            ---
            title: Console brute force
            id: 0a0a0a0a-0000-0000-0000-000000000002
            author: Correlation Author
            level: high
            tags: [attack.t1110]
            correlation:
              type: event_count
              rules: [failed_console_login]
              group-by: [userIdentity.arn]
              timespan: 5m
              condition: {gte: 3}
            ---
            title: Spraying from one address
            id: 0a0a0a0a-0000-0000-0000-000000000003
            correlation:
              type: value_count
              rules: [0a0a0a0a-0000-0000-0000-000000000001]
              group-by: [sourceIPAddress]
              timespan: 1h
              condition: {field: userIdentity.arn, gt: 10}
            generate: true
            """, file: "brute.yml")
        #expect(report.rules == 3)
        #expect(report.converted == 3)
        let outcomes = report.outcomes
        // The first correlation does not `generate` its rule, so the base rule has no rule of its
        // own (the second's `generate: true` does not undo that).
        #expect(outcomes[0].yaml == nil)
        #expect(outcomes[0].note?.contains("sigma.0a0a0a0a-0000-0000-0000-000000000002") == true)
        let count = try #require(outcomes[1].rule)
        #expect(count.severity == .high)
        #expect(count.attack == ["T1110"])
        #expect(count.match == .all([
            try field("api.operation", .equals, ["ConsoleLogin"], ci: true),
            try field("api.response.message", .equals, ["Failed authentication"], ci: true),
        ]))
        #expect(count.window == WindowSpec(groupBy: ["actor.user.uid_alt"], kind: .sliding, sizeMillis: 300_000,
                                           aggregate: .count, threshold: Threshold(op: .greaterThanOrEqual, value: 3)))
        let distinct = try #require(outcomes[2].rule?.window)
        #expect(distinct.groupBy == ["src_endpoint.ip"])
        #expect(distinct.aggregate == .distinct(field: "actor.user.uid_alt"))
        #expect(distinct.threshold == Threshold(op: .greaterThan, value: 10))
        #expect(distinct.sizeMillis == 3_600_000)

        // Three failed logins by one principal within five minutes fire once; two do not.
        let rules = try RuleSet(rules: [count])
        func failedLogin(_ minute: Int64, _ uid: String) -> JSON {
            var event = consoleLogin(user: "alice", at: t0 + minute * 60_000, uid: uid)
            event.set("api.response.message", "Failed authentication")
            event.set("actor.user.uid_alt", "arn:aws:iam::111122223333:user/alice")
            return event
        }
        #expect(DetectRun(rules: rules, events: [failedLogin(0, "e1"), failedLogin(1, "e2"), failedLogin(2, "e3")]).alerts.count == 1)
        #expect(DetectRun(rules: rules, events: [failedLogin(0, "e1"), failedLogin(6, "e2"), failedLogin(12, "e3")]).alerts.isEmpty)
    }

    @Test func correlationsVigilCannotExpressAreReported() throws {
        let base = """
            title: Base
            name: base
            logsource: {product: aws, service: cloudtrail}
            detection: {selection: {eventName: X}, condition: selection}
            ---

            """
        let cases: [(String, String)] = [
            ("type: temporal\n  rules: [base]\n  group-by: [awsRegion]\n  timespan: 5m", "no faithful Vigil form"),
            ("type: temporal_ordered\n  rules: [base]\n  group-by: [awsRegion]\n  timespan: 5m", "needs 2 to 20 steps"),
            ("type: event_count\n  rules: [base]\n  timespan: 5m\n  condition: {lt: 3}", "tumbling"),
            ("type: event_count\n  rules: [base]\n  timespan: 5m\n  condition: {gt: 3, lte: 9}", "range"),
            ("type: event_count\n  rules: [missing]\n  timespan: 5m\n  condition: {gt: 3}", "not among the imported files"),
            ("type: event_count\n  rules: [base]\n  group-by: [status]\n  timespan: 5m\n  condition: {gt: 3}", "unmapped field 'status'"),
        ]
        for (body, expected) in cases {
            let report = Self.convert(base + "title: Correlation\ncorrelation:\n  " + body + "\n")
            #expect(report.outcomes.last?.failure?.contains(expected) == true, "\(report.outcomes.last?.failure ?? "converted")")
            if expected == "not among the imported files" {
                // Nothing refers to the base rule, so it stands alone.
                #expect(report.outcomes.first?.converted == true)
            } else {
                // The folded base rule shares the correlation's fate.
                #expect(report.converted == 0)
                #expect(report.outcomes.first?.failure?.contains("used only by correlation") == true)
            }
        }
    }

    /// Two CloudTrail rules and a `temporal_ordered` correlation over them: logging stopped,
    /// then the trail deleted, by one user within 10 minutes.
    static func orderedCorrelation(_ correlation: String) -> String {
        """
        title: CloudTrail logging stopped
        id: 0b0b0b0b-0000-0000-0000-000000000001
        name: stop_logging
        author: Base Author
        logsource: {product: aws, service: cloudtrail}
        detection:
          selection:
            eventSource: cloudtrail.amazonaws.com
            eventName: StopLogging
          condition: selection
        ---
        title: CloudTrail trail deleted
        id: 0b0b0b0b-0000-0000-0000-000000000002
        name: delete_trail
        author: Base Author
        logsource: {product: aws, service: cloudtrail}
        detection:
          selection:
            eventSource: cloudtrail.amazonaws.com
            eventName: DeleteTrail
          condition: selection
        ---
        title: Logging stopped then trail deleted
        id: 0b0b0b0b-0000-0000-0000-000000000003
        author: Correlation Author
        level: high
        tags: [attack.t1685.002, attack.defense_evasion]
        correlation:

        """ + correlation.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n") + "\n"
    }

    @Test func temporalOrderedBecomesASequence() throws {
        let report = Self.convert(Self.orderedCorrelation("""
            type: temporal_ordered
            rules: [stop_logging, 0b0b0b0b-0000-0000-0000-000000000002]
            group-by: [userIdentity.userName]
            timespan: 10m
            """), file: "ordered.yml")
        #expect(report.rules == 3)
        #expect(report.converted == 3, "\(report.outcomes.compactMap(\.failure))")
        let outcomes = report.outcomes
        // The referenced rules are steps of the sequence, not rules of their own.
        for base in outcomes.prefix(2) {
            #expect(base.yaml == nil)
            #expect(base.note?.contains("folded into correlation rule sigma.0b0b0b0b-0000-0000-0000-000000000003") == true)
        }
        let outcome = outcomes[2]
        let rule = try #require(outcome.rule, "\(outcome.failure ?? "")")
        #expect(rule.id == "sigma.0b0b0b0b-0000-0000-0000-000000000003")
        #expect(rule.title == "Logging stopped then trail deleted")
        #expect(rule.severity == .high)
        #expect(rule.attack == ["T1685.002"])
        #expect(rule.tags == ["sigma", "defense-evasion"])
        #expect(rule.window == nil)
        #expect(rule.absence == nil)
        #expect(rule.match == .all([]))   // no rule-level match: the steps select
        let sequence = try #require(rule.sequence)
        #expect(sequence.groupBy == ["actor.user.name"])
        #expect(sequence.withinMillis == 600_000)
        #expect(sequence.latenessMillis == WindowSpec.defaultLatenessMillis)
        #expect(sequence.graceMillis == WindowSpec.defaultGraceMillis)
        try #require(sequence.steps.count == 2)
        #expect(sequence.steps[0].match == .all([
            try field("api.service.name", .equals, ["cloudtrail.amazonaws.com"], ci: true),
            try field("api.operation", .equals, ["StopLogging"], ci: true),
        ]))
        #expect(sequence.steps[0].count == 1)
        #expect(sequence.steps[1].match == .all([
            try field("api.service.name", .equals, ["cloudtrail.amazonaws.com"], ci: true),
            try field("api.operation", .equals, ["DeleteTrail"], ci: true),
        ]))
        #expect(sequence.steps[1].count == 1)

        // The written YAML is a sequence rule without `match`, and loads as the same rule.
        let yaml = try #require(outcome.yaml)
        #expect(yaml.contains("\nsequence:\n  group_by: [\"actor.user.name\"]\n  within: 10m\n  steps:\n    - match:\n"))
        #expect(!yaml.contains("\nmatch:"))
        #expect(yaml.contains("# Author: Correlation Author. Licensed under the Detection Rule License 1.1"))
        var loaded = try RuleSet.parse(yaml: yaml, file: "ordered.yaml")
        try #require(loaded.count == 1)
        loaded[0].file = nil
        #expect(loaded[0] == rule)

        // Run through select and aggregate: in order within 10 minutes fires once; the reverse
        // order, a span of 10 minutes or more, or another user's second step do not.
        let rules = try RuleSet(rules: [rule])
        func call(_ operation: String, _ minutes: Double, _ uid: String, user: String = "mallory") -> JSON {
            var event = cloudTrailCall(operation, at: t0 + Int64(minutes * 60_000), uid: uid)
            event.set("actor.user.name", .string(user))
            return event
        }
        let fired = DetectRun(rules: rules, events: [call("StopLogging", 0, "s1"), call("DeleteTrail", 3, "d1")]).alerts
        try #require(fired.count == 1)
        #expect(fired[0].value(at: "finding_info.analytic.uid") == "sigma.0b0b0b0b-0000-0000-0000-000000000003")
        #expect(fired[0].value(at: "vigil.event_uids") == ["s1", "d1"])
        #expect(fired[0].value(at: "vigil.sequence.steps") == [1, 1])
        #expect(fired[0].value(at: "vigil.group_key") == "mallory")
        #expect(fired[0]["time"] == .int(t0 + 180_000))
        #expect(DetectRun(rules: rules, events: [call("DeleteTrail", 0, "d1"), call("StopLogging", 3, "s1")]).alerts.isEmpty)
        #expect(DetectRun(rules: rules, events: [call("StopLogging", 0, "s1"), call("DeleteTrail", 10, "d1")]).alerts.isEmpty)
        #expect(DetectRun(rules: rules, events: [call("StopLogging", 0, "s1"), call("DeleteTrail", 9.99, "d1")]).alerts.count == 1)
        #expect(DetectRun(rules: rules, events: [call("StopLogging", 0, "s1"), call("DeleteTrail", 3, "d1", user: "bob")]).alerts.isEmpty)
        // Sigma compares strings ignoring case; so do the steps. Unrelated calls in between do not break it.
        let between = [call("stoplogging", 0, "s1"), call("DescribeTrails", 1, "x1"), call("DELETETRAIL", 2, "d1")]
        #expect(DetectRun(rules: rules, events: between).alerts.count == 1)
        // Arrival order does not matter within the lateness: event time decides the order.
        #expect(DetectRun(rules: rules, events: [call("DeleteTrail", 0.2, "d1"), call("StopLogging", 0, "s1")]).alerts.count == 1)
    }

    @Test func temporalOrderedShapesAndConditions() throws {
        func outcome(_ correlation: String) -> SigmaImportReport.Outcome? {
            Self.convert(Self.orderedCorrelation(correlation)).outcomes.last
        }
        let rules = "type: temporal_ordered\nrules: [stop_logging, delete_trail]\ntimespan: 1h\n"
        // Only "all rules matched" is a sequence: no condition, or one only the full count meets.
        for condition in ["", "condition: {gte: 2}", "condition: {eq: 2}", "condition: {gt: 1}", "condition: {gt: 1, lte: 5}"] {
            let converted = outcome(rules + condition)
            #expect(converted?.rule?.sequence?.steps.count == 2, "\(condition): \(converted?.failure ?? "")")
            #expect(converted?.rule?.sequence?.withinMillis == 3_600_000)
        }
        // Without group-by the whole source is one group, as for windows.
        #expect(outcome(rules)?.rule?.sequence?.groupBy == ["metadata.product.name"])
        #expect(outcome(rules + "group-by: [userIdentity.arn, sourceIPAddress]")?.rule?.sequence?.groupBy
                == ["actor.user.uid_alt", "src_endpoint.ip"])

        let twentyOne = (1...21).map { "r\($0)" }.joined(separator: ", ")
        let cases: [(String, String)] = [
            (rules + "condition: {gte: 1}", "met when 1 of the 2 rules matched"),
            (rules + "condition: {lt: 2}", "met when 1 of the 2 rules matched"),
            (rules + "condition: {gte: 3}", "never met"),
            (rules + "condition: {field: eventName, gte: 2}", "'condition.field' has no meaning"),
            ("type: temporal_ordered\nrules: [stop_logging, stop_logging]\ntimespan: 1h", "more than once"),
            ("type: temporal_ordered\nrules: [\(twentyOne)]\ntimespan: 1h", "at most 20 steps"),
            ("type: temporal_ordered\nrules: [stop_logging, delete_trail]", "no 'timespan'"),
            (rules + "group-by: [status]", "unmapped field 'status'"),
            (rules + "aliases: {ip: {stop_logging: sourceIPAddress}}", "aliases"),
            ("type: temporal_ordered\nrules: [stop_logging, missing]\ntimespan: 1h", "not among the imported files"),
            ("type: temporal\nrules: [stop_logging, delete_trail]\ntimespan: 1h", "a sequence fixes the order"),
        ]
        for (correlation, expected) in cases {
            let result = outcome(correlation)
            #expect(result?.yaml == nil)
            #expect(result?.failure?.contains(expected) == true, "\(expected): \(result?.failure ?? "converted")")
        }
        // The reason for `temporal` says why: every order would need its own rule.
        let temporal = outcome("type: temporal\nrules: [stop_logging, delete_trail]\ntimespan: 1h")?.failure ?? ""
        #expect(temporal.contains("in any order") && temporal.contains("(2 for 2 rules)"), "\(temporal)")

        // A chained correlation (a step that is itself a correlation) is reported.
        let chained = Self.convert(Self.orderedCorrelation("""
            type: temporal_ordered
            rules: [many_stops, delete_trail]
            timespan: 1h
            """) + """
            ---
            title: Many stops
            name: many_stops
            correlation:
              type: event_count
              rules: [stop_logging]
              timespan: 1h
              condition: {gte: 3}
            """)
        #expect(chained.outcomes[2].failure?.contains("chained correlations are not supported") == true,
                "\(chained.outcomes[2].failure ?? "converted")")
    }

    @Test func sequenceRulesWriteAndReadBack() throws {
        // Step counts and non-default lateness and grace are written too (the import itself
        // writes count 1 and the defaults), and a rule-level match is kept.
        let rule = Rule(
            id: "sigma.writer", version: 1, title: "Writer", severity: .low,
            match: try field("class_uid", .equals, [3002]),
            sequence: SequenceSpec(groupBy: ["actor.user.name"], steps: [
                SequenceSpec.Step(match: .any([try field("status_id", .equals, [2]), try field("api.response.error", .exists, [true])]),
                                  count: 5),
                SequenceSpec.Step(match: try field("status_id", .equals, [1])),
                SequenceSpec.Step(match: .not(try field("api.operation", .in, ["A", "B"], ci: true)), count: 2),
            ], withinMillis: 90 * 60_000, latenessMillis: 45_000, graceMillis: 1500))
        let yaml = SigmaRuleWriter.yaml(rule)
        #expect(yaml.contains("  within: 90m\n"))
        #expect(yaml.contains("      count: 5\n"))
        #expect(yaml.contains("  lateness: 45s\n  grace: 1500ms\n"))
        let loaded = try RuleSet.parse(yaml: yaml, file: "writer.yaml")
        try #require(loaded.count == 1)
        var back = loaded[0]
        back.file = nil
        #expect(back == rule, "\(yaml)")
    }

    @Test func hostileInputsGivePerRuleErrors() throws {
        let report = SigmaImport.convert(files: [
            ("not-yaml.yml", "title: [unclosed\n  - : :"),
            ("no-detection.yml", "title: Nothing\nlogsource: {product: aws, service: cloudtrail}\n"),
            ("bad-modifier.yml", Self.header + "detection:\n  selection:\n    eventName|sounds_like: X\n  condition: selection\n"),
            ("bad-condition.yml", Self.header + "detection:\n  selection: {eventName: X}\n  condition: selection and (\n"),
            ("unknown-identifier.yml", Self.header + "detection:\n  selection: {eventName: X}\n  condition: selection or other\n"),
            ("keywords.yml", Self.header + "detection:\n  keywords: [mimikatz, 'event::clear']\n  condition: keywords\n"),
            ("bad-regex.yml", Self.header + "detection:\n  selection: {eventName|re: '(['}\n  condition: selection\n"),
            ("scalar.yml", "just a string"),
            ("good.yml", Self.header + "detection:\n  selection: {eventName: X}\n  condition: selection\n"),
        ])
        let reasons = Dictionary(report.outcomes.map { ($0.file, $0.failure ?? "converted") }, uniquingKeysWith: { a, _ in a })
        #expect(report.rules == 9)
        #expect(report.converted == 1)
        #expect(reasons["good.yml"] == "converted")
        #expect(reasons["not-yaml.yml"]?.contains("not valid YAML") == true, "\(reasons["not-yaml.yml"] ?? "")")
        #expect(reasons["no-detection.yml"]?.contains("neither 'detection' nor 'correlation'") == true)
        #expect(reasons["bad-modifier.yml"]?.contains("unknown modifier 'sounds_like'") == true)
        #expect(reasons["bad-condition.yml"]?.contains("condition: ends where") == true, "\(reasons["bad-condition.yml"] ?? "")")
        #expect(reasons["unknown-identifier.yml"]?.contains("'other', which is not a search identifier") == true)
        #expect(reasons["keywords.yml"]?.contains("keyword search") == true)
        #expect(reasons["bad-regex.yml"]?.contains("not a valid regular expression") == true)
        #expect(reasons["scalar.yml"]?.contains("must be a mapping") == true)
        let json = report.json()
        #expect(json["failed"] == 8)
        #expect(json["rate"]?.doubleValue == 0.1111)
    }

    @Test func writtenRulesQuoteEverything() throws {
        let report = Self.convert("""
            title: 'yes'
            id: 'weird id/with: chars'
            description: "line one\\nline \\"two\\""
            logsource: {product: aws, service: cloudtrail}
            detection:
              selection:
                eventName: ['0x1F', 'null', "tab\\there", 'back\\\\slash']
              condition: selection
            """, file: "dir/odd name.yml")
        let outcome = try #require(report.outcomes.first)
        let rule = try #require(outcome.rule, "\(outcome.failure ?? "")")
        #expect(rule.id == "sigma.weird_id_with__chars")
        #expect(rule.title == "yes")
        #expect(rule.match == (try field("api.operation", .in, ["0x1F", "null", "tab\there", "back\\slash"], ci: true)))
        #expect(outcome.outputName == "odd name.yaml")
    }
}

@Suite("Sigma condition parser")
struct SigmaImportConditionParserTests {
    @Test func precedenceIsNotThenAndThenOr() throws {
        #expect(try SigmaConditionExpression.parse("a or b and not c") ==
                .or([.identifier("a"), .and([.identifier("b"), .not(.identifier("c"))])]))
        #expect(try SigmaConditionExpression.parse("not a and b") == .and([.not(.identifier("a")), .identifier("b")]))
        #expect(try SigmaConditionExpression.parse("a and b or c and d") ==
                .or([.and([.identifier("a"), .identifier("b")]), .and([.identifier("c"), .identifier("d")])]))
        #expect(try SigmaConditionExpression.parse("NOT a OR b") == .or([.not(.identifier("a")), .identifier("b")]))
    }

    @Test func parenthesesGroup() throws {
        #expect(try SigmaConditionExpression.parse("(a or b) and c") ==
                .and([.or([.identifier("a"), .identifier("b")]), .identifier("c")]))
        #expect(try SigmaConditionExpression.parse("not (a and (b or c))") ==
                .not(.and([.identifier("a"), .or([.identifier("b"), .identifier("c")])])))
        #expect(try SigmaConditionExpression.parse("((a))") == .identifier("a"))
    }

    @Test func quantifiedPatterns() throws {
        #expect(try SigmaConditionExpression.parse("1 of sel* and not all of filter_*") ==
                .and([.oneOf(pattern: "sel*"), .not(.allOf(pattern: "filter_*"))]))
        #expect(try SigmaConditionExpression.parse("all of them") == .allOf(pattern: "them"))
        #expect(try SigmaConditionExpression.parse("1 of them or x") == .or([.oneOf(pattern: "them"), .identifier("x")]))
        #expect(SigmaConditionExpression.pattern("them", matches: "selection"))
        #expect(!SigmaConditionExpression.pattern("them", matches: "_private"))
        #expect(SigmaConditionExpression.pattern("sel*", matches: "selection_1"))
        #expect(SigmaConditionExpression.pattern("*_main_*", matches: "filter_main_ua"))
        #expect(!SigmaConditionExpression.pattern("sel*", matches: "filter"))
        #expect(SigmaConditionExpression.pattern("exact", matches: "exact"))
    }

    @Test func malformedConditionsAreErrors() throws {
        for text in ["", "a and", "(a", "a)", "a b", "and a", "2 of sel*", "1 of", "sel*", "a && b", "not"] {
            #expect(throws: RuleError.self, "\(text)") { try SigmaConditionExpression.parse(text) }
        }
        // Hostile nesting is refused before it can exhaust the stack.
        let deep = String(repeating: "(", count: 100_000) + "a" + String(repeating: ")", count: 100_000)
        #expect(throws: RuleError.self) { try SigmaConditionExpression.parse(deep) }
        let nots = String(repeating: "not ", count: 100_000) + "a"
        #expect(throws: RuleError.self) { try SigmaConditionExpression.parse(nots) }
        #expect(try SigmaConditionExpression.parse(String(repeating: "(", count: 60) + "a" + String(repeating: ")", count: 60)) == .identifier("a"))
    }

    @Test func legacyAggregations() throws {
        #expect(try SigmaAggregation.parse(" count() > 10") ==
                SigmaAggregation(function: "count", field: nil, groupBy: nil, op: ">", value: 10))
        #expect(try SigmaAggregation.parse("count(pam_user) by pam_rhost >= 3") ==
                SigmaAggregation(function: "count", field: "pam_user", groupBy: "pam_rhost", op: ">=", value: 3))
        #expect(try SigmaAggregation.parse("count() by sourceIPAddress = 5").op == "==")
        #expect(throws: RuleError.self) { try SigmaAggregation.parse("near selection2") }
        #expect(throws: RuleError.self) { try SigmaAggregation.parse("count() big") }
        #expect(throws: RuleError.self) { try SigmaAggregation.parse("median(x) > 3") }
    }

    @Test func wildcardsAndEscapes() {
        #expect(SigmaWildcard.parse("a*b?c") == [.literal("a"), .any, .literal("b"), .one, .literal("c")])
        #expect(SigmaWildcard.parse("a\\*b\\?c\\\\d\\e") == [.literal("a*b?c\\d\\e")])
        #expect(SigmaWildcard.parse("**") == [.any, .any])
    }
}

@Suite("Sigma import: converted rules on normalized CloudTrail")
struct SigmaImportNormalizedEventTests {
    /// The `vigil` executable `swift test` builds next to the test bundle; it runs the real
    /// Normalizer (`vigil normalize`), which this test target cannot link.
    static let vigil: String? = {
        let path = repositoryRoot() + "/.build/debug/vigil"
        return FileManager.default.isExecutableFile(atPath: path) ? path : nil
    }()

    /// CloudTrail records: each rule's hit followed by its near miss.
    static let records = """
        {"Records": [
          {"eventVersion": "1.08", "eventTime": "2024-05-01T12:00:00Z", "eventID": "stop-1",
           "eventSource": "cloudtrail.amazonaws.com", "eventName": "StopLogging", "awsRegion": "us-east-1",
           "sourceIPAddress": "203.0.113.9", "userAgent": "aws-cli/2.15",
           "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/mallory", "userName": "mallory",
                            "accountId": "111122223333"},
           "requestParameters": {"name": "main"}, "responseElements": null, "eventType": "AwsApiCall",
           "recipientAccountId": "111122223333"},
          {"eventVersion": "1.08", "eventTime": "2024-05-01T12:01:00Z", "eventID": "start-1",
           "eventSource": "cloudtrail.amazonaws.com", "eventName": "StartLogging", "awsRegion": "us-east-1",
           "sourceIPAddress": "203.0.113.9", "userIdentity": {"type": "IAMUser", "userName": "mallory"},
           "eventType": "AwsApiCall"},
          {"eventVersion": "1.08", "eventTime": "2024-05-01T12:02:00Z", "eventID": "login-nomfa",
           "eventSource": "signin.amazonaws.com", "eventName": "ConsoleLogin", "awsRegion": "us-east-1",
           "sourceIPAddress": "198.51.100.4", "userIdentity": {"type": "IAMUser", "userName": "bob"},
           "responseElements": {"ConsoleLogin": "Success"}, "additionalEventData": {"MFAUsed": "No"},
           "eventType": "AwsConsoleSignIn"},
          {"eventVersion": "1.08", "eventTime": "2024-05-01T12:03:00Z", "eventID": "login-mfa",
           "eventSource": "signin.amazonaws.com", "eventName": "ConsoleLogin", "awsRegion": "us-east-1",
           "sourceIPAddress": "198.51.100.4", "userIdentity": {"type": "IAMUser", "userName": "bob"},
           "responseElements": {"ConsoleLogin": "Success"}, "additionalEventData": {"MFAUsed": "Yes"},
           "eventType": "AwsConsoleSignIn"},
          {"eventVersion": "1.08", "eventTime": "2024-05-01T12:04:00Z", "eventID": "bucket-deleted",
           "eventSource": "s3.amazonaws.com", "eventName": "DeleteBucket", "awsRegion": "us-east-1",
           "sourceIPAddress": "203.0.113.9", "userIdentity": {"type": "IAMUser", "userName": "mallory"},
           "requestParameters": {"bucketName": "logs"}, "eventType": "AwsApiCall"},
          {"eventVersion": "1.08", "eventTime": "2024-05-01T12:05:00Z", "eventID": "bucket-denied",
           "eventSource": "s3.amazonaws.com", "eventName": "DeleteBucket", "awsRegion": "us-east-1",
           "sourceIPAddress": "203.0.113.9", "userIdentity": {"type": "IAMUser", "userName": "mallory"},
           "errorCode": "AccessDenied", "errorMessage": "Access Denied", "eventType": "AwsApiCall"},
          {"eventVersion": "1.08", "eventTime": "2024-05-01T12:06:00Z", "eventID": "imds-creds",
           "eventSource": "ec2.amazonaws.com", "eventName": "DescribeInstances", "awsRegion": "us-east-1",
           "sourceIPAddress": "198.51.100.77",
           "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/aws:ec2-instance/i-0abc"},
           "eventType": "AwsApiCall"},
          {"eventVersion": "1.08", "eventTime": "2024-05-01T12:07:00Z", "eventID": "imds-internal",
           "eventSource": "ec2.amazonaws.com", "eventName": "DescribeInstances", "awsRegion": "us-east-1",
           "sourceIPAddress": "AWS Internal",
           "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/aws:ec2-instance/i-0abc"},
           "eventType": "AwsApiCall"}
        ]}
        """

    @Test(.enabled(if: haveSigmaData && vigil != nil, "needs /work/shared/data/sigma and the built vigil executable"))
    func convertedRulesFireOnNormalizedEventsAndNearMissesDoNot() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Self.records.write(toFile: directory + "/trail.json", atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(Self.vigil))
        process.arguments = ["normalize", "--source", "cloudtrail", directory + "/trail.json"]
        let stdout = Pipe()
        process.standardOutput = stdout
        process.standardError = FileHandle.nullDevice
        try process.run()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let events = try String(decoding: output, as: UTF8.self).split(separator: "\n").map { line in
            try JSON.parse(String(line))
        }
        #expect(events.count == 8)

        let files = [
            "rules/cloud/aws/cloudtrail/aws_cloudtrail_disable_logging.yml",
            "rules/cloud/aws/cloudtrail/aws_cloudtrail_console_login_success_without_mfa.yml",
            "rules/cloud/aws/cloudtrail/aws_cloudtrail_bucket_deleted.yml",
            "rules/cloud/aws/cloudtrail/aws_cloudtrail_imds_malicious_usage.yml",
        ]
        var rules: [Rule] = []
        for file in files { rules.append(try #require(try convertSharedRule(file).rule, "\(file)")) }
        let selector = RuleSelector(rules: try RuleSet(rules: rules))
        var fired: [String: [String]] = [:]
        for event in events {
            for case .alert(let alert) in selector.select(event) {
                let rule = alert["finding_info"]?["analytic"]?["uid"]?.stringValue ?? "?"
                fired[rule, default: []].append(OCSFEvent.uid(event) ?? "?")
            }
        }
        #expect(fired["sigma.4db60cc0-36fb-42b7-9b58-a5b53019fb74"] == ["stop-1"])
        #expect(fired["sigma.77caf516-34e5-4df9-b4db-20744fea0a60"] == ["login-nomfa"])
        #expect(fired["sigma.39c9f26d-6e3b-4dbb-9c7a-4154b0281112"] == ["bucket-deleted"])
        #expect(fired["sigma.352a918a-34d8-4882-8470-44830c507aa3"] == ["imds-creds"])
        #expect(fired.count == 4)
    }

    /// Runs the built `vigil` with `arguments`; its exit status and standard output.
    static func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(vigil))
        process.arguments = arguments
        let stdout = Pipe()
        process.standardOutput = stdout
        process.standardError = FileHandle.nullDevice
        try process.run()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }

    @Test(.enabled(if: haveSigmaData && vigil != nil, "needs /work/shared/data/sigma and the built vigil executable"))
    func importCommandWritesRulesThatCheckAndEndsWithJSON() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "title: [broken".write(toFile: directory + "/broken.yml", atomically: true, encoding: .utf8)
        let (status, output) = try Self.run([
            "rules", "import-sigma", "\(sigmaRoot)/rules/cloud/aws/cloudtrail/aws_cloudtrail_disable_logging.yml",
            directory + "/broken.yml", "--out", directory + "/out", "--json",
        ])
        #expect(status == 0)
        let lines = output.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.hasPrefix("converted ") && $0.contains("aws_cloudtrail_disable_logging.yaml") })
        #expect(lines.contains { $0.hasPrefix("not converted ") && $0.contains("broken.yml") })
        #expect(lines.contains("1 of 2 Sigma rules converted (50.0%), 1 not converted"))
        let summary = try JSON.parse(try #require(lines.last))
        #expect(summary["rules"] == 2)
        #expect(summary["converted"] == 1)
        #expect(summary["failed"] == 1)
        #expect(summary["rate"]?.doubleValue == 0.5)
        #expect(summary["failures"]?.arrayValue?.first?["file"]?.stringValue == directory + "/broken.yml")
        let check = try Self.run(["rules", "check", directory + "/out"])
        #expect(check.status == 0)
        #expect(check.output == "1 rules OK\n")
    }

    /// The same rule on an event built as `CloudTrailMapping` builds it (Support.swift), for
    /// machines where the executable is not built.
    @Test(.enabled(if: haveSigmaData, "needs /work/shared/data/sigma"))
    func disableLoggingOnAMappedEvent() throws {
        let rule = try #require(try convertSharedRule("rules/cloud/aws/cloudtrail/aws_cloudtrail_disable_logging.yml").rule)
        let selector = RuleSelector(rules: try RuleSet(rules: [rule]))
        #expect(selector.select(cloudTrailCall("DeleteTrail", at: t0, uid: "d1")).count == 1)
        #expect(selector.select(cloudTrailCall("deletetrail", at: t0, uid: "d2")).count == 1)
        #expect(selector.select(cloudTrailCall("DescribeTrails", at: t0, uid: "d3")).isEmpty)
        #expect(selector.select(cloudTrailCall("DeleteTrail", service: "s3.amazonaws.com", at: t0, uid: "d4")).isEmpty)
    }
}
