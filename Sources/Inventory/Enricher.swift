import OCSF
import Synchronization

/// Which lookup found an event's asset, in the order they are tried.
public enum AssetMatch: String, Sendable, CaseIterable {
    /// An EC2 instance id among `resources[].uid` (bare, or at the end of an instance ARN).
    case instanceID = "instance_id"
    /// An instance id at the end of `actor.user.uid` (`AROA...:i-0abc...`, an instance-role session).
    case actorInstanceID = "actor_instance_id"
    /// `actor.session.issuer`, the ARN of the IAM role an assumed-role session came from.
    case roleARN = "role_arn"
    /// `device.instance_uid` (flow logs v3+, findings).
    case deviceInstanceID = "device_instance_id"
    /// `device.interface_uid`, an ENI (flow logs).
    case networkInterface = "network_interface"
    /// Any other `resources[].uid` that is an asset id (a bucket, a security group, an ARN).
    case resourceID = "resource_id"
    /// `actor.user.credential_uid`, an access key id.
    case accessKey = "access_key"
    /// `src_endpoint.ip`.
    case sourceIP = "src_ip"
    /// `dst_endpoint.ip`.
    case destinationIP = "dst_ip"
    /// `actor.user.name`, an IAM user name or ARN.
    case userName = "user_name"
}

/// One lookup to try for an event: what to look up and how it will be reported.
struct AssetCandidate: Sendable, Equatable {
    enum Key: Sendable, Hashable {
        case id(String), accessKey(String), ip(String), userName(String), networkInterface(String)
    }
    var key: Key
    var match: AssetMatch
}

/// The join logic of enrichment, pure: which lookups an event calls for, and how a found asset is
/// written into it. No I/O, so it is tested and benchmarked on its own.
public enum AssetJoin {
    /// Whether `text` is an EC2 instance id: `i-` and 8 or 17 lower-case hex digits.
    public static func isInstanceID(_ text: some StringProtocol) -> Bool {
        isInstanceID(utf8: text.utf8)
    }

    private static func isInstanceID(utf8: some Collection<UInt8>) -> Bool {
        guard utf8.count == 10 || utf8.count == 19 else { return false }
        var position = 0
        for byte in utf8 {
            switch position {
            case 0: guard byte == UInt8(ascii: "i") else { return false }
            case 1: guard byte == UInt8(ascii: "-") else { return false }
            default: guard (byte >= 0x30 && byte <= 0x39) || (byte >= 0x61 && byte <= 0x66) else { return false }
            }
            position += 1
        }
        return true
    }

