import Foundation
import Inventory
import Kafka
import OCSF
import Pipeline
import TestSupport
import Testing

/// Two `vigil-enrich` copies, each with its own SQLite file, on a real broker: AWS Config items
/// seen by one copy reach the other through `<prefix>inventory`, both enrich identically, and a
/// copy restarted on an empty file loads the inventory from the topic before it processes.
@Suite(.enabled(if: Binaries.available, "broker or built executables missing (run make test)"), .serialized,
       .timeLimit(.minutes(10)))
struct EnrichScaleOutTests {
    static let base = "2026-11-20T10:00:00"

    /// An AWS Config change notification for an instance, as AWS sends it.
    static func configNotification(id: String, ip: String, publicIP: String?, name: String, owner: String, minute: Int) -> String {
        let publicPart = publicIP.map { ",\"publicIpAddress\":\"\($0)\"" } ?? ""
        let time = "2026-11-20T10:0\(minute):00.000Z"
        return """
            {"configurationItem":{"configurationItemVersion":"1.3","configurationItemCaptureTime":"\(time)","configurationStateId":\(minute + 1),\
            "awsAccountId":"111122223333","configurationItemStatus":"OK","resourceType":"AWS::EC2::Instance","resourceId":"\(id)",\
            "ARN":"arn:aws:ec2:us-east-1:111122223333:instance/\(id)","awsRegion":"us-east-1","availabilityZone":"us-east-1a",\
            "tags":{"Name":"\(name)","Owner":"\(owner)","env":"production"},"relationships":[],\
            "configuration":{"instanceId":"\(id)","imageId":"ami-0abc","privateIpAddress":"\(ip)"\(publicPart),\
            "securityGroups":[{"groupId":"sg-0web","groupName":"web"}]}},\
            "notificationCreationTime":"\(time)","messageType":"ConfigurationItemChangeNotification","recordVersion":"1.3"}
            """
    }

    /// A minimal OCSF API Activity event from `ip` at `second` past 10:10.
    static func apiEvent(uid: String, ip: String, second: Int) -> [UInt8] {
        let time = Timestamp.parseISO8601("2026-11-20T10:10:\(second < 10 ? "0" : "")\(second)Z")!
        var event = OCSFEvent.base(class: .apiActivity, activityID: 99, activityName: "Other", time: time, uid: uid,
                                   product: "CloudTrail", vendor: "AWS")
        event.set("src_endpoint.ip", .string(ip))
        return event.serialized()
    }

    static func launch(_ name: String, inventory: String, environment: [String: String], log: String) throws -> Process {
        try Binaries.launch("vigil-enrich", ["--inventory", inventory], environment: environment, log: log)
    }

    static func stop(_ process: Process, signal: Int32 = SIGTERM) {
        guard process.isRunning else { return }
        kill(process.processIdentifier, signal)
        while process.isRunning { usleep(20_000) }
    }

    /// The ids of the assets in an inventory file another process is writing.
    static func assetNames(_ path: String) -> [String: String] {
        guard FileManager.default.fileExists(atPath: path), let store = try? InventoryStore(path: path),
              let assets = try? store.all() else { return [:] }
        return Dictionary(uniqueKeysWithValues: assets.map { ($0.id, $0.name ?? "") })
    }

