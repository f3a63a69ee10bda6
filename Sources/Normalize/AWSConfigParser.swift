import OCSF

/// AWS Config, in the shapes it reaches Kafka: an SNS notification (`Type: Notification`, the
/// Config message in `Message` as a JSON string, or as an object as in some AWS samples), the bare
/// Config message, an EventBridge event (`source: aws.config`), a Config rule's Lambda invocation
/// event (`invokingEvent`), or a snapshot/history delivery file (`configurationItems`).
///
/// Configuration items become Device Config State Change 5019 events, compliance changes become
/// Compliance Finding 2003 events; delivery notices (snapshot/history started, completed, failed,
/// scheduled notifications, SNS subscription confirmations) are recognized and skipped. The
/// mapping is in `AWSConfigMapping.swift` and documented in docs/sources.md.
public struct AWSConfigParser: JSONSourceParser {
    /// An AWS Config parser; it has no configuration.
    public init() {}

    /// `awsconfig`.
    public var sourceName: String { "awsconfig" }

    /// What a Config message carries.
    enum Payload {
        /// Configuration items: one (`indexed` false, the record is the entry) or several
        /// (a `configurationItem` list or a delivery file's `configurationItems`).
        case items([JSON], indexed: Bool)
        /// A `ComplianceChangeNotification`.
        case compliance
        /// A notice with nothing to map (delivery started/completed/failed, scheduled run).
        case notice
    }

    /// A recognized document: its payload and the context the mapping needs.
    struct Parsed {
        var payload: Payload
        var context: AWSConfigMapping.Context
        /// The message's `messageType` is one AWS Config is known to send (detection uses this).
        var knownType: Bool
    }

    /// The shapes a document can take.
    enum Form {
        case parsed(Parsed)
        /// Not Config's to map, but harmless: an SNS subscription confirmation.
        case skip
        case failure(NormalizeFailure)
    }

    /// Message types AWS Config sends to SNS, EventBridge and rule Lambdas.
    static let mappedTypes: Set<String> = [
        "ConfigurationItemChangeNotification", "OversizedConfigurationItemChangeNotification",
        "ComplianceChangeNotification",
    ]

    /// Notices: nothing to map, counted in `skipped`.
    static let noticeTypes: Set<String> = [
        "ConfigurationSnapshotDeliveryStarted", "ConfigurationSnapshotDeliveryCompleted",
        "ConfigurationSnapshotDeliveryFailed", "ConfigurationHistoryDeliveryCompleted",
        "ConfigurationHistoryDeliveryFailed", "OversizedConfigurationItemChangeDeliveryFailed",
        "ConfigRulesEvaluationStarted", "ScheduledNotification",
    ]

    /// SNS envelope keys kept under `unmapped.sns`; the signature fields are transport noise.
    static let snsKeptKeys: Set<String> = ["MessageId", "TopicArn", "Subject", "Timestamp", "Type"]

    /// Strict without a header: the document must carry a Config message type (directly, in an
    /// SNS `Message`, an EventBridge `detail` from `aws.config` or a rule's `invokingEvent`) or be
    /// a delivery file whose first item has `resourceType` and `configurationItemCaptureTime`.
    public func recognizes(_ document: JSON) -> Bool {
        guard case .parsed(let parsed) = Self.form(of: document) else { return false }
        return parsed.knownType
    }

    /// Maps every configuration item independently; a bad item of several becomes a failure with
    /// its index and bytes while its siblings still become events.
    public func normalize(_ document: JSON, raw: [UInt8]) -> NormalizeResult {
        var result = NormalizeResult(source: sourceName)
        switch Self.form(of: document) {
        case .skip:
            result.skipped = 1
        case .failure(let failure):
            result.failures.append(failure)
        case .parsed(let parsed):
            switch parsed.payload {
            case .notice:
                result.skipped = 1
            case .compliance:
                switch AWSConfigMapping.complianceEvent(parsed.context) {
                case .success(let event): result.events.append(event)
                case .failure(let problem): result.failures.append(problem.failure())
                }
            case .items(let items, let indexed):
                // An empty delivery file or item list: nothing to map, but the record is accounted for.
                if items.isEmpty { result.skipped = 1 }
                result.events.reserveCapacity(items.count)
                for (index, item) in items.enumerated() {
                    switch AWSConfigMapping.configurationItemEvent(item, context: parsed.context) {
                    case .success(let event): result.events.append(event)
                    case .failure(let problem):
                        result.failures.append(indexed
                            ? problem.failure(entryIndex: index, entryBytes: item.serialized())
                            : problem.failure())
                    }
                }
            }
        }
        return result
    }

