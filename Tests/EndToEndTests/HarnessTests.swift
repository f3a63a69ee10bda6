import Foundation
import Kafka
import OCSF
import Pipeline
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

    @Test("--bootstrap HOST:PORT --no-services: the samples through a deployment the harness did not start")
    func externalDeployment() async throws {
        let work = NSTemporaryDirectory() + "vigil-harness-external-\(UInt64.random(in: 0...UInt64.max))"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        // The deployment: a broker, the topics and one copy of each stage, as docker compose runs them.
        let broker = try await TestBroker.start()
        defer { broker.stop() }
        let environment = ["VIGIL_BROKERS": broker.bootstrapServers, "VIGIL_METRICS_PORT": "0",
                           "VIGIL_KAFKA_SESSION_TIMEOUT_MS": "6000", "VIGIL_KAFKA_HEARTBEAT_INTERVAL_MS": "500"]
        let topics = try Binaries.run("vigil", ["topics", "create", "--partitions", "4"], environment: environment, mergeErrors: true)
        #expect(topics.status == 0, "\(topics.output)")
        let repo = Binaries.repository
        let stages: [(String, [String])] = [
            ("vigil-ingest", []),
            ("vigil-enrich", ["--inventory", work + "/inventory.sqlite", "--import", repo + "/samples/inventory.csv"]),
            ("vigil-detect", ["--rules", repo + "/rules"]),
            ("vigil-respond", ["--playbooks", repo + "/playbooks", "--execute", "--ledger", work + "/ledger.sqlite"]),
        ]
        var processes: [Process] = []
        defer {
            for process in processes where process.isRunning { process.terminate() }
            for process in processes {
                for _ in 0..<400 where process.isRunning { usleep(50_000) }
                if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            }
        }
        for (name, arguments) in stages {
            processes.append(try Binaries.launch(name, arguments, environment: environment, log: work + "/\(name).log"))
        }

        let run = try harness(["--bootstrap", broker.bootstrapServers, "--no-services", "--work-dir", work + "/harness",
                               "--timeout", "180"])
        #expect(run.status == 0, "\(run.output)")
        #expect(run.output.contains("the deployment runs the stages"))
        let summary = try JSON.parse(try #require(run.output.split(separator: "\n").last.map(String.init)))
        #expect(summary["ok"] == true)
        #expect(summary["broker"] == "external")
        #expect(summary["services"] == [:], "no stage started by the harness")
        #expect(summary["rules"] == ["aws.cloudtrail.logging_disabled", "aws.console.bruteforce",
                                     "aws.console.bruteforce_then_success"])
        #expect(summary["commands"] == 5)
        let stillRunning = processes.allSatisfy { $0.isRunning }
        #expect(stillRunning, "the deployment's stages are left running")
    }

    @Test("--no-services without --bootstrap, and --scenario with --bootstrap, are refused")
    func externalModeValidation() throws {
        let alone = try Binaries.run("vigil", ["harness", "--no-services"], mergeErrors: true)
        #expect(alone.status != 0)
        #expect(alone.output.contains("--no-services needs --bootstrap"))
        let scenario = try Binaries.run("vigil", ["harness", "--scenario", "kill", "--bootstrap", "127.0.0.1:9"], mergeErrors: true)
        #expect(scenario.status != 0)
        #expect(scenario.output.contains("--bootstrap is for the samples check"))
    }

    @Test("SIGINT stops the stages, the broker and moto it started, and exits 130")
    func interruptStopsEverything() async throws {
        let work = NSTemporaryDirectory() + "vigil-harness-interrupt-\(UInt64.random(in: 0...UInt64.max))"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        // broker-restart starts every kind of process: moto, the broker, stage replicas.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Binaries.directory + "/vigil")
        process.arguments = ["harness", "--scenario", "broker-restart", "--records", "1000", "--replicas", "1",
                             "--work-dir", work, "--ship-seconds", "120"]
        process.currentDirectoryURL = URL(fileURLWithPath: Binaries.repository)
        let outputPath = work + "/harness.out"
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        let output = try #require(FileHandle(forWritingAtPath: outputPath))
        process.standardOutput = output
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        func text() -> String { (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "" }

        let started = await TestBroker.eventually(timeout: .seconds(240)) { text().contains("started ") || !process.isRunning }
        #expect(started && process.isRunning, "\(text())")
        let children = processes(under: work)
        #expect(children.count >= 6, "moto, the broker and four stages run: \(children)")
        kill(process.processIdentifier, SIGINT)
        let exited = await TestBroker.eventually(timeout: .seconds(120)) { !process.isRunning }
        #expect(exited)
        #expect(process.terminationStatus == 130)
        #expect(text().contains("interrupted by SIGINT; stopped every process this run started"), "\(text())")
        let left = processes(under: work)
        #expect(left.isEmpty, "no orphans: \(left)")
        for pid in left { kill(pid, SIGKILL) }
    }

    /// Processes whose working directory is under `directory` (the harness runs every child there).
    func processes(under directory: String) -> [Int32] {
        let resolved = URL(fileURLWithPath: directory).resolvingSymlinksInPath().path
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { entry -> Int32? in
            guard let pid = Int32(entry), pid != getpid(),
                  let cwd = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(entry)/cwd") else { return nil }
            return cwd == resolved || cwd.hasPrefix(resolved + "/") ? pid : nil
        }
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

/// `vigil harness --scenario broker-restart`: the broker on S3 storage (a moto server), killed
/// and restarted mid-stream. Every broker request is a round trip to moto, so a 3,000-record
/// run takes minutes in a debug build (the event lead alone is 150 s).
@Suite(.enabled(if: Binaries.available && FileManager.default.isExecutableFile(atPath: Binaries.repository + "/tools/venv/bin/moto_server"),
                "broker, moto or built executables missing (run make test)"), .timeLimit(.minutes(12)))
struct HarnessBrokerRestartTests {
    @Test("broker-restart: the durable broker SIGKILLed mid-stream and restarted; every stage rides it out, nothing lost")
    func brokerRestart() throws {
        let work = NSTemporaryDirectory() + "vigil-harness-broker-restart-\(UInt64.random(in: 0...UInt64.max))"
        defer { try? FileManager.default.removeItem(atPath: work) }
        let run = try Binaries.run("vigil", ["harness", "--scenario", "broker-restart", "--records", "3000", "--work-dir", work,
                                             "--timeout", "300"])
        let summary = try JSON.parse(try #require(run.output.split(separator: "\n").last.map(String.init)))
        #expect(run.status == 0, "\(run.output)")
        #expect(summary["scenario"] == "broker-restart")
        #expect(summary["passed"] == true)
        #expect(summary["input"] == 3000)
        #expect(summary["events"] == 3000)
        #expect(summary["lost"] == 0)
        #expect((summary["alerts_expected"]?.intValue ?? 0) >= 6, "the load carries attacks")
        #expect(summary["alerts_seen"] == summary["alerts_expected"])
        #expect(summary["duplicate_commands_executed"] == 0)
        #expect(summary["commands_lost"] == 0)
        #expect(summary["unexpected_exits"] == nil, "no stage exited")
        let faults = try #require(summary["faults"]?.arrayValue)
        #expect(faults.count == 1)
        #expect(faults.first?["service"] == "broker")
        #expect((faults.first?["down_seconds"]?.doubleValue ?? 0) >= 3)
    }
}
