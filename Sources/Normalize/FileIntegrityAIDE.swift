import OCSF

/// AIDE's plain-text check report (`aide --check` / `--compare`, the file behind
/// `report_url=file:...` or the mail cron sends): the summary line, `Start timestamp`, the
/// `Added entries:` / `Removed entries:` / `Changed entries:` lists (or one combined list), and
/// the optional `Detailed information about changes:` section. One event per listed file.
enum FileIntegrityAIDE {
    enum Change: String {
        case added, removed, changed
    }

    /// One file in a list section.
    struct Entry {
        var change: Change
        var summary: String?
        var path: String
    }

    /// A file's block in the details section.
    struct Detail {
        var typeName: String
        var attributes: [(name: String, old: String?, new: String?)] = []
    }

    enum Section {
        case entries(Change?)
        case details
        case other
    }

    /// List headers; `nil` kind means a combined list (`report_grouped=no`), where the summary
    /// string tells the change apart.
    static let listHeaders: [String: Change?] = [
        "Added entries:": .added, "Removed entries:": .removed, "Changed entries:": .changed,
        "Added and removed entries:": nil, "Added and changed entries:": nil,
        "Removed and changed entries:": nil, "Added, removed and changed entries:": nil,
    ]

    /// Headers of sections whose lines are not entries.
    static let otherHeaders: Set<String> = ["Summary:", "The attributes of the (uncompressed) database(s):"]

    /// The file type captions AIDE prints before a path in the details section.
    static let detailTypes: [String: Int64] = [
        "File": 1, "Directory": 2, "Link": 7, "FIFO": 6, "Block device": 4, "Character device": 3,
        "Socket": 5, "Door": 99, "Port": 99, "Unknown file type": 0,
    ]

    /// Summary-string file type letters (0.16: `L` link, `D` char device, `B` block device, `F`
    /// FIFO; 0.17+: `l`, `c`, `b`, `p`).
    static let summaryTypes: [Character: Int64] = [
        "f": 1, "d": 2, "l": 7, "L": 7, "c": 3, "D": 3, "b": 4, "B": 4, "p": 6, "F": 6, "s": 5,
    ]

    /// Detail attributes that mean the content changed (the rest are metadata).
    static let contentAttributes: Set<String> = [
        "size", "bcount", "linkname", "md5", "sha1", "sha256", "sha512", "rmd160", "tiger", "crc32",
        "haval", "gost", "whirlpool", "stribog256", "stribog512",
    ]

    /// The summary lines AIDE starts a report with (0.15 puts its version after `AIDE`).
    static func summaryKind(_ line: Substring) -> (differences: Bool, version: String?)? {
        guard line.hasPrefix("AIDE ") else { return nil }
        if line.hasPrefix("AIDE successfully initialized database") { return (false, nil) }
        guard line.contains(" found "), line.contains("differences between") else { return nil }
        let words = line.split(separator: " ")
        let version = words.count > 1 && words[1].first?.isNumber == true ? String(words[1]) : nil
        return (!line.contains(" found NO differences"), version)
    }

    /// AIDE's summary line among the first 64 lines (mail and cron wrappers add a few lines before it).
    static func recognizes(_ raw: [UInt8]) -> Bool {
        let head = String(decoding: raw.prefix(16_384), as: UTF8.self)
        for line in head.split(separator: "\n", maxSplits: 64, omittingEmptySubsequences: true).prefix(64) {
            if summaryKind(trim(line)) != nil { return true }
        }
        return false
    }

    static func normalize(_ raw: [UInt8]) -> NormalizeResult {
        var result = NormalizeResult(source: "fim")
        let text = String(decoding: raw, as: UTF8.self)
        var differences: Bool?
        var version: String?
        var start: (millis: Int64, original: String)?
        var startInvalid = false
        var section = Section.other
        var entries: [(entry: Entry?, line: Substring)] = []
        var details: [String: Detail] = [:]
        var current: String?

        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = rawLine.last == "\r" ? rawLine.dropLast() : rawLine
            let trimmed = trim(line)
            if differences == nil, let kind = summaryKind(trimmed) {
                differences = kind.differences
                version = kind.version ?? version
                continue
            }
            if trimmed.hasPrefix("Start timestamp:") {
                let value = trim(trimmed.dropFirst("Start timestamp:".count))
                var stamp = value
                if let open = value.firstRange(of: " (AIDE ") {
                    stamp = value[..<open.lowerBound]
                    version = String(value[open.upperBound...].prefix { $0 != ")" })
                }
                if let millis = parseTime(String(stamp)) { start = (millis, String(stamp)) } else { startInvalid = true }
                continue
            }
            if trimmed.isEmpty || trimmed.allSatisfy({ $0 == "-" }) { continue }
            if let kind = listHeaders[String(trimmed)] { section = .entries(kind); continue }
            if trimmed == "Detailed information about changes:" { section = .details; continue }
            if otherHeaders.contains(String(trimmed)) || trimmed.hasPrefix("End timestamp:") { section = .other; continue }
            switch section {
            case .entries(let kind):
                entries.append((entry(trimmed, section: kind), trimmed))
            case .details:
                if line.first != " ", line.first != "\t", let header = detailHeader(trimmed) {
                    current = header.path
                    details[header.path] = Detail(typeName: header.type)
                } else if let path = current, var detail = details[path] {
                    addAttribute(line, to: &detail)
                    details[path] = detail
                }
            case .other:
                continue
            }
        }

