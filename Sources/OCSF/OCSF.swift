/// OCSF 1.x classes Vigil emits, with their category.
public enum OCSFClass: Int64, Sendable, CaseIterable {
    case fileSystemActivity = 1001
    case vulnerabilityFinding = 2002
    case complianceFinding = 2003
    case detectionFinding = 2004
    case accountChange = 3001
    case authentication = 3002
    case networkActivity = 4001
    case deviceConfigStateChange = 5019
    case apiActivity = 6003

    /// `category_uid`: the thousands digit of the class.
    public var categoryUID: Int64 { rawValue / 1000 }

    /// `class_name` as OCSF spells it.
    public var name: String {
        switch self {
        case .fileSystemActivity: "File System Activity"
        case .vulnerabilityFinding: "Vulnerability Finding"
        case .complianceFinding: "Compliance Finding"
        case .detectionFinding: "Detection Finding"
        case .accountChange: "Account Change"
        case .authentication: "Authentication"
        case .networkActivity: "Network Activity"
        case .deviceConfigStateChange: "Device Config State Change"
        case .apiActivity: "API Activity"
        }
    }

    /// `category_name` as OCSF spells it.
    public var categoryName: String {
        switch categoryUID {
        case 1: "System Activity"
        case 2: "Findings"
        case 3: "Identity & Access Management"
        case 4: "Network Activity"
        case 5: "Discovery"
        case 6: "Application Activity"
        default: "Other"
        }
    }

    /// `type_uid` = class_uid * 100 + activity_id.
    public func typeUID(activity: Int64) -> Int64 { rawValue * 100 + activity }
}

/// OCSF `severity_id` values.
public enum OCSFSeverity: Int64, Sendable, CaseIterable, Comparable {
    case unknown = 0, informational = 1, low = 2, medium = 3, high = 4, critical = 5, fatal = 6

    /// The OCSF caption (`severity`).
    public var name: String {
        switch self {
        case .unknown: "Unknown"
        case .informational: "Informational"
        case .low: "Low"
        case .medium: "Medium"
        case .high: "High"
        case .critical: "Critical"
        case .fatal: "Fatal"
        }
    }

    /// Parses a case-insensitive caption (`high`, `Critical`).
    public init?(name: String) {
        guard let match = OCSFSeverity.allCases.first(where: { $0.name.lowercased() == name.lowercased() }) else {
            return nil
        }
        self = match
    }

    public static func < (lhs: OCSFSeverity, rhs: OCSFSeverity) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// OCSF `status_id` values.
public enum OCSFStatus: Int64, Sendable {
    case unknown = 0, success = 1, failure = 2
    /// The OCSF caption (`status`).
    public var name: String {
        switch self {
        case .unknown: "Unknown"
        case .success: "Success"
        case .failure: "Failure"
        }
    }
}

/// The OCSF schema version Vigil's events claim.
public let ocsfVersion = "1.3.0"

/// Helpers to build and read OCSF events, which are plain `JSON` objects.
public enum OCSFEvent {
    /// The skeleton every event shares: class, category, activity, type, time, severity, status, metadata.
    public static func base(
        class ocsfClass: OCSFClass, activityID: Int64, activityName: String, time: Int64,
        severity: OCSFSeverity = .informational, status: OCSFStatus = .unknown,
        uid: String, product: String, vendor: String, logName: String? = nil,
        originalTime: String? = nil
    ) -> JSON {
        .object(baseMembers(
            class: ocsfClass, activityID: activityID, activityName: activityName, time: time,
            severity: severity, status: status,
            metadata: metadata(uid: uid, product: product, vendor: vendor, logName: logName, originalTime: originalTime)
        ))
    }

    /// `base`'s `metadata` object: version, uid, product, and the log name and original time when given.
    public static func metadata(
        uid: String, product: String, vendor: String, logName: String? = nil, originalTime: String? = nil
    ) -> [String: JSON] {
        var metadata: [String: JSON] = [
            "version": .string(ocsfVersion),
            "uid": .string(uid),
            "product": ["name": .string(product), "vendor_name": .string(vendor)],
        ]
        if let logName { metadata["log_name"] = .string(logName) }
        if let originalTime { metadata["original_time"] = .string(originalTime) }
        return metadata
    }

