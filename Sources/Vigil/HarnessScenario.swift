import ArgumentParser
import Foundation
import Kafka
import Logging
import OCSF
import Pipeline
import Response
import Stages
import Synchronization

/// A fault scenario of `vigil harness --scenario`.
enum HarnessScenario: String, CaseIterable, ExpressibleByArgument {
    /// SIGKILL one replica of each stage in turn while the load flows, and restart it.
    case kill
    /// SIGTERM one replica of each stage in turn, wait for its clean exit, restart it.
    case sigterm
    /// 10% malformed raw records among good ones: every one dead-lettered, nothing stalls.
    case malformed
    /// The broker (durable: S3 storage on a local moto server) SIGKILLed mid-stream and
    /// restarted on the same port and storage a few seconds later; every stage reconnects.
    case brokerRestart = "broker-restart"
    /// Every scenario, one after another, each on a fresh broker.
    case all

    /// The scenarios `all` stands for.
    var expanded: [HarnessScenario] { self == .all ? [.kill, .sigterm, .malformed, .brokerRestart] : [self] }
}

/// What one scenario run needs besides the compose services.
struct ScenarioSettings {
    var records: Int?
    var malformed: Int?
    var hugeRecord = false
    var seed: UInt64 = 20_261_127
    /// Seconds from now to the load's first event time; `nil`: automatic.
    var eventLead: Int?
    var replicas: Int?
    var timeout: Int
    var settle: Int
    var faultInterval: Int
    var shipSeconds: Int
    /// Seconds the broker stays down in broker-restart.
    var brokerDown: Int = 3
    /// Partitions per topic on the durable (S3 on moto) broker.
    var durablePartitions: Int32 = 2
    var work: String
    var share: String
    var binDir: String
    var rules: String
    var playbooks: String
    var inventoryCSV: String
}

/// One fault injected: which replica, how, how it ended.
struct InjectedFault {
    var service: String
    var replica: Int
    var signal: Int32
    var signalledAt: ContinuousClock.Instant?
    var status: Int32?
    var exitSeconds: Double?
    /// broker-restart: seconds from the kill until the restarted broker accepted connections.
    var downSeconds: Double?
}

enum ScenarioRunner {
    /// Runs `scenario` on a fresh embedded broker and returns its JSON summary.
    static func run(_ scenario: HarnessScenario, services: [ComposeService], settings: ScenarioSettings,
                    environment: [String: String], logger: Logger, say: (String) -> Void) async throws -> JSON {
        let started = ContinuousClock.now
        let work = settings.work + "/" + scenario.rawValue
        try? FileManager.default.removeItem(atPath: work)
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)

        // 1. The load, and what the offline chain makes of it.
        let good: Int
        let broken: Int
        switch scenario {
        case .malformed:
            good = settings.records ?? 100_000
            broken = settings.malformed ?? good / 10
        case .brokerRestart:
            good = settings.records ?? 5_000
            broken = settings.malformed ?? 0
        default:
            good = settings.records ?? 20_000
            broken = settings.malformed ?? 0
        }
        // Event times ahead of the wall clock by about the time the load takes to flow through,
        // so a stall during a rebalance (replicas joining count too) cannot make the rest of it
        // late (see HarnessLoad).
        // The durable broker (every request a round trip to moto) moves records an order of
        // magnitude slower than the in-memory one: a longer lead.
        let lead = settings.eventLead ?? (scenario == .brokerRestart ? max(150, good / 20) : max(30, good / 100))
        let load = HarnessLoad.generate(good: good, malformed: broken, huge: settings.hugeRecord && scenario == .malformed,
                                        seed: settings.seed, firstEventTime: wallClockMillis() + Int64(lead) * 1000)
        say("\(scenario.rawValue): \(load.records.count) raw records (\(load.malformedCount) malformed); computing the expected outcome offline")
        try HarnessInterrupt.check()
        let expected = try HarnessExpectation.compute(load, rules: settings.rules, playbooks: settings.playbooks,
                                                      inventoryCSV: settings.inventoryCSV, work: work)
        let byRule: [String] = expected.alertRules.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
        let counts = "\(expected.eventUIDs.count) events, \(expected.alertIDs.count) alerts (\(byRule.joined(separator: ", "))), "
        say("\(scenario.rawValue): expected " + counts + "\(expected.commandIDs.count) commands, \(expected.deadLetters) dead letters")