        guard let differences else {
            result.failures.append(NormalizeFailure(code: NormalizeFailure.Code.unrecognizedFormat, message: "AIDE summary line is missing"))
            return result
        }
        guard differences else {
            // "found NO differences" or a database initialization: nothing changed.
            result.skipped = 1
            return result
        }
        guard let start else {
            result.failures.append(NormalizeFailure(code: NormalizeFailure.Code.invalidTime,
                                                    message: startInvalid ? "Start timestamp is not a timestamp" : "Start timestamp is missing"))
            return result
        }
        guard !entries.isEmpty else {
            // A summary-level report counts changes but names no file.
            result.skipped = 1
            return result
        }
        let reportID = StableID.hash(bytes: raw)
        for (index, item) in entries.enumerated() {
            guard let entry = item.entry else {
                result.failures.append(NormalizeFailure(
                    code: NormalizeFailure.Code.invalidEntry, message: "AIDE list line is not '<summary>: <path>'",
                    entryIndex: index, entryBytes: Array(item.line.utf8)))
                continue
            }
            result.events.append(event(entry, detail: details[entry.path], start: start, version: version, reportID: reportID))
        }
        return result
    }

    static func event(_ entry: Entry, detail: Detail?, start: (millis: Int64, original: String), version: String?, reportID: String) -> JSON {
        var attributes: [String: (old: String?, new: String?)] = [:]
        for attribute in detail?.attributes ?? [] { attributes[attribute.name.lowercased()] = (attribute.old, attribute.new) }
        // The state the file is in now; for a removed file, the last one recorded.
        func value(_ name: String) -> String? {
            guard let pair = attributes[name] else { return nil }
            return entry.change == .removed ? (pair.old ?? pair.new) : (pair.new ?? pair.old)
        }
        let activityID: Int64
        switch entry.change {
        case .added: activityID = 1
        case .removed: activityID = 4
        case .changed:
            let contentChanged = attributes.keys.contains { contentAttributes.contains($0) }
            activityID = attributes.isEmpty || contentChanged ? 3 : 6
        }
        let typeID = detail.flatMap { detailTypes[$0.typeName] }
            ?? entry.summary?.first.flatMap { summaryTypes[$0] } ?? 0
        var hashes: [(String, String)] = []
        for (name, algorithm) in [("md5", "md5"), ("sha1", "sha1"), ("sha256", "sha256"), ("sha512", "sha512")] {
            if let text = value(name), let hex = digestHex(text, bytes: FileIntegrityFields.hashAlgorithms[algorithm]!.bytes) {
                hashes.append((algorithm, hex))
            }
        }
        let file = FileIntegrityFields.file(
            path: entry.path, typeID: typeID, hashes: hashes,
            size: value("size").flatMap { FileIntegrityFields.integer(.string($0)) },
            ownerUID: value("uid"),
            modified: value("mtime").flatMap(parseTime),
            accessed: value("atime").flatMap(parseTime),
            inode: value("inode")
        )
        let uid = StableID.hash([reportID, entry.change.rawValue, entry.path])
        var event = FileIntegrityFields.event(
            activityID: activityID, time: start.millis, uid: uid, product: "AIDE", vendor: "AIDE",
            logName: nil, originalTime: start.original, file: file, device: [:]
        )
        event.set("metadata.product.version", version.map(JSON.string))
        event.set("metadata.event_code", .string(entry.change.rawValue))
        var unmapped: [String: JSON] = ["change": .string(entry.change.rawValue)]
        unmapped["summary"] = entry.summary.map(JSON.string)
        if let detail, !detail.attributes.isEmpty {
            var changes: [String: JSON] = [:]
            for attribute in detail.attributes {
                var pair: [String: JSON] = [:]
                pair["old"] = attribute.old.map(JSON.string)
                pair["new"] = attribute.new.map(JSON.string)
                changes[attribute.name] = .object(pair)
            }
            unmapped["details"] = .object(changes)
        }
        event["unmapped"] = .object(unmapped)
        return event
    }

    /// A list line: `<summary string>: <path>` (`report_summarize_changes`, the default) or
    /// `added: <path>` / `removed: <path>` / `changed: <path>`.
    static func entry(_ line: Substring, section: Change?) -> Entry? {
        for change in [Change.added, .removed, .changed] where line.hasPrefix(change.rawValue + ": ") {
            let path = String(line.dropFirst(change.rawValue.count + 2))
            return path.isEmpty ? nil : Entry(change: change, summary: nil, path: path)
        }
        // The summary string has no `/`, but may hold `:` (an ignored attribute), so split at `: /`.
        guard let separator = line.firstRange(of: ": /") ?? line.firstRange(of: ": ") else { return nil }
        let summary = String(line[..<separator.lowerBound])
        let path = String(line[line.index(separator.lowerBound, offsetBy: 2)...])
        guard summary.count >= 2, !path.isEmpty else { return nil }
        let flags = summary.dropFirst()
        let change: Change
        if let section {
            change = section
        } else if flags.allSatisfy({ $0 == "+" }) {
            change = .added
        } else if flags.allSatisfy({ $0 == "-" }) {
            change = .removed
        } else {
            change = .changed
        }
        return Entry(change: change, summary: summary, path: path)
    }

    /// `File: /etc/passwd`, `Directory: /etc`, ... at the start of a details block.
    static func detailHeader(_ line: Substring) -> (type: String, path: String)? {
        guard let colon = line.firstRange(of: ": ") else { return nil }
        let type = String(line[..<colon.lowerBound])
        guard detailTypes[type] != nil else { return nil }
        let path = String(line[colon.upperBound...])
        return path.isEmpty ? nil : (type, path)
    }

    /// ` Name      : old | new`, or a continuation line (blank name, no colon) that carries the
    /// next slice of long values such as base64 digests.
    static func addAttribute(_ line: Substring, to detail: inout Detail) {
        let content = line.drop { $0 == " " || $0 == "\t" }
        var name: String?
        var values = content
        if let colon = content.firstIndex(of: ":") {
            let candidate = content[..<colon].reversed().drop { $0 == " " }.reversed()
            if !candidate.isEmpty, candidate.count <= 20,
               candidate.allSatisfy({ $0.isLetter || $0.isNumber || $0 == " " || $0 == "-" }) {
                name = String(candidate)
                values = content[content.index(after: colon)...]
            }
        }
        let parts = values.split(separator: "|", maxSplits: 1, omittingEmptySubsequences: false).map { trim($0) }
        let old = parts.count == 2 ? (parts[0].isEmpty ? nil : String(parts[0])) : nil
        let new = parts.count == 2 ? (parts[1].isEmpty ? nil : String(parts[1])) : (parts.first.flatMap { $0.isEmpty ? nil : String($0) })
        if let name {
            detail.attributes.append((name, old, new))
        } else if var last = detail.attributes.popLast() {
            // Digests wrap without separators; other multi-line values keep their line breaks.
            let glue = contentAttributes.contains(last.name.lowercased()) ? "" : "\n"
            if let old { last.old = (last.old.map { $0 + glue } ?? "") + old }
            if let new { last.new = (last.new.map { $0 + glue } ?? "") + new }
            detail.attributes.append(last)
        }
    }

    /// `2024-05-01 12:00:00 +0000` (AIDE 0.16+), or without the zone (older; read as UTC).
    static func parseTime(_ text: String) -> Int64? {
        var utf8 = Array(text.utf8)
        if utf8.count > 21, utf8[19] == UInt8(ascii: " "), utf8[20] == UInt8(ascii: "+") || utf8[20] == UInt8(ascii: "-") {
            utf8.remove(at: 19)
        }
        return Timestamp.parseISO8601(String(decoding: utf8, as: UTF8.self))
    }

    /// A digest as lower-case hex: AIDE prints base64 unless `report_base16` is set; either is
    /// accepted when it decodes to the algorithm's length, anything else is dropped.
    static func digestHex(_ text: String, bytes: Int) -> String? {
        let utf8 = Array(text.utf8)
        let isHex = utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) || ($0 >= 0x41 && $0 <= 0x46) }
        if isHex, utf8.count == bytes * 2 { return text.lowercased() }
        guard let decoded = base64Decode(utf8), decoded.count == bytes else { return nil }
        return StableID.hex(decoded)
    }

    /// Standard base64 with padding; `nil` on any other character.
    static func base64Decode(_ input: [UInt8]) -> [UInt8]? {
        guard !input.isEmpty, input.count % 4 == 0 else { return nil }
        func sextet(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): c - UInt8(ascii: "A")
            case UInt8(ascii: "a")...UInt8(ascii: "z"): c - UInt8(ascii: "a") + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0") + 52
            case UInt8(ascii: "+"): 62
            case UInt8(ascii: "/"): 63
            default: nil
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(input.count / 4 * 3)
        var index = 0
        while index < input.count {
            let chunk = input[index..<(index + 4)]
            let padding = chunk.reversed().prefix { $0 == UInt8(ascii: "=") }.count
            guard padding <= 2, index + 4 == input.count || padding == 0 else { return nil }
            var value: UInt32 = 0
            for (position, c) in chunk.enumerated() {
                if position >= 4 - padding { value <<= 6; continue }
                guard let bits = sextet(c) else { return nil }
                value = value << 6 | UInt32(bits)
            }
            out.append(UInt8(value >> 16 & 0xFF))
            if padding < 2 { out.append(UInt8(value >> 8 & 0xFF)) }
            if padding < 1 { out.append(UInt8(value & 0xFF)) }
            index += 4
        }
        return out
    }

    /// Without surrounding spaces and tabs.
    static func trim(_ text: Substring) -> Substring {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        guard let first = text.firstIndex(where: { !isSpace($0) }), let last = text.lastIndex(where: { !isSpace($0) }) else {
            return text[text.endIndex...]
        }
        return text[first...last]
    }
}
