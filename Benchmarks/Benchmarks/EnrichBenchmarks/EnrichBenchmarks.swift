// Enrichment with 100,000 assets in the inventory, each figure beside a baseline measured in the
// same run (the machines are shared and noisy: read the ratios).
//
//   baseline     10,000 events: JSON.parse + serialized(), the work the stage does per record
//                whatever the lookup costs
//   cache hits   10,000 events from 1,000 addresses, the cache warm: Enricher.enrich
//   SQLite miss  10,000 events from 10,000 distinct addresses through an enricher whose cache
//                holds one key: every event reads its timeline from SQLite
//   one lookup   one cached enrich per iteration, for the per-lookup latency percentiles
// scripts/bench-enrich turns the medians into events per second and reads the p99 of one lookup.
import Benchmark
import Foundation
import Inventory
import OCSF

/// Assets in the inventory.
let assetCount = 100_000
/// Events per pass.
let eventCount = 10_000
/// Distinct addresses the cache-hit events come from.
let hotAddresses = 1_000

var passConfiguration: Benchmark.Configuration {
    .init(
        metrics: [.wallClock, .cpuTotal, .mallocCountTotal, .peakMemoryResident],
        timeUnits: .microseconds,
        units: [.mallocCountTotal: .count, .peakMemoryResident: .count],
        warmupIterations: 1,
        maxDuration: .seconds(5),
        maxIterations: 50
    )
}

var lookupConfiguration: Benchmark.Configuration {
    .init(
        metrics: [.wallClock],
        timeUnits: .nanoseconds,
        warmupIterations: 1_000,
        maxDuration: .seconds(3),
        maxIterations: 200_000
    )
}

/// The address of asset `index`: 10.x.y.z, unique per asset.
func address(_ index: Int) -> String { "10.\(index / 65_536 % 256).\(index / 256 % 256).\(index % 256)" }

/// The inventory file of this process (package-benchmark runs each benchmark in a process of its own).
let storePath = NSTemporaryDirectory() + "vigil-bench-inventory-\(getpid()).sqlite"

/// Removes the inventory file and its companions (about 110 MB).
func removeStoreFiles() {
    for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: storePath + suffix) }
}

/// An inventory file with `assetCount` instances, built once.
func buildStore() -> InventoryStore {
    let path = storePath
    removeStoreFiles()
    do {
        let store = try InventoryStore(path: path)
        let assets = (0..<assetCount).map { index in
            Asset(id: String(format: "i-%017x", index), kind: "instance", account: "111122223333", region: "us-east-1",
                  name: "host-\(index)", owner: "team-\(index % 40)", environment: index % 3 == 0 ? "production" : "staging",
                  criticality: Asset.criticalities[index % 4], internetExposed: index % 10 == 0,
                  tags: ["env": index % 3 == 0 ? "production" : "staging", "app": "app-\(index % 200)"],
                  privateIPs: [address(index)], imageID: "ami-0abc", securityGroups: ["sg-\(index % 50)"])
        }
        _ = try store.upsert(assets, at: 1_700_000_000_000)
        return store
    } catch {
        fatalError("building the benchmark inventory failed: \(error)")
    }
}

/// A CloudTrail-sized OCSF API Activity event from `ip`.
func event(_ index: Int, ip: String) -> JSON {
    var event = OCSFEvent.base(class: .apiActivity, activityID: 2, activityName: "Read", time: 1_700_000_100_000 + Int64(index),
                               uid: "evt-\(index)", product: "CloudTrail", vendor: "AWS")
    event.set("api.operation", "GetObject")
    event.set("api.service.name", "s3.amazonaws.com")
    event.set("api.request.uid", .string("req-\(index)"))
    event.set("actor.user.name", .string("user-\(index % 17)"))
    event.set("actor.user.type", "IAMUser")
    event.set("actor.user.uid", .string("AIDAEXAMPLE\(index % 17)"))
    event.set("src_endpoint.ip", .string(ip))
    event.set("http_request.user_agent", "aws-cli/2.15.30 Python/3.11.6 Linux/6.1")
    event.set("cloud.region", "us-east-1")
    event.set("cloud.provider", "AWS")
    event.set("resources", [["uid": .string("arn:aws:s3:::bucket-\(index % 9)"), "type": "AWS::S3::Bucket"]])
    return event
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.teardown = { removeStoreFiles() }
    let store = buildStore()
    let hot = (0..<eventCount).map { event($0, ip: address(($0 * 7919) % hotAddresses * 97)) }
    let cold = (0..<eventCount).map { event($0, ip: address(($0 * 7919) % assetCount)) }
    let hotBytes = hot.map { $0.serialized() }
    let enricher = Enricher(store: store)
    // Checked once, outside every measurement: every event finds its asset.
    for sample in [hot[0], hot[eventCount - 1], cold[0], cold[eventCount - 1]] {
        precondition(enricher.enrich(sample).value(at: "vigil.asset_status") == "known", "a benchmark event found no asset")
    }
    for one in hot { blackHole(enricher.enrich(one)) }

    Benchmark("Enrich baseline (parse+serialize, 10k events)", configuration: passConfiguration) { benchmark in
        for _ in benchmark.scaledIterations {
            for bytes in hotBytes { blackHole((try? JSON.parse(bytes))?.serialized()) }
        }
    }

    Benchmark("Enrich cache hits (10k events, 100k assets)", configuration: passConfiguration) { benchmark in
        for _ in benchmark.scaledIterations {
            for one in hot { blackHole(enricher.enrich(one)) }
        }
    }

    let uncached = Enricher(store: store, cacheCapacity: 1)
    Benchmark("Enrich SQLite miss (10k events, 100k assets)", configuration: passConfiguration) { benchmark in
        for _ in benchmark.scaledIterations {
            for one in cold { blackHole(uncached.enrich(one)) }
        }
    }

    var next = 0
    Benchmark("Enrich one lookup (cached)", configuration: lookupConfiguration) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(enricher.enrich(hot[next % eventCount]))
            next &+= 1
        }
    }
}
