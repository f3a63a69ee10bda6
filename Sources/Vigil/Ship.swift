import AWS
import ArgumentParser
import Foundation
import Kafka
import Logging
import Pipeline
import Shipping
import Stages
import Synchronization

struct Ship: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Get logs into <prefix>raw: files and directories (or followed as they grow), S3 buckets, a syslog receiver.",
        discussion: """
            Examples:
              vigil ship --source cloudtrail AWSLogs/111122223333/CloudTrail/     # same as 'ship files'
              vigil ship files --follow --source syslog /var/log/auth.log
              vigil ship s3 --bucket my-cloudtrail-bucket --once
              vigil ship syslog --udp 5514 --tcp 5514
            """,
        subcommands: [ShipFiles.self, ShipS3.self, ShipSyslog.self],
        defaultSubcommand: ShipFiles.self)
}

struct ShipFiles: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "files",
        abstract: "Send log files and directories to <prefix>raw with a vigil-source header.",
        discussion: """
            Each file is one raw record (a CloudTrail file holds many entries; compressed .gz files are sent as they are and ingest inflates them); with --lines, or for .jsonl/.ndjson/.log files, each line is one record (keyed PATH:N). Directories are walked recursively in name order, hidden entries skipped. Records go out in batches and the command returns once the broker has acknowledged every one; progress goes to stderr. A file that cannot be read or is larger than --max-record-bytes is reported and skipped, and the exit status is then 1.

            With --checkpoint FILE (a SQLite file) a run sends only what earlier runs with the same file did not: after every acknowledged batch it records, per path, the file's inode, size, modification time, a hash of its first 1 KiB and how far it was acknowledged. A file shipped completely and unchanged is skipped; a line file that grew (appended to, or cut short by an interrupted run) resumes after its last acknowledged line; a file replaced by another one (a new inode, or different first bytes) or shrunk is sent from its start; a whole-file record whose size or modification time changed is sent again whole. The summary counts the skipped and resumed files. Ctrl-C or SIGTERM then stops after the batch in flight is acknowledged and recorded (exit status 130); a crash may send that batch again on the next run. A last line without its newline is sent as it is, so text appended to it later arrives as a record of its own.

            With --follow the named files are followed as they grow, like 'tail -F', until Ctrl-C or SIGTERM: each line is one record keyed by the file's absolute path (so one file's lines stay in order), sent from the file's start the first time and from where it stopped after a restart. Rotation is safe both ways logrotate does it: a renamed file is read to its end (once it has not grown for 2 s) before the new file, and a file truncated in place (copytruncate) is read again from its start. How far each file was shipped (inode and offset, at a line start) is kept in the --checkpoint SQLite file (default vigil-ship-files.sqlite) and written only after the broker acknowledged the lines, so a restart neither loses nor repeats whole lines (lines in flight at a crash may be sent twice). A line longer than --max-record-bytes is skipped and counted; a last line without its newline waits for it. Files only (not directories, whose rotated copies would be shipped twice) and plain text (not .gz); a file that does not exist yet is picked up when it appears. On Ctrl-C or SIGTERM what is already written is sent first; the exit status is then 0.

            Examples:
              vigil ship --source cloudtrail --brokers kafka:9092 AWSLogs/111122223333/CloudTrail/
              vigil ship --source syslog --lines /var/log/auth.log
              vigil ship files --source cloudtrail --checkpoint /var/lib/vigil/ship-once.sqlite AWSLogs/    # again later: only new files
              vigil ship files --follow --source syslog --checkpoint /var/lib/vigil/ship-files.sqlite /var/log/auth.log /var/log/secure
            """)
    @OptionGroup var kafka: KafkaOptions
    @Option(help: "Log source (vigil-source header): cloudtrail, vpcflow, syslog, ...; omit to let ingest detect it.") var source: String?
    @Flag(help: "One record per line.") var lines = false
    @Flag(help: "Follow the files as they grow (one record per line; rotation-safe) until Ctrl-C or SIGTERM.") var follow = false
    @Option(help: ArgumentHelp("The SQLite file that records how far each file was shipped: skip what an earlier run sent, resume what it did not finish. With --follow it defaults to vigil-ship-files.sqlite.", valueName: "file"))
    var checkpoint: String?
    @Option(help: "Largest record to send; must not exceed the brokers' message.max.bytes.") var maxRecordBytes: Int = 1_000_000
    @Argument(help: "Files or directories to send (files only with --follow).") var paths: [String]

    /// The checkpoint of --follow.
    static let defaultFollowCheckpoint = "vigil-ship-files.sqlite"

    func validate() throws {
        if paths.isEmpty { throw ValidationError("name at least one file or directory") }
        if maxRecordBytes < 1024 { throw ValidationError("--max-record-bytes must be at least 1024") }
        if checkpoint?.isEmpty == true { throw ValidationError("--checkpoint must name a file") }
        if follow {
            for path in paths {
                var isDirectory: ObjCBool = false
                if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
                    throw ValidationError("--follow takes files, not directories: \(path)")
                }
                if path.hasSuffix(".gz") { throw ValidationError("--follow reads plain text lines, not .gz files: \(path)") }
            }
        }
    }

    func run() async throws {
        var config = kafka.kafkaConfig(clientID: "vigil-ship")
        config.properties["message.max.bytes"] = config.properties["message.max.bytes"] ?? String(maxRecordBytes + 65_536)
        if follow { return try await runFollow(kafkaConfig: config) }
        var settings = FileShipConfig(files: try FileExpansion.expand(paths), topic: kafka.topics.raw)
        settings.source = source
        settings.lines = lines
        settings.maxRecordBytes = maxRecordBytes
        let store = try checkpoint.map { path throws(ShippingError) in try FileCheckpoint(path: path) }
        let producer = try KafkaProducer(config: config, logger: cliLogger("vigil-ship"))
        let stop = ShipStopRequest()
        let shipping = Task {
            defer { stop.markFinished() }
            var progress = ShipProgress()
            let summary = try await FileShipper(config: settings).ship(
                producer: producer, checkpoint: store, shouldStop: { stop.isRequested },
                notice: { Offline.writeError("vigil ship: \($0)") },
                progress: { running in
                    progress.records = running.records
                    progress.bytes = running.bytes
                    progress.files = running.files
                    progress.report(final: false)
                })
            return (summary, progress)
        }
        // Only a checkpointed run can stop cleanly and resume; without one Ctrl-C keeps its default.
        if store != nil {
            let interrupted = InterruptFlag()
            while !interrupted.isSet && !stop.isFinished {
                try? await Task.sleep(for: .milliseconds(200))
            }
            stop.request()
        }
        let summary: FileShipSummary
        var progress: ShipProgress
        do {
            (summary, progress) = try await shipping.value
        } catch {
            await producer.close()
            throw error
        }
        await producer.close()
        progress.records = summary.records
        progress.bytes = summary.bytes
        progress.files = summary.files
        progress.report(final: true)
        var line = "shipped \(summary.records) records from \(summary.files) files to \(kafka.topics.raw)"
        if let checkpoint {
            line += "; \(summary.skippedUnchanged) unchanged file(s) skipped, \(summary.resumed) resumed (checkpoint \(checkpoint))"
        }
        print(line)
        if summary.interrupted {
            Offline.writeError("vigil ship: interrupted; run it again with the same --checkpoint to send the rest")
            throw ExitCode(130)
        }
        if summary.failed > 0 { throw ExitCode(1) }
    }
}

