import OCSF

/// AWS CloudTrail, in every shape it reaches Kafka: a single event object, a `{"Records":[...]}`
/// log file, an EventBridge envelope (`detail-type` "... via CloudTrail", event in `detail`), a
/// CloudWatch Logs subscription envelope (an event per `logEvents[].message`), or a digest file
/// (recognized and skipped). Insights events are mapped too (`CloudTrailInsight.swift`). The mapping to OCSF 1.3 is in
/// `CloudTrailMapping.swift` and documented in docs/sources.md.
public struct CloudTrailParser: JSONSourceParser {
    /// A CloudTrail parser; it has no configuration.
    public init() {}

    /// `cloudtrail`.
    public var sourceName: String { "cloudtrail" }

    /// The shapes a CloudTrail document can take.
    enum Form {
        case single(JSON)
        case records([JSON])
        case eventBridge(JSON)
        /// `messageType` DATA_MESSAGE: each log event's `message` is one CloudTrail event.
        case cloudWatchLogs([JSON], context: JSON?)
        /// `messageType` CONTROL_MESSAGE: CloudWatch checking that the destination is reachable.
        case cloudWatchControl
        case digest
        case unrecognized(String)
    }

    /// Strict on purpose: S3/SNS/SQS notifications also use `Records` with `eventName` and
    /// `eventSource`, and Alibaba ActionTrail copies CloudTrail's field names, so only events whose
    /// `eventSource` is an AWS service endpoint or whose `eventType` is CloudTrail's `Aws*` count.
    public func recognizes(_ document: JSON) -> Bool {
        switch Self.form(of: document) {
        case .digest:
            return true
        case .single(let event), .eventBridge(let event):
            return Self.looksLikeEvent(event)
        case .records(let entries):
            guard let first = entries.first(where: { $0.objectValue != nil }) else { return false }
            return Self.looksLikeEvent(first)
        case .cloudWatchLogs(let logEvents, _):
            // The first log event must hold a CloudTrail event; VPC flow lines and other logs
            // delivered the same way are not claimed.
            guard let message = logEvents.first?["message"]?.stringValue,
                  let event = try? JSON.parse(Array(message.utf8)) else { return false }
            return Self.looksLikeEvent(event)
        case .cloudWatchControl:
            // Not claimed without a header: nothing in it says which logs the subscription carries.
            return false
        case .unrecognized:
            return false
        }
    }

    /// Like every JSON source, but a log file (`{"Records":[...]}`) not yet parsed is read entry
    /// by entry: each entry is parsed, mapped and dropped before the next, so memory follows the
    /// largest entry rather than the file. Results are the same as parsing the whole document
    /// first (invalid JSON anywhere still fails the whole record, with the same message).
    public func normalize(_ input: SourceInput) -> NormalizeResult {
        if input.document == nil, Self.startsWithRecords(input.raw),
           let streamed = normalize(streaming: input.raw) {
            return streamed
        }
        switch input.json() {
        case .success(let document): return normalize(document, raw: input.raw)
        case .failure(let error):
            return NormalizeResult(failures: [NormalizeFailure(code: NormalizeFailure.Code.invalidJSON, message: error.description)],
                                   source: sourceName)
        }
    }

