// Following growing files with real files on disk: rotation (rename and create, copytruncate),
// partial and over-long lines, restarts from the checkpoint; and once through a real broker.
import Foundation
import Kafka
import Pipeline
import Shipping
import Synchronization
import Testing
import TestSupport

/// A temporary directory with a followed file `app.log`, removed by `remove()`.
struct LogDirectory {
    let directory: String
    var log: String { directory + "/app.log" }

    init() throws {
        directory = NSTemporaryDirectory() + "vigil-follow-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    func append(_ text: String, to path: String? = nil) throws {
        let target = path ?? log
        if !FileManager.default.fileExists(atPath: target) {
            try #require(FileManager.default.createFile(atPath: target, contents: nil))
        }
        let handle = try #require(FileHandle(forWritingAtPath: target))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(text.utf8))
        try handle.close()
    }

    /// logrotate's default: rename, then the writer creates a new file.
    func rotateByRename(to name: String = "app.log.1") throws {
        try FileManager.default.moveItem(atPath: log, toPath: directory + "/" + name)
    }

    /// logrotate's `copytruncate`: copy, then truncate the file in place (same inode).
    func copyTruncate() throws {
        try FileManager.default.copyItem(atPath: log, toPath: directory + "/app.log.1")
        let handle = try #require(FileHandle(forWritingAtPath: log))
        try handle.truncate(atOffset: 0)
        try handle.close()
    }

    func inode(_ path: String? = nil) throws -> UInt64 {
        let attributes = try FileManager.default.attributesOfItem(atPath: path ?? log)
        return try #require((attributes[.systemFileNumber] as? NSNumber)?.uint64Value)
    }

    var checkpointPath: String { directory + "/checkpoint.sqlite" }

    func remove() { try? FileManager.default.removeItem(atPath: directory) }
}

private func texts(_ batch: FollowBatch) -> [String] {
    batch.lines.map { String(decoding: $0.bytes, as: UTF8.self) }
}

private func follower(_ directory: LogDirectory, grace: Duration = .zero, maxLineBytes: Int = 1_000_000,
                      positions: [String: FilePosition] = [:]) throws -> FileFollower {
    var config = FileFollowConfig(paths: [directory.log])
    config.rotationGrace = grace
    config.maxLineBytes = maxLineBytes
    return try FileFollower(config: config, positions: positions, logger: TestBroker.logger)
}

@Suite("Following files")
struct FileFollowerTests {
    @Test("only whole lines are handed out; a partial line waits for its LF; blank lines are passed over")
    func wholeLines() throws {
        let logs = try LogDirectory()
        defer { logs.remove() }
        try logs.append("one\ntwo\nthr")
        let follower = try follower(logs)
        var batch = follower.poll()
        #expect(texts(batch) == ["one", "two"])
        #expect(batch.lines.allSatisfy { $0.path == logs.log })
        #expect(batch.positions[logs.log] == FilePosition(inode: try logs.inode(), offset: 8))
        #expect(follower.poll().lines.isEmpty)
        try logs.append("ee\n\n  \r\nfour\r\n")
        batch = follower.poll()
        #expect(texts(batch) == ["three", "four\r"])
        #expect(follower.counters.blankLines == 2)
        #expect(batch.positions[logs.log]?.offset == 25)
    }

    @Test("rename rotation: the old file is finished (after the grace) before the new one is read")
    func renameRotation() async throws {
        let logs = try LogDirectory()
        defer { logs.remove() }
        try logs.append("1\n2\n")
        let follower = try follower(logs, grace: .milliseconds(300))
        #expect(texts(follower.poll()) == ["1", "2"])
        try logs.append("3\n")
        try logs.rotateByRename()
        try logs.append("4\n5\n")
        // The writer has not reopened yet: it still appends to the renamed file.
        var batch = follower.poll()
        #expect(texts(batch) == ["3"])
        try logs.append("3b\nlast without LF", to: logs.directory + "/app.log.1")
        #expect(texts(follower.poll()) == ["3b"])
        try await Task.sleep(for: .milliseconds(400))
        batch = follower.poll()
        #expect(texts(batch) == ["last without LF", "4", "5"])
        #expect(follower.counters.rotations == 1)
        #expect(batch.positions[logs.log] == FilePosition(inode: try logs.inode(), offset: 4))
    }