extension ShipFiles {
    /// `--follow`: a `FileFollower` shipping until interrupted.
    func runFollow(kafkaConfig: KafkaConfig) async throws {
        let logger = cliLogger("vigil-ship")
        let producer = try KafkaProducer(config: kafkaConfig, logger: logger)
        let checkpoint = self.checkpoint ?? Self.defaultFollowCheckpoint
        let store = try FileCheckpoint(path: checkpoint)
        var settings = FileFollowConfig(paths: paths)
        settings.maxLineBytes = maxRecordBytes
        let follower = try await FileFollower(config: settings, checkpoint: store, logger: logger)
        let followed = follower.config.paths
        let topic = kafka.topics.raw
        let source = self.source
        Offline.writeError("vigil ship files: following \(followed.count) file(s) into \(topic) (checkpoint \(checkpoint)); stop with Ctrl-C")
        let interrupted = InterruptFlag()
        let stop = ShipStopRequest()
        let following = Task {
            defer { stop.markFinished() }
            var lastReport = ContinuousClock.now
            try await follower.ship(producer: producer, checkpoint: store, topic: topic, source: source,
                                    shouldStop: { stop.isRequested }) { counters in
                guard ContinuousClock.now - lastReport >= .seconds(2) else { return }
                lastReport = .now
                Offline.writeError("vigil ship files: \(Self.describe(counters))")
            }
            return follower.counters
        }
        while !interrupted.isSet && !stop.isFinished {
            try? await Task.sleep(for: .milliseconds(200))
        }
        stop.request()
        let counters: FollowCounters
        do {
            counters = try await following.value
        } catch {
            await producer.close()
            throw error
        }
        await producer.close()
        Offline.writeError("vigil ship files: stopped; \(Self.describe(counters))")
    }