    /// `{"Records"` (whitespace allowed): how CloudTrail writes its log files.
    static func startsWithRecords(_ raw: [UInt8]) -> Bool {
        var index = 0
        func skipWhitespace() {
            while index < raw.count, raw[index] == 0x20 || raw[index] == 0x0A || raw[index] == 0x0D || raw[index] == 0x09 { index += 1 }
        }
        skipWhitespace()
        guard index < raw.count, raw[index] == UInt8(ascii: "{") else { return false }
        index += 1
        skipWhitespace()
        let key: [UInt8] = Array(#""Records""#.utf8)
        guard raw.count - index >= key.count, raw[index..<(index + key.count)].elementsEqual(key) else { return false }
        index += key.count
        skipWhitespace()
        return index < raw.count && raw[index] == UInt8(ascii: ":")
    }

    /// The `Records` form, streamed; `nil` when the document is not an object (not reached after
    /// `startsWithRecords`, but then the ordinary path decides).
    private func normalize(streaming raw: [UInt8]) -> NormalizeResult? {
        var result = NormalizeResult(source: sourceName)
        let outcome = raw.withUnsafeBufferPointer { buffer in
            JSON.parseObject(buffer: buffer, streamingArrayAt: "Records") { index, entry in
                // A repeated Records key starts over: the last one counts, as in a parsed document.
                if index == 0 { result = NormalizeResult(source: sourceName) }
                switch CloudTrailMapping.event(from: entry) {
                case .success(let mapped): result.events.append(mapped)
                case .failure(let problem):
                    result.failures.append(problem.failure(entryIndex: index, entryBytes: entry.serialized()))
                }
            }
        }
        switch outcome {
        case nil:
            return nil
        case .failure(let error)?:
            return NormalizeResult(failures: [NormalizeFailure(code: NormalizeFailure.Code.invalidJSON, message: error.description)],
                                   source: sourceName)
        case .success(let object)?:
            guard let count = object.streamedCount else {
                // Records is present (it opened the document) but its value is not an array.
                return NormalizeResult(failures: [NormalizeFailure(code: NormalizeFailure.Code.unrecognizedFormat,
                                                                   message: "Records is not an array")], source: sourceName)
            }
            if count == 0 { return NormalizeResult(source: sourceName) }
            return result
        }
    }

    /// Maps every entry independently: a bad entry becomes a failure carrying its index and
    /// bytes, and its siblings still become events.
    public func normalize(_ document: JSON, raw: [UInt8]) -> NormalizeResult {
        var result = NormalizeResult(source: sourceName)
        switch Self.form(of: document) {
        case .digest, .cloudWatchControl:
            result.skipped = 1
        case .cloudWatchLogs(let logEvents, let context):
            if logEvents.isEmpty { result.skipped = 1 }
            result.events.reserveCapacity(logEvents.count)
            for (index, logEvent) in logEvents.enumerated() {
                switch Self.entry(logEvent: logEvent, context: context) {
                case .success(let mapped): result.events.append(mapped)
                case .failure(var failure):
                    failure.entryIndex = index
                    result.failures.append(failure)
                }
            }
        case .single(let event), .eventBridge(let event):
            // The record itself is the entry: no index, and the stage dead-letters the record.
            switch CloudTrailMapping.event(from: event) {
            case .success(let mapped): result.events.append(mapped)
            case .failure(let problem): result.failures.append(problem.failure())
            }
        case .records(let entries):
            result.events.reserveCapacity(entries.count)
            for (index, entry) in entries.enumerated() {
                switch CloudTrailMapping.event(from: entry) {
                case .success(let mapped): result.events.append(mapped)
                case .failure(let problem):
                    result.failures.append(problem.failure(entryIndex: index, entryBytes: entry.serialized()))
                }
            }
        case .unrecognized(let reason):
            result.failures.append(NormalizeFailure(code: NormalizeFailure.Code.unrecognizedFormat, message: reason))
        }
        return result
    }

    /// Which shape `document` has. Lenient: any other object is taken as a single event, so a
    /// record sent with the `cloudtrail` header but lacking fields reports what it lacks.
    static func form(of document: JSON) -> Form {
        guard case .object(let members) = document else {
            return .unrecognized("a CloudTrail document must be a JSON object")
        }
        if let records = members["Records"] {
            guard case .array(let entries) = records else {
                return .unrecognized("Records is not an array")
            }
            return .records(entries)
        }
        if let type = members["messageType"]?.stringValue, let logEvents = members["logEvents"] {
            switch type {
            case "CONTROL_MESSAGE":
                return .cloudWatchControl
            case "DATA_MESSAGE":
                guard case .array(let entries) = logEvents else {
                    return .unrecognized("logEvents is not an array")
                }
                var context: [String: JSON] = [:]
                for key in ["logGroup", "logStream"] {
                    if let value = members[key], CloudTrailMapping.hasText(value) { context[key] = value }
                }
                return .cloudWatchLogs(entries, context: context.isEmpty ? nil : .object(context))
            default:
                break
            }
        }
        if members["digestStartTime"] != nil, members["digestEndTime"] != nil,
           members["digestSignatureAlgorithm"] != nil {
            return .digest
        }
        if let detailType = members["detail-type"], let detail = members["detail"] {
            // EventBridge names CloudTrail-sourced events "AWS API Call via CloudTrail",
            // "AWS Console Sign In via CloudTrail", "AWS Service Event via CloudTrail", ...;
            // test data sometimes blanks the detail-type, so a CloudTrail-shaped detail also counts.
            let named = detailType.stringValue?.hasSuffix("via CloudTrail") ?? false
            if named || looksLikeEvent(detail) {
                guard detail.objectValue != nil else {
                    return .unrecognized("EventBridge detail is not an object")
                }
                return .eventBridge(detail)
            }
        }
        return .single(document)
    }

    /// A CloudTrail event names its API call and was emitted by an AWS service endpoint or
    /// carries one of CloudTrail's `Aws*` event types.
    static func looksLikeEvent(_ value: JSON) -> Bool {
        guard case .object(let members) = value else { return false }
        // Insights events name their API under insightDetails.
        if members["eventType"]?.stringValue == CloudTrailMapping.insightEventType,
           members["insightDetails"]?.objectValue != nil {
            return true
        }
        guard let name = members["eventName"]?.stringValue, !name.isEmpty else { return false }
        if let source = members["eventSource"]?.stringValue, source.hasSuffix(".amazonaws.com") {
            return true
        }
        if let type = members["eventType"]?.stringValue, type.hasPrefix("Aws") {
            return true
        }
        return false
    }

    /// One CloudWatch Logs log event: its `message` parsed and mapped, with the log group and
    /// stream kept in `unmapped.cloudwatch_logs`. A failure carries the message's bytes (the
    /// CloudTrail event as delivered, ready to replay with the `cloudtrail` header), or the log
    /// event re-serialized when it has no string message.
    static func entry(logEvent: JSON, context: JSON?) -> Result<JSON, NormalizeFailure> {
        guard let message = logEvent["message"]?.stringValue else {
            return .failure(NormalizeFailure(code: NormalizeFailure.Code.invalidEntry,
                                             message: "the log event has no message string", entryBytes: logEvent.serialized()))
        }
        let bytes = Array(message.utf8)
        let event: JSON
        do {
            event = try JSON.parse(bytes)
        } catch {
            return .failure(NormalizeFailure(code: NormalizeFailure.Code.invalidJSON,
                                             message: "the log event message: \(error.description)", entryBytes: bytes))
        }
        switch CloudTrailMapping.event(from: event) {
        case .success(var mapped):
            if let context { mapped.set("unmapped.cloudwatch_logs", context) }
            return .success(mapped)
        case .failure(let problem):
            return .failure(problem.failure(entryBytes: bytes))
        }
    }
}
