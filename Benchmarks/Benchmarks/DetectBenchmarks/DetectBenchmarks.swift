// Detection throughput and memory, with the whole built-in rule pack (rules/) loaded, each
// figure beside a baseline measured in the same run (the machines are shared and noisy: read
// the ratios).
//
// One benchmark iteration is one pass over a corpus built before measuring starts:
//   events    20,000 enriched OCSF events made by Normalize from generated raw records: CloudTrail
//             API activity (6003), console sign-ins (3002), VPC flow (4001) and sshd syslog
//             (3002), with a `vigil.asset` as Enrich adds it, in event-time order
//   partials  the partial records the select step makes of those events (every stateful rule
//             of the pack that matches), in order, as the aggregate step reads them
//   keys      100,000 partials of `aws.console.bruteforce` (sliding count window), one user each;
//             also encoded as an aggregate snapshot and decoded back (takeovers resume from it)
// scripts/bench-detect turns the median wall clock of a pass into events (partials, keys) per
// second; the counts are in the benchmark names.
import Benchmark
import CDetectHeap
import Detection
import Normalize
import OCSF
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Events in the corpus.
let eventCount = 20_000
/// Keys opened by the memory benchmark.
let openKeyCount = 100_000

/// Every suite measures the same metrics and runs long enough for a stable median on 2 cores.
/// (A computed property: `Benchmark.Configuration` is not `Sendable`, so it cannot be a global `let`.)
var passConfiguration: Benchmark.Configuration {
    .init(
        metrics: [.wallClock, .cpuTotal, .throughput, .mallocCountTotal, .peakMemoryResident],
        timeUnits: .microseconds,
        units: [.mallocCountTotal: .count, .peakMemoryResident: .count],
        warmupIterations: 1,
        maxDuration: .seconds(5),
        maxIterations: 50
    )
}

/// Heap bytes held per open key, from glibc's allocator statistics (see `Memory`).
let bytesPerOpenKey = BenchmarkMetric.custom("bytesPerOpenKey", polarity: .prefersSmaller, useScalingFactor: false)
/// Bytes of an aggregate snapshot per open key.
let snapshotBytesPerKey = BenchmarkMetric.custom("snapshotBytesPerKey", polarity: .prefersSmaller, useScalingFactor: false)