    static func describe(_ counters: FollowCounters) -> String {
        var text = String(format: "%d line(s) shipped (%.1f MB read)", counters.shippedLines, Double(counters.bytes) / 1_000_000)
        let notes = [(counters.rotations, "rotation(s)"), (counters.truncations, "truncation(s)"),
                     (counters.skippedLongLines, "over-long line(s) skipped"),
                     (counters.missedRotations, "rotated file(s) gone before they were finished")]
            .filter { $0.0 > 0 }.map { "\($0.0) \($0.1)" }
        if !notes.isEmpty { text += ", " + notes.joined(separator: ", ") }
        return text
    }
}

/// A stop request between the signal-watching loop and a shipping task, and the task's
/// "finished" mark (so the loop also ends when the task fails).
final class ShipStopRequest: Sendable {
    private let requested = Atomic<Bool>(false)
    private let finished = Atomic<Bool>(false)

    var isRequested: Bool { requested.load(ordering: .relaxed) }
    var isFinished: Bool { finished.load(ordering: .relaxed) }
    func request() { requested.store(true, ordering: .relaxed) }
    func markFinished() { finished.store(true, ordering: .relaxed) }
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

struct ShipS3: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "s3",
        abstract: "Ship the logs AWS delivers to an S3 bucket (CloudTrail, VPC Flow Logs, AWS Config) to <prefix>raw, each object once.",
        discussion: """
            Lists the bucket under --prefix and sends every object not sent before as one record: the object's bytes as stored (.gz included; ingest inflates them), keyed s3://BUCKET/KEY, with a vigil-source header inferred from the AWS delivery layout: .../CloudTrail/... and .../CloudTrail-Insight/... are cloudtrail, .../vpcflowlogs/... vpcflow, .../Config/... awsconfig. CloudTrail-Digest files and AWS Config's ConfigWritabilityCheckFile are ignored (and counted). Keys outside these layouts get --source when it is given; otherwise they are reported and left alone (Parquet flow logs always are: no parser reads them).

            The --checkpoint SQLite file records each object (bucket, key, etag) only after the broker acknowledged it, so a restart never skips an object and repeats at most those in flight at a crash; an object rewritten with a new etag is sent again. An object larger than --max-record-bytes is not downloaded: it is recorded as skipped and reported (raise the limit and the brokers' message.max.bytes to send it later). An object that cannot be fetched is reported and tried again at the next poll.

            --once polls once and exits (status 1 if an object was skipped or could not be fetched); otherwise it polls every --interval until Ctrl-C or SIGTERM, and stops once the objects in flight are acknowledged and recorded. Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (/ AWS_SESSION_TOKEN) or the shared credentials file (AWS_PROFILE), never from the command line. Progress and the summary go to stderr.

            Examples:
              vigil ship s3 --bucket my-cloudtrail-bucket --once
              vigil ship s3 --bucket org-logs --prefix AWSLogs/o-abc123/ --interval 5m --checkpoint /var/lib/vigil/ship-s3.sqlite
              vigil ship s3 --bucket logs --aws-endpoint http://127.0.0.1:5000 --region us-east-1 --once    # moto, MinIO
            """)
    @OptionGroup var kafka: KafkaOptions
    @Option(help: "The bucket to read.") var bucket: String
    @Option(help: "Only keys under this prefix ('' for the whole bucket).") var prefix: String = "AWSLogs/"
    @Option(help: "vigil-source for keys outside the AWS log layouts; without it they are reported and left alone.") var source: String?
    @Option(help: "The SQLite file that records which objects were sent.") var checkpoint: String = "vigil-ship-s3.sqlite"
    @Flag(help: "Poll once and exit.") var once = false
    @Option(help: "Time between polls: 90, 90s, 5m, 1h (default 60s).") var interval: PollInterval?
    @Option(help: "S3 endpoint URL (or VIGIL_AWS_ENDPOINT), e.g. moto or MinIO; uses path-style addressing.") var awsEndpoint: String?
    @Option(help: "AWS region (or AWS_REGION / AWS_DEFAULT_REGION; default us-east-1).") var region: String?
    @Option(help: "Largest object sent; must not exceed the brokers' message.max.bytes.") var maxRecordBytes: Int = 1_000_000

    func validate() throws {
        if once && interval != nil { throw ValidationError("--once and --interval exclude each other") }
        if maxRecordBytes < 1024 { throw ValidationError("--max-record-bytes must be at least 1024") }
        do {
            try settings.validate()
        } catch {
            throw ValidationError(error.reason)
        }
    }

    var settings: S3ShipperConfig {
        var config = S3ShipperConfig(bucket: bucket, checkpointPath: checkpoint)
        config.prefix = prefix
        config.source = source
        config.topics = kafka.topics
        config.maxRecordSize = maxRecordBytes
        return config
    }

    func run() async throws {
        var environment = ProcessInfo.processInfo.environment
        if let awsEndpoint { environment["VIGIL_AWS_ENDPOINT"] = awsEndpoint }
        if let region { environment["AWS_REGION"] = region }
        let client = try AWSClient.fromEnvironment(environment)
        var kafkaConfig = kafka.kafkaConfig(clientID: "vigil-ship-s3")
        kafkaConfig.properties["message.max.bytes"] = kafkaConfig.properties["message.max.bytes"] ?? String(maxRecordBytes + 65_536)
        let logger = cliLogger("vigil-ship-s3")
        let producer = try KafkaProducer(config: kafkaConfig, logger: logger)
        let config = settings
        let shipper = try S3Shipper(config: config, client: client, producer: producer, logger: logger)
        let every = interval?.duration ?? .seconds(60)
        Offline.writeError("vigil ship s3: s3://\(config.bucket)/\(config.prefix) to \(config.topics.raw) (checkpoint \(config.checkpointPath))"
                           + (once ? "" : ", polling every \(PollInterval.describe(every)); stop with Ctrl-C"))
        let report = S3ShipReport()
        let interrupted = InterruptFlag()
        let stop = ShipStopRequest()
        let once = self.once
        let shipping = Task {
            defer { stop.markFinished() }
            try await shipper.run(once: once, interval: every, progress: { report.progress($0) }, onPoll: { report.poll($0, always: once) })
        }
        while !interrupted.isSet && !stop.isFinished {
            try? await Task.sleep(for: .milliseconds(200))
        }
        shipper.stop()
        do {
            try await shipping.value
        } catch {
            await producer.close()
            throw error
        }
        await producer.close()
        let totals = report.totals
        Offline.writeError("vigil ship s3: \(interrupted.isSet ? "stopped; " : "")" + S3ShipReport.describe(totals, polls: report.polls))
        if once && (totals.failed > 0 || totals.skippedTooLarge > 0) { throw ExitCode(1) }
    }
}