    /// `base`'s members with a caller-built `metadata`, and room for `capacity` members in all,
    /// for mappings that add their own members in place and wrap the result in `.object` once.
    public static func baseMembers(
        class ocsfClass: OCSFClass, activityID: Int64, activityName: String, time: Int64,
        severity: OCSFSeverity = .informational, status: OCSFStatus = .unknown,
        metadata: [String: JSON], capacity: Int = 16
    ) -> [String: JSON] {
        var members: [String: JSON] = [:]
        members.reserveCapacity(max(capacity, 13))
        members["class_uid"] = .int(ocsfClass.rawValue)
        members["class_name"] = .string(ocsfClass.name)
        members["category_uid"] = .int(ocsfClass.categoryUID)
        members["category_name"] = .string(ocsfClass.categoryName)
        members["activity_id"] = .int(activityID)
        members["activity_name"] = .string(activityName)
        members["type_uid"] = .int(ocsfClass.typeUID(activity: activityID))
        members["time"] = .int(time)
        members["severity_id"] = .int(severity.rawValue)
        members["severity"] = .string(severity.name)
        members["status_id"] = .int(status.rawValue)
        members["status"] = .string(status.name)
        members["metadata"] = .object(metadata)
        return members
    }

    /// The event's `metadata.uid`.
    public static func uid(_ event: JSON) -> String? { event.value(at: "metadata.uid")?.stringValue }

    /// The event time (`time`, epoch milliseconds).
    public static func time(_ event: JSON) -> Int64? { event["time"]?.intValue }

    /// The Kafka key of an event: the primary entity (asset id, else principal, else source IP).
    public static func primaryKey(_ event: JSON) -> String? {
        let candidates = [
            "vigil.asset.id", "device.instance_uid", "resources.0.uid",
            "actor.user.uid", "actor.user.name", "user.name", "src_endpoint.ip",
        ]
        for path in candidates {
            if let text = event.value(at: path)?.scalarText, !text.isEmpty { return text }
        }
        return nil
    }
}

/// Deterministic identifiers: the same inputs always give the same id, so re-processing a
/// record after a crash yields outputs with identical ids that downstream consumers deduplicate.
public enum StableID {
    /// Hex SHA-256 over the parts joined with a unit separator (which cannot occur in ids).
    public static func hash(_ parts: [String], length: Int = 32) -> String {
        var hasher = SHA256()
        for (position, part) in parts.enumerated() {
            if position > 0 { hasher.update(byte: 0x1F) }
            hasher.update(data: part.utf8)
        }
        return hex(of: hasher, length: length)
    }

    /// Hex SHA-256 of raw bytes.
    public static func hash(bytes: some Collection<UInt8>, length: Int = 32) -> String {
        var hasher = SHA256()
        hasher.update(data: bytes)
        return hex(of: hasher, length: length)
    }

    /// The first `length` hex digits of the digest of what `hasher` has absorbed. With a hasher
    /// that absorbed a shared prefix, this is `hash(_:length:)` without hashing the prefix again.
    public static func hex(of hasher: SHA256, length: Int = 32) -> String {
        let words = hasher.finalizeWords()
        let count = max(0, min(length, 64))
        return withUnsafeBytes(of: words) { raw in
            String(unsafeUninitializedCapacity: count) { out in
                // The words are big-endian digest words held in native order.
                for position in 0..<count {
                    let word = raw.load(fromByteOffset: (position / 8) * 4, as: UInt32.self)
                    let nibble = (word >> UInt32(28 - (position % 8) * 4)) & 0xF
                    out[position] = nibble < 10 ? UInt8(48 + nibble) : UInt8(87 + nibble)
                }
                return count
            }
        }
    }

    /// Lower-case hex of bytes.
    public static func hex(_ bytes: [UInt8]) -> String {
        String(unsafeUninitializedCapacity: bytes.count * 2) { out in
            let digits: StaticString = "0123456789abcdef"
            let table = digits.utf8Start
            for (index, byte) in bytes.enumerated() {
                out[2 * index] = table[Int(byte >> 4)]
                out[2 * index + 1] = table[Int(byte & 0x0F)]
            }
            return bytes.count * 2
        }
    }
}
