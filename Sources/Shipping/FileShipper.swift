import Foundation
import Kafka
import Pipeline

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Settings of a one-time file shipment (`vigil ship files` without `--follow`), with
/// documented defaults.
public struct FileShipConfig: Sendable {
    /// The files to send, in order (directories already expanded).
    public var files: [String]
    /// The topic records go to (`<prefix>raw`).
    public var topic: String
    /// The `vigil-source` header, when known.
    public var source: String?
    /// Every file one record per line (otherwise only `.jsonl`, `.ndjson` and `.log` files).
    public var lines = false
    /// Largest record sent; a larger file or line is reported and skipped. Default 1 MB.
    public var maxRecordBytes = 1_000_000
    /// Records per produce batch; the checkpoint advances after each acknowledged batch.
    public var maxBatchRecords = 5000
    /// Bytes per produce batch.
    public var maxBatchBytes = 16_000_000

    /// Settings for `files` going to `topic`.
    public init(files: [String], topic: String) {
        self.files = files
        self.topic = topic
    }

    /// Whether `path` is sent one record per line.
    public func isLineFile(_ path: String) -> Bool {
        lines || [".jsonl", ".ndjson", ".log"].contains(where: path.hasSuffix)
    }
}

/// What a shipment did.
public struct FileShipSummary: Sendable, Equatable {
    /// Files read to their end in this run (from the start, or resumed).
    public var files = 0
    /// Records acknowledged by the broker.
    public var records = 0
    /// Bytes in those records.
    public var bytes = 0
    /// Files the checkpoint shows were already shipped completely and have not changed.
    public var skippedUnchanged = 0
    /// Files continued after the last acknowledged record (appended to, or an interrupted run).
    public var resumed = 0
    /// Files that could not be read and records over `maxRecordBytes`, all reported and skipped.
    public var failed = 0
    /// Whether `shouldStop` ended the shipment before the last file.
    public var interrupted = false

    /// Makes an empty summary.
    public init() {}
}

/// Sends files once: each file one record (keyed by its path), or each line one record (keyed
/// `path:N`, N counting the file's non-empty lines), in batches; returns once the broker has
/// acknowledged every record.
///
/// With a `FileCheckpoint`, what was acknowledged is recorded after every batch (table
/// `shipped_file`), and a later run sends only what is new:
/// - a file is recognised by its path, inode and the FNV-1a hash of its first bytes (up to
///   `headBytes`), so a log deleted and created again under the same name (even on a reused
///   inode) is a new file;
/// - a line file that has not grown past what was acknowledged is skipped; one that grew (it
///   was appended to, or the last run was interrupted) resumes after the last acknowledged
///   line; one that shrank is sent again from its start;
/// - a whole-file record is skipped while the file's size and modification time are those
///   recorded when it was acknowledged, and sent again (whole) once they change.
///
/// Records in flight when a run dies are sent again by the next (at-least-once); a run stopped
/// through `shouldStop` finishes its batch first, so it repeats nothing.
public struct FileShipper: Sendable {
    /// How many leading bytes identify a file (with its inode).
    public static let headBytes = 1024

    /// The settings.
    public let config: FileShipConfig

    /// A shipper with `config`.
    public init(config: FileShipConfig) {
        self.config = config
    }

    /// Ships every file. `notice` gets one line per file or record skipped as unreadable or
    /// too large; `progress` the running summary after each acknowledged batch; `shouldStop` is
    /// asked between batches and files.
    public func ship(producer: KafkaProducer, checkpoint: FileCheckpoint?, shouldStop: @Sendable () -> Bool = { false },
                     notice: (String) -> Void = { _ in }, progress: (FileShipSummary) -> Void = { _ in })
        async throws(ShippingError) -> FileShipSummary {
        var run = ShipmentRun(config: config, producer: producer, checkpoint: checkpoint)
        let known = try await checkpoint?.shippedFiles() ?? [:]
        for file in config.files {
            if shouldStop() {
                try await run.flush(progress)
                run.summary.interrupted = true
                return run.summary
            }
            guard let status = FileIdentity(path: file), let data = FileManager.default.contents(atPath: file) else {
                notice("cannot read \(file); skipped")
                run.summary.failed += 1
                continue
            }
            let bytes = [UInt8](data)
            let resumeAt = Self.resumePoint(known[file], status: status, bytes: bytes, byLine: config.isLineFile(file))
            switch resumeAt {
            case .skip:
                run.summary.skippedUnchanged += 1
                continue
            case .resume:
                run.summary.resumed += 1
            case .start:
                break
            }
            let state = ShippedFile(inode: status.inode, size: Int64(bytes.count), modifiedNanos: status.modifiedNanos,
                                    headLength: Int64(min(bytes.count, Self.headBytes)),
                                    headHash: Self.fnv1a(bytes.prefix(Self.headBytes)), offset: 0, lines: 0, complete: false)
            if config.isLineFile(file) {
                let start = resumeAt.position
                let stopped = try await shipLines(of: file, bytes: bytes, from: start, state: state, run: &run,
                                                  shouldStop: shouldStop, notice: notice, progress: progress)
                if stopped {
                    run.summary.interrupted = true
                    return run.summary
                }
            } else {
                guard bytes.count <= config.maxRecordBytes else {
                    notice("\(file) is \(bytes.count) bytes, over the \(config.maxRecordBytes)-byte record limit; skipped")
                    run.summary.failed += 1
                    continue
                }
                var done = state
                done.offset = Int64(bytes.count)
                done.complete = true
                try await run.add(OutgoingRecord(topic: config.topic, key: Array(file.utf8), value: bytes, headers: run.headers),
                                  position: (file, done), progress)
            }
            run.summary.files += 1
        }
        try await run.flush(progress)
        return run.summary
    }

