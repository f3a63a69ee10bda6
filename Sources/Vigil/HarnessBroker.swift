import AWS
import ArgumentParser
import Foundation
import Pipeline
import Synchronization

/// Every process a harness run started and has not yet seen exit, by pid, so an interrupted
/// run (SIGINT, SIGTERM) can stop them even when the task that owns them is busy elsewhere.
enum HarnessChildren {
    private static let running = Mutex<[Int32: String]>([:])

    static func register(_ process: Process, name: String) {
        let pid = process.processIdentifier
        running.withLock { $0[pid] = name }
    }

    static func unregister(_ process: Process) {
        let pid = process.processIdentifier
        _ = running.withLock { $0.removeValue(forKey: pid) }
    }

    /// Names of the processes still registered.
    static var names: [String] { running.withLock { Array($0.values).sorted() } }

    /// Last resort (a second signal, or the first one not handled in time): SIGKILL to every
    /// registered process that still exists.
    static func killAll() {
        for pid in running.withLock({ Array($0.keys) }) where kill(pid, 0) == 0 { kill(pid, SIGKILL) }
    }
}

/// SIGINT or SIGTERM reached `vigil harness`: every loop that waits checks this and throws
/// ``HarnessInterrupted``, so the `defer`s stop the stages, then the broker, then moto.
enum HarnessInterrupt {
    private static let received = Atomic<Int32>(0)

    /// The signal received, if any.
    static var signal: Int32? {
        let value = received.load(ordering: .relaxed)
        return value == 0 ? nil : value
    }

    static func record(_ signal: Int32) { received.store(signal, ordering: .relaxed) }

    /// Throws when a signal arrived.
    static func check() throws {
        if let signal { throw HarnessInterrupted(signal: signal) }
    }

    static func name(_ signal: Int32) -> String { signal == SIGINT ? "SIGINT" : signal == SIGTERM ? "SIGTERM" : "signal \(signal)" }
}

/// A harness run stopped by a signal.
struct HarnessInterrupted: Error, CustomStringConvertible {
    var signal: Int32
    var description: String { "interrupted by \(HarnessInterrupt.name(signal))" }
}

/// Sleeps `duration` in short steps, throwing as soon as the run is interrupted.
func harnessSleep(_ duration: Duration) async throws {
    let end = ContinuousClock.now + duration
    while ContinuousClock.now < end {
        try HarnessInterrupt.check()
        try await Task.sleep(for: min(.milliseconds(100), end - ContinuousClock.now))
    }
    try HarnessInterrupt.check()
}

