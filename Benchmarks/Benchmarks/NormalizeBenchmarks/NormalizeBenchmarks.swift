// Normalization throughput, each figure beside a parse-only baseline over the same bytes
// measured in the same run (the machines are shared and noisy: read the ratios).
//
// One benchmark iteration is one pass over a whole corpus, built before measuring starts:
//   CloudTrail  10,000 single-event records of ~740 bytes, one Kafka record each, made from the
//               events in samples/cloudtrail (varying ids, times, users, addresses, regions)
//   VPC flow    one raw record holding 100,000 default-format (v2) flow-log lines
// scripts/bench-normalize turns the median wall clock of a pass into records (lines) per second.
import Benchmark
import Normalize
import OCSF
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Records in the CloudTrail corpus.
let cloudTrailRecordCount = 10_000
/// Lines in the VPC flow-log record.
let flowLineCount = 100_000

/// Every suite measures the same metrics and runs long enough for a stable median on 2 cores.
/// (A computed property: `Benchmark.Configuration` is not `Sendable`, so it cannot be a global `let`.)
var passConfiguration: Benchmark.Configuration {
    .init(
        metrics: [.wallClock, .cpuTotal, .throughput, .mallocCountTotal, .peakMemoryResident],
        // Fixed units, so the exported percentiles keep their precision (scripts/bench-normalize).
        timeUnits: .microseconds,
        units: [.mallocCountTotal: .count, .peakMemoryResident: .count],
        warmupIterations: 1,
        maxDuration: .seconds(5),
        maxIterations: 50
    )
}

let benchmarks: @Sendable () -> Void = {
    // The corpora are built and checked here, once, outside every measurement.
    let cloudTrail = CloudTrailCorpus.records(count: cloudTrailRecordCount)
    let flowLog = FlowLogCorpus.record(lines: flowLineCount)
    let normalizer = Normalizer()
    CorpusCheck.cloudTrail(cloudTrail, normalizer: normalizer)
    CorpusCheck.flowLog(flowLog, lines: flowLineCount, normalizer: normalizer)

    Benchmark("CloudTrail parse-only (JSON.parse, 10k records)", configuration: passConfiguration) { benchmark in
        for _ in benchmark.scaledIterations {
            for bytes in cloudTrail {
                blackHole(try? JSON.parse(bytes))
            }
        }
    }

    Benchmark("CloudTrail normalize (parse+map+serialize, 10k records)", configuration: passConfiguration) { benchmark in
        for _ in benchmark.scaledIterations {
            for bytes in cloudTrail {
                let result = normalizer.normalize(RawRecord(bytes: bytes, source: "cloudtrail"))
                for event in result.events { blackHole(event.serialized()) }
            }
        }
    }

    Benchmark("VPC flow split-only (lines+fields, 100k lines)", configuration: passConfiguration) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(FlowLogCorpus.splitLinesAndFields(flowLog))
        }
    }

    Benchmark("VPC flow normalize (parse+map+serialize, 100k lines)", configuration: passConfiguration) { benchmark in
        for _ in benchmark.scaledIterations {
            let result = normalizer.normalize(RawRecord(bytes: flowLog, source: "vpcflow"))
            for event in result.events { blackHole(event.serialized()) }
        }
    }
}

/// A small deterministic generator (64-bit LCG, Knuth's MMIX constants): same corpus every run.
struct Seeded {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next(_ bound: Int) -> Int {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Int((state >> 33) % UInt64(bound))
    }
}

/// CloudTrail records made from the project's own samples (no third-party data).
enum CloudTrailCorpus {
    /// The sample files, found from this source file so that any working directory works.
    static var samplesDirectory: String {
        let file = #filePath
        // <root>/Benchmarks/Benchmarks/NormalizeBenchmarks/NormalizeBenchmarks.swift
        var parts = file.split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(4)
        return parts.joined(separator: "/") + "/samples/cloudtrail"
    }

    /// The template events with their weights: mostly read-only API calls, as in a real trail,
    /// with some writes and console sign-ins (which map to Authentication rather than API Activity).
    static func templates() -> [(event: JSON, weight: Int)] {
        let routine = events(in: "routine-activity.json")        // DescribeInstances, StopInstances, ListBuckets, ConsoleLogin
        let bruteforce = events(in: "console-bruteforce.json")   // failed ConsoleLogin first
        precondition(routine.count == 4 && !bruteforce.isEmpty, "samples/cloudtrail changed; update the corpus weights")
        return [(routine[0], 4), (routine[1], 1), (routine[2], 3), (routine[3], 1), (bruteforce[0], 1)]
    }

    static func events(in name: String) -> [JSON] {
        let path = samplesDirectory + "/" + name
        guard let bytes = readFile(path) else { fatalError("cannot read \(path)") }
        guard let document = try? JSON.parse(bytes), let records = document["Records"]?.arrayValue else {
            fatalError("\(path) is not a CloudTrail Records file")
        }
        return records
    }

    static let users = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"]
    static let regions = ["us-east-1", "us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2"]
    static let networks = ["192.0.2.", "198.51.100.", "203.0.113."]