        // 2. Broker (durable for broker-restart: S3 storage on a moto server), topics, services.
        let broker = try await HarnessBroker.start(durable: scenario == .brokerRestart, work: work, environment: environment)
        defer { broker.stop() }
        var clusterEnvironment = environment
        if broker.durable {
            // Every heartbeat, commit and fetch of the S3-backed broker is a request to moto (one
            // Python process): heartbeat less often, and create the topics with fewer partitions
            // before topic-init (which leaves existing topics as they are).
            clusterEnvironment["VIGIL_KAFKA_SESSION_TIMEOUT_MS"] = environment["VIGIL_KAFKA_SESSION_TIMEOUT_MS"] ?? "30000"
            clusterEnvironment["VIGIL_KAFKA_HEARTBEAT_INTERVAL_MS"] = environment["VIGIL_KAFKA_HEARTBEAT_INTERVAL_MS"] ?? "3000"
            clusterEnvironment["VIGIL_KAFKA_FETCH_WAIT_MAX_MS"] = environment["VIGIL_KAFKA_FETCH_WAIT_MAX_MS"] ?? "1000"
            // Tansu 0.6 on S3 loses the idempotent producers' state when killed: sequence
            // numbers out of step after the restart (a fatal client error), and records
            // acknowledged as duplicates that were never kept. Without idempotence a retry can
            // only duplicate, which the deterministic ids absorb. (Real Kafka: keep it on.)
            clusterEnvironment["VIGIL_KAFKA_ENABLE_IDEMPOTENCE"] = environment["VIGIL_KAFKA_ENABLE_IDEMPOTENCE"] ?? "false"
            var adminConfig = KafkaConfig.fromEnvironment(environment, base: KafkaConfig(clientID: "vigil-harness"))
            adminConfig.bootstrapServers = broker.bootstrapServers
            let prefix = services.compactMap { $0.environment["VIGIL_TOPIC_PREFIX"] }.first ?? "vigil."
            try await KafkaAdmin(config: adminConfig, logger: logger)
                .createTopics(Topics(prefix: prefix).specs(partitions: settings.durablePartitions, replicationFactor: 1))
            say("\(scenario.rawValue): topics created with \(settings.durablePartitions) partitions on the durable broker")
        }
        let cluster = HarnessCluster(services: services, work: work, share: settings.share, binDir: settings.binDir,
                                     brokers: broker.bootstrapServers, environment: clusterEnvironment)
        defer { cluster.stopAll() }
        try await cluster.runJobs(say: { say("\(scenario.rawValue): \($0)") })
        try cluster.startAll(replicas: settings.replicas)
        let topics = Topics(prefix: services.compactMap { $0.environment["VIGIL_TOPIC_PREFIX"] }.first ?? "vigil.")
        say("\(scenario.rawValue): \(broker.durable ? "durable broker (S3 storage on moto)" : "broker") \(broker.bootstrapServers); started "
            + cluster.counts.sorted { $0.key < $1.key }.map { "\($0.key) x\($0.value)" }.joined(separator: ", ") + " (logs in \(work))")

        var config = KafkaConfig.fromEnvironment(clusterEnvironment, base: KafkaConfig(clientID: "vigil-harness"))
        config.bootstrapServers = broker.bootstrapServers
        let watcher = try KafkaConsumer(config: config, groupID: nil, logger: logger)
        let metadata = try await KafkaAdmin(config: config, logger: logger).listTopics()
        let watched = [topics.events, topics.alerts, topics.commands, topics.commandResults, topics.deadLetters]
        try watcher.assign(metadata.filter { watched.contains($0.name) }.flatMap { topic in
            topic.partitions.map { TopicPartitionOffset(TopicPartition(topic: topic.name, partition: $0), offset: KafkaConsumer.beginning) }
        })

        // 3. Ship the load at a steady pace while faults are injected.
        var shipConfig = config
        shipConfig.properties["message.max.bytes"] = shipConfig.properties["message.max.bytes"] ?? "4000000"
        let records = load.records
        let shipSeconds = settings.shipSeconds
        // A task, not `async let`: the loop below keeps watching (and notices an interrupt)
        // while a slice waits for its delivery reports through a broker outage.
        let shipResult = OutcomeBox<Result<ShipOutcome, any Error>>()
        let shipping = Task {
            do { shipResult.set(.success(try await ship(records, topic: topics.raw, config: shipConfig, seconds: shipSeconds, logger: logger))) } catch {
                shipResult.set(.failure(error))
            }
        }
        defer { shipping.cancel() }
        let shipStart = ContinuousClock.now

