import Foundation
import Kafka
import Logging
import Pipeline

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Settings of `vigil ship files --follow`, with documented defaults.
public struct FileFollowConfig: Sendable, Equatable {
    /// The files to follow (made absolute when the follower opens). A file that does not
    /// exist yet is picked up when it appears.
    public var paths: [String]
    /// Lines longer than this many bytes (without the LF) are skipped and counted; default
    /// 1,000,000, librdkafka's `message.max.bytes` default.
    public var maxLineBytes: Int = 1_000_000
    /// Most lines handed out by one `poll()` (default 5000).
    public var maxBatchLines: Int = 5000
    /// Most bytes read by one `poll()` (default 16 MB); memory stays around this bound.
    public var maxBatchBytes: Int = 16_000_000
    /// How long a rotated file must have stopped growing before it is finished and the new
    /// file is read (default 2 s): writers keep appending to the old file until they reopen.
    public var rotationGrace: Duration = .seconds(2)
    /// Pause between polls when there was nothing to read (default 250 ms).
    public var pollInterval: Duration = .milliseconds(250)

    /// Settings for these files, defaults otherwise.
    public init(paths: [String]) {
        self.paths = paths
    }

    /// Rejects settings that cannot work.
    public func validate() throws(ConfigError) {
        if paths.isEmpty { throw ConfigError("follow: name at least one file") }
        if paths.contains(where: \.isEmpty) { throw ConfigError("follow: a file path is empty") }
        if maxLineBytes < 1 { throw ConfigError("follow: max line bytes must be positive") }
        if maxBatchLines < 1 { throw ConfigError("follow: max batch lines must be positive") }
        if maxBatchBytes < 1 { throw ConfigError("follow: max batch bytes must be positive") }
        if rotationGrace < .zero { throw ConfigError("follow: rotation grace must not be negative") }
        if pollInterval <= .zero { throw ConfigError("follow: poll interval must be positive") }
    }
}

/// One complete line of a followed file.
public struct FollowedLine: Sendable, Equatable {
    /// The followed path (absolute): the record key, so one file's lines stay in order in one
    /// partition.
    public var path: String
    /// The line without its LF (a CR before it is kept: records are byte-exact).
    public var bytes: [UInt8]

    /// Makes a line.
    public init(path: String, bytes: [UInt8]) {
        self.path = path
        self.bytes = bytes
    }
}

/// What one `poll()` read.
public struct FollowBatch: Sendable, Equatable {
    /// Complete lines, in file order per path.
    public var lines: [FollowedLine] = []
    /// Positions to record once every line of this batch is acknowledged: for each path that
    /// moved, the start of the first line not in this or an earlier batch.
    public var positions: [String: FilePosition] = [:]
    /// Whether the batch limits were reached (more is waiting; poll again at once).
    public var isFull = false

    /// An empty batch.
    public init() {}
}

/// Running counts of a follower.
public struct FollowCounters: Sendable, Equatable {
    /// Lines read (and handed out by `poll()`).
    public var lines = 0
    /// Bytes of those lines.
    public var bytes = 0
    /// Lines produced and acknowledged (by `ship`).
    public var shippedLines = 0
    /// Blank lines (only spaces, tabs, CR) passed over.
    public var blankLines = 0
    /// Lines over `maxLineBytes`, skipped.
    public var skippedLongLines = 0
    /// Rotations seen: the path now names another file (rename and create).
    public var rotations = 0
    /// Truncations seen: the file shrank below what was read (copytruncate).
    public var truncations = 0
    /// Rotations that happened while not running and whose old file could not be found next
    /// to the path: its lines after the recorded position were not shipped.
    public var missedRotations = 0

    /// All zero.
    public init() {}
}

/// Follows growing files line by line (`tail -F`), safe across rotation and restarts.
///
/// For each path it keeps the open file and its inode. At each poll it compares the path's
/// inode and size with the open file:
/// - another inode at the path (rename and create): the old file is read to its end and, once
///   it has not grown for `rotationGrace`, finished (a last line without LF is shipped as a
///   line); then the new file is read from its start;
/// - the same inode but smaller than the offset read (copytruncate): reading restarts at 0;
/// - the path gone: the open file is still read; a new file appearing there is a rotation.
///
/// A partial line (no LF yet) waits until its LF arrives. Positions (inode, offset at a line
/// start) go to a `FileCheckpoint` only after the broker acknowledged the lines before them. On
/// start, a path whose recorded inode is still the file at the path resumes at the recorded
/// offset (from 0 if the file is now shorter: it was truncated); if the path names another
/// file, the recorded inode is looked for among the files in the same directory (`auth.log.1`)
/// and finished from the recorded offset first.
///
/// Not `Sendable`: one task owns a follower; it holds open file descriptors, closed in `deinit`.
public final class FileFollower {
    /// The settings (paths made absolute).
    public let config: FileFollowConfig
    /// Running counts.
    public private(set) var counters = FollowCounters()
    private let logger: Logger
    private var files: [FollowedPath]
    private var nextFile = 0
    private let readChunk = 1 << 20

