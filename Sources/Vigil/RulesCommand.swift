import ArgumentParser
import Detection
import Foundation
import Stages

/// `vigil rules`: check and test detection rules.
struct RulesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rules",
        abstract: "Check and test detection rules.",
        discussion: """
            Examples:
              vigil rules check rules      # "13 rules OK", or file:line: reason
              vigil rules test             # bundled rules, rules/tests
              vigil rules test my-rules --fixtures my-rules/tests
            """,
        subcommands: [RulesCheck.self, RulesTest.self, RulesImportSigma.self])
}

/// `vigil rules check DIR`.
struct RulesCheck: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Load and validate a rule directory; exit 1 naming the file, line and reason of the first problem.",
        discussion: """
            Files in a `tests` directory are fixtures, not rules, and are checked by `vigil rules test`.

            Examples:
              vigil rules check rules
              vigil rules check /etc/vigil/rules && systemctl restart vigil-detect
            """)
    @Argument(help: "Directory of YAML rules. Default: the bundled rules/.") var directory: String?

    func run() async throws {
        do {
            let rules = try RuleSet.load(directory: directory ?? bundledDirectory("rules"))
            print("\(rules.rules.count) rules OK")
        } catch {
            printError(error.description)
            throw ExitCode(1)
        }
    }
}

/// `vigil rules test [DIR] [--fixtures DIR]`.
struct RulesTest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Run every rule's fixtures through the parsers and the offline detector; exit 1 on any failure.",
        discussion: """
            Each case's input is normalized (raw records) or taken as OCSF (events), run through
            the whole rule set in order, every window flushed at the end; its alerts must be
            exactly the expected ones. A rule without a fixture file is a failure too. A failed
            case prints a diff: `- expected` alerts that did not fire, `+ actual` ones that were
            not expected. docs/rules.md ("Testing rules") describes the fixture format.

            Examples:
              vigil rules test
              vigil rules test rules --fixtures rules/tests
              vigil rules test my-rules --quiet
            """)
    @Argument(help: "Directory of YAML rules. Default: the bundled rules/.") var directory: String?
    @Option(help: "Directory of fixtures. Default: DIR/tests.") var fixtures: String?
    @Flag(help: "Print failures and the summary only.") var quiet = false

    func run() async throws {
        let rulesDirectory = directory ?? bundledDirectory("rules")
        let fixturesDirectory = fixtures ?? (rulesDirectory.hasSuffix("/") ? rulesDirectory + "tests" : rulesDirectory + "/tests")
        let report: RuleTests.Report
        do {
            let rules = try RuleSet.load(directory: rulesDirectory)
            report = RuleTests.run(try RuleFixture.load(directory: fixturesDirectory), rules: rules)
        } catch {
            printError(error.description)
            throw ExitCode(1)
        }
        for result in report.results where !quiet || !result.passed {
            print("\(result.passed ? "PASS" : "FAIL") \(result.rule): \(result.name) (\(result.location))")
            if !result.passed { for line in result.diff { print("    \(line)") } }
        }
        for rule in report.rulesWithoutFixture { print("FAIL \(rule): no fixture file (\(fixturesDirectory)/\(rule).yaml)") }
        for fixture in report.fixturesWithoutRule { print("FAIL \(fixture.rule): fixture for an unknown rule (\(fixture.file ?? "?"))") }
        let failed = report.results.count - report.passedCount
        print("\(report.passedCount) of \(report.results.count) cases passed, \(failed) failed; "
              + "\(report.rulesWithoutFixture.count) rules without fixtures")
        if !report.passed { throw ExitCode(1) }
    }
}

private func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