    @Test("two enrich copies converge through the inventory topic and enrich identically, also after a restart")
    func twoCopies() async throws {
        let broker = try await TestBroker.start()
        let topics = Topics(prefix: "sc.")
        let config = TestBroker.config(broker)
        let admin = try KafkaAdmin(config: config, logger: TestBroker.logger)
        try await admin.createTopics(topics.specs(partitions: 2, replicationFactor: 1))
        let dir = NSTemporaryDirectory() + "vigil-enrich-scale-\(broker.port)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }

        // The Config items, normalized by the real mapping.
        let notifications = [
            Self.configNotification(id: "i-0aaaaaaaaaaaaaaa1", ip: "10.20.0.1", publicIP: "203.0.113.1", name: "web-a", owner: "team-web", minute: 0),
            Self.configNotification(id: "i-0bbbbbbbbbbbbbbb2", ip: "10.20.0.2", publicIP: nil, name: "db-b", owner: "team-data", minute: 1),
        ]
        var configEvents: [[UInt8]] = []
        for (index, text) in notifications.enumerated() {
            let file = dir + "/config-\(index).json"
            try Data(text.utf8).write(to: URL(fileURLWithPath: file))
            let normalized = try Binaries.run("vigil", ["normalize", "--source", "awsconfig", file])
            #expect(normalized.status == 0)
            configEvents += normalized.output.split(separator: "\n").map { Array($0.utf8) }
        }
        #expect(configEvents.count == 2)

        let environment = ["VIGIL_BROKERS": broker.bootstrapServers, "VIGIL_TOPIC_PREFIX": topics.prefix, "VIGIL_METRICS_PORT": "0",
                           "VIGIL_KAFKA_SESSION_TIMEOUT_MS": "6000", "VIGIL_KAFKA_HEARTBEAT_INTERVAL_MS": "500"]
        let one = try Self.launch("vigil-enrich", inventory: dir + "/one.sqlite", environment: environment, log: dir + "/one.log")
        let two = try Self.launch("vigil-enrich", inventory: dir + "/two.sqlite", environment: environment, log: dir + "/two.log")
        defer { Self.stop(one); Self.stop(two) }

        // Each Config item on its own partition: each copy sees one of them in its input.
        let producer = try KafkaProducer(config: config, logger: TestBroker.logger)
        _ = try await producer.send(configEvents.enumerated().map { index, value in
            OutgoingRecord(topic: topics.events, partition: Int32(index), key: nil, value: value)
        })
        let expected = ["i-0aaaaaaaaaaaaaaa1": "web-a", "i-0bbbbbbbbbbbbbbb2": "db-b"]
        let converged = await TestBroker.eventually(timeout: .seconds(120)) {
            Self.assetNames(dir + "/one.sqlite") == expected && Self.assetNames(dir + "/two.sqlite") == expected
        }
        #expect(converged, "both copies hold both assets")

        // Events about both addresses on both partitions, so each copy enriches both.
        var sent: [OutgoingRecord] = []
        for round in 0..<10 {
            for (index, ip) in ["10.20.0.1", "10.20.0.2", "203.0.113.1", "198.51.100.99"].enumerated() {
                sent.append(OutgoingRecord(topic: topics.events, partition: Int32((round + index) % 2), key: nil,
                                           value: Self.apiEvent(uid: "r1-\(round)-\(index)", ip: ip, second: round)))
            }
        }
        _ = try await producer.send(sent)
        var enriched = try await TestBroker.readAll(broker, topic: topics.enriched, partitions: 2, atLeast: sent.count + 2,
                                                    timeout: .seconds(120))

        // A copy restarted on an empty file loads the inventory before it processes anything.
        Self.stop(one, signal: SIGKILL)
        let three = try Self.launch("vigil-enrich", inventory: dir + "/three.sqlite", environment: environment, log: dir + "/three.log")
        defer { Self.stop(three) }
        let loaded = await TestBroker.eventually(timeout: .seconds(120)) { Self.assetNames(dir + "/three.sqlite") == expected }
        #expect(loaded, "the restarted copy loaded every asset from the topic")
        // Let the group settle on the two live copies, then a second round.
        try await Task.sleep(for: .seconds(8))
        var second: [OutgoingRecord] = []
        for round in 0..<10 {
            for (index, ip) in ["10.20.0.1", "10.20.0.2"].enumerated() {
                second.append(OutgoingRecord(topic: topics.events, partition: Int32((round + index) % 2), key: nil,
                                             value: Self.apiEvent(uid: "r2-\(round)-\(index)", ip: ip, second: 30 + round)))
            }
        }
        _ = try await producer.send(second)
        await producer.close()
        enriched = try await TestBroker.readAll(broker, topic: topics.enriched, partitions: 2, atLeast: sent.count + second.count + 2,
                                                timeout: .seconds(120))

        // Every event about one address carries the same asset, whichever copy enriched it.
        var byIP: [String: Set<String>] = [:]
        var uids = Set<String>()
        for record in enriched {
            let event = try JSON.parse(record.value)
            guard event["class_uid"]?.intValue == 6003, let ip = event.value(at: "src_endpoint.ip")?.stringValue else { continue }
            uids.insert(OCSFEvent.uid(event) ?? "")
            let asset = event.value(at: "vigil.asset").map { String(decoding: $0.serialized(), as: UTF8.self) } ?? "none"
            byIP[ip, default: []].insert(asset + "|" + (event.value(at: "vigil.asset_status")?.stringValue ?? ""))
        }
        #expect(uids.count == sent.count + second.count, "every event was enriched")
        for (ip, variants) in byIP { #expect(variants.count == 1, "one enrichment for \(ip), got \(variants.count)") }
        let web = try #require(byIP["10.20.0.1"]?.first)
        #expect(web.contains("\"owner\":\"team-web\"") && web.contains("\"internet_exposed\":true") && web.hasSuffix("|known"))
        #expect(byIP["203.0.113.1"] == byIP["10.20.0.1"])
        #expect(byIP["10.20.0.2"]?.first?.contains("\"internet_exposed\":false") == true)
        #expect(byIP["198.51.100.99"] == ["none|unknown"])

        // An import published from the command line reaches the running copies.
        let csv = dir + "/owners.csv"
        try Data("id,kind,name,owner,criticality\ni-0ccccccccccccccc3,instance,batch-c,team-batch,low\n".utf8)
            .write(to: URL(fileURLWithPath: csv))
        let published = try Binaries.run("vigil", ["inventory", "import", csv, "--inventory", dir + "/cli.sqlite", "--publish",
                                                   "--brokers", broker.bootstrapServers, "--topic-prefix", topics.prefix])
        #expect(published.status == 0)
        #expect(published.output.contains("published 1 to sc.inventory"))
        let reached = await TestBroker.eventually(timeout: .seconds(60)) {
            Self.assetNames(dir + "/two.sqlite")["i-0ccccccccccccccc3"] == "batch-c"
                && Self.assetNames(dir + "/three.sqlite")["i-0ccccccccccccccc3"] == "batch-c"
        }
        #expect(reached, "both running copies applied the published import")
    }
}