    @Test("copytruncate: reading restarts at the start of the truncated file")
    func copyTruncate() throws {
        let logs = try LogDirectory()
        defer { logs.remove() }
        try logs.append("first line\nsecond line\n")
        let follower = try follower(logs)
        #expect(texts(follower.poll()) == ["first line", "second line"])
        try logs.copyTruncate()
        try logs.append("third\n")
        let batch = follower.poll()
        #expect(texts(batch) == ["third"])
        #expect(follower.counters.truncations == 1)
        #expect(batch.positions[logs.log] == FilePosition(inode: try logs.inode(), offset: 6))
    }

    @Test("a restart resumes at the last recorded line: nothing recorded is repeated, nothing unrecorded is lost")
    func restartResumes() async throws {
        let logs = try LogDirectory()
        defer { logs.remove() }
        let checkpoint = try FileCheckpoint(path: logs.checkpointPath)
        try logs.append("a\nb\nc\n")
        do {
            let first = try await FileFollower(config: FileFollowConfig(paths: [logs.log]), checkpoint: checkpoint, logger: TestBroker.logger)
            let batch = first.poll()
            #expect(texts(batch) == ["a", "b", "c"])
            try await checkpoint.record(batch.positions)
            try logs.append("d\ne\npart")
            // Read but never acknowledged: a crash here.
            #expect(texts(first.poll()) == ["d", "e"])
        }
        let reopened = try FileCheckpoint(path: logs.checkpointPath)
        do {
            let second = try await FileFollower(config: FileFollowConfig(paths: [logs.log]), checkpoint: reopened, logger: TestBroker.logger)
            let batch = second.poll()
            #expect(texts(batch) == ["d", "e"])
            try await reopened.record(batch.positions)
        }
        try logs.append("ial\n")
        let third = try await FileFollower(config: FileFollowConfig(paths: [logs.log]), checkpoint: reopened, logger: TestBroker.logger)
        #expect(texts(third.poll()) == ["partial"])
    }

    @Test("rotated while stopped: the old file is found by inode and finished; gone, the loss is counted")
    func rotatedWhileStopped() throws {
        let logs = try LogDirectory()
        defer { logs.remove() }
        try logs.append("1\n2\n")
        let position = try #require(try follower(logs).poll().positions[logs.log])
        try logs.append("3\n")
        try logs.rotateByRename()
        try logs.append("4\n")
        let resumed = try follower(logs, positions: [logs.log: position])
        #expect(texts(resumed.poll()) == ["3", "4"])
        #expect(resumed.counters.missedRotations == 0)

        // The rotated file compressed away (new inode): the new file is read from its start.
        try FileManager.default.removeItem(atPath: logs.directory + "/app.log.1")
        let newPosition = FilePosition(inode: try logs.inode(), offset: 2)
        try logs.append("5\n")
        try logs.rotateByRename()
        // Created before the old file goes, so it cannot reuse the old inode number.
        try logs.append("6\n")
        try FileManager.default.removeItem(atPath: logs.directory + "/app.log.1")
        let afterLoss = try follower(logs, positions: [logs.log: newPosition])
        #expect(texts(afterLoss.poll()) == ["6"])
        #expect(afterLoss.counters.missedRotations == 1)
    }

    @Test("truncated while stopped, or a recorded offset that is not a line start: read from the start")
    func truncatedWhileStopped() throws {
        let logs = try LogDirectory()
        defer { logs.remove() }
        try logs.append("long line one\nlong line two\n")
        let position = try #require(try follower(logs).poll().positions[logs.log])
        try logs.copyTruncate()
        try logs.append("new\n")
        let resumed = try follower(logs, positions: [logs.log: position])
        #expect(texts(resumed.poll()) == ["new"])
        #expect(resumed.counters.truncations == 1)

        // Same inode, long enough, but the byte before the offset is no LF: another file.
        try logs.append("0123456789\n")
        let odd = try follower(logs, positions: [logs.log: FilePosition(inode: try logs.inode(), offset: 6)])
        #expect(texts(odd.poll()) == ["new", "0123456789"])
    }

    @Test("lines over the limit are skipped, also when they arrive in pieces")
    func longLines() throws {
        let logs = try LogDirectory()
        defer { logs.remove() }
        try logs.append("short\n" + String(repeating: "x", count: 50) + "\nok\n" + String(repeating: "y", count: 30))
        let follower = try follower(logs, maxLineBytes: 10)
        var batch = follower.poll()
        #expect(texts(batch) == ["short", "ok"])
        try logs.append(String(repeating: "y", count: 30) + "\nafter\n")
        batch = follower.poll()
        #expect(texts(batch) == ["after"])
        #expect(follower.counters.skippedLongLines == 2)
        let fileSize: Int64 = 6 + 51 + 3 + 61 + 6
        #expect(batch.positions[logs.log]?.offset == fileSize)
    }