    /// The instance id at the end of `text` after `:` or `/` (a role session name or an ARN), or
    /// `text` itself when it is one.
    public static func trailingInstanceID(_ text: String) -> String? {
        let utf8 = text.utf8
        let start = utf8.lastIndex(where: { $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: "/") }).map(utf8.index(after:))
            ?? utf8.startIndex
        let tail = utf8[start...]
        guard isInstanceID(utf8: tail) else { return nil }
        return start == utf8.startIndex ? text : String(Substring(tail))
    }

    /// Calls `body` with the event's lookups in the order they are tried, reading each field only
    /// when the ones before it did not answer; stops when `body` returns true.
    static func forEachCandidate<E: Error>(_ event: JSON, _ body: (AssetCandidate) throws(E) -> Bool) throws(E) {
        let resources = event["resources"]?.arrayValue ?? []
        for resource in resources {
            if let uid = resource["uid"]?.stringValue, let id = trailingInstanceID(uid),
               uid == id || uid.hasSuffix("instance/" + id) {
                if try body(AssetCandidate(key: .id(id), match: .instanceID)) { return }
            }
        }
        if let uid = event.value(at: "actor.user.uid")?.stringValue, let id = trailingInstanceID(uid) {
            if try body(AssetCandidate(key: .id(id), match: .actorInstanceID)) { return }
        }
        if let key = nonEmpty(event.value(at: "actor.user.credential_uid")) {
            if try body(AssetCandidate(key: .accessKey(key), match: .accessKey)) { return }
        }
        if let ip = nonEmpty(event.value(at: "src_endpoint.ip")) {
            if try body(AssetCandidate(key: .ip(ip), match: .sourceIP)) { return }
        }
        if let ip = nonEmpty(event.value(at: "dst_endpoint.ip")) {
            if try body(AssetCandidate(key: .ip(ip), match: .destinationIP)) { return }
        }
        if let name = nonEmpty(event.value(at: "actor.user.name")) {
            if try body(AssetCandidate(key: .userName(name), match: .userName)) { return }
        }
        // After the original six, so an event enriched once (which then has `device` filled)
        // is matched the same way when enriched again.
        if let role = nonEmpty(event.value(at: "actor.session.issuer")) {
            if try body(AssetCandidate(key: .id(role), match: .roleARN)) { return }
        }
        if let eni = nonEmpty(event.value(at: "device.interface_uid")) {
            if try body(AssetCandidate(key: .networkInterface(eni), match: .networkInterface)) { return }
        }
        if let id = nonEmpty(event.value(at: "device.instance_uid")), isInstanceID(id) {
            if try body(AssetCandidate(key: .id(id), match: .deviceInstanceID)) { return }
        }
        for resource in resources {
            if let uid = nonEmpty(resource["uid"]), trailingInstanceID(uid) == nil {
                if try body(AssetCandidate(key: .id(uid), match: .resourceID)) { return }
            }
        }
    }

    private static func nonEmpty(_ value: JSON?) -> String? {
        guard let text = value?.stringValue, !text.isEmpty else { return nil }
        return text
    }

    /// `vigil.asset`: the fields detection rules and playbooks read; `nil` fields are left out.
    public static func summary(_ asset: Asset) -> JSON {
        var o: [String: JSON] = [
            "id": .string(asset.id), "kind": .string(asset.kind),
            "internet_exposed": .bool(asset.internetExposed), "protected": .bool(asset.protected),
            "tags": .object(asset.tags.mapValues { .string($0) }),
            "private_ips": .array(asset.privateIPs.map { .string($0) }),
            "public_ips": .array(asset.publicIPs.map { .string($0) }),
        ]
        let optionals: [(String, String?)] = [
            ("name", asset.name), ("owner", asset.owner), ("environment", asset.environment),
            ("criticality", asset.criticality), ("account", asset.account), ("region", asset.region),
            ("user", asset.user),
        ]
        for (key, value) in optionals { if let value { o[key] = .string(value) } }
        o["vulnerabilities"] = vulnerabilitySummary(asset.vulnerabilities)
        return .object(o)
    }

    /// The most vulnerability ids listed in `vigil.asset.vulnerabilities.critical_ids`.
    public static let listedVulnerabilities = 10

    /// `{open, critical, exploitable, critical_ids}`: counts of open vulnerabilities, and the
    /// ids of the critical or exploitable ones (sorted, at most ``listedVulnerabilities``).
    static func vulnerabilitySummary(_ vulnerabilities: [AssetVulnerability]) -> JSON {
        let serious = vulnerabilities.filter { $0.severity == "critical" || $0.exploitable }
        let ids = Array(Set(serious.map(\.id)).sorted().prefix(listedVulnerabilities))
        return .object([
            "open": .int(Int64(vulnerabilities.count)),
            "critical": .int(Int64(vulnerabilities.filter { $0.severity == "critical" }.count)),
            "exploitable": .int(Int64(vulnerabilities.filter(\.exploitable).count)),
            "critical_ids": .array(ids.map(JSON.string)),
        ])
    }

    /// Writes a found asset into the event: `vigil.asset`, `vigil.asset_status = "known"`,
    /// `vigil.asset_match`, and for an instance the OCSF `device` (filling only fields the
    /// event does not already have).
    public static func apply(_ asset: Asset, match: AssetMatch, to event: JSON) -> JSON {
        apply(asset, summary: summary(asset), match: match, to: event)
    }

    /// ``apply(_:match:to:)`` with the asset's ``summary(_:)`` already made (the enricher
    /// caches it with the asset).
    static func apply(_ asset: Asset, summary: JSON, match: AssetMatch, to event: JSON) -> JSON {
        guard case .object(var members) = event else { return event }
        /// Sets `key` in `object` only when the event does not already have it.
        func fill(_ object: inout [String: JSON], _ key: String, _ value: JSON?) {
            if let value, object[key] == nil { object[key] = value }
        }
        var vigil = members.removeValue(forKey: "vigil")?.objectValue ?? [:]
        vigil["asset"] = summary
        vigil["asset_status"] = "known"
        vigil["asset_match"] = .string(match.rawValue)
        members["vigil"] = .object(vigil)
        if asset.kind == "instance" {
            var device = members.removeValue(forKey: "device")?.objectValue ?? [:]
            fill(&device, "instance_uid", .string(asset.id))
            fill(&device, "type_id", 6)
            fill(&device, "type", "Virtual")
            fill(&device, "name", asset.name.map(JSON.string))
            fill(&device, "hostname", asset.name.map(JSON.string))
            fill(&device, "region", asset.region.map(JSON.string))
            fill(&device, "ip", (asset.privateIPs.first ?? asset.publicIPs.first).map(JSON.string))
            fill(&device, "image", asset.imageID.map { ["uid": .string($0)] })
            members["device"] = .object(device)
        }
        // The OCSF resource the asset is: owner, criticality, labels and name where missing.
        if case .array(var resources)? = members["resources"] {
            members["resources"] = nil
            for index in resources.indices {
                guard case .object(var resource) = resources[index], let uid = resource["uid"]?.stringValue,
                      uid == asset.id || trailingInstanceID(uid) == asset.id else { continue }
                resources[index] = .null
                fill(&resource, "name", asset.name.map(JSON.string))
                fill(&resource, "region", asset.region.map(JSON.string))
                fill(&resource, "criticality", asset.criticality.map(JSON.string))
                fill(&resource, "owner", asset.owner.map { ["name": .string($0)] })
                if !asset.tags.isEmpty {
                    fill(&resource, "labels", .array(asset.tags.keys.sorted().map { .string("\($0):\(asset.tags[$0] ?? "")") }))
                }
                resources[index] = .object(resource)
            }
            members["resources"] = .array(resources)
        }
        // The cloud the event happened in, when the event has a cloud object without these.
        if case .object(var cloud)? = members["cloud"], cloud["region"] == nil || cloud["account"] == nil {
            members["cloud"] = nil
            fill(&cloud, "region", asset.region.map(JSON.string))
            fill(&cloud, "account", asset.account.map { ["uid": .string($0)] })
            members["cloud"] = .object(cloud)
        }
        return .object(members)
    }

    /// Marks an event whose asset is not in the inventory (or whose lookup failed, with `"error"`),
    /// removing any `vigil.asset` left from an earlier enrichment so re-enriching is idempotent.
    public static func mark(_ event: JSON, status: String) -> JSON {
        var out = event
        out.set("vigil.asset", nil)
        out.set("vigil.asset_match", nil)
        out.set("vigil.asset_status", .string(status))
        return out
    }
}

