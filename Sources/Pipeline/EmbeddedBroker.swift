import Foundation
import Logging

/// The embedded Kafka-protocol broker (Tansu) as a child process, for `vigil demo`,
/// `vigil broker` and tests. In-memory storage: topics vanish when it stops.
public final class EmbeddedBroker: Sendable {
    /// Port it listens on (loopback).
    public let port: Int
    /// `bootstrap.servers` for clients.
    public var bootstrapServers: String { "127.0.0.1:\(port)" }
    private let process: Process

    private init(port: Int, process: Process) {
        self.port = port
        self.process = process
    }

    deinit { stop() }

    /// Where the broker binary is: `VIGIL_TANSU`, else `tools/bin/tansu` in the working
    /// directory or any parent, else next to the running executable's package.
    public static func locateBinary(environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        locateTool("tools/bin/tansu", override: "VIGIL_TANSU", environment: environment)
    }

    /// A tool scripts/setup installs under the repository's `tools/`: `environment[override]`
    /// when it names an executable, else `relativePath` under the working directory or one of
    /// its parents, or under a parent of the running executable's directory.
    public static func locateTool(_ relativePath: String, override: String,
                                  environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        let fileManager = FileManager.default
        if let explicit = environment[override], fileManager.isExecutableFile(atPath: explicit) { return explicit }
        var starts = [fileManager.currentDirectoryPath]
        if let executable = Bundle.main.executablePath { starts.append((executable as NSString).deletingLastPathComponent) }
        for start in starts {
            var directory = URL(fileURLWithPath: start)
            for _ in 0..<8 {
                let candidate = directory.appendingPathComponent(relativePath).path
                if fileManager.isExecutableFile(atPath: candidate) { return candidate }
                directory.deleteLastPathComponent()
            }
        }
        return nil
    }

    /// A TCP port that was free a moment ago.
    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ConfigError("cannot open a socket to find a free port") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0 else { throw ConfigError("cannot bind a socket to find a free port") }
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { throw ConfigError("cannot read the bound port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Starts the broker and waits until it accepts connections.
    public static func start(binary: String, port: Int? = nil, logger: Logger? = nil,
                             output: FileHandle? = nil) async throws -> EmbeddedBroker {
        let chosen = try port ?? freePort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        let url = "tcp://127.0.0.1:\(chosen)"
        process.arguments = ["broker", "--listener-url", url, "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"]
        let sink = output ?? FileHandle(forWritingAtPath: "/dev/null")
        process.standardOutput = sink
        process.standardError = sink
        try process.run()
        let broker = EmbeddedBroker(port: chosen, process: process)
        for _ in 0..<200 {
            if EmbeddedBroker.accepts(port: chosen) {
                logger?.info("embedded broker ready", metadata: ["bootstrap": .string(broker.bootstrapServers)])
                return broker
            }
            guard process.isRunning else { throw ConfigError("broker exited at start (status \(process.terminationStatus)); is port \(chosen) free?") }
            try await Task.sleep(for: .milliseconds(50))
        }
        broker.stop()
        throw ConfigError("broker did not accept connections on port \(chosen) within 10 s")
    }

    /// Whether something accepts TCP connections on loopback `port`.
    public static func accepts(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        return result == 0
    }

    /// Whether the broker process is still running.
    public var isRunning: Bool { process.isRunning }

    /// Stops the broker (SIGTERM, then SIGKILL after 5 s) and waits for it. Idempotent.
    public func stop() {
        guard process.isRunning else { return }
        process.terminate()
        for _ in 0..<100 where process.isRunning { usleep(50_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        // Polled: `waitUntilExit()` can spin at full CPU on Linux once the child is gone.
        while process.isRunning { usleep(20_000) }
    }

    /// Waits until the broker exits by itself.
    public func waitUntilExit() { process.waitUntilExit() }
}