    /// Sends the lines of one file from `start`; returns true when `shouldStop` ended it.
    private func shipLines(of file: String, bytes: [UInt8], from start: (offset: Int, lines: Int64), state: ShippedFile,
                           run: inout ShipmentRun, shouldStop: @Sendable () -> Bool, notice: (String) -> Void,
                           progress: (FileShipSummary) -> Void) async throws(ShippingError) -> Bool {
        var index = start.offset
        var number = start.lines
        var position = state
        while index < bytes.count {
            let end = bytes[index...].firstIndex(of: 0x0A) ?? bytes.count
            let line = bytes[index..<end]
            index = min(end + 1, bytes.count)
            position.offset = Int64(index)
            // Numbering as the whole-file split always did: empty lines are not counted,
            // blank ones are counted but not sent.
            if line.isEmpty { continue }
            number += 1
            position.lines = number
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            guard line.count <= config.maxRecordBytes else {
                notice("\(file):\(number) is \(line.count) bytes, over the \(config.maxRecordBytes)-byte record limit; skipped")
                run.summary.failed += 1
                continue
            }
            let flushed = try await run.add(OutgoingRecord(topic: config.topic, key: Array("\(file):\(number)".utf8), value: Array(line),
                                                           headers: run.headers), position: (file, position), progress)
            if flushed && shouldStop() {
                return true
            }
        }
        position.offset = Int64(bytes.count)
        position.complete = true
        run.note(file, position)
        return false
    }

    /// Where a file starts this run.
    enum ResumePoint: Equatable {
        case skip
        case resume(offset: Int, lines: Int64)
        case start

        var position: (offset: Int, lines: Int64) {
            if case .resume(let offset, let lines) = self { return (offset, lines) }
            return (0, 0)
        }
    }

    static func resumePoint(_ previous: ShippedFile?, status: FileIdentity, bytes: [UInt8], byLine: Bool) -> ResumePoint {
        guard let previous, previous.inode == status.inode, previous.headLength <= Int64(bytes.count),
              fnv1a(bytes.prefix(Int(previous.headLength))) == previous.headHash
        else { return .start }
        if byLine {
            if previous.offset == Int64(bytes.count) { return .skip }
            if previous.offset < Int64(bytes.count) { return .resume(offset: Int(previous.offset), lines: previous.lines) }
            return .start
        }
        if previous.complete, previous.size == Int64(bytes.count), previous.modifiedNanos == status.modifiedNanos { return .skip }
        return .start
    }

    /// FNV-1a, 64 bits: a cheap fingerprint of a file's first bytes (not a security check).
    static func fnv1a(_ bytes: some Collection<UInt8>) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return hash
    }
}

/// The batch being filled and the positions it will acknowledge.
private struct ShipmentRun {
    let config: FileShipConfig
    let producer: KafkaProducer
    let checkpoint: FileCheckpoint?
    let headers: [KafkaHeader]
    var summary = FileShipSummary()
    var batch: [OutgoingRecord] = []
    var batchBytes = 0
    /// Positions that become true once `batch` is acknowledged.
    var pending: [String: ShippedFile] = [:]

    init(config: FileShipConfig, producer: KafkaProducer, checkpoint: FileCheckpoint?) {
        self.config = config
        self.producer = producer
        self.checkpoint = checkpoint
        headers = config.source.map { [KafkaHeader(VigilHeader.source, $0)] } ?? []
    }

    mutating func note(_ file: String, _ position: ShippedFile) {
        pending[file] = position
    }

    /// Adds a record; returns true when that filled the batch and it was sent.
    @discardableResult
    mutating func add(_ record: OutgoingRecord, position: (file: String, state: ShippedFile),
                      _ progress: (FileShipSummary) -> Void) async throws(ShippingError) -> Bool {
        batch.append(record)
        batchBytes += record.value.count
        pending[position.file] = position.state
        guard batch.count >= config.maxBatchRecords || batchBytes >= config.maxBatchBytes else { return false }
        try await flush(progress)
        return true
    }

    /// Sends the batch, waits for every acknowledgement, then records the positions.
    mutating func flush(_ progress: (FileShipSummary) -> Void) async throws(ShippingError) {
        if !batch.isEmpty {
            do {
                try await producer.send(batch)
            } catch {
                throw .kafka(error, "cannot produce file records to \(config.topic)")
            }
            summary.records += batch.count
            summary.bytes += batchBytes
        }
        try await checkpoint?.recordShipped(pending)
        let sent = !batch.isEmpty
        batch.removeAll(keepingCapacity: true)
        batchBytes = 0
        pending.removeAll()
        if sent { progress(summary) }
    }
}

/// `stat(2)` of a path (following symbolic links): what identifies a shipped file.
struct FileIdentity {
    var inode: UInt64
    var modifiedNanos: Int64

    init?(path: String) {
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        inode = UInt64(info.st_ino)
        #if os(Linux)
        let modified = info.st_mtim
        #else
        let modified = info.st_mtimespec
        #endif
        modifiedNanos = Int64(modified.tv_sec) * 1_000_000_000 + Int64(modified.tv_nsec)
    }
}