        var faults: [InjectedFault] = []
        if scenario == .kill || scenario == .sigterm {
            for name in ["ingest", "enrich", "detect", "respond"] where cluster.service(name) != nil {
                faults.append(InjectedFault(service: name, replica: 1, signal: scenario == .kill ? SIGKILL : SIGTERM))
            }
        }
        var nextFault = 0
        var nextFaultAt = shipStart + .seconds(max(2, settings.faultInterval))
        var unexpectedExits: [String] = []
        // broker-restart: SIGKILL halfway through shipping, a restart --broker-down seconds later.
        var brokerFault: InjectedFault? = scenario == .brokerRestart ? InjectedFault(service: "broker", replica: 1, signal: SIGKILL) : nil
        let brokerKillAt = shipStart + .seconds(max(2, shipSeconds / 2))

        var eventUIDs = Set<String>()
        var eventRecords = 0
        var alertSignatures: [String: String] = [:]
        var alertRecords = 0
        var mismatchedDuplicates = 0
        var commandIDs = Set<String>()
        var commandRecords = 0
        var resultIDs = Set<String>()
        var dlq = 0
        var dlqWithoutCode = 0
        var dlqCodes: [String: Int] = [:]
        var lastChange = ContinuousClock.now
        var complete = false
        // Windows close once the wall clock passes their events' times, so the lead counts too.
        let deadline = ContinuousClock.now + .seconds(settings.timeout + max(0, lead))
        var shipped: ShipOutcome?
        var lastReport = ContinuousClock.now

