import AWS
import Foundation
import Pipeline

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

    /// The endpoint URL to give clients.
    public var endpoint: URL { URL(string: "http://127.0.0.1:\(port)")! }

    /// Environment for a child process or a client: endpoint, region and test credentials.
    public var environment: [String: String] {
        ["VIGIL_AWS_ENDPOINT": endpoint.absoluteString, "AWS_DEFAULT_REGION": "us-east-1",
         "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"]
    }

    /// A client for this server with the test credentials, in us-east-1.
    public func client(timeout: Duration = .seconds(20)) throws -> AWSClient {
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
        let port = try EmbeddedBroker.freePort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["-H", "127.0.0.1", "-p", String(port)]
        let sink = FileHandle(forWritingAtPath: "/dev/null")
        process.standardOutput = sink
        process.standardError = sink
        try process.run()
        let server = MotoServer(port: port, process: process)
        for _ in 0..<300 {
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
        guard process.isRunning else { return }
        process.terminate()
        for _ in 0..<100 where process.isRunning { usleep(50_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        for _ in 0..<100 where process.isRunning { usleep(50_000) }
    }

    deinit { stop() }
}