let benchmarks: @Sendable () -> Void = {
    // Everything is built and checked here, once, outside every measurement.
    let rules = RulePack.load()
    let selector = RuleSelector(rules: rules)
    let eventBytes = EventCorpus.events(count: eventCount)
    let events = eventBytes.map { try! JSON.parse($0) }
    let partials = events.flatMap { event in
        selector.select(event).compactMap { selection -> Partial? in
            if case .partial(let partial) = selection { return partial }
            return nil
        }
    }
    let partialBytes = partials.map { $0.json().serialized() }
    CorpusCheck.check(rules: rules, events: events, partials: partials)
    let partialCount = partials.count

    Benchmark("Events parse-only (JSON.parse, \(eventCount) events)", configuration: passConfiguration) { benchmark in
        for _ in benchmark.scaledIterations {
            for bytes in eventBytes { blackHole(try? JSON.parse(bytes)) }
        }
    }

    Benchmark("Select (match+partials, \(eventCount) events)", configuration: passConfiguration) { benchmark in
        for _ in benchmark.scaledIterations {
            for event in events { blackHole(selector.select(event)) }
        }
    }

    // What DetectSelectProcessor does per record: scan the bytes (parsing only what the rules
    // read), select, serialize every output.
    Benchmark("Select stage (scan+select+serialize, \(eventCount) events)", configuration: passConfiguration) { benchmark in
        for _ in benchmark.scaledIterations {
            for bytes in eventBytes {
                guard let selections = try? selector.select(bytes: bytes) else { continue }
                for selection in selections {
                    switch selection {
                    case .alert(let alert): blackHole(alert.serialized())
                    case .partial(let partial): blackHole(partial.json().serialized())
                    }
                }
            }
        }
    }

    Benchmark("Partials parse-only (JSON.parse, \(partialCount) partials)", configuration: passConfiguration) { benchmark in
        for _ in benchmark.scaledIterations {
            for bytes in partialBytes { blackHole(try? JSON.parse(bytes)) }
        }
    }

    // One pass: a fresh partition aggregator for the whole pack takes every partial, then
    // flushes (end of input), as a replay of the corpus would.
    Benchmark("Aggregate (add+flush, \(partialCount) partials)", configuration: passConfiguration) { benchmark in
        for _ in benchmark.scaledIterations {
            var aggregator = PartitionAggregator(rules: rules)
            for (offset, partial) in partials.enumerated() { blackHole(aggregator.add(partial, offset: Int64(offset))) }
            blackHole(aggregator.flush())
        }
    }

    // What DetectAggregateProcessor does per record: parse, decode the partial, add.
    Benchmark("Aggregate stage (parse+decode+add+flush, \(partialCount) partials)", configuration: passConfiguration) { benchmark in
        for _ in benchmark.scaledIterations {
            var aggregator = PartitionAggregator(rules: rules)
            for (offset, bytes) in partialBytes.enumerated() {
                guard let partial = try? Partial(json: JSON.parse(bytes)) else { continue }
                blackHole(aggregator.add(partial, offset: Int64(offset)))
            }
            blackHole(aggregator.flush())
        }
    }

    // Memory: 100,000 keys of one sliding count window, each holding one pending partial with
    // a realistic context, all within the window; reported as heap bytes per key.
    var memoryConfiguration = passConfiguration
    memoryConfiguration.metrics += [bytesPerOpenKey]
    memoryConfiguration.maxIterations = 10
    Benchmark("Open keys (count window, \(openKeyCount) keys)", configuration: memoryConfiguration) { benchmark in
        for _ in benchmark.scaledIterations {
            let before = Memory.heapInUse()
            var aggregator = PartitionAggregator(rules: rules)
            for index in 0..<openKeyCount { blackHole(aggregator.add(OpenKeys.partial(index), offset: Int64(index))) }
            precondition(aggregator.openKeys(rule: OpenKeys.ruleID) == openKeyCount, "not every key is open")
            let after = Memory.heapInUse()
            benchmark.measurement(bytesPerOpenKey, max(0, after - before) / openKeyCount)
            blackHole(aggregator)
        }
    }

    // Snapshots (what a takeover resumes from): the same 100,000 open keys encoded, and decoded
    // back, per pass; the snapshot's size per key reported. Baseline: opening the keys above.
    var openAggregator = PartitionAggregator(rules: rules)
    for index in 0..<openKeyCount { _ = openAggregator.add(OpenKeys.partial(index), offset: Int64(index)) }
    let snapshot = openAggregator.snapshot()
    precondition(try! PartitionAggregator(restoring: snapshot, rules: rules).openKeys(rule: OpenKeys.ruleID) == openKeyCount,
                 "the snapshot does not restore every key")
    var snapshotConfiguration = passConfiguration
    snapshotConfiguration.metrics += [snapshotBytesPerKey]
    snapshotConfiguration.maxIterations = 10
    Benchmark("Snapshot (encode, \(openKeyCount) keys)", configuration: snapshotConfiguration) { benchmark in
        for _ in benchmark.scaledIterations {
            let bytes = openAggregator.snapshot()
            benchmark.measurement(snapshotBytesPerKey, bytes.count / openKeyCount)
            blackHole(bytes)
        }
    }
    Benchmark("Restore (decode, \(openKeyCount) keys)", configuration: snapshotConfiguration) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try! PartitionAggregator(restoring: snapshot, rules: rules))
        }
    }
}

/// The built-in rule pack, found from this source file so that any working directory works.
enum RulePack {
    static var root: String {
        // <root>/Benchmarks/Benchmarks/DetectBenchmarks/DetectBenchmarks.swift
        var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(4)
        return parts.joined(separator: "/")
    }