    /// Opens the followed files, resuming from `positions` (a `FileCheckpoint`'s).
    public init(config: FileFollowConfig, positions: [String: FilePosition], logger: Logger) throws(ShippingError) {
        var config = config
        do {
            try config.validate()
        } catch {
            throw ShippingError(code: "invalid_config", reason: error.reason)
        }
        config.paths = config.paths.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
        var seen = Set<String>()
        config.paths = config.paths.filter { seen.insert($0).inserted }
        self.config = config
        self.logger = logger
        self.files = config.paths.map { FollowedPath(path: $0) }
        for file in files { resume(file, from: positions[file.path]) }
    }

    /// Opens the followed files, resuming from `checkpoint`.
    public convenience init(config: FileFollowConfig, checkpoint: FileCheckpoint, logger: Logger) async throws(ShippingError) {
        try self.init(config: config, positions: try await checkpoint.positions(), logger: logger)
    }

    deinit {
        for file in files {
            if let fd = file.current?.fd { close(fd) }
            if let fd = file.draining?.fd { close(fd) }
        }
    }

    // MARK: Polling

    /// Reads what the files gained since the last poll, up to the batch limits.
    public func poll() -> FollowBatch {
        var batch = FollowBatch()
        var budget = Budget(lines: config.maxBatchLines, bytes: config.maxBatchBytes)
        let count = files.count
        for step in 0..<count {
            let file = files[(nextFile + step) % count]
            poll(file, into: &batch, budget: &budget)
            if let position = file.position, position != file.handedOut {
                batch.positions[file.path] = position
                file.handedOut = position
            }
            if budget.exhausted {
                batch.isFull = true
                // The next poll starts with the file after this one, so none starves.
                nextFile = (nextFile + step + 1) % count
                return batch
            }
        }
        return batch
    }

    private func poll(_ file: FollowedPath, into batch: inout FollowBatch, budget: inout Budget) {
        if file.draining != nil {
            guard read(file, draining: true, into: &batch, budget: &budget) else { return }
            // At its end: finish it once the writer has stopped appending to it.
            guard let draining = file.draining, ContinuousClock.now - draining.lastGrowth >= config.rotationGrace else { return }
            finishDraining(file, into: &batch)
        }
        let status = FileStatus(path: file.path)
        guard let current = file.current else {
            if status != nil, let opened = openFile(file.path, at: 0, warnAs: file) {
                file.current = opened
                file.lineStart = 0
                _ = read(file, draining: false, into: &batch, budget: &budget)
            }
            return
        }
        if let status, status.inode != current.inode {
            counters.rotations += 1
            logger.info("followed file rotated; finishing the old file", metadata: ["path": .string(file.path)])
            var old = current
            old.lastGrowth = .now
            file.draining = old
            file.current = openFile(file.path, at: 0, warnAs: file)
            poll(file, into: &batch, budget: &budget)
            return
        }
        if let status, status.size < current.offset {
            counters.truncations += 1
            logger.info("followed file truncated; reading it from the start", metadata: ["path": .string(file.path)])
            flushPartialLine(file, into: &batch)
            file.current?.offset = 0
            file.lineStart = 0
        }
        _ = read(file, draining: false, into: &batch, budget: &budget)
    }

    /// Reads the draining or current file to its end or until the budget is spent; returns
    /// whether it reached the end.
    private func read(_ file: FollowedPath, draining: Bool, into batch: inout FollowBatch, budget: inout Budget) -> Bool {
        guard var source = draining ? file.draining : file.current else { return true }
        defer { if draining { file.draining = source } else { file.current = source } }
        // Most polls find nothing new: ask the size before allocating a buffer.
        var info = stat()
        if fstat(source.fd, &info) == 0, Int64(info.st_size) <= source.offset { return true }
        var buffer = [UInt8](repeating: 0, count: min(readChunk, max(1, budget.bytes)))
        while !budget.exhausted {
            let want = min(buffer.count, max(1, budget.bytes))
            let got = buffer.withUnsafeMutableBytes { pread(source.fd, $0.baseAddress, want, off_t(source.offset)) }
            if got < 0 {
                if errno == EINTR { continue }
                file.warnOnce("cannot read followed file (errno \(errno))", logger: logger)
                return true
            }
            if got == 0 { return true }
            source.lastGrowth = .now
            consume(buffer[0..<got], at: source.offset, file: file, into: &batch, budget: &budget)
            source.offset += Int64(got)
            budget.bytes -= got
        }
        return false
    }