/// Progress lines (at most every two seconds) and poll summaries of `vigil ship s3`, on stderr.
final class S3ShipReport: Sendable {
    private struct State {
        var totals = S3ShipSummary()
        var polls = 0
        var lastProgress = ContinuousClock.now
    }

    private let state = Mutex(State())

    var totals: S3ShipSummary { state.withLock { $0.totals } }
    var polls: Int { state.withLock { $0.polls } }

    func progress(_ running: S3ShipSummary) {
        let due = state.withLock { state -> Bool in
            guard ContinuousClock.now - state.lastProgress >= .seconds(2) else { return false }
            state.lastProgress = .now
            return true
        }
        if due {
            Offline.writeError(String(format: "vigil ship s3: %d object(s) listed, %d shipped (%.1f MB)", running.listed, running.shipped,
                                      Double(running.shippedBytes) / 1_000_000))
        }
    }

    /// Adds a poll; prints it when it did something (every poll with `always`).
    func poll(_ summary: S3ShipSummary, always: Bool) {
        state.withLock { state in
            state.polls += 1
            // Listing counts describe the bucket as of the last poll; the rest add up.
            state.totals.listed = summary.listed
            state.totals.alreadyDone = summary.alreadyDone
            state.totals.ignored = summary.ignored
            state.totals.unrecognized = summary.unrecognized
            state.totals.shipped += summary.shipped
            state.totals.shippedBytes += summary.shippedBytes
            state.totals.skippedTooLarge += summary.skippedTooLarge
            state.totals.failed += summary.failed
            state.totals.vanished += summary.vanished
        }
        if !always && summary.shipped + summary.skippedTooLarge + summary.failed + summary.vanished > 0 {
            Offline.writeError("vigil ship s3: poll: " + Self.describe(summary, polls: nil))
        }
    }