        while ContinuousClock.now < deadline {
            try HarnessInterrupt.check()
            for record in try await watcher.poll(maxRecords: 2000, timeout: .milliseconds(200)).records {
                lastChange = ContinuousClock.now
                switch record.topic {
                case topics.events:
                    eventRecords += 1
                    if let uid = (try? JSON.parse(record.value)).flatMap(OCSFEvent.uid) { eventUIDs.insert(uid) }
                case topics.alerts:
                    alertRecords += 1
                    guard let alert = try? JSON.parse(record.value), let id = alert.value(at: "metadata.uid")?.stringValue else { continue }
                    let signature = ["vigil.rule.id", "vigil.rule.version", "vigil.group_key", "vigil.window.start", "vigil.window.end"]
                        .map { alert.value(at: $0)?.scalarText ?? "" }.joined(separator: "|")
                    if let previous = alertSignatures[id] {
                        if previous != signature { mismatchedDuplicates += 1 }
                    } else {
                        alertSignatures[id] = signature
                    }
                case topics.commands:
                    commandRecords += 1
                    if let id = (try? JSON.parse(record.value))?["command_id"]?.stringValue { commandIDs.insert(id) }
                case topics.commandResults:
                    if let id = (try? JSON.parse(record.value))?["command_id"]?.stringValue { resultIDs.insert(id) }
                case topics.deadLetters:
                    dlq += 1
                    if let code = record.headers.text(VigilHeader.dlqErrorCode), !code.isEmpty {
                        dlqCodes[code, default: 0] += 1
                    } else {
                        dlqWithoutCode += 1
                    }
                default:
                    break
                }
            }

            // Faults, one replica at a time: signal, wait for the exit, restart (compose's
            // restart policy), then the next one a fault interval later.
            if nextFault < faults.count {
                let current = nextFault
                var fault = faults[current]
                if fault.signalledAt == nil, ContinuousClock.now >= nextFaultAt,
                   let service = cluster.service(fault.service), let process = cluster.process(service.name, replica: fault.replica) {
                    kill(process.processIdentifier, fault.signal)
                    fault.signalledAt = ContinuousClock.now
                    say("\(scenario.rawValue): sent \(fault.signal == SIGKILL ? "SIGKILL" : "SIGTERM") to \(fault.service)-\(fault.replica)")
                } else if let signalledAt = fault.signalledAt, let service = cluster.service(fault.service),
                          let process = cluster.process(service.name, replica: fault.replica), !process.isRunning {
                    fault.status = process.terminationStatus
                    fault.exitSeconds = seconds(ContinuousClock.now - signalledAt)
                    say("\(scenario.rawValue): \(fault.service)-\(fault.replica) exited (status \(process.terminationStatus), "
                        + "\(process.terminationReason == .uncaughtSignal ? "signal" : "exit")) after "
                        + String(format: "%.1f s", fault.exitSeconds ?? 0) + "; restarting it")
                    try cluster.launch(service, replica: fault.replica)
                    nextFault += 1
                    nextFaultAt = ContinuousClock.now + .seconds(settings.faultInterval)
                } else if let signalledAt = fault.signalledAt, ContinuousClock.now - signalledAt > .seconds(90),
                          let process = cluster.process(fault.service, replica: fault.replica), process.isRunning {
                    say("\(scenario.rawValue): \(fault.service)-\(fault.replica) still running 90 s after the signal; killing it")
                    kill(process.processIdentifier, SIGKILL)
                }
                faults[current] = fault
            }
            if var fault = brokerFault, fault.status == nil {
                if fault.signalledAt == nil, ContinuousClock.now >= brokerKillAt {
                    broker.kill()
                    fault.signalledAt = ContinuousClock.now
                    say("\(scenario.rawValue): sent SIGKILL to the broker; restarting it in \(settings.brokerDown) s")
                } else if let killedAt = fault.signalledAt, ContinuousClock.now - killedAt >= .seconds(settings.brokerDown) {
                    try await broker.restart()
                    fault.status = SIGKILL
                    fault.downSeconds = seconds(ContinuousClock.now - killedAt)
                    say("\(scenario.rawValue): broker restarted on \(broker.bootstrapServers), same storage, after "
                        + String(format: "%.1f s", fault.downSeconds ?? 0) + " down")
                }
                brokerFault = fault
            }
            // Any other exit is a failure; compose would restart it (restart: on-failure), so do we.
            try HarnessInterrupt.check()
            for (service, replica) in cluster.exited() {
                let current = nextFault < faults.count ? faults[nextFault] : nil
                if current?.service == service.name && current?.replica == replica && current?.signalledAt != nil { continue }
                let status = cluster.process(service.name, replica: replica)?.terminationStatus ?? -1
                unexpectedExits.append("\(service.name)-\(replica):\(status)")
                say("\(scenario.rawValue): \(service.name)-\(replica) exited unexpectedly (status \(status)); restarting it")
                try cluster.launch(service, replica: replica)
            }

            if shipped == nil, ContinuousClock.now - shipStart > .seconds(shipSeconds), let outcome = shipResult.value {
                shipped = try outcome.get()
            }
            let everything = shipped != nil && nextFault >= faults.count && (brokerFault == nil || brokerFault?.status != nil)
                && expected.eventUIDs.isSubset(of: eventUIDs) && Set(expected.alertIDs).isSubset(of: Set(alertSignatures.keys))
                && expected.commandIDs.isSubset(of: commandIDs) && expected.commandIDs.isSubset(of: resultIDs)
                && dlq >= expected.deadLetters - (shipped?.rejectedMalformed ?? 0)
            if everything && ContinuousClock.now - lastChange > .seconds(settings.settle) {
                complete = true
                break
            }
            if ContinuousClock.now - lastReport > .seconds(10) {
                lastReport = ContinuousClock.now
                say("\(scenario.rawValue): events \(eventUIDs.count)/\(expected.eventUIDs.count), alerts \(alertSignatures.count)/"
                    + "\(expected.alertIDs.count), commands \(commandIDs.count)/\(expected.commandIDs.count), results \(resultIDs.count), dlq \(dlq)")
            }
        }
        try HarnessInterrupt.check()
        // Shipping still waiting for delivery reports at the deadline: a minute more, then the
        // run fails without it (`complete` is false).
        let shipWait = ContinuousClock.now + .seconds(60)
        while shipped == nil && ContinuousClock.now < shipWait {
            if let outcome = shipResult.value { shipped = try outcome.get() } else { try await harnessSleep(.milliseconds(200)) }
        }
        await watcher.close()
        if let brokerFault { faults.append(brokerFault) }
        say("\(scenario.rawValue): \(complete ? "complete" : "timed out"); stopping the services")
        cluster.stopAll()

