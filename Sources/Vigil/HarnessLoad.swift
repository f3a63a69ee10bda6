import Detection
import Foundation
import Inventory
import Kafka
import OCSF
import Pipeline
import Response
import Stages

/// One raw record of a harness load, as shipped to `<prefix>raw`.
struct LoadRecord: Sendable {
    /// The Kafka key: the principal, so one user's records stay in order on one partition
    /// (a shipper keyed by trail file per principal would do the same).
    var key: String
    var bytes: [UInt8]
    /// Deliberately broken (the malformed scenario): ingest must dead-letter it.
    var malformed: Bool
}

/// A realistic CloudTrail load with attacks the built-in rules detect, generated from a seed.
///
/// Every event time falls in one 20-second span starting at `firstEventTime`: the window rules
/// allow 30 s of lateness, so however replicas and restarts reorder the records, no partial is
/// late behind another, and the alerts the Kafka stages raise are those the offline chain
/// raises over the same records. (A partition idle for 5 s while upstream stalls has its
/// watermark moved to the wall clock minus the lateness; the fault scenarios therefore start
/// the span far enough ahead of the wall clock that the load is processed before then.)
struct HarnessLoad {
    /// Raw records in shipping order.
    var records: [LoadRecord]
    /// How many are malformed.
    var malformedCount: Int { records.count { $0.malformed } }
    /// A note on the huge record, when one was asked for.
    var notes: [String] = []

    static let account = "111122223333"
    static let services: [(source: String, names: [String])] = [
        ("s3.amazonaws.com", ["GetObject", "PutObject", "ListObjects", "HeadObject", "GetBucketLocation"]),
        ("ec2.amazonaws.com", ["DescribeInstances", "DescribeSecurityGroups", "DescribeVolumes", "DescribeSubnets"]),
        ("iam.amazonaws.com", ["ListUsers", "GetUser", "ListRoles", "ListAttachedUserPolicies"]),
        ("sts.amazonaws.com", ["GetCallerIdentity", "AssumeRole"]),
        ("lambda.amazonaws.com", ["ListFunctions20150331", "Invoke"]),
        ("kms.amazonaws.com", ["Decrypt", "GenerateDataKey"]),
        ("cloudtrail.amazonaws.com", ["DescribeTrails", "LookupEvents"]),
    ]

