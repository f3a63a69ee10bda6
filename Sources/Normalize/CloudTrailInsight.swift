import OCSF

/// CloudTrail Insights events (`eventType` `AwsCloudTrailInsight`, `eventCategory` `Insight`):
/// AWS telling the account that an API's call rate or error rate left its baseline. They are
/// findings, not API calls, so they map to Detection Finding 2004 (docs/sources.md, CloudTrail,
/// "Insights events", says why and has the field table; keep the two in step).
extension CloudTrailMapping {
    /// `eventType` of an Insights event.
    static let insightEventType = "AwsCloudTrailInsight"

    /// `insightDetails` keys mapped (when they hold text); the rest, `insightContext` with its
    /// statistics and attributions above all, stays in `unmapped.insightDetails` as written.
    static let mappedInsightKeys: Set<String> = ["state", "eventSource", "eventName", "insightType"]

    /// OCSF 1.3 analytic `type_id` 3: Statistical (a rate compared with its baseline average).
    static let statisticalAnalytic: JSON = ["name": "CloudTrail Insights", "type_id": 3, "type": "Statistical"]

    /// Whether the picked entry is an Insights event: its `eventType`, or (for copies that lost
    /// it) an `Insight` `eventCategory` with `insightDetails`.
    static func isInsight(_ picked: Picked, unmapped: [String: JSON]) -> Bool {
        if picked.eventType?.stringValue == insightEventType { return true }
        return unmapped["eventCategory"]?.stringValue == "Insight" && unmapped["insightDetails"] != nil
    }

