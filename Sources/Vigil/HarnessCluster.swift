import ArgumentParser
import Foundation

/// The compose services as local processes: one per replica, each with its own state
/// directory and log under the work directory, restartable one at a time.
///
/// Owned by one task (the harness's run loop); `Process` is not `Sendable`. Every process it
/// starts is registered in ``HarnessChildren`` until it is seen to exit.
final class HarnessCluster {
    let services: [ComposeService]
    let work: String
    let share: String
    let binDir: String
    let brokers: String
    let environment: [String: String]
    /// Running processes by "service-replica".
    private(set) var processes: [String: Process] = [:]
    /// Replicas started per service.
    private(set) var counts: [String: Int] = [:]

    init(services: [ComposeService], work: String, share: String, binDir: String, brokers: String, environment: [String: String]) {
        self.services = services
        self.work = work
        self.share = share
        self.binDir = binDir
        self.brokers = brokers
        self.environment = environment
    }

    /// The state directory of a replica (`/var/lib/vigil/` in the container).
    func stateDirectory(_ service: ComposeService, replica: Int) -> String { "\(work)/\(service.name)-\(replica)" }

    /// The command line of `service` with container paths mapped to this host.
    func arguments(_ service: ComposeService, replica: Int) -> [String] {
        let state = stateDirectory(service, replica: replica)
        return service.command.dropFirst().map { argument -> String in
            if argument.hasPrefix("/usr/local/share/vigil/") { return share + "/" + argument.dropFirst("/usr/local/share/vigil/".count) }
            if argument.hasPrefix("/var/lib/vigil/") { return state + "/" + argument.dropFirst("/var/lib/vigil/".count) }
            return argument
        }
    }

    /// Starts one replica; its output is appended to `<state>.log`, so a restart keeps the
    /// earlier run's lines.
    @discardableResult
    func launch(_ service: ComposeService, replica: Int) throws -> Process {
        let state = stateDirectory(service, replica: replica)
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        var env = environment.merging(service.environment) { _, new in new }
        env["VIGIL_BROKERS"] = brokers
        env["VIGIL_METRICS_PORT"] = "0"
        // The embedded broker joins groups slowly with librdkafka's default session timeout.
        env["VIGIL_KAFKA_SESSION_TIMEOUT_MS"] = env["VIGIL_KAFKA_SESSION_TIMEOUT_MS"] ?? "6000"
        env["VIGIL_KAFKA_HEARTBEAT_INTERVAL_MS"] = env["VIGIL_KAFKA_HEARTBEAT_INTERVAL_MS"] ?? "500"
        let path = binDir + "/" + service.command[0]
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw ValidationError("\(service.command[0]) not found next to vigil (\(binDir)); run `make build`")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments(service, replica: replica)
        process.environment = env
        process.currentDirectoryURL = URL(fileURLWithPath: state)
        let logPath = state + ".log"
        if !FileManager.default.fileExists(atPath: logPath) { _ = FileManager.default.createFile(atPath: logPath, contents: nil) }
        let log = FileHandle(forWritingAtPath: logPath)
        log?.seekToEndOfFile()
        process.standardOutput = log
        process.standardError = log
        try process.run()
        HarnessChildren.register(process, name: "\(service.name)-\(replica)")
        if !service.oneShot {
            if let previous = processes["\(service.name)-\(replica)"], !previous.isRunning { HarnessChildren.unregister(previous) }
            processes["\(service.name)-\(replica)"] = process
        }
        return process
    }

    /// Runs the one-shot jobs (topic-init) to completion, in order.
    func runJobs(say: (String) -> Void) async throws {
        for job in services where job.oneShot {
            let process = try launch(job, replica: 1)
            defer { stopHarnessProcesses([process], grace: .seconds(5)) }
            while process.isRunning { try await harnessSleep(.milliseconds(100)) }
            guard process.terminationStatus == 0 else {
                throw ValidationError("\(job.name) failed (status \(process.terminationStatus)); see \(work)/\(job.name)-1.log")
            }
            say("\(job.name) done")
        }
    }

    /// Starts every long-running service with `replicas` copies (or the compose file's count).
    func startAll(replicas: Int?) throws {
        for service in services where !service.oneShot {
            let copies = replicas ?? service.replicas
            counts[service.name] = copies
            for replica in 1...copies { try launch(service, replica: replica) }
        }
    }

    /// The service named `name`.
    func service(_ name: String) -> ComposeService? { services.first { $0.name == name } }

    /// The running (or last started) process of a replica.
    func process(_ name: String, replica: Int) -> Process? { processes["\(name)-\(replica)"] }

    /// Replicas whose process has exited, as (service, replica).
    func exited() -> [(ComposeService, Int)] {
        processes.compactMap { key, process in
            guard !process.isRunning, let dash = key.lastIndex(of: "-"), let replica = Int(key[key.index(after: dash)...]),
                  let service = service(String(key[..<dash])) else { return nil }
            return (service, replica)
        }
    }

    /// Every state file of the replicas of `service` named as `flag`'s value maps it (the
    /// executors' ledgers for `--ledger`).
    func stateFiles(flag: String) -> [String] {
        var files: [String] = []
        for service in services where !service.oneShot {
            for replica in 1...(counts[service.name] ?? 1) {
                let arguments = arguments(service, replica: replica)
                if let index = arguments.firstIndex(of: flag), index + 1 < arguments.count { files.append(arguments[index + 1]) }
            }
        }
        return files
    }

    /// Stops every replica (SIGTERM, then SIGKILL after 20 s). Idempotent.
    func stopAll() {
        stopHarnessProcesses(Array(processes.values))
    }

    /// Stops one replica (SIGTERM, then SIGKILL after `grace`).
    func stop(_ name: String, replica: Int, grace: Duration = .seconds(20)) {
        if let process = processes["\(name)-\(replica)"] { stopHarnessProcesses([process], grace: grace) }
    }
}