        // 4. The executors' ledgers: a command executed by more than one copy (or twice by one).
        var executedBy: [String: Int] = [:]
        var executed = 0
        let executedStates: Set<String> = ["succeeded", "dry_run", "failed", "reverted"]
        for path in cluster.stateFiles(flag: "--ledger") where FileManager.default.fileExists(atPath: path) {
            let ledger = try Ledger(path: path)
            for entry in try ledger.list(limit: 10_000_000) where executedStates.contains(entry.status) {
                executed += 1
                executedBy[entry.commandID, default: 0] += 1
            }
        }
        let duplicateCommands = executedBy.values.count { $0 > 1 }

        let rejected = shipped?.rejectedMalformed ?? 0
        let dlqExpected = load.malformedCount - rejected
        let lost = expected.alertIDs.subtracting(alertSignatures.keys).count
        var lostByRule: [String: Int] = [:]
        for id in expected.alertIDs.subtracting(alertSignatures.keys) { lostByRule[expected.alertRuleByID[id] ?? "?", default: 0] += 1 }
        let missingEvents = expected.eventUIDs.subtracting(eventUIDs).count
        let lostCommands = expected.commandIDs.subtracting(commandIDs).count
        let cleanExits = faults.allSatisfy { $0.status == 0 }
        let brokerRestarted = faults.contains { $0.service == "broker" && $0.downSeconds != nil }
        let faultsDone = faults.allSatisfy { $0.status != nil }
        var passed = complete && lost == 0 && missingEvents == 0 && mismatchedDuplicates == 0
        passed = passed && duplicateCommands == 0 && lostCommands == 0 && faultsDone
        switch scenario {
        case .sigterm: passed = passed && cleanExits
        // Every stage must ride out the outage: an exit (even one compose would restart) fails it.
        case .brokerRestart: passed = passed && brokerRestarted && unexpectedExits.isEmpty
        case .malformed:
            passed = passed && dlq == dlqExpected && dlqWithoutCode == 0
            passed = passed && expected.deadLetters == load.malformedCount
        default: break
        }
        let fields: [String: JSON] = [
            "scenario": .string(scenario.rawValue),
            "passed": .bool(passed),
            "input": .int(Int64(load.records.count)),
            "malformed": .int(Int64(load.malformedCount)),
            "events": .int(Int64(eventUIDs.count)),
            "events_expected": .int(Int64(expected.eventUIDs.count)),
            "events_missing": .int(Int64(missingEvents)),
            "event_records": .int(Int64(eventRecords)),
            "alerts_expected": .int(Int64(expected.alertIDs.count)),
            "alerts_seen": .int(Int64(alertSignatures.count)),
            "alert_records": .int(Int64(alertRecords)),
            "alerts_unexpected": .int(Int64(Set(alertSignatures.keys).subtracting(expected.alertIDs).count)),
            "mismatched_duplicates": .int(Int64(mismatchedDuplicates)),
            "lost": .int(Int64(lost)),
            "lost_by_rule": .object(lostByRule.mapValues { .int(Int64($0)) }),
            "event_lead_seconds": .int(Int64(lead)),
            "commands_expected": .int(Int64(expected.commandIDs.count)),
            "commands_seen": .int(Int64(commandIDs.count)),
            "command_records": .int(Int64(commandRecords)),
            "commands_lost": .int(Int64(lostCommands)),
            "commands_executed": .int(Int64(executed)),
            "duplicate_commands_executed": .int(Int64(duplicateCommands)),
            "dlq": .int(Int64(dlq)),
            "dlq_expected": .int(Int64(dlqExpected)),
            "dlq_without_code": .int(Int64(dlqWithoutCode)),
            "dlq_codes": .object(dlqCodes.mapValues { .int(Int64($0)) }),
            "rules": .object(expected.alertRules.mapValues { .int(Int64($0)) }),
            "complete": .bool(complete),
        ]
        var summary = JSON.object(fields)
        let elapsed: Double = seconds(ContinuousClock.now - started)
        summary["seconds"] = .double((elapsed * 10).rounded() / 10)
        if !faults.isEmpty {
            summary["faults"] = .array(faults.map { fault in
                var item: JSON = ["service": .string(fault.service), "replica": .int(Int64(fault.replica)),
                                  "signal": .string(fault.signal == SIGKILL ? "KILL" : "TERM")]
                if let status = fault.status { item["status"] = .int(Int64(status)) }
                if let exit = fault.exitSeconds { item["exit_seconds"] = .double((exit * 10).rounded() / 10) }
                if let down = fault.downSeconds { item["down_seconds"] = .double((down * 10).rounded() / 10) }
                return item
            })
        }
        if !unexpectedExits.isEmpty { summary["unexpected_exits"] = .array(unexpectedExits.map { .string($0) }) }
        if let note = shipped?.note { summary["note"] = .string(note) }
        if shipped == nil { summary["note"] = .string("shipping had not finished (delivery reports outstanding)") }
        if let retried = shipped?.retried, retried > 0 { summary["ship_retries"] = .int(Int64(retried)) }
        if let replaced = shipped?.producersReplaced, replaced > 0 { summary["ship_producers_replaced"] = .int(Int64(replaced)) }
        return summary
    }

    struct ShipOutcome: Sendable {
        var sent: Int
        var rejectedMalformed: Int
        var note: String?
        /// Good records produced again after a retriable failure (a broker outage longer than
        /// the client's own retries).
        var retried = 0
        /// Producers replaced after a fatal error.
        var producersReplaced = 0
    }

    /// Produces `records` to `topic` in even slices over about `seconds`; a record the client
    /// or broker refuses (the 2 MB one) is counted, not fatal. A good record whose delivery
    /// failed with a retriable error is produced again (up to 20 times, a second apart), as a
    /// shipper does.
    static func ship(_ records: [LoadRecord], topic: String, config: KafkaConfig, seconds: Int, logger: Logger) async throws -> ShipOutcome {
        var producer = try KafkaProducer(config: config, logger: logger)
        do {
            let outcome = try await ship(records, topic: topic, producer: &producer, config: config, seconds: seconds, logger: logger)
            await producer.close()
            return outcome
        } catch {
            await producer.close(timeout: .seconds(2))
            throw error
        }
    }

    private static func ship(_ records: [LoadRecord], topic: String, producer: inout KafkaProducer, config: KafkaConfig, seconds: Int,
                             logger: Logger) async throws -> ShipOutcome {
        let slices = max(1, seconds * 4)
        let per = max(1, (records.count + slices - 1) / slices)
        var outcome = ShipOutcome(sent: 0, rejectedMalformed: 0)
        let start = ContinuousClock.now
        for (n, offset) in stride(from: 0, to: records.count, by: per).enumerated() {
            try HarnessInterrupt.check()
            try Task.checkCancellation()
            var slice = Array(records[offset..<min(records.count, offset + per)])
            var attempt = 0
            while !slice.isEmpty {
                let outgoing = slice.map {
                    OutgoingRecord(topic: topic, key: Array($0.key.utf8), value: $0.bytes, headers: [KafkaHeader(VigilHeader.source, "cloudtrail")])
                }
                let results = try await producer.sendEachReportingFatal(outgoing)
                // A fatal idempotence error after a broker restart: a new producer sends again.
                let fatal = producer.fatalError != nil
                if fatal {
                    await producer.close(timeout: .seconds(1))
                    producer = try KafkaProducer(config: config, logger: logger)
                    outcome.producersReplaced += 1
                }
                var again: [LoadRecord] = []
                for (record, result) in zip(slice, results) {
                    switch result {
                    case .success: outcome.sent += 1
                    case .failure(let error) where !record.malformed && (error.isRetriable || fatal) && attempt < 20:
                        again.append(record)
                    case .failure(let error):
                        guard record.malformed else { throw error }
                        outcome.rejectedMalformed += 1
                        outcome.note = "a \(record.bytes.count)-byte record was refused when produced (\(error.code)); skipped"
                    }
                }
                slice = again
                if !again.isEmpty {
                    attempt += 1
                    outcome.retried += again.count
                    try await harnessSleep(.seconds(1))
                }
            }
            let due = start + .milliseconds(250 * (n + 1))
            if ContinuousClock.now < due { try await harnessSleep(due - ContinuousClock.now) }
        }
        return outcome
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}

/// The outcome of a background task, readable without waiting for it.
final class OutcomeBox<Value: Sendable>: Sendable {
    private let state = Mutex<Value?>(nil)
    func set(_ value: Value) { state.withLock { $0 = value } }
    var value: Value? { state.withLock { $0 } }
}