    /// `good` well-formed records (attacks included) and `malformed` broken ones mixed in at
    /// evenly spread positions; `huge` adds one broken record of about 2 MB.
    static func generate(good: Int, malformed: Int, huge: Bool, seed: UInt64, firstEventTime: Int64) -> HarnessLoad {
        var random = SeededGenerator(seed: seed)
        let users = ["alice", "bob"] + (1...38).map { String(format: "user%02d", $0) }
        let start = firstEventTime
        let span: Int64 = 20_000
        var sequence = 0
        var events: [LoadRecord] = []

        func time(_ index: Int, of total: Int) -> String {
            let millis = start + span * Int64(index) / Int64(max(1, total))
            return String(Timestamp.formatISO8601(millis).prefix(19)) + "Z"
        }
        func nextID() -> String {
            sequence += 1
            return String(format: "5eed%04x-0000-4000-8000-%012x", Int(seed & 0xFFFF), sequence)
        }
        func iamUser(_ name: String) -> String {
            #"{"type":"IAMUser","principalId":"AIDA\#(name.uppercased())EXAMPLE","arn":"arn:aws:iam::\#(account):user/\#(name)","accountId":"\#(account)","accessKeyId":"AKIA\#(name.uppercased())KEY","userName":"\#(name)"}"#
        }
        func record(_ identity: String, time: String, source: String, name: String, region: String = "us-east-1",
                    ip: String, extra: String = "", type: String = "AwsApiCall") -> [UInt8] {
            let id = nextID()
            let readOnly = name.hasPrefix("Get") || name.hasPrefix("List") || name.hasPrefix("Describe") || name.hasPrefix("Head")
            return Array(#"{"eventVersion":"1.08","userIdentity":\#(identity),"eventTime":"\#(time)","eventSource":"\#(source)","eventName":"\#(name)","awsRegion":"\#(region)","sourceIPAddress":"\#(ip)","userAgent":"aws-cli/2.15.30 Python/3.11.8","requestID":"req-\#(id)","eventID":"\#(id)","readOnly":\#(readOnly),"eventType":"\#(type)","managementEvent":true,"recipientAccountId":"\#(account)","eventCategory":"Management"\#(extra)}"#.utf8)
        }
        func console(_ user: String, success: Bool, time: String, ip: String) -> [UInt8] {
            let outcome = success ? #","responseElements":{"ConsoleLogin":"Success"}"# : #","errorMessage":"Failed authentication","responseElements":{"ConsoleLogin":"Failure"}"#
            return record(iamUser(user), time: time, source: "signin.amazonaws.com", name: "ConsoleLogin", ip: ip,
                          extra: outcome + #","additionalEventData":{"LoginTo":"https://console.aws.amazon.com/console/home","MFAUsed":"No"}"#,
                          type: "AwsConsoleSignIn")
        }

        // Attacks, spread over the load: a few per thousand records, at least one of each kind.
        let attackGroups = max(1, good / 1500)
        var attacks: [(position: Int, key: String, build: (String) -> [[UInt8]])] = []
        for group in 0..<attackGroups {
            let at = { (fraction: Double) in Int(Double(good) * (Double(group) + fraction) / Double(attackGroups)) }
            let victim = users[(group * 7 + 3) % users.count]
            let attacker = "203.0.113.\(10 + group % 200)"
            let failures = 5 + group % 4
            // Brute force; every other group ends with a success (bruteforce_then_success).
            attacks.append((at(0.1), victim, { t in
                (0..<failures).map { _ in console(victim, success: false, time: t, ip: attacker) }
                    + (group % 2 == 0 ? [console(victim, success: true, time: t, ip: attacker)] : [])
            }))
            // Below the threshold: three failures, then the user gets in. No alert.
            let clumsy = users[(group * 11 + 5) % users.count]
            attacks.append((at(0.3), clumsy, { t in
                (0..<3).map { _ in console(clumsy, success: false, time: t, ip: "192.0.2.77") } + [console(clumsy, success: true, time: t, ip: "192.0.2.77")]
            }))
            // Logging disabled: StopLogging from the CI runner's role (an instance in the
            // inventory) in the first group, DeleteTrail by a user in the others.
            if group == 0 {
                attacks.append((at(0.5), "ci-runner-role", { t in
                    let identity = #"{"type":"AssumedRole","principalId":"AROAEXAMPLECIRUNNER01:i-0a1b2c3d4e5f60003","arn":"arn:aws:sts::\#(account):assumed-role/ci-runner-role/i-0a1b2c3d4e5f60003","accountId":"\#(account)","accessKeyId":"ASIAEXAMPLECIRUNNER1","sessionContext":{"sessionIssuer":{"type":"Role","principalId":"AROAEXAMPLECIRUNNER01","arn":"arn:aws:iam::\#(account):role/ci-runner-role","accountId":"\#(account)","userName":"ci-runner-role"}}}"#
                    return [record(identity, time: t, source: "cloudtrail.amazonaws.com", name: "StopLogging", ip: "198.51.100.20",
                                   extra: #","requestParameters":{"name":"arn:aws:cloudtrail:us-east-1:\#(account):trail/org-trail"}"#)]
                }))
            } else {
                let insider = users[(group * 5 + 1) % users.count]
                attacks.append((at(0.5), insider, { t in
                    [record(iamUser(insider), time: t, source: "cloudtrail.amazonaws.com", name: "DeleteTrail", ip: "198.51.100.99",
                            extra: #","requestParameters":{"name":"trail-\#(group)"}"#)]
                }))
            }
            // Root activity.
            attacks.append((at(0.6), "root", { t in
                let identity = #"{"type":"Root","principalId":"\#(account)","arn":"arn:aws:iam::\#(account):root","accountId":"\#(account)","accessKeyId":"AKIAROOTEXAMPLE"}"#
                return [record(identity, time: t, source: "iam.amazonaws.com", name: "ListUsers", ip: "203.0.113.200")]
            }))
            // A new access key, and administrator rights, for a user.
            let persister = users[(group * 13 + 9) % users.count]
            attacks.append((at(0.75), persister, { t in
                [record(iamUser(persister), time: t, source: "iam.amazonaws.com", name: "CreateAccessKey", ip: "203.0.113.201",
                        extra: #","requestParameters":{"userName":"\#(persister)"},"responseElements":{"accessKey":{"userName":"\#(persister)","status":"Active","accessKeyId":"AKIANEW\#(group)"}}"#)]
                    + (group % 3 == 0 ? [record(iamUser(persister), time: t, source: "iam.amazonaws.com", name: "AttachUserPolicy", ip: "203.0.113.201",
                                                extra: #","requestParameters":{"userName":"\#(persister)","policyArn":"arn:aws:iam::aws:policy/AdministratorAccess"}"#)] : [])
            }))
        }
        attacks.sort { $0.position < $1.position }

        // Background: API calls of the users in two regions, and their ordinary console sign-ins.
        var nextAttack = 0
        var index = 0
        while events.count < good {
            while nextAttack < attacks.count, attacks[nextAttack].position <= index, events.count < good {
                let attack = attacks[nextAttack]
                for bytes in attack.build(time(events.count, of: good)) where events.count < good {
                    events.append(LoadRecord(key: attack.key, bytes: bytes, malformed: false))
                }
                nextAttack += 1
            }
            guard events.count < good else { break }
            let user = users[Int(random.next() % UInt64(users.count))]
            let t = time(events.count, of: good)
            let ip = "10.\(Int(random.next() % 4)).\(Int(random.next() % 250)).\(Int(random.next() % 250) + 1)"
            if random.next() % 50 == 0 {
                events.append(LoadRecord(key: user, bytes: console(user, success: true, time: t, ip: ip), malformed: false))
            } else {
                let service = services[Int(random.next() % UInt64(services.count))]
                let name = service.names[Int(random.next() % UInt64(service.names.count))]
                let region = random.next() % 10 == 0 ? "eu-west-1" : "us-east-1"
                events.append(LoadRecord(key: user, bytes: record(iamUser(user), time: t, source: service.source, name: name, region: region, ip: ip),
                                         malformed: false))
            }
            index += 1
        }

        // Malformed records at evenly spread positions, cycling through the kinds.
        var broken: [LoadRecord] = []
        for n in 0..<malformed {
            var bytes = events.isEmpty ? Array(#"{"eventVersion":"1.08"}"#.utf8) : events[n % events.count].bytes
            switch n % 4 {
            case 0: bytes = Array(bytes.prefix(bytes.count / 2))                       // truncated JSON
            case 1: bytes.insert(contentsOf: [0xC3, 0x28, 0xFF], at: min(40, bytes.count)) // invalid UTF-8
            case 2: bytes = Array(#"{"eventVersion":1.08,"eventTime":12345,"eventSource":["s3"],"eventName":{"x":1},"eventID":7}"#.utf8)
            default: bytes = Array(#"["not","a","cloudtrail","object",\#(n)]"#.utf8)  // JSON, not an object
            }
            broken.append(LoadRecord(key: "broken-\(n % 16)", bytes: bytes, malformed: true))
        }
        var mixed: [LoadRecord] = []
        mixed.reserveCapacity(events.count + broken.count + 1)
        var b = 0
        for (i, event) in events.enumerated() {
            mixed.append(event)
            while b < broken.count, (b + 1) * events.count <= (i + 1) * broken.count {
                mixed.append(broken[b])
                b += 1
            }
        }
        mixed += broken[b...]
        var load = HarnessLoad(records: mixed)
        if huge {
            // About 2 MB of an unterminated JSON string: a shipper cut a runaway line.
            let padding = [UInt8](repeating: UInt8(ascii: "A"), count: 2 * 1024 * 1024)
            let bytes = Array(#"{"eventVersion":"1.08","eventName":"PutObject","requestParameters":{"blob":""#.utf8) + padding
            load.records.insert(LoadRecord(key: "broken-huge", bytes: bytes, malformed: true), at: load.records.count / 2)
        }
        return load
    }
}

/// What the offline chain (the same processors, rules, playbooks and inventory) makes of a load.
struct HarnessExpectation {
    var eventUIDs: Set<String> = []
    var alertIDs: Set<String> = []
    var alertRules: [String: Int] = [:]
    var alertRuleByID: [String: String] = [:]
    var commandIDs: Set<String> = []
    var deadLetters = 0

    static func compute(_ load: HarnessLoad, rules: String, playbooks: String, inventoryCSV: String, work: String) throws -> HarnessExpectation {
        let topics = Topics()
        let metrics = MetricsRegistry()
        var expected = HarnessExpectation()
        var ingest = IngestProcessor(topics: topics, metrics: metrics)
        let storePath = work + "/expected-inventory.sqlite"
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: storePath + suffix) }
        let store = try InventoryStore(path: storePath)
        _ = try store.importFile(path: inventoryCSV, at: wallClockMillis())
        var enrich = EnrichProcessor(enricher: Enricher(store: store), store: store, topics: topics, metrics: metrics)
        var detector = OfflineDetector(rules: try RuleSet.load(directory: rules), topics: topics, metrics: metrics)
        var respond = RespondProcessor(playbooks: try PlaybookSet.load(directory: playbooks), topics: topics, metrics: metrics)
        let now = wallClockMillis()
        var alerts: [OutgoingRecord] = []
        for (offset, raw) in load.records.enumerated() {
            if offset % 1000 == 0 { try HarnessInterrupt.check() }
            let output = ingest.process(ConsumedRecord(topic: topics.raw, partition: 0, offset: Int64(offset), value: raw.bytes,
                                                       headers: [KafkaHeader(VigilHeader.source, "cloudtrail")], timestamp: now))
            expected.deadLetters += output.deadLetters.count
            for event in output.records where event.topic == topics.events {
                if let uid = (try? JSON.parse(event.value)).flatMap(OCSFEvent.uid) { expected.eventUIDs.insert(uid) }
                let enriched = enrich.process(ConsumedRecord(topic: topics.events, partition: 0, offset: Int64(offset), value: event.value,
                                                             headers: event.headers, timestamp: event.timestamp ?? now))
                for record in enriched.records where record.topic == topics.enriched {
                    let detected = detector.process(ConsumedRecord(topic: topics.enriched, partition: 0, offset: Int64(offset),
                                                                   value: record.value, headers: record.headers, timestamp: record.timestamp ?? now))
                    alerts += detected.records.filter { $0.topic == topics.alerts }
                }
            }
        }
        alerts += detector.finish()
        for (offset, alert) in alerts.enumerated() {
            guard let json = try? JSON.parse(alert.value), let id = json.value(at: "metadata.uid")?.stringValue else { continue }
            expected.alertIDs.insert(id)
            let rule = json.value(at: "vigil.rule.id")?.stringValue ?? "?"
            expected.alertRules[rule, default: 0] += 1
            expected.alertRuleByID[id] = rule
            let commands = respond.process(ConsumedRecord(topic: topics.alerts, partition: 0, offset: Int64(offset), value: alert.value,
                                                          timestamp: alert.timestamp ?? now))
            for command in commands.records where command.topic == topics.commands {
                if let id = (try? JSON.parse(command.value))?["command_id"]?.stringValue { expected.commandIDs.insert(id) }
            }
        }
        return expected
    }
}