    static func describe(_ summary: S3ShipSummary, polls: Int?) -> String {
        var parts = [String(format: "%d object(s) shipped (%.1f MB)", summary.shipped, Double(summary.shippedBytes) / 1_000_000)]
        if let polls { parts.append("\(polls) poll(s)") }
        parts.append("\(summary.listed) listed")
        parts.append("\(summary.alreadyDone) already done")
        for (count, what) in [(summary.skippedTooLarge, "skipped as too large"), (summary.failed, "could not be fetched"),
                              (summary.vanished, "deleted before fetching"), (summary.ignored, "ignored (digests, checks)"),
                              (summary.unrecognized, "outside the AWS log layouts (give --source to ship them)")] where count > 0 {
            parts.append("\(count) \(what)")
        }
        return parts.joined(separator: ", ")
    }
}

/// A time between polls on the command line: `90` (seconds), `90s`, `5m`, `1h`, `500ms`.
struct PollInterval: ExpressibleByArgument, Equatable {
    var duration: Duration

    init?(argument: String) {
        let text = argument.trimmingCharacters(in: .whitespaces).lowercased()
        let units: [(suffix: String, seconds: Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        var number = text
        var scale = 1.0
        if let unit = units.first(where: { text.hasSuffix($0.suffix) }) {
            number = String(text.dropLast(unit.suffix.count))
            scale = unit.seconds
        }
        guard let value = Double(number), value.isFinite, value * scale >= 0.1, value * scale <= 86_400 else { return nil }
        duration = .milliseconds(Int64((value * scale * 1000).rounded()))
    }

    static func describe(_ duration: Duration) -> String {
        let seconds = duration.components.seconds
        if duration < .seconds(1) { return "\(duration.components.attoseconds / 1_000_000_000_000_000)ms" }
        if seconds % 3600 == 0 && seconds > 0 { return "\(seconds / 3600)h" }
        if seconds % 60 == 0 && seconds > 0 { return "\(seconds / 60)m" }
        return "\(seconds)s"
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