    /// `count` serialized single-event records, each a template with fresh ids, time, user,
    /// source address and region.
    static func records(count: Int) -> [[UInt8]] {
        var weighted: [JSON] = []
        for (event, weight) in templates() { weighted += Array(repeating: event, count: weight) }
        var random = Seeded(seed: 0x5EED_C10D)
        var out: [[UInt8]] = []
        out.reserveCapacity(count)
        for index in 0..<count {
            var event = weighted[random.next(weighted.count)]
            let user = users[random.next(users.count)]
            event.set("eventID", .string(uuid(index, &random)))
            event.set("requestID", .string(uuid(index &+ 1_000_000, &random)))
            event.set("eventTime", .string(time(secondOfDay: index * 7 % 86_400)))
            event.set("sourceIPAddress", .string(networks[random.next(networks.count)] + String(1 + random.next(254))))
            event.set("awsRegion", .string(regions[random.next(regions.count)]))
            event.set("userIdentity.userName", .string(user))
            event.set("userIdentity.arn", .string("arn:aws:iam::111122223333:user/\(user)"))
            out.append(event.serialized())
        }
        return out
    }

    static func uuid(_ index: Int, _ random: inout Seeded) -> String {
        func hex(_ value: Int, _ width: Int) -> String {
            let text = String(value, radix: 16)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(hex(random.next(1 << 30), 8))-\(hex(random.next(1 << 16), 4))-4\(hex(random.next(1 << 12), 3))-8\(hex(random.next(1 << 12), 3))-\(hex(index, 12))"
    }

    static func time(secondOfDay: Int) -> String {
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "2026-11-20T\(two(secondOfDay / 3600)):\(two(secondOfDay / 60 % 60)):\(two(secondOfDay % 60))Z"
    }

    static func readFile(_ path: String) -> [UInt8]? {
        guard let file = fopen(path, "rb") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let read = fread(&buffer, 1, buffer.count, file)
            if read <= 0 { break }
            bytes += buffer[0..<read]
        }
        return bytes
    }
}

/// One flow-log record of default-format (v2) lines, like a CloudWatch Logs or S3 delivery.
enum FlowLogCorpus {
    /// `2 account eni src dst srcport dstport protocol packets bytes start end action OK`, one per
    /// line: east-west and internet traffic, TCP/UDP/ICMP, mostly ACCEPT.
    static func record(lines: Int) -> [UInt8] {
        var random = Seeded(seed: 0xF10E_0001)
        let protocols = [6, 6, 6, 6, 17, 17, 1]
        let ports = [443, 443, 80, 22, 53, 3306, 5432, 8080, 123, 3389]
        var text = ""
        text.reserveCapacity(lines * 110)
        for index in 0..<lines {
            let inside = "10.0.\(random.next(256)).\(1 + random.next(254))"
            let outside = random.next(3) == 0
                ? "203.0.113.\(1 + random.next(254))"
                : "172.31.\(random.next(256)).\(1 + random.next(254))"
            let inbound = random.next(2) == 0
            let proto = protocols[random.next(protocols.count)]
            let service = proto == 1 ? 0 : ports[random.next(ports.count)]
            let ephemeral = proto == 1 ? 0 : 32_768 + random.next(28_000)
            let start = 1_763_600_000 + index / 20
            let packets = 1 + random.next(400)
            let action = random.next(10) == 0 ? "REJECT" : "ACCEPT"
            let eni = "eni-0a1b2c3d4e5f\(String(0x10000 + random.next(4096), radix: 16))"
            let (src, dst, srcPort, dstPort) = inbound
                ? (outside, inside, ephemeral, service)
                : (inside, outside, ephemeral, service)
            text += "2 111122223333 \(eni) \(src) \(dst) \(srcPort) \(dstPort) \(proto) \(packets) \(packets * (40 + random.next(1400))) \(start) \(start + 60) \(action) OK\n"
        }
        return Array(text.utf8)
    }

    /// The baseline: find every line and every field in it (what any flow-log parser must do
    /// before mapping), counting the fields so the work cannot be optimized away.
    static func splitLinesAndFields(_ raw: [UInt8]) -> Int {
        var fields = 0
        for line in raw.split(separator: 0x0A) {
            fields &+= line.split(separator: 0x20).count
        }
        return fields
    }
}

/// Fails the run, before anything is measured, if a corpus does not normalize cleanly: a
/// benchmark of dead letters would measure the wrong path.
enum CorpusCheck {
    static func cloudTrail(_ records: [[UInt8]], normalizer: Normalizer) {
        var events = 0
        for bytes in records {
            let result = normalizer.normalize(RawRecord(bytes: bytes, source: "cloudtrail"))
            precondition(result.failures.isEmpty, "CloudTrail corpus record failed: \(result.failures)")
            events += result.events.count
        }
        precondition(events == records.count, "CloudTrail corpus: \(events) events for \(records.count) records")
    }

    static func flowLog(_ record: [UInt8], lines: Int, normalizer: Normalizer) {
        let result = normalizer.normalize(RawRecord(bytes: record, source: "vpcflow"))
        precondition(result.failures.isEmpty, "flow-log corpus: \(result.failures.count) failures, first \(String(describing: result.failures.first))")
        precondition(result.events.count == lines, "flow-log corpus: \(result.events.count) events for \(lines) lines")
        precondition(FlowLogCorpus.splitLinesAndFields(record) == lines * 14, "flow-log corpus: not 14 fields a line")
    }
}
