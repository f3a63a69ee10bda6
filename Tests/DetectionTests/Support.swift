import Detection
import OCSF

/// The repository root, found from this file's path (Tests/DetectionTests/Support.swift).
func repositoryRoot(_ file: String = #filePath) -> String {
    var parts = file.split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)
    return parts.joined(separator: "/")
}

/// 2024-05-01T12:00:00Z.
let t0: Int64 = 1_714_564_800_000

func loadShippedRules() throws -> RuleSet {
    try RuleSet.load(directory: repositoryRoot() + "/rules")
}

/// A CloudTrail ConsoleLogin as Normalize maps it: OCSF Authentication 3002.
func consoleLogin(user: String, at time: Int64, uid: String, failed: Bool = true, ip: String = "203.0.113.7") -> JSON {
    var event = OCSFEvent.base(
        class: .authentication, activityID: 1, activityName: "Logon", time: time,
        status: failed ? .failure : .success, uid: uid, product: "CloudTrail", vendor: "AWS")
    event.set("api.operation", "ConsoleLogin")
    event.set("api.service.name", "signin.amazonaws.com")
    event.set("actor.user.name", .string(user))
    event.set("src_endpoint.ip", .string(ip))
    event.set("cloud", ["provider": "AWS", "account": ["uid": "111122223333"], "region": "us-east-1"])
    return event
}

/// A CloudTrail management event as OCSF API Activity 6003.
func cloudTrailCall(_ operation: String, service: String = "cloudtrail.amazonaws.com", at time: Int64, uid: String) -> JSON {
    var event = OCSFEvent.base(
        class: .apiActivity, activityID: 99, activityName: "Other", time: time,
        status: .success, uid: uid, product: "CloudTrail", vendor: "AWS")
    event.set("api.operation", .string(operation))
    event.set("api.service.name", .string(service))
    event.set("actor.user.name", "mallory")
    event.set("vigil.asset", ["id": "trail/main", "kind": "cloudtrail-trail"])
    return event
}

/// Runs events through select and aggregate as the detect stage does: single-event alerts
/// directly, partials through one aggregator (offsets in arrival order), then a flush.
struct DetectRun {
    var alerts: [JSON] = []
    var aggregator: WindowAggregator

    init(rules: RuleSet, events: [JSON], flush: Bool = true) {
        let selector = RuleSelector(rules: rules)
        aggregator = WindowAggregator(rules: rules)
        var offset: Int64 = 0
        for event in events {
            for selection in selector.select(event) {
                switch selection {
                case .alert(let alert): alerts.append(alert)
                case .partial(let partial):
                    // Through the wire format, as the stage would.
                    let wire = try! Partial(json: JSON.parse(partial.json().serialized()))
                    alerts += aggregator.add(wire, offset: offset)
                    offset += 1
                }
            }
        }
        if flush { alerts += aggregator.flush() }
    }
}

/// Runs events through select and then `instances` aggregators, each partial routed by a hash
/// of its Kafka key as the partials topic's partitioner would; every aggregator is flushed at
/// the end. The alerts are returned as sorted JSON texts, so runs can be compared as sets.
struct PartitionedRun {
    var alerts: [String] = []
    var aggregators: [WindowAggregator]

    init(rules: RuleSet, events: [JSON], instances: Int) {
        let selector = RuleSelector(rules: rules)
        aggregators = Array(repeating: WindowAggregator(rules: rules), count: instances)
        var offsets = Array(repeating: Int64(0), count: instances)
        var output: [JSON] = []
        for event in events {
            for selection in selector.select(event) {
                switch selection {
                case .alert(let alert): output.append(alert)
                case .partial(let partial):
                    let wire = try! Partial(json: JSON.parse(partial.json().serialized()))
                    let index = Int(Self.fnv1a(wire.kafkaKey) % UInt64(instances))
                    output += aggregators[index].add(wire, offset: offsets[index])
                    offsets[index] += 1
                }
            }
        }
        for index in aggregators.indices { output += aggregators[index].flush() }
        alerts = output.map(\.jsonText).sorted()
    }

    /// Late records over all instances.
    var lateRecords: Int { aggregators.reduce(0) { $0 + $1.lateRecords } }

    static func fnv1a(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0100_0000_01B3
        }
        return hash
    }
}

/// `events` (sorted by time) shuffled within consecutive blocks of `block` milliseconds, so
/// no event arrives more than `block` behind the newest one before it.
func shuffledWithinBlocks(_ events: [JSON], block: Int64, using generator: inout SeededGenerator) -> [JSON] {
    var result: [JSON] = []
    var current: [JSON] = []
    var blockStart: Int64?
    for event in events {
        let time = OCSFEvent.time(event) ?? 0
        if let start = blockStart, time - start >= block {
            result += current.shuffled(using: &generator)
            current = []
            blockStart = time
        }
        if blockStart == nil { blockStart = time }
        current.append(event)
    }
    return result + current.shuffled(using: &generator)
}

/// A rule set from one YAML rule.
func rulesFrom(_ yaml: String) throws -> RuleSet {
    try RuleSet(rules: RuleSet.parse(yaml: yaml, file: "t.yaml"))
}
