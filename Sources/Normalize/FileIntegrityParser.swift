import OCSF

/// File integrity monitoring: osquery `file_events` results (one row per line, or the batch
/// `diffResults` and `snapshot` forms), Wazuh syscheck alerts (JSON), and AIDE's plain-text
/// check report. Every changed file becomes one File System Activity 1001 event.
///
/// JSON is read through `SourceInput.json()` when the record starts like JSON; anything else is
/// tried as an AIDE report through `SourceInput.raw`. Mappings are in `FileIntegrityOsquery.swift`,
/// `FileIntegrityWazuh.swift` and `FileIntegrityAIDE.swift`, documented in docs/sources.md.
public struct FileIntegrityParser: SourceParser {
    /// A file integrity parser; it has no configuration.
    public init() {}

    /// `fim`.
    public var sourceName: String { "fim" }

    /// `true`: two of the three formats are JSON, so the normalizer's single up-front parse is
    /// reused; AIDE reports are read from the raw bytes.
    public var readsJSON: Bool { true }

    /// Strict without a header: an osquery result whose rows have `target_path` (and are not
    /// `yara_events` matches), a Wazuh alert whose `rule.groups` include `syscheck` and that has a
    /// `syscheck` object, or text whose first lines hold AIDE's summary line.
    public func recognizes(_ input: SourceInput) -> Bool {
        if FileIntegrityFields.startsLikeJSON(input.raw) {
            guard case .success(let document) = input.json() else { return false }
            return FileIntegrityOsquery.recognizes(document) || FileIntegrityWazuh.recognizes(document)
        }
        return FileIntegrityAIDE.recognizes(input.raw)
    }

    /// Normalizes by form; with the header given, an osquery- or Wazuh-shaped record that lacks
    /// what the mapping needs reports it (`missing_field`) instead of `unrecognized_format`.
    public func normalize(_ input: SourceInput) -> NormalizeResult {
        var result: NormalizeResult
        if FileIntegrityFields.startsLikeJSON(input.raw) {
            switch input.json() {
            case .failure(let error):
                result = NormalizeResult(failures: [NormalizeFailure(code: NormalizeFailure.Code.invalidJSON, message: error.description)],
                                         source: sourceName)
            case .success(let document):
                if FileIntegrityOsquery.recognizes(document) || FileIntegrityOsquery.isOsqueryResult(document) {
                    result = FileIntegrityOsquery.normalize(document)
                } else if FileIntegrityWazuh.recognizes(document) || document["syscheck"] != nil {
                    result = FileIntegrityWazuh.normalize(document)
                } else if document["rule"] != nil, document["agent"] != nil {
                    result = NormalizeResult(failures: [NormalizeFailure(
                        code: NormalizeFailure.Code.unrecognizedFormat, message: "Wazuh alert is not a syscheck alert")], source: sourceName)
                } else {
                    result = NormalizeResult(failures: [NormalizeFailure(
                        code: NormalizeFailure.Code.unrecognizedFormat,
                        message: "neither an osquery file_events result nor a Wazuh syscheck alert")], source: sourceName)
                }
            }
        } else if FileIntegrityAIDE.recognizes(input.raw) {
            result = FileIntegrityAIDE.normalize(input.raw)
        } else {
            result = NormalizeResult(failures: [NormalizeFailure(
                code: NormalizeFailure.Code.unrecognizedFormat, message: "not JSON and not an AIDE check report")], source: sourceName)
        }
        result.source = sourceName
        return result
    }
}

/// Pieces shared by the three file integrity mappings.
enum FileIntegrityFields {
    /// OCSF 1001 activity names by id.
    static let activityNames: [Int64: String] = [
        0: "Unknown", 1: "Create", 2: "Read", 3: "Update", 4: "Delete", 5: "Rename", 6: "Set Attributes",
        7: "Set Security", 8: "Get Attributes", 9: "Get Security", 14: "Open",
    ]

    /// OCSF file `type` captions by `type_id`.
    static let fileTypeNames: [Int64: String] = [
        0: "Unknown", 1: "Regular File", 2: "Folder", 3: "Character Device", 4: "Block Device",
        5: "Local Socket", 6: "Named Pipe", 7: "Symbolic Link", 99: "Other",
    ]

    /// OCSF fingerprint algorithms: (`algorithm_id`, caption, digest length in bytes).
    static let hashAlgorithms: [String: (id: Int64, name: String, bytes: Int)] = [
        "md5": (1, "MD5", 16), "sha1": (2, "SHA-1", 20), "sha256": (3, "SHA-256", 32), "sha512": (4, "SHA-512", 64),
    ]