    /// Unwraps envelopes (SNS, EventBridge, rule invocation) down to the Config message and
    /// classifies it. Lenient with the header: any object that is not a known envelope is taken
    /// as a bare message, so a record lacking `messageType` says so.
    static func form(of document: JSON) -> Form {
        guard case .object(let members) = document else {
            return .failure(unrecognized("an AWS Config document must be a JSON object"))
        }
        var context = AWSConfigMapping.Context()

        if let type = members["Type"]?.stringValue, members["TopicArn"] != nil || members["MessageId"] != nil {
            guard type == "Notification" else { return .skip }
            context.envelope["sns"] = .object(members.filter { snsKeptKeys.contains($0.key) })
            return message(members["Message"], field: "SNS Message", context: context)
        }
        if let invoking = members["invokingEvent"] {
            // A rule's Lambda event: the rule's identity is context, not the event.
            context.envelope["configRule"] = .object(members.filter { $0.key != "invokingEvent" })
            return message(invoking, field: "invokingEvent", context: context)
        }
        if members["source"]?.stringValue == "aws.config", let detail = members["detail"] {
            context.envelope["eventBridge"] = .object(members.filter { $0.key != "detail" })
            return message(detail, field: "EventBridge detail", context: context)
        }
        if let items = members["configurationItems"] {
            guard case .array(let entries) = items else {
                return .failure(unrecognized("configurationItems is not an array"))
            }
            var file = members
            file["configurationItems"] = nil
            context.envelope["deliveryFile"] = .object(file)
            context.logName = members["configSnapshotId"] != nil ? "ConfigurationSnapshot" : "ConfigurationHistory"
            let first = entries.first(where: { $0.objectValue != nil })
            let known = first?["resourceType"]?.stringValue != nil && first?["configurationItemCaptureTime"] != nil
            return .parsed(Parsed(payload: .items(entries, indexed: true), context: context, knownType: known))
        }
        return classify(members, context: context)
    }

    /// The Config message inside an envelope: an object, or a JSON string holding one (real SNS
    /// and Lambda events send a string).
    static func message(_ value: JSON?, field: String, context: AWSConfigMapping.Context) -> Form {
        switch value {
        case .object(let members)?:
            return classify(members, context: context)
        case .string(let text)?:
            do {
                let parsed = try JSON.parse(Array(text.utf8))
                guard case .object(let members) = parsed else {
                    return .failure(unrecognized("\(field) is not a JSON object"))
                }
                return classify(members, context: context)
            } catch {
                return .failure(NormalizeFailure(code: NormalizeFailure.Code.invalidJSON, message: "\(field): \(error.description)"))
            }
        default:
            return .failure(unrecognized("\(field) is missing or neither an object nor a JSON string"))
        }
    }

    static func classify(_ message: [String: JSON], context: AWSConfigMapping.Context) -> Form {
        guard let type = message["messageType"]?.stringValue else {
            return .failure(NormalizeFailure(code: NormalizeFailure.Code.missingField, message: "messageType is missing or not a string"))
        }
        var context = context
        context.message = message
        context.logName = type
        let known = mappedTypes.contains(type) || noticeTypes.contains(type)
        switch type {
        case "ConfigurationItemChangeNotification":
            switch message["configurationItem"] {
            case .object?:
                return .parsed(Parsed(payload: .items([message["configurationItem"]!], indexed: false), context: context, knownType: known))
            case .array(let items)?:
                // The oldest documented form (recordVersion 1.0) wraps the item in a list.
                return .parsed(Parsed(payload: .items(items, indexed: true), context: context, knownType: known))
            default:
                return .failure(NormalizeFailure(code: NormalizeFailure.Code.missingField, message: "configurationItem is missing or not an object or array"))
            }
        case "OversizedConfigurationItemChangeNotification":
            guard let summary = message["configurationItemSummary"], summary.objectValue != nil else {
                return .failure(NormalizeFailure(code: NormalizeFailure.Code.missingField, message: "configurationItemSummary is missing or not an object"))
            }
            return .parsed(Parsed(payload: .items([summary], indexed: false), context: context, knownType: known))
        case "ComplianceChangeNotification":
            return .parsed(Parsed(payload: .compliance, context: context, knownType: known))
        default:
            if noticeTypes.contains(type) {
                return .parsed(Parsed(payload: .notice, context: context, knownType: known))
            }
            return .failure(unrecognized("unsupported AWS Config messageType"))
        }
    }

    static func unrecognized(_ message: String) -> NormalizeFailure {
        NormalizeFailure(code: NormalizeFailure.Code.unrecognizedFormat, message: message)
    }
}
