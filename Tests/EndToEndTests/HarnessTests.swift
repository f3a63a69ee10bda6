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

/// `vigil harness --scenario`: faults against the compose deployment (two replicas per stage)
/// under a generated CloudTrail load, compared with the offline chain over the same records.
/// Small loads keep each run to about a minute in a debug build.
@Suite(.enabled(if: Binaries.available, "broker or built executables missing (run make test)"), .timeLimit(.minutes(6)))
struct HarnessScenarioTests {
    func scenario(_ name: String, _ arguments: [String]) throws -> (Binaries.Outcome, JSON) {
        let work = NSTemporaryDirectory() + "vigil-harness-\(name)-\(UInt64.random(in: 0...UInt64.max))"
        defer { try? FileManager.default.removeItem(atPath: work) }
        let run = try Binaries.run("vigil", ["harness", "--scenario", name, "--work-dir", work, "--timeout", "150"] + arguments)
        let summary = try JSON.parse(try #require(run.output.split(separator: "\n").last.map(String.init)))
        return (run, summary)
    }

    @Test("kill: SIGKILL one replica of each stage under load; no alert lost, no command executed twice")
    func killEachStage() throws {
        let (run, summary) = try scenario("kill", ["--records", "3000"])
        #expect(run.status == 0, "\(run.output)")
        #expect(summary["scenario"] == "kill")
        #expect(summary["passed"] == true)
        #expect(summary["input"] == 3000)
        #expect(summary["events"] == 3000)
        #expect(summary["lost"] == 0)
        #expect(summary["mismatched_duplicates"] == 0)
        #expect(summary["duplicate_commands_executed"] == 0)
        #expect(summary["commands_lost"] == 0)
        #expect((summary["alerts_expected"]?.intValue ?? 0) >= 6, "the load carries attacks")
        #expect(summary["alerts_seen"] == summary["alerts_expected"])
        #expect(summary["faults"]?.arrayValue?.count == 4)
    }

    @Test("sigterm: each stopped replica exits 0 and the pipeline loses nothing")
    func sigtermEachStage() throws {
        let (run, summary) = try scenario("sigterm", ["--records", "3000"])
        #expect(run.status == 0, "\(run.output)")
        #expect(summary["passed"] == true)
        #expect(summary["lost"] == 0)
        #expect(summary["events"] == 3000)
        #expect(summary["duplicate_commands_executed"] == 0)
        let faults = try #require(summary["faults"]?.arrayValue)
        #expect(faults.count == 4)
        #expect(faults.allSatisfy { $0["status"] == 0 }, "\(faults)")
    }

    @Test("malformed: every malformed record is dead-lettered with its error code; every good one arrives")
    func malformedRecords() throws {
        let (run, summary) = try scenario("malformed", ["--records", "3000", "--malformed", "300"])
        #expect(run.status == 0, "\(run.output)")
        #expect(summary["passed"] == true)
        #expect(summary["input"] == 3300)
        #expect(summary["malformed"] == 300)
        #expect(summary["dlq"] == 300)
        #expect(summary["dlq_without_code"] == 0)
        #expect(summary["events"] == 3000)
        #expect(summary["lost"] == 0)
        #expect(summary["duplicate_commands_executed"] == 0)
    }
}
