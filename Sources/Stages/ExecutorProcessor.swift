import AWS
import Foundation
import Kafka
import OCSF
import Pipeline
import Response

/// The executor as a stage transform: `<prefix>commands` in, `<prefix>command-results` out
/// (keyed by target), every decision in the ledger. Pending approvals expire and automatic
/// reverts run when the input is idle (checked at most every 5 s).
public struct ExecutorProcessor: StageProcessor {
    let executor: Executor
    let topics: Topics
    let metrics: MetricsRegistry
    var lastSweep: Int64 = 0

    /// An executor transform.
    public init(executor: Executor, topics: Topics, metrics: MetricsRegistry) {
        self.executor = executor
        self.topics = topics
        self.metrics = metrics
    }

    public mutating func process(_ record: ConsumedRecord) -> StageOutput {
        // The runner calls processAsync; this synchronous form is never used for the executor.
        StageOutput(deadLetters: [DeadLetter(code: "internal_error", reason: "the executor runs asynchronously only")])
    }

    public mutating func processAsync(_ record: ConsumedRecord) async -> StageOutput {
        switch parseObject(record, what: "command") {
        case .failure(let letter): return StageOutput(deadLetters: [letter])
        case .success(let command):
            do throws(ResponseError) {
                return output(try await executor.handle(command))
            } catch {
                return StageOutput(deadLetters: [DeadLetter(code: error.code.rawValue, reason: error.description)])
            }
        }
    }

    public mutating func idleAsync(now: Int64) async -> StageOutput {
        guard now - lastSweep >= 5_000 else { return .empty }
        lastSweep = now
        do throws(ResponseError) {
            return output(try await executor.sweep())
        } catch {
            return .empty
        }
    }

    func output(_ results: [JSON]) -> StageOutput {
        var output = StageOutput()
        for result in results {
            let target = result["target"]?.stringValue ?? ""
            output.records.append(OutgoingRecord(topic: topics.commandResults, key: Array(target.utf8), value: result.serialized(),
                                                 timestamp: result["time"]?.intValue))
            metrics.increment("vigil_command_results_total", labels: ["action": result["action"]?.stringValue ?? "",
                                                                      "status": result["status"]?.stringValue ?? ""],
                              help: "Command outcomes recorded by the executor, by action and status.")
        }
        return output
    }
}

/// Builds the executor from the command line and environment: ledger file, AWS client
/// (endpoint override and region from flags or `VIGIL_AWS_ENDPOINT` / `AWS_REGION`), faults.
public enum ExecutorSetup {
    /// The executor; AWS problems (no credentials) are kept as the reason enforce-mode AWS
    /// commands fail, not a reason to refuse to start (notify and dry runs need no AWS).
    public static func make(ledgerPath: String, awsEndpoint: String?, region: String?, forceDryRun: Bool = false,
                            environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Executor {
        let ledger = try Ledger(path: ledgerPath)
        var env = environment
        if let awsEndpoint { env["VIGIL_AWS_ENDPOINT"] = awsEndpoint }
        if let region { env["AWS_REGION"] = region }
        var cloud: CloudActions?
        var problem: String?
        do { cloud = CloudActions(client: try AWSClient.fromEnvironment(env)) } catch { problem = error.description }
        var config = ExecutorConfig()
        config.environment = environment
        config.forceDryRun = forceDryRun
        config.crashAfterCall = environment["VIGIL_FAULT"] == "crash_after_call"
        return Executor(ledger: ledger, cloud: cloud, cloudProblem: problem, config: config)
    }
}