/// Joins events with the asset inventory, as the inventory was at each event's time.
///
/// A bounded in-memory cache sits in front of the store. It holds each lookup key's whole
/// timeline (which asset answered when, misses included), so events of any time are answered
/// from memory; when it fills it is emptied whole. Call ``invalidate(asset:)`` whenever the
/// inventory changes an asset. Events without a time are joined with the current inventory;
/// events older than everything the inventory knows about an asset get its first version.
public final class Enricher: Sendable {
    /// A cached timeline with each span's `vigil.asset` summary made once.
    private struct Cached {
        var timeline: AssetTimeline
        /// `summaries[i]` is the summary of `timeline.spans[i].asset`.
        var summaries: [JSON?]

        init(_ timeline: AssetTimeline) {
            self.timeline = timeline
            summaries = timeline.spans.map { $0.asset.map(AssetJoin.summary) }
        }
    }

    private struct State {
        var cache: [AssetCandidate.Key: Cached] = [:]
        /// Bumped by every invalidation, so a lookup that raced one does not cache a stale answer.
        var generation: UInt64 = 0
        var known = 0
        var unknown = 0
        var errors = 0
    }

    private let store: InventoryStore
    private let capacity: Int
    private let state = Mutex(State())

    /// An enricher over `store` whose cache holds at most `cacheCapacity` lookup keys (default 100,000).
    public init(store: InventoryStore, cacheCapacity: Int = 100_000) {
        self.store = store
        self.capacity = max(1, cacheCapacity)
    }

