import Foundation
import OCSF
import TestSupport
import Testing

/// `vigil harness` runs the compose file's services as local processes (two replicas of each
/// stage) on the embedded broker, feeds the samples and checks the alerts and commands.
@Suite(.enabled(if: Binaries.available, "broker or built executables missing (run make test)"), .timeLimit(.minutes(6)))
struct HarnessTests {
    func harness(_ arguments: [String]) throws -> Binaries.Outcome {
        try Binaries.run("vigil", ["harness"] + arguments)
    }

    @Test("the compose deployment, two replicas per stage: the expected alerts and commands, each alert once")
    func composeDeploymentLocally() throws {
        let work = NSTemporaryDirectory() + "vigil-harness-test-\(UInt64.random(in: 0...UInt64.max))"
        defer { try? FileManager.default.removeItem(atPath: work) }
        let run = try harness(["--replicas", "2", "--work-dir", work, "--timeout", "240"])
        #expect(run.status == 0, "\(run.output)")
        let summary = try JSON.parse(try #require(run.output.split(separator: "\n").last.map(String.init)))
        #expect(summary["ok"] == true)
        #expect(summary["services"] == ["ingest": 2, "enrich": 2, "detect": 2, "respond": 2])
        #expect(summary["rules"] == ["aws.cloudtrail.logging_disabled", "aws.console.bruteforce",
                                     "aws.console.bruteforce_then_success"])
        #expect(summary["distinct_alerts"] == 3)
        #expect(summary["commands"] == 5)
        #expect(summary["dlq"] == 1)
    }

    @Test("an expectation that cannot be met fails the run")
    func unmetExpectation() throws {
        let work = NSTemporaryDirectory() + "vigil-harness-test-\(UInt64.random(in: 0...UInt64.max))"
        defer { try? FileManager.default.removeItem(atPath: work) }
        let run = try harness(["--replicas", "1", "--work-dir", work, "--timeout", "40", "--settle", "3",
                               "--expect-rule", "aws.root.usage"])
        #expect(run.status == 1)
        #expect(run.output.contains("expectations not met"))
        let summary = try JSON.parse(try #require(run.output.split(separator: "\n").last.map(String.init)))
        #expect(summary["ok"] == false)
    }
}
