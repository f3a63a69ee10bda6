import ArgumentParser
import Foundation
import Kafka
import Logging
import Pipeline
import Shipping
import Stages

struct Ship: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Get logs into <prefix>raw: files and directories, a syslog receiver.",
        discussion: """
            Examples:
              vigil ship --source cloudtrail AWSLogs/111122223333/CloudTrail/     # same as 'ship files'
              vigil ship syslog --udp 5514 --tcp 5514
            """,
        subcommands: [ShipFiles.self, ShipSyslog.self],
        defaultSubcommand: ShipFiles.self)
}

struct ShipFiles: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "files",
        abstract: "Send log files and directories to <prefix>raw with a vigil-source header.",
        discussion: """
            Each file is one raw record (a CloudTrail file holds many entries; compressed .gz files are sent as they are and ingest inflates them); with --lines, or for .jsonl/.ndjson/.log files, each line is one record. Directories are walked recursively in name order, hidden entries skipped. Records go out in batches and the command returns once the broker has acknowledged every one; progress goes to stderr. A file that cannot be read or is larger than --max-record-bytes is reported and skipped, and the exit status is then 1.

            Examples:
              vigil ship --source cloudtrail --brokers kafka:9092 AWSLogs/111122223333/CloudTrail/
              vigil ship --source syslog --lines /var/log/auth.log
            """)
    @OptionGroup var kafka: KafkaOptions
    @Option(help: "Log source (vigil-source header): cloudtrail, vpcflow, syslog, ...; omit to let ingest detect it.") var source: String?
    @Flag(help: "One record per line.") var lines = false
    @Option(help: "Largest record to send; must not exceed the brokers' message.max.bytes.") var maxRecordBytes: Int = 1_000_000
    @Argument(help: "Files or directories to send.") var paths: [String]

    func validate() throws {
        if paths.isEmpty { throw ValidationError("name at least one file or directory") }
        if maxRecordBytes < 1024 { throw ValidationError("--max-record-bytes must be at least 1024") }
    }

    func run() async throws {
        var config = kafka.kafkaConfig(clientID: "vigil-ship")
        config.properties["message.max.bytes"] = config.properties["message.max.bytes"] ?? String(maxRecordBytes + 65_536)
        let producer = try KafkaProducer(config: config, logger: cliLogger("vigil-ship"))
        let headers = source.map { [KafkaHeader(VigilHeader.source, $0)] } ?? []
        var progress = ShipProgress()
        var failures = 0
        var batch: [OutgoingRecord] = []
        var batchBytes = 0

        func flush() async throws {
            guard !batch.isEmpty else { return }
            try await producer.send(batch)
            progress.records += batch.count
            progress.bytes += batchBytes
            batch.removeAll(keepingCapacity: true)
            batchBytes = 0
            progress.report(final: false)
        }

        for file in try FileExpansion.expand(paths) {
            guard let data = FileManager.default.contents(atPath: file) else {
                Offline.writeError("vigil ship: cannot read \(file); skipped")
                failures += 1
                continue
            }
            let byLine = lines || [".jsonl", ".ndjson", ".log"].contains(where: file.hasSuffix)
            let pieces: [(key: String, bytes: [UInt8])]
            if byLine {
                pieces = data.split(separator: 0x0A).enumerated()
                    .filter { !$0.element.allSatisfy { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D } }
                    .map { ("\(file):\($0.offset + 1)", Array($0.element)) }
            } else {
                pieces = [(file, Array(data))]
            }
            for piece in pieces {
                guard piece.bytes.count <= maxRecordBytes else {
                    Offline.writeError("vigil ship: \(piece.key) is \(piece.bytes.count) bytes, over --max-record-bytes \(maxRecordBytes); skipped")
                    failures += 1
                    continue
                }
                batch.append(OutgoingRecord(topic: kafka.topics.raw, key: Array(piece.key.utf8), value: piece.bytes, headers: headers))
                batchBytes += piece.bytes.count
                if batch.count >= 5000 || batchBytes >= 16_000_000 { try await flush() }
            }
            progress.files += 1
        }
        try await flush()
        await producer.close()
        progress.report(final: true)
        print("shipped \(progress.records) records from \(progress.files) files to \(kafka.topics.raw)")
        if failures > 0 { throw ExitCode(1) }
    }
}