    /// The event with its asset joined in (see docs/inventory.md). Never throws: when the store
    /// fails the event gets `vigil.asset_status = "error"` and ``errorCount`` goes up. A value that
    /// is not a JSON object is returned as it is and not counted.
    public func enrich(_ event: JSON) -> JSON {
        guard case .object = event else { return event }
        let time = OCSFEvent.time(event)
        do {
            var found: (asset: Asset, summary: JSON, match: AssetMatch)?
            try AssetJoin.forEachCandidate(event) { (candidate) throws(InventoryError) -> Bool in
                guard let cached = try find(candidate.key), let index = cached.timeline.spanIndex(at: time),
                      let asset = cached.timeline.spans[index].asset else { return false }
                found = (asset, cached.summaries[index] ?? AssetJoin.summary(asset), candidate.match)
                return true
            }
            guard let found else {
                state.withLock { $0.unknown += 1 }
                return AssetJoin.mark(event, status: "unknown")
            }
            state.withLock { $0.known += 1 }
            return AssetJoin.apply(found.asset, summary: found.summary, match: found.match, to: event)
        } catch {
            state.withLock { $0.errors += 1 }
            return AssetJoin.mark(event, status: "error")
        }
    }

    /// Forgets every cached lookup this asset may answer, before or after its change: keys whose
    /// timeline mentions it, its own id, addresses, key id and user names, and every cached miss.
    public func invalidate(asset: Asset) {
        var keys: Set<AssetCandidate.Key> = [.id(asset.id), .accessKey(asset.id), .networkInterface(asset.id)]
        for ip in asset.privateIPs + asset.publicIPs { keys.insert(.ip(ip)) }
        for eni in asset.networkInterfaces { keys.insert(.networkInterface(eni)) }
        for name in [asset.user, asset.name, asset.id].compactMap({ $0 }) { keys.insert(.userName(name)) }
        invalidate(id: asset.id, keys: keys)
    }

    /// Forgets cached lookups that found this asset id, and every cached miss.
    public func invalidate(assetID: String) {
        invalidate(id: assetID, keys: [.id(assetID), .accessKey(assetID), .networkInterface(assetID), .userName(assetID)])
    }

    private func invalidate(id: String, keys: Set<AssetCandidate.Key>) {
        state.withLock { state in
            state.generation &+= 1
            state.cache = state.cache.filter { key, timeline in
                !keys.contains(key) && !timeline.timeline.spans.isEmpty && !timeline.timeline.mentions(id)
            }
        }
    }

    /// Forgets every cached lookup (after a bulk import, say).
    public func invalidateAll() {
        state.withLock { state in
            state.generation &+= 1
            state.cache.removeAll()
        }
    }

    /// Events enriched with a known asset since this enricher was made.
    public var knownCount: Int { state.withLock { $0.known } }
    /// Events for which no asset was found.
    public var unknownCount: Int { state.withLock { $0.unknown } }
    /// Events whose lookup failed in the store.
    public var errorCount: Int { state.withLock { $0.errors } }

    private func find(_ key: AssetCandidate.Key) throws(InventoryError) -> Cached? {
        let (hit, generation) = state.withLock { ($0.cache[key], $0.generation) }
        if let hit { return hit }
        // The store is read outside the lock so the lock is never held across I/O; two threads
        // missing the same key both read it, which is harmless.
        let found: AssetTimeline
        switch key {
        case .id(let id): found = try store.timeline(id: id)
        case .accessKey(let key): found = try store.timeline(accessKeyID: key)
        case .ip(let ip): found = try store.timeline(ip: ip)
        case .userName(let name): found = try store.timeline(userName: name)
        case .networkInterface(let eni): found = try store.timeline(networkInterface: eni)
        }
        let cached = Cached(found)
        state.withLock { state in
            guard state.generation == generation else { return }
            if state.cache.count >= capacity { state.cache.removeAll(keepingCapacity: true) }
            state.cache[key] = cached
        }
        return cached
    }
}