    @Test("a file that does not exist yet is picked up when it appears")
    func fileAppearsLater() throws {
        let logs = try LogDirectory()
        defer { logs.remove() }
        let follower = try follower(logs)
        #expect(follower.poll().lines.isEmpty)
        try logs.append("hello\n")
        #expect(texts(follower.poll()) == ["hello"])
    }

    @Test("settings are validated")
    func validation() {
        #expect(throws: ConfigError.self) { try FileFollowConfig(paths: []).validate() }
        var config = FileFollowConfig(paths: ["/tmp/x"])
        config.maxLineBytes = 0
        #expect(throws: ConfigError.self) { try config.validate() }
        let error = #expect(throws: ShippingError.self) {
            try FileFollower(config: FileFollowConfig(paths: [""]), positions: [:], logger: TestBroker.logger)
        }
        #expect(error?.code == "invalid_config")
    }
}

@Suite("Following files into a broker", .enabled(if: TestBroker.isAvailable), .timeLimit(.minutes(8)))
struct FileFollowShippingTests {
    @Test("lines across a rotation arrive once, in order; a restart sends nothing again")
    func shipsAcrossRotation() async throws {
        let logs = try LogDirectory()
        defer { logs.remove() }
        let broker = try await TestBroker.start()
        defer { broker.stop() }
        let topic = "follow.raw"
        let admin = try KafkaAdmin(config: TestBroker.config(broker), logger: TestBroker.logger)
        _ = try await admin.createTopics([TopicSpec(name: topic, partitions: 1, replicationFactor: 1)])
        let producer = try KafkaProducer(config: TestBroker.config(broker), logger: TestBroker.logger)
        let checkpoint = try FileCheckpoint(path: logs.checkpointPath)
        var config = FileFollowConfig(paths: [logs.log])
        config.rotationGrace = .milliseconds(200)
        config.pollInterval = .milliseconds(50)

        try logs.append((1...100).map { "line \($0)\n" }.joined())
        let stop = StopFlag()
        let settings = config
        let following = Task {
            let follower = try await FileFollower(config: settings, checkpoint: checkpoint, logger: TestBroker.logger)
            try await follower.ship(producer: producer, checkpoint: checkpoint, topic: topic, source: "syslog",
                                    shouldStop: { stop.isSet })
            return follower.counters
        }
        // The follower must have opened the file before it is rotated (a file rotated away before
        // the follower first saw it is, rightly, not followed): wait for its first lines.
        _ = try await TestBroker.readAll(broker, topic: topic, partitions: 1, atLeast: 100, timeout: .seconds(90))
        try logs.append((101...150).map { "line \($0)\n" }.joined())
        try logs.rotateByRename()
        try logs.append((151...200).map { "line \($0)\n" }.joined())
        // Waits for the records rather than a fixed time: a loaded machine may take a while.
        let records = try await TestBroker.readAll(broker, topic: topic, partitions: 1, atLeast: 200, timeout: .seconds(90))
        stop.set()
        let counters = try await following.value
        #expect(counters.shippedLines == 200)
        #expect(counters.rotations == 1)

        #expect(records.map { String(decoding: $0.value, as: UTF8.self) } == (1...200).map { "line \($0)" })
        #expect(records.allSatisfy { $0.key == Array(logs.log.utf8) && $0.headers.text(VigilHeader.source) == "syslog" })

        // A restart on the same checkpoint: nothing new, nothing sent.
        let restarted = try await FileFollower(config: settings, checkpoint: checkpoint, logger: TestBroker.logger)
        try await restarted.ship(producer: producer, checkpoint: checkpoint, topic: topic, source: "syslog", shouldStop: { true })
        #expect(restarted.counters.shippedLines == 0)
        let again = try await TestBroker.readAll(broker, topic: topic, partitions: 1, atLeast: 201, timeout: .seconds(2))
        #expect(again.count == 200)
        await producer.close()
    }
}

/// A stop request shared with a following task.
final class StopFlag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .relaxed) }
    func set() { value.store(true, ordering: .relaxed) }
}