    /// Splits bytes read at `offset` into lines.
    private func consume(_ chunk: ArraySlice<UInt8>, at offset: Int64, file: FollowedPath, into batch: inout FollowBatch,
                         budget: inout Budget) {
        var lineBegin = chunk.startIndex
        while let newline = chunk[lineBegin...].firstIndex(of: 0x0A) {
            let segment = chunk[lineBegin..<newline]
            if file.skipping {
                file.skipping = false
            } else if file.pending.count + segment.count > config.maxLineBytes {
                skipLongLine(file)
            } else {
                emit(file.pending + segment, file: file, into: &batch, budget: &budget)
            }
            file.pending = []
            lineBegin = newline + 1
            file.lineStart = offset + Int64(lineBegin - chunk.startIndex)
        }
        guard !file.skipping else { return }
        file.pending += chunk[lineBegin...]
        if file.pending.count > config.maxLineBytes {
            skipLongLine(file)
            file.pending = []
            file.skipping = true
        }
    }

    private func emit(_ line: [UInt8], file: FollowedPath, into batch: inout FollowBatch, budget: inout Budget) {
        if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) {
            counters.blankLines += 1
            return
        }
        batch.lines.append(FollowedLine(path: file.path, bytes: line))
        counters.lines += 1
        counters.bytes += line.count
        budget.lines -= 1
    }

    private func skipLongLine(_ file: FollowedPath) {
        counters.skippedLongLines += 1
        logger.warning("line longer than the maximum record size skipped", metadata: [
            "path": .string(file.path), "offset": "\(file.lineStart)", "max_line_bytes": "\(config.maxLineBytes)",
        ])
    }

    /// A last line without LF, at the end of a finished or truncated file, is still a line.
    private func flushPartialLine(_ file: FollowedPath, into batch: inout FollowBatch) {
        if !file.skipping && !file.pending.isEmpty {
            var unlimited = Budget(lines: .max, bytes: .max)
            emit(file.pending, file: file, into: &batch, budget: &unlimited)
        }
        file.pending = []
        file.skipping = false
    }

    private func finishDraining(_ file: FollowedPath, into batch: inout FollowBatch) {
        flushPartialLine(file, into: &batch)
        if let fd = file.draining?.fd { close(fd) }
        file.draining = nil
        file.lineStart = file.current?.offset ?? 0
    }

    // MARK: Opening and resuming

    private func resume(_ file: FollowedPath, from position: FilePosition?) {
        let status = FileStatus(path: file.path)
        if let position {
            if let status, status.inode == position.inode {
                // The same file: resume, unless it was truncated while we were away (or the
                // inode was reused by a new file: a recorded offset always follows an LF).
                file.current = openFile(file.path, at: 0, warnAs: file)
                var offset: Int64 = 0
                if let fd = file.current?.fd, status.size >= position.offset, Self.followsLineEnd(fd: fd, offset: position.offset) {
                    offset = position.offset
                } else if position.offset > 0 {
                    counters.truncations += 1
                }
                file.current?.offset = offset
                file.lineStart = offset
                file.handedOut = position
                return
            }
            // Rotated while we were away: finish the old file first if it is still nearby.
            if let old = Self.findRotated(inode: position.inode, near: file.path),
               let opened = openFile(old.path, at: 0, warnAs: file) {
                var draining = opened
                if old.size >= position.offset, Self.followsLineEnd(fd: opened.fd, offset: position.offset) {
                    draining.offset = position.offset
                }
                file.draining = draining
                file.lineStart = draining.offset
                file.handedOut = position
                logger.info("followed file was rotated while stopped; finishing the old file", metadata: [
                    "path": .string(file.path), "rotated": .string(old.path),
                ])
            } else {
                counters.missedRotations += 1
                logger.warning("followed file was rotated while stopped and the old file is gone; its unshipped lines are lost",
                               metadata: ["path": .string(file.path)])
            }
        }
        if status != nil {
            file.current = openFile(file.path, at: 0, warnAs: file)
            if file.draining == nil { file.lineStart = 0 }
        }
    }

    private func openFile(_ path: String, at offset: Int64, warnAs file: FollowedPath) -> OpenFile? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            file.warnOnce("cannot open followed file (errno \(errno))", logger: logger)
            return nil
        }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            close(fd)
            return nil
        }
        file.lastWarning = nil
        return OpenFile(fd: fd, inode: UInt64(info.st_ino), offset: offset, lastGrowth: .now)
    }

    /// Whether `offset` is the start of the file or just after an LF.
    static func followsLineEnd(fd: Int32, offset: Int64) -> Bool {
        if offset == 0 { return true }
        var byte: UInt8 = 0
        return pread(fd, &byte, 1, off_t(offset - 1)) == 1 && byte == 0x0A
    }

    /// A regular file in `path`'s directory, other than `path`, with this inode.
    static func findRotated(inode: UInt64, near path: String) -> (path: String, size: Int64)? {
        let directory = (path as NSString).deletingLastPathComponent
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return nil }
        for name in names.sorted() {
            let candidate = (directory as NSString).appendingPathComponent(name)
            guard candidate != path, let status = FileStatus(path: candidate), status.isRegular, status.inode == inode else { continue }
            return (candidate, status.size)
        }
        return nil
    }

    // MARK: Shipping

    /// Follows until `shouldStop()` returns true: polls, produces each line as one record to
    /// `topic` (key = the path, header `vigil-source` when `source` is given), waits for every
    /// acknowledgement, then records the batch's positions. When asked to stop, what is already
    /// written to the files is shipped first. `progress` sees the counters after each batch.
    ///
    /// A failed produce or checkpoint write ends it with the positions of the failed batch
    /// unrecorded, so a restart sends those lines again (at-least-once).
    public func ship(producer: KafkaProducer, checkpoint: FileCheckpoint, topic: String, source: String?,
                     shouldStop: @Sendable () -> Bool, progress: (FollowCounters) -> Void = { _ in }) async throws(ShippingError) {
        let headers = source.map { [KafkaHeader(VigilHeader.source, $0)] } ?? []
        while true {
            let stopping = shouldStop()
            let batch = poll()
            if !batch.lines.isEmpty {
                let records = batch.lines.map { OutgoingRecord(topic: topic, key: Array($0.path.utf8), value: $0.bytes, headers: headers) }
                let outcomes: [Result<DeliveryReport, KafkaError>]
                do {
                    outcomes = try await producer.sendEach(records)
                } catch {
                    throw .kafka(error, "cannot produce followed lines to \(topic)")
                }
                for outcome in outcomes {
                    if case .failure(let error) = outcome { throw .kafka(error, "cannot produce followed lines to \(topic)") }
                }
                counters.shippedLines += records.count
            }
            try await checkpoint.record(batch.positions)
            if !batch.lines.isEmpty { progress(counters) }
            if batch.isFull { continue }
            if stopping { return }
            let wake = ContinuousClock.now + config.pollInterval
            while !shouldStop() && ContinuousClock.now < wake {
                try? await Task.sleep(for: min(.milliseconds(50), wake - ContinuousClock.now))
            }
        }
    }
}