/// Stops processes: SIGTERM, then SIGKILL for any still running after `grace`; waits for each
/// and unregisters it.
func stopHarnessProcesses(_ processes: [Process], grace: Duration = .seconds(20)) {
    for process in processes where process.isRunning { process.terminate() }
    let deadline = ContinuousClock.now + grace
    for process in processes {
        while process.isRunning && ContinuousClock.now < deadline { usleep(50_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        // Polled: `waitUntilExit()` can spin at full CPU on Linux once the child is gone.
        for _ in 0..<200 where process.isRunning { usleep(25_000) }
        HarnessChildren.unregister(process)
    }
}

/// The broker of a harness run: the embedded broker (Tansu) in memory, the embedded broker on
/// S3 storage served by a moto server the harness starts (durable: topics, offsets and groups
/// survive a broker restart), or an external broker (`--bootstrap`), which it never touches.
///
/// Owned by one task; `Process` is not `Sendable`.
final class HarnessBroker {
    /// `bootstrap.servers` for clients.
    let bootstrapServers: String
    /// Whether the broker keeps its data across a restart.
    let durable: Bool
    private let binary: String?
    private let port: Int
    private let work: String
    private let environment: [String: String]
    private var process: Process?
    private var moto: Process?
    /// The moto server's endpoint (durable mode).
    private(set) var storageEndpoint: String?
    /// The bucket the broker stores in (durable mode).
    static let bucket = "vigil-harness"

    private init(bootstrapServers: String, durable: Bool, binary: String?, port: Int, work: String, environment: [String: String]) {
        self.bootstrapServers = bootstrapServers
        self.durable = durable
        self.binary = binary
        self.port = port
        self.work = work
        self.environment = environment
    }

    deinit { stop() }

    /// A broker run elsewhere (`--bootstrap`): nothing to start or stop.
    static func external(_ bootstrap: String) -> HarnessBroker {
        HarnessBroker(bootstrapServers: bootstrap, durable: true, binary: nil, port: 0, work: "", environment: [:])
    }

    /// Starts the embedded broker (and, when `durable`, a moto server with its bucket first);
    /// logs go to `<work>/broker.log` and `<work>/moto.log`.
    static func start(durable: Bool, work: String, environment: [String: String]) async throws -> HarnessBroker {
        guard let binary = EmbeddedBroker.locateBinary(environment: environment) else {
            throw ValidationError("the embedded broker (tools/bin/tansu) is not installed: run scripts/setup")
        }
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let port = try EmbeddedBroker.freePort()
        let broker = HarnessBroker(bootstrapServers: "127.0.0.1:\(port)", durable: durable, binary: binary, port: port,
                                   work: work, environment: environment)
        do {
            if durable { try await broker.startStorage() }
            try await broker.startBroker()
        } catch {
            broker.stop()
            throw error
        }
        return broker
    }

    /// Where moto's server is: `VIGIL_MOTO`, else `tools/venv/bin/moto_server` in the working
    /// directory or a parent, or above the running executable (scripts/setup installs it there).
    static func locateMoto(environment: [String: String]) -> String? {
        EmbeddedBroker.locateTool("tools/venv/bin/moto_server", override: "VIGIL_MOTO", environment: environment)
    }

    private func logHandle(_ name: String) -> FileHandle? {
        let path = work + "/" + name
        if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
        let handle = FileHandle(forWritingAtPath: path)
        handle?.seekToEndOfFile()
        return handle
    }

    private func startStorage() async throws {
        guard let motoBinary = Self.locateMoto(environment: environment) else {
            throw ValidationError("moto's server (tools/venv/bin/moto_server, or VIGIL_MOTO) is needed for the durable broker: run scripts/setup")
        }
        let motoPort = try EmbeddedBroker.freePort()
        // A loaded machine starts Python slowly.
        moto = try await launch(motoBinary, ["-H", "127.0.0.1", "-p", String(motoPort)], environment: nil, name: "moto_server",
                                log: "moto.log", port: motoPort, within: .seconds(90), poll: .milliseconds(100))
        let endpoint = "http://127.0.0.1:\(motoPort)"
        storageEndpoint = endpoint
        let client = try AWSClient(region: "us-east-1", credentials: AWSCredentials(accessKeyID: "x", secretAccessKey: "x"),
                                   endpoint: URL(string: endpoint))
        try await client.createBucket(Self.bucket)
    }

    private func startBroker() async throws {
        guard let binary else { return }
        let url = "tcp://127.0.0.1:\(port)"
        var env = environment
        var arguments = ["broker", "--listener-url", url, "--advertised-listener-url", url]
        if let storageEndpoint {
            arguments += ["--storage-engine", "s3://\(Self.bucket)/"]
            env["AWS_ACCESS_KEY_ID"] = "x"
            env["AWS_SECRET_ACCESS_KEY"] = "x"
            env["AWS_DEFAULT_REGION"] = "us-east-1"
            env["AWS_ENDPOINT"] = storageEndpoint
            env["AWS_ALLOW_HTTP"] = "true"
        } else {
            arguments += ["--storage-engine", "memory://tansu/"]
        }
        process = try await launch(binary, arguments, environment: env, name: "tansu", log: "broker.log", port: port,
                                   within: .seconds(30), poll: .milliseconds(50))
    }

    /// Starts `binary` in the work directory with its output in `log`, registers it as a child
    /// of the harness, and returns once it accepts connections on `port`.
    private func launch(_ binary: String, _ arguments: [String], environment: [String: String]?, name: String, log: String,
                        port: Int, within limit: Duration, poll: Duration) async throws -> Process {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: binary)
        child.arguments = arguments
        if let environment { child.environment = environment }
        child.currentDirectoryURL = URL(fileURLWithPath: work)
        let handle = logHandle(log)
        child.standardOutput = handle
        child.standardError = handle
        try child.run()
        HarnessChildren.register(child, name: name)
        let deadline = ContinuousClock.now + limit
        do {
            while !EmbeddedBroker.accepts(port: port) {
                guard child.isRunning else {
                    throw ValidationError("\(name) exited at start (status \(child.terminationStatus)); see \(work)/\(log)")
                }
                guard ContinuousClock.now < deadline else { throw ValidationError("\(name) did not listen on port \(port) within \(limit)") }
                try await harnessSleep(poll)
            }
        } catch {
            // Not handed to the caller, so stopped here.
            if child.isRunning { Foundation.kill(child.processIdentifier, SIGKILL) }
            while child.isRunning { usleep(20_000) }
            HarnessChildren.unregister(child)
            throw error
        }
        return child
    }

    /// Whether the broker process runs (always true for an external broker).
    var isRunning: Bool { binary == nil || process?.isRunning == true }

    /// SIGKILL to the broker; returns once it is gone.
    func kill() {
        guard let process, process.isRunning else { return }
        Foundation.kill(process.processIdentifier, SIGKILL)
        while process.isRunning { usleep(20_000) }
        HarnessChildren.unregister(process)
    }

    /// Starts the broker again on the same port and storage; returns once it accepts connections.
    func restart() async throws {
        precondition(binary != nil, "an external broker cannot be restarted")
        if process?.isRunning == true { kill() }
        try await startBroker()
    }

    /// Stops the broker, then the storage server. Idempotent; an external broker is left alone.
    func stop() {
        if let process {
            stopHarnessProcesses([process], grace: .seconds(5))
            self.process = nil
        }
        if let moto {
            stopHarnessProcesses([moto], grace: .seconds(5))
            self.moto = nil
        }
    }
}
