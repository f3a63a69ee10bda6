import AWS
import Foundation
import Pipeline
import Synchronization

/// At most `limit` moto servers run at once in a test process: each one is a Python process
/// that takes seconds of CPU to start, and tests run in parallel on small machines. Waiters are
/// resumed in order as servers stop. The wait counts against a test's time limit, so suites
/// that use moto allow ten minutes.
final class MotoSlots: Sendable {
    private let state: Mutex<(free: Int, waiters: [CheckedContinuation<Void, Never>])>

    init(limit: Int) { state = Mutex((limit, [])) }

    func acquire() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let granted = state.withLock { state -> Bool in
                if state.free > 0 {
                    state.free -= 1
                    return true
                }
                state.waiters.append(continuation)
                return false
            }
            if granted { continuation.resume() }
        }
    }

    func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if state.waiters.isEmpty {
                state.free += 1
                return nil
            }
            return state.waiters.removeFirst()
        }
        next?.resume()
    }
}

/// A real moto server process (local AWS APIs) per test, on a free port. Skips (through
/// `isAvailable`) when moto is absent; `make test` installs it first (`scripts/setup`).
public final class MotoServer: @unchecked Sendable {
    /// The server binary: `VIGIL_MOTO`, else `tools/venv/bin/moto_server` in this repository.
    public static let binary: String? = {
        if let path = ProcessInfo.processInfo.environment["VIGIL_MOTO"], FileManager.default.isExecutableFile(atPath: path) {
            return path
        }
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let candidate = repo.appendingPathComponent("tools/venv/bin/moto_server").path
        return FileManager.default.isExecutableFile(atPath: candidate) ? candidate : nil
    }()

    /// Whether tests that need moto can run here.
    public static var isAvailable: Bool { binary != nil }

    /// The port it listens on (127.0.0.1).
    public let port: Int
    private let process: Process
    private let released = Atomic<Bool>(false)
    static let slots = MotoSlots(limit: 3)

    /// The endpoint URL to give clients.
    public var endpoint: URL { URL(string: "http://127.0.0.1:\(port)")! }

    /// Environment for a child process or a client: endpoint, region and test credentials.
    public var environment: [String: String] {
        ["VIGIL_AWS_ENDPOINT": endpoint.absoluteString, "AWS_DEFAULT_REGION": "us-east-1",
         "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"]
    }

    /// A client for this server with the test credentials, in us-east-1. The timeout is long:
    /// a loaded machine can make moto slow, and a slow answer is not what the tests test.
    public func client(timeout: Duration = .seconds(60)) throws -> AWSClient {
        var client = try AWSClient(region: "us-east-1", credentials: AWSCredentials(accessKeyID: "testing", secretAccessKey: "testing"),
                                   endpoint: endpoint)
        client.timeout = timeout
        return client
    }

    private init(port: Int, process: Process) {
        self.port = port
        self.process = process
    }

    /// Starts a server and waits until it accepts connections.
    public static func start() async throws -> MotoServer {
        guard let binary else { throw ConfigError("moto_server not found; run scripts/setup") }
        await slots.acquire()
        let port: Int
        do { port = try EmbeddedBroker.freePort() } catch {
            slots.release()
            throw error
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["-H", "127.0.0.1", "-p", String(port)]
        let sink = FileHandle(forWritingAtPath: "/dev/null")
        process.standardOutput = sink
        process.standardError = sink
        do { try process.run() } catch {
            slots.release()
            throw error
        }
        let server = MotoServer(port: port, process: process)
        for _ in 0..<1200 {  // up to a minute: a loaded machine starts Python slowly
            if EmbeddedBroker.accepts(port: port) { return server }
            try await Task.sleep(for: .milliseconds(50))
        }
        server.stop()
        throw ConfigError("moto_server did not start listening on port \(port)")
    }

    /// Stops the server.
    public func stop() {
        // Polling rather than `waitUntilExit()`: on Linux that call can spin forever at full CPU
        // once the child is gone.
        defer { if !released.exchange(true, ordering: .relaxed) { Self.slots.release() } }
        guard process.isRunning else { return }
        process.terminate()
        for _ in 0..<100 where process.isRunning { usleep(50_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        for _ in 0..<100 where process.isRunning { usleep(50_000) }
    }

    deinit { stop() }
}