/// Expands files and directories into the files to ship.
enum FileExpansion {
    static func expand(_ paths: [String]) throws -> [String] {
        let fileManager = FileManager.default
        var files: [String] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard fileManager.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw ValidationError("no such file or directory: \(path)")
            }
            guard isDirectory.boolValue else {
                files.append(path)
                continue
            }
            guard let walker = fileManager.enumerator(atPath: path) else { throw ValidationError("cannot list \(path)") }
            var found: [String] = []
            while let relative = walker.nextObject() as? String {
                if relative.split(separator: "/").contains(where: { $0.hasPrefix(".") }) { continue }
                let full = (path as NSString).appendingPathComponent(relative)
                var childIsDirectory: ObjCBool = false
                if fileManager.fileExists(atPath: full, isDirectory: &childIsDirectory), !childIsDirectory.boolValue {
                    found.append(full)
                }
            }
            files += found.sorted()
        }
        return files
    }
}

/// Progress lines on stderr, at most every two seconds.
struct ShipProgress {
    var files = 0
    var records = 0
    var bytes = 0
    private var lastReport = ContinuousClock.now
    private let start = ContinuousClock.now

    mutating func report(final: Bool) {
        let now = ContinuousClock.now
        guard final || now - lastReport >= .seconds(2) else { return }
        lastReport = now
        let seconds = max(0.001, Double((now - start).components.attoseconds) / 1e18 + Double((now - start).components.seconds))
        Offline.writeError(String(format: "vigil ship: %d records, %.1f MB from %d files (%.0f records/s)",
                                  records, Double(bytes) / 1_000_000, files, Double(records) / seconds))
    }
}

struct ShipSyslog: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "syslog",
        abstract: "Receive syslog over UDP and TCP and send each message to <prefix>raw (vigil-source: syslog).",
        discussion: """
            TCP takes RFC 6587 framing: octet counting or newline-delimited, chosen per connection. Messages longer than --max-message-size are cut there and counted; UDP datagrams that arrive faster than the broker takes them are dropped and counted (vigil_syslog_dropped_total on /metrics). Stop with Ctrl-C or SIGTERM: buffered messages are sent first.

            Examples:
              vigil ship syslog --brokers kafka:9092 --udp 5514 --tcp 5514
              vigil ship syslog --host 0.0.0.0 --tcp 6514 --no-udp
            """)
    @OptionGroup var kafka: KafkaOptions
    @Option(help: "Address to listen on.") var host: String = "127.0.0.1"
    @Option(help: "UDP port (0 = any free port).") var udp: Int = 5514
    @Option(help: "TCP port (0 = any free port).") var tcp: Int = 5514
    @Flag(help: "Do not listen on UDP.") var noUdp = false
    @Flag(help: "Do not listen on TCP.") var noTcp = false
    @Option(help: "Longest message kept whole.") var maxMessageSize: Int = 65_536
    @Option(help: "Port of /metrics, /healthz, /readyz; 0 turns it off.") var metricsPort: Int = 0

    func validate() throws {
        if noUdp && noTcp { throw ValidationError("--no-udp and --no-tcp leave nothing to listen on") }
    }

    func run() async throws {
        var config = SyslogReceiverConfig()
        config.host = host
        config.udpPort = noUdp ? nil : udp
        config.tcpPort = noTcp ? nil : tcp
        config.maxMessageSize = maxMessageSize
        config.topics = kafka.topics
        try config.validate()
        let logger = cliLogger("vigil-ship-syslog", level: .info)
        let metrics = MetricsRegistry()
        let health = HealthState()
        let producer = try KafkaProducer(config: kafka.kafkaConfig(clientID: "vigil-ship-syslog"), logger: logger)
        let settings = config
        let receiver = try SyslogReceiver(config: settings, producer: producer, metrics: metrics, logger: logger) { endpoints in
            health.markReady()
            let udp = endpoints.udpPort.map { "udp \($0)" }
            let tcp = endpoints.tcpPort.map { "tcp \($0)" }
            Offline.writeError("vigil ship syslog: listening on \(settings.host) " + [udp, tcp].compactMap { $0 }.joined(separator: ", ")
                               + "; sending to \(settings.topics.raw)")
        }
        let interrupted = InterruptFlag()
        let server = metricsPort > 0 ? Task { try await MetricsServer(port: metricsPort, metrics: metrics, health: health, logger: logger).run() } : nil
        let receiving = Task { try await receiver.run() }
        while !interrupted.isSet {
            try? await Task.sleep(for: .milliseconds(200))
        }
        receiver.stop()
        try await receiving.value
        server?.cancel()
        await producer.close()
        Offline.writeError("vigil ship syslog: stopped after \(Int(metrics.counter("vigil_syslog_produced_total"))) messages")
    }
}