    /// Whether the first byte after whitespace (and a UTF-8 byte order mark) opens a JSON object or array.
    static func startsLikeJSON(_ raw: [UInt8]) -> Bool {
        var index = 0
        if raw.count >= 3, raw[0] == 0xEF, raw[1] == 0xBB, raw[2] == 0xBF { index = 3 }
        while index < raw.count, [0x20, 0x09, 0x0A, 0x0D].contains(raw[index]) { index += 1 }
        guard index < raw.count else { return false }
        return raw[index] == UInt8(ascii: "{") || raw[index] == UInt8(ascii: "[")
    }

    /// The OCSF `file` object. `name` is the last path component (OCSF requires it), and
    /// `parent_folder` what precedes it; Windows paths split on `\`.
    static func file(path: String, typeID: Int64, hashes: [(String, String)] = [], size: Int64? = nil,
                     ownerUID: String? = nil, ownerName: String? = nil, modified: Int64? = nil,
                     accessed: Int64? = nil, inode: String? = nil) -> [String: JSON] {
        let separator: Character = path.contains("/") || !path.contains("\\") ? "/" : "\\"
        var trimmed = Substring(path)
        while trimmed.count > 1, trimmed.last == separator { trimmed = trimmed.dropLast() }
        var file: [String: JSON] = ["path": .string(path)]
        if let cut = trimmed.lastIndex(of: separator), trimmed.index(after: cut) < trimmed.endIndex {
            file["name"] = .string(String(trimmed[trimmed.index(after: cut)...]))
            let parent = trimmed[..<cut]
            file["parent_folder"] = .string(parent.isEmpty ? String(separator) : String(parent))
        } else {
            file["name"] = .string(String(trimmed))
        }
        file["type_id"] = .int(typeID)
        file["type"] = .string(fileTypeNames[typeID] ?? "Other")
        var fingerprints: [JSON] = []
        for (algorithm, value) in hashes {
            guard let known = hashAlgorithms[algorithm], !value.isEmpty else { continue }
            fingerprints.append(["algorithm_id": .int(known.id), "algorithm": .string(known.name), "value": .string(value.lowercased())])
        }
        if !fingerprints.isEmpty { file["hashes"] = .array(fingerprints) }
        file["size"] = size.map(JSON.int)
        var owner: [String: JSON] = [:]
        owner["uid"] = ownerUID.map(JSON.string)
        owner["name"] = ownerName.map(JSON.string)
        if !owner.isEmpty { file["owner"] = .object(owner) }
        file["modified_time"] = modified.map(JSON.int)
        file["accessed_time"] = accessed.map(JSON.int)
        file["uid"] = inode.map(JSON.string)
        return file
    }

    /// The base of a 1001 event with `file`, and `device` when the source names the host.
    static func event(activityID: Int64, activityName: String? = nil, time: Int64, uid: String, product: String,
                      vendor: String, logName: String?, originalTime: String?, file: [String: JSON],
                      device: [String: JSON]) -> JSON {
        var event = OCSFEvent.base(
            class: .fileSystemActivity, activityID: activityID,
            activityName: activityName ?? activityNames[activityID] ?? "Other", time: time,
            severity: .informational, uid: uid, product: product, vendor: vendor, logName: logName,
            originalTime: originalTime
        )
        event["file"] = .object(file)
        if !device.isEmpty { event["device"] = .object(device) }
        return event
    }

    /// A non-negative integer from a JSON number or a decimal string (osquery logs numbers as text).
    static func integer(_ value: JSON?) -> Int64? {
        switch value {
        case .int(let number)?: return number >= 0 ? number : nil
        case .double?: return value?.intValue.flatMap { $0 >= 0 ? $0 : nil }
        case .string(let text)?:
            guard !text.isEmpty, text.utf8.count <= 18, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
            return Int64(text)
        default: return nil
        }
    }

    /// Epoch seconds to milliseconds, refusing values that would overflow or are absurdly far
    /// in the future (after year 9999), so a corrupt field cannot trap.
    static func secondsToMillis(_ seconds: Int64) -> Int64? {
        seconds <= 253_402_300_799 ? seconds * 1000 : nil
    }

    /// A non-empty scalar as text; `nil` for anything else.
    static func text(_ value: JSON?) -> String? {
        guard let value, let scalar = value.scalarText, !scalar.isEmpty else { return nil }
        return scalar
    }
}
