import OCSF

/// Amazon VPC Flow Logs as text: the default version-2 line, custom formats (versions 3 to 8)
/// named by a header line or by the parser's configuration, one line or a whole flow-log file
/// per record; and the CloudWatch Logs subscription envelope (`{"logEvents":[{"message":...}]}`).
/// Each line becomes one OCSF Network Activity (4001) event; `NODATA`/`SKIPDATA` lines are
/// skipped. The mapping is in `VPCFlowMapping.swift` and documented in docs/sources.md.
public struct VPCFlowParser: SourceParser {
    /// The fields of the default (version 2) format, in order.
    public static let defaultFields: [String] = [
        "version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport",
        "protocol", "packets", "bytes", "start", "end", "action", "log-status",
    ]

    /// The format assumed for lines that no header line describes (CloudWatch Logs messages,
    /// files without a header).
    public let fields: [String]

    /// `fields` resolved once for the mapping.
    let layout: VPCFlowMapping.Layout

    /// A parser for lines in `fields` order: the flow log's format string, either as names
    /// (`version account-id ...` split into words) or as AWS writes it (`${version}`); `_` is
    /// read as `-`. `nil` or empty means the default version-2 format. A header line inside a
    /// record overrides this for the lines after it.
    public init(fields: [String]? = nil) {
        let cleaned = (fields ?? []).map(VPCFlowMapping.canonicalName).filter { !$0.isEmpty }
        self.fields = cleaned.isEmpty ? Self.defaultFields : cleaned
        layout = VPCFlowMapping.Layout(fields: self.fields)
    }

    /// `vpcflow`.
    public var sourceName: String { "vpcflow" }

    /// Flow logs are text lines; only the CloudWatch Logs envelope is JSON, parsed on demand.
    public var readsJSON: Bool { false }

    /// Strict: the first non-blank line must be a header naming known flow-log fields, or a line
    /// that maps cleanly (or is `NODATA`/`SKIPDATA`) in the configured format; an envelope's
    /// first log event must be such a line or carry flow-shaped `extractedFields`.
    public func recognizes(_ input: SourceInput) -> Bool {
        if VPCFlowMapping.startsLikeJSON(input.raw) {
            guard case .success(let document) = input.json(),
                  let first = document["logEvents"]?.arrayValue?.first else { return false }
            return recognizes(logEvent: first)
        }
        guard let line = VPCFlowMapping.lines(input.raw).first(where: { !$0.bytes.isEmpty }) else { return false }
        if VPCFlowMapping.headerFields(line.bytes) != nil { return true }
        switch VPCFlowMapping.entry(line: line.bytes, layout: layout, envelope: nil) {
        case .event, .skipped: return true
        case .failure: return false
        }
    }

    private func recognizes(logEvent: JSON) -> Bool {
        if let message = logEvent["message"]?.stringValue {
            switch VPCFlowMapping.entry(line: Array(message.utf8)[...], layout: layout, envelope: nil) {
            case .event, .skipped: return true
            case .failure: break
            }
        }
        if let extracted = logEvent["extractedFields"]?.objectValue {
            return VPCFlowMapping.looksLikeExtractedFlow(extracted)
        }
        return false
    }

    /// Maps every line (or log event) on its own: a bad one becomes a failure with its index and
    /// bytes when the record holds more than one, and its siblings still become events.
    public func normalize(_ input: SourceInput) -> NormalizeResult {
        if VPCFlowMapping.startsLikeJSON(input.raw) {
            switch input.json() {
            case .success(let document): return normalize(envelope: document)
            case .failure(let error):
                return NormalizeResult(failures: [NormalizeFailure(code: NormalizeFailure.Code.invalidJSON, message: error.description)],
                                       source: sourceName)
            }
        }
        return normalize(text: input.raw)
    }

    private func normalize(text raw: [UInt8]) -> NormalizeResult {
        var result = NormalizeResult(source: sourceName)
        var format = layout
        var entries: [(index: Int, bytes: ArraySlice<UInt8>, format: VPCFlowMapping.Layout)] = []
        var headers = 0
        for line in VPCFlowMapping.lines(raw) where !line.bytes.isEmpty {
            // A header names the fields of the lines after it (flow-log files delivered to S3
            // start with one; concatenated files repeat it).
            if let header = VPCFlowMapping.headerFields(line.bytes) {
                format = VPCFlowMapping.Layout(fields: header)
                headers += 1
            } else {
                entries.append((line.index, line.bytes, format))
            }
        }
        if entries.isEmpty {
            if headers > 0 {
                result.skipped = 1
            } else {
                result.failures.append(NormalizeFailure(code: NormalizeFailure.Code.unrecognizedFormat,
                                                        message: "the record holds no flow-log line"))
            }
            return result
        }
        let single = entries.count == 1
        result.events.reserveCapacity(entries.count)
        for entry in entries {
            switch VPCFlowMapping.entry(line: entry.bytes, layout: entry.format, envelope: nil) {
            case .event(let event): result.events.append(event)
            case .skipped: result.skipped += 1
            case .failure(let code, let message):
                result.failures.append(single
                    ? NormalizeFailure(code: code, message: message)
                    : NormalizeFailure(code: code, message: message, entryIndex: entry.index, entryBytes: Array(entry.bytes)))
            }
        }
        return result
    }

    private func normalize(envelope document: JSON) -> NormalizeResult {
        var result = NormalizeResult(source: sourceName)
        guard case .object(let members) = document else {
            result.failures.append(NormalizeFailure(code: NormalizeFailure.Code.unrecognizedFormat,
                                                    message: "a CloudWatch Logs envelope must be a JSON object"))
            return result
        }
        // CloudWatch sends a CONTROL_MESSAGE to check that the destination is reachable.
        if members["messageType"]?.stringValue == "CONTROL_MESSAGE" {
            result.skipped = 1
            return result
        }
        guard let logEvents = members["logEvents"]?.arrayValue else {
            result.failures.append(NormalizeFailure(code: NormalizeFailure.Code.unrecognizedFormat,
                                                    message: "logEvents is missing or not an array"))
            return result
        }
        let envelope = VPCFlowMapping.Envelope(
            logGroup: VPCFlowMapping.text(members["logGroup"]),
            logStream: VPCFlowMapping.text(members["logStream"]),
            owner: VPCFlowMapping.text(members["owner"])
        )
        if logEvents.isEmpty {
            result.skipped = 1
            return result
        }
        let single = logEvents.count == 1
        for (index, logEvent) in logEvents.enumerated() {
            let outcome = VPCFlowMapping.entry(logEvent: logEvent, layout: layout, envelope: envelope)
            switch outcome {
            case .event(let event): result.events.append(event)
            case .skipped: result.skipped += 1
            case .failure(let code, let message):
                result.failures.append(single
                    ? NormalizeFailure(code: code, message: message)
                    : NormalizeFailure(code: code, message: message, entryIndex: index, entryBytes: logEvent.serialized()))
            }
        }
        return result
    }
}