    static func load() -> RuleSet {
        do {
            return try RuleSet.load(directory: root + "/rules")
        } catch {
            fatalError("cannot load \(root)/rules: \(error)")
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

/// Enriched OCSF events, serialized, in event-time order (one every 100 ms from
/// 2026-11-20T00:00:00Z), made by Normalize from generated raw records:
///   45%  CloudTrail API calls (DescribeInstances, ListBuckets, StopInstances, occasionally
///        StopLogging) by 200 principals in 6 regions
///   10%  CloudTrail console sign-ins, 70% failed, by 50 users
///   30%  VPC flow records (TCP/UDP, 10% REJECT) from 500 sources to 40 ports
///   15%  sshd syslog lines: failed and accepted passwords, from 300 addresses
enum EventCorpus {
    static let base: Int64 = 1_763_596_800   // 2026-11-20T00:00:00Z, seconds

    static func events(count: Int) -> [[UInt8]] {
        let normalizer = Normalizer()
        let api = templates("routine-activity.json")
        let failedLogin = templates("console-bruteforce.json")[0]
        let stopLogging = templates("stop-logging.json")[0]
        var random = Seeded(seed: 0xDE7E_C700)
        var out: [[UInt8]] = []
        out.reserveCapacity(count)
        let regions = ["us-east-1", "us-east-1", "us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2"]
        for index in 0..<count {
            let millis = Int64(index) * 100
            let seconds = base + millis / 1000
            let roll = random.next(100)
            let raw: RawRecord
            if roll < 55 {
                var event: JSON
                var user = "svc\(random.next(200))"
                if roll < 45 {
                    event = random.next(500) == 0 ? stopLogging : api[[0, 0, 0, 1, 2, 2][random.next(6)]]
                } else {
                    // A sign-in: mostly failed, and when it succeeds it is the routine template's.
                    event = random.next(10) < 7 ? failedLogin : api[3]
                    user = "user\(random.next(50))"
                }
                event.set("eventID", .string("e\(index)-\(random.next(1 << 30))"))
                event.set("eventTime", .string(isoTime(seconds, millis % 1000)))
                event.set("awsRegion", .string(regions[random.next(regions.count)]))
                event.set("sourceIPAddress", .string("198.51.100.\(1 + random.next(254))"))
                event.set("userIdentity.userName", .string(user))
                event.set("userIdentity.arn", .string("arn:aws:iam::111122223333:user/\(user)"))
                raw = RawRecord(bytes: event.serialized(), source: "cloudtrail")
            } else if roll < 85 {
                let source = "10.0.\(random.next(2)).\(1 + random.next(250))"
                let destination = random.next(3) == 0 ? "203.0.113.\(1 + random.next(254))" : "10.1.\(random.next(4)).\(1 + random.next(254))"
                let port = [443, 443, 443, 80, 22, 53, 3306, 5432, 8080][random.next(9)] + (random.next(10) == 0 ? random.next(40) : 0)
                let proto = random.next(5) == 0 ? 17 : 6
                let packets = 1 + random.next(200)
                let action = random.next(10) == 0 ? "REJECT" : "ACCEPT"
                let line = "2 111122223333 eni-0a1b2c3d4e5f\(60000 + random.next(500)) \(source) \(destination) \(32768 + random.next(28000)) \(port) \(proto) \(packets) \(packets * (40 + random.next(1400))) \(seconds) \(seconds + 60) \(action) OK"
                raw = RawRecord(bytes: Array(line.utf8), source: "vpcflow")
            } else {
                let address = "203.0.113.\(1 + random.next(254))"
                let user = ["root", "admin", "ubuntu", "deploy", "alice"][random.next(5)]
                let verb = random.next(4) == 0 ? "Accepted" : "Failed"
                let line = "\(isoTime(seconds, nil, offset: true)) bastion-\(random.next(3)) sshd[\(1000 + random.next(9000))]: \(verb) password for \(user) from \(address) port \(30000 + random.next(30000)) ssh2"
                raw = RawRecord(bytes: Array(line.utf8), source: "syslog")
            }
            let result = normalizer.normalize(raw)
            precondition(result.failures.isEmpty && result.events.count == 1,
                         "corpus record \(index) (\(raw.source ?? "")) did not normalize to one event: \(result.failures)")
            var event = result.events[0]
            // As Enrich leaves it: the asset the event is about.
            event.set("vigil.asset", .object([
                "id": .string("i-0\(String(0x1000_0000 + random.next(5000), radix: 16))"),
                "kind": "instance", "account": "111122223333", "environment": .string(random.next(4) == 0 ? "staging" : "production"),
                "owner": "platform", "criticality": .string(random.next(5) == 0 ? "high" : "medium"),
                "internet_exposed": .bool(random.next(4) == 0),
            ]))
            event.set("vigil.asset_status", "known")
            out.append(event.serialized())
        }
        return out
    }

    static func templates(_ name: String) -> [JSON] {
        let path = RulePack.root + "/samples/cloudtrail/" + name
        // A Records file, or one event on its own.
        guard let bytes = readFile(path), let document = try? JSON.parse(bytes),
              let records = document["Records"]?.arrayValue ?? (document["eventName"] == nil ? nil : [document]), !records.isEmpty else {
            fatalError("\(path) is neither a CloudTrail Records file nor a CloudTrail event")
        }
        return records
    }

    /// `2026-11-20T00:01:02Z` (`.123Z` with milliseconds; `+00:00` for syslog).
    static func isoTime(_ seconds: Int64, _ millis: Int64?, offset: Bool = false) -> String {
        func two(_ value: Int64) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let ofDay = (seconds - base) % 86_400
        var text = "2026-11-2\(0 + (seconds - base) / 86_400)T\(two(ofDay / 3600)):\(two(ofDay / 60 % 60)):\(two(ofDay % 60))"
        if let millis { text += "." + String(String(millis + 1000).dropFirst()) }
        return text + (offset ? "+00:00" : "Z")
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

/// The partials of the memory benchmark: one failed console sign-in per user, 1 ms apart, with
/// the context a real partial carries.
enum OpenKeys {
    static let ruleID = "aws.console.bruteforce"

    static func partial(_ index: Int) -> Partial {
        let user = "user\(index)"
        let context: JSON = .object([
            "actor": .object(["user": .object(["name": .string(user), "uid_alt": .string("arn:aws:iam::111122223333:user/\(user)")])]),
            "src_endpoint": .object(["ip": .string("198.51.100.\(index % 254 + 1)")]),
            "cloud": .object(["provider": "AWS", "region": "us-east-1", "account": .object(["uid": "111122223333"])]),
        ])
        return Partial(ruleID: ruleID, ruleVersion: 1, groupKey: user, groupValues: ["actor.user.name": user],
                       eventTime: EventCorpus.base * 1000 + Int64(index), eventUID: "evt-\(index)-0123456789abcdef", context: context)
    }
}

/// Heap bytes in use, from glibc's allocator (`mallinfo2().uordblks`, through CDetectHeap).
enum Memory {
    static func heapInUse() -> Int { Int(vigil_heap_in_use()) }
}

/// Fails the run, before anything is measured, if the corpus does not exercise what it should.
enum CorpusCheck {
    static func check(rules: RuleSet, events: [JSON], partials: [Partial]) {
        precondition(rules.rules.count >= 18, "the rule pack has \(rules.rules.count) rules")
        precondition(events.count == eventCount, "corpus: \(events.count) events")
        let byRule = Dictionary(grouping: partials, by: \.ruleID).mapValues(\.count)
        for rule in ["aws.console.bruteforce", "aws.api.new_region", "aws.api.call_volume_anomaly", "net.port_scan",
                     "net.egress_spike", "host.ssh.bruteforce", "host.ssh.bruteforce_then_success"] {
            precondition(byRule[rule, default: 0] > 0, "corpus: no partials for \(rule) (\(byRule))")
        }
        precondition(rules.rule(id: OpenKeys.ruleID)?.window?.kind == .sliding, "\(OpenKeys.ruleID) is no longer a sliding window")
    }
}