/// What a poll may still read.
private struct Budget {
    var lines: Int
    var bytes: Int
    var exhausted: Bool { lines <= 0 || bytes <= 0 }
}

/// An open followed file.
private struct OpenFile {
    var fd: Int32
    var inode: UInt64
    /// The next byte to read.
    var offset: Int64
    /// When a read last returned bytes.
    var lastGrowth: ContinuousClock.Instant
}

/// The state of one followed path.
private final class FollowedPath {
    let path: String
    /// The file at the path when it was last looked at.
    var current: OpenFile?
    /// A rotated file being read to its end before `current`.
    var draining: OpenFile?
    /// Bytes of the line being read (no LF yet).
    var pending: [UInt8] = []
    /// Whether the rest of an over-long line is being passed over.
    var skipping = false
    /// Offset, in the file being read (draining, else current), of the line being read.
    var lineStart: Int64 = 0
    /// The position last put in a batch.
    var handedOut: FilePosition?
    /// The last warning logged, so a lasting problem is logged once.
    var lastWarning: String?

    init(path: String) { self.path = path }

    /// Where reading has got to: the first byte not yet in a batch, at a line start.
    var position: FilePosition? {
        guard let file = draining ?? current else { return nil }
        return FilePosition(inode: file.inode, offset: lineStart)
    }

    func warnOnce(_ message: String, logger: Logger) {
        guard lastWarning != message else { return }
        lastWarning = message
        logger.warning("\(message)", metadata: ["path": .string(path)])
    }
}

/// `stat(2)` of a path, following symbolic links.
private struct FileStatus {
    var inode: UInt64
    var size: Int64
    var isRegular: Bool

    init?(path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        inode = UInt64(info.st_ino)
        size = Int64(info.st_size)
        isRegular = (info.st_mode & S_IFMT) == S_IFREG
    }
}