    /// Maps an Insights event. `unmapped` is what the shared pass in `event(from:)` kept; the
    /// members it took out for API calls and that an Insight does not use are put back.
    static func insight(entry: JSON, picked: Picked, unmapped kept: [String: JSON]) -> Result<JSON, EntryProblem> {
        var unmapped = kept
        // Top-level API-call members an Insight does not have (its API is in insightDetails):
        // if a copy carries them anyway, they are kept, not lost.
        let unused: [(String, JSON?)] = [
            ("eventName", picked.eventName), ("eventSource", picked.eventSource), ("sourceIPAddress", picked.sourceIPAddress),
            ("userAgent", picked.userAgent), ("requestID", picked.requestID), ("apiVersion", picked.apiVersion),
            ("errorCode", picked.errorCode), ("errorMessage", picked.errorMessage), ("userIdentity", picked.userIdentity),
            ("resources", picked.resources),
        ]
        for (key, value) in unused { if let value { unmapped[key] = value } }

        guard case .object(var details)? = unmapped.removeValue(forKey: "insightDetails") else {
            return .failure(EntryProblem(code: NormalizeFailure.Code.missingField, message: "insightDetails is missing or not an object"))
        }
        guard let operation = text(details["eventName"]) else {
            return .failure(EntryProblem(code: NormalizeFailure.Code.missingField, message: "insightDetails.eventName is missing or not a string"))
        }
        let time: (millis: Int64, original: String, field: String)
        switch eventTime(eventTime: picked.eventTime, timestamp: picked.timestamp) {
        case .success(let found): time = found
        case .failure(let problem): return .failure(problem)
        }
        if time.field != "@timestamp", let timestamp = picked.timestamp { unmapped["@timestamp"] = timestamp }

        let state = text(details["state"])
        let service = text(details["eventSource"])
        let insightTypes = FindingSupport.strings(details["insightType"])
        for key in mappedInsightKeys where details[key].map(hasText) == true { details[key] = nil }
        if case .array(let items)? = details["insightType"], items.allSatisfy(hasText) { details["insightType"] = nil }
        if !details.isEmpty { unmapped["insightDetails"] = .object(details) }

        // Start opens the finding, End closes it (the rate is back within its baseline).
        let activity: (id: Int64, name: String)
        let status: FindingSupport.Status
        switch state {
        case "Start"?: (activity, status) = ((1, "Create"), .new)
        case "End"?: (activity, status) = ((3, "Close"), .resolved)
        case let other?: (activity, status) = ((99, other), .other)
        case nil: (activity, status) = ((0, "Unknown"), .unknown)
        }

        let sharedID = text(kept["sharedEventID"])
        if sharedID != nil { unmapped["sharedEventID"] = nil }
        let uid = text(picked.eventID) ?? StableID.hash(bytes: entry.serialized())
        var metadata = [String: JSON](minimumCapacity: 8)
        metadata["version"] = .string(ocsfVersion)
        metadata["uid"] = .string(uid)
        metadata["product"] = product
        if let logName = text(picked.eventType) { metadata["log_name"] = .string(logName) }
        metadata["original_time"] = .string(time.original)
        if !insightTypes.isEmpty { metadata["event_code"] = .string(insightTypes.joined(separator: ",")) }
        if let sharedID { metadata["correlation_uid"] = .string(sharedID) }
        metadata["profiles"] = profiles

        var event = OCSFEvent.baseMembers(
            class: .detectionFinding, activityID: activity.id, activityName: activity.name, time: time.millis,
            severity: .low, metadata: metadata, capacity: 22
        )
        event["status_id"] = .int(status.rawValue)
        event["status"] = .string(status == .other ? (state ?? status.name) : status.name)
        if let state { event["status_detail"] = .string(state) }

        // The window: eventTime is when the unusual activity started (Start) or stopped (End);
        // an End's insightDuration (minutes) dates its start.
        let statistics = details["insightContext"]?["statistics"]
        var firstSeen: Int64? = nil, lastSeen: Int64? = nil
        if state == "End" {
            lastSeen = time.millis
            event["end_time"] = .int(time.millis)
            if let minutes = statistics?["insightDuration"]?.intValue, minutes >= 0, minutes < 1_000_000_000 {
                let duration = minutes * 60_000
                event["duration"] = .int(duration)
                firstSeen = time.millis - duration
                event["start_time"] = .int(time.millis - duration)
            }
        } else if state == "Start" {
            firstSeen = time.millis
            event["start_time"] = .int(time.millis)
        }

        let title = "Unusual \(rateLabel(insightTypes)): \(service.map { "\($0) " } ?? "")\(operation)"
        var info = [String: JSON](minimumCapacity: 8)
        info["uid"] = .string(sharedID ?? uid)
        info["title"] = .string(title)
        if !insightTypes.isEmpty { info["types"] = .array(insightTypes.map(JSON.string)) }
        info["analytic"] = statisticalAnalytic
        info["first_seen_time"] = firstSeen.map(JSON.int)
        info["last_seen_time"] = lastSeen.map(JSON.int)
        let desc = insightDescription(rate: rateLabel(insightTypes), operation: operation, service: service, state: state, statistics: statistics)
        info["desc"] = desc.map(JSON.string)
        event["finding_info"] = .object(info)
        event["message"] = .string(desc ?? title)

        var api = [String: JSON](minimumCapacity: 2)
        api["operation"] = .string(operation)
        if let service { api["service"] = .object(["name": .string(service)]) }
        event["api"] = .object(api)

        var cloud = [String: JSON](minimumCapacity: 3)
        cloud["provider"] = "AWS"
        if let region = text(picked.awsRegion) { cloud["region"] = .string(region) }
        if let account = text(picked.recipientAccountId) { cloud["account"] = awsAccount(account) }
        event["cloud"] = .object(cloud)

        if !unmapped.isEmpty { event["unmapped"] = .object(unmapped) }
        return .success(.object(event))
    }

    /// "API call rate", "API error rate", both, or the source's own label.
    static func rateLabel(_ types: [String]) -> String {
        let known = Set(types)
        switch known {
        case ["ApiCallRateInsight"]: return "API call rate"
        case ["ApiErrorRateInsight"]: return "API error rate"
        case ["ApiCallRateInsight", "ApiErrorRateInsight"]: return "API call and error rates"
        case []: return "API activity"
        default: return types.joined(separator: ", ")
        }
    }

    /// The averages in words, when both are numbers: "... averaged 0.6 per minute against a
    /// baseline of 8.82145e-05 per minute". The numbers themselves stay in `unmapped`.
    static func insightDescription(rate: String, operation: String, service: String?, state: String?, statistics: JSON?) -> String? {
        guard let insight = statistics?["insight"]?["average"], insight.doubleValue != nil, let insightText = insight.scalarText,
              let baseline = statistics?["baseline"]?["average"], baseline.doubleValue != nil, let baselineText = baseline.scalarText
        else { return nil }
        let subject = "\(service.map { "\($0) " } ?? "")\(operation)"
        let when = state == "End" ? "over the insight" : "at its start"
        return "\(rate) of \(subject) \(when): \(insightText) per minute against a baseline average of \(baselineText) per minute"
    }
}
