/// One record of a CSV file: its fields and the 1-based line it starts on.
struct CSVRecord: Sendable, Equatable {
    var line: Int
    var fields: [String]
}

/// An RFC 4180 reader: comma-separated fields, fields in double quotes may hold commas, line breaks
/// and doubled quotes (`""`). Accepts `\n`, `\r\n` and `\r` line ends and a UTF-8 byte order mark;
/// skips empty lines. Pure: bytes in, records out.
enum CSVReader {
    static func records(_ bytes: [UInt8]) throws(InventoryError) -> [CSVRecord] {
        let quote = UInt8(ascii: "\""), comma = UInt8(ascii: ","), cr = UInt8(ascii: "\r"), lf = UInt8(ascii: "\n")
        var index = 0
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { index = 3 }
        guard String(validating: bytes[index...], as: UTF8.self) != nil else {
            throw InventoryError(code: "file_not_utf8")
        }
        var records: [CSVRecord] = []
        var line = 1
        var recordLine = 1
        var fields: [String] = []
        var field: [UInt8] = []
        var quoted = false  // the current field started with a quote
        var fieldStarted = false  // any byte of the current record has been seen

        func endField() {
            fields.append(String(decoding: field, as: UTF8.self))
            field.removeAll(keepingCapacity: true)
            quoted = false
        }
        func endRecord() {
            endField()
            let blank = fields.count == 1 && fields[0].allSatisfy { $0 == " " || $0 == "\t" }
            if !blank { records.append(CSVRecord(line: recordLine, fields: fields)) }
            fields.removeAll(keepingCapacity: true)
            fieldStarted = false
        }

        while index < bytes.count {
            let byte = bytes[index]
            if !fieldStarted { recordLine = line; fieldStarted = true }
            if byte == quote && !quoted && field.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) {
                // A quoted field: read to the closing quote, unescaping doubled quotes.
                quoted = true
                field.removeAll(keepingCapacity: true)
                index += 1
                var closed = false
                while index < bytes.count {
                    let b = bytes[index]
                    if b == quote {
                        if index + 1 < bytes.count && bytes[index + 1] == quote {
                            field.append(quote)
                            index += 2
                            continue
                        }
                        closed = true
                        index += 1
                        break
                    }
                    if b == lf || (b == cr && !(index + 1 < bytes.count && bytes[index + 1] == lf)) { line += 1 }
                    field.append(b)
                    index += 1
                }
                guard closed else {
                    throw InventoryError(code: "csv_unterminated_quote", line: recordLine, column: "#\(fields.count + 1)")
                }
                // Only blanks may follow the closing quote before the separator.
                while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x09 { index += 1 }
                if index < bytes.count, bytes[index] != comma, bytes[index] != cr, bytes[index] != lf {
                    throw InventoryError(code: "csv_bad_quote", line: recordLine, column: "#\(fields.count + 1)")
                }
                continue
            }
            switch byte {
            case comma:
                endField()
                index += 1
            case cr, lf:
                endRecord()
                index += (byte == cr && index + 1 < bytes.count && bytes[index + 1] == lf) ? 2 : 1
                line += 1
            case quote:
                throw InventoryError(code: "csv_bad_quote", line: recordLine, column: "#\(fields.count + 1)")
            default:
                if quoted {
                    throw InventoryError(code: "csv_bad_quote", line: recordLine, column: "#\(fields.count + 1)")
                }
                field.append(byte)
                index += 1
            }
        }
        if fieldStarted { endRecord() }
        return records
    }
}

/// Turns inventory CSV (header row required) into assets. Pure; errors name the line and column.
enum InventoryCSV {
    /// The columns an inventory CSV may have, in the documented order. `id` and `kind` are required.
    static let columns = [
        "id", "kind", "account", "region", "name", "owner", "environment", "criticality",
        "internet_exposed", "protected", "private_ips", "public_ips", "network_interfaces",
        "image_id", "security_groups", "user", "tags",
    ]

    static func assets(_ bytes: [UInt8]) throws(InventoryError) -> [(line: Int, asset: Asset)] {
        let records = try CSVReader.records(bytes)
        guard let header = records.first else { throw InventoryError(code: "csv_missing_header", line: 1) }
        var position: [String: Int] = [:]
        for (offset, raw) in header.fields.enumerated() {
            let name = AssetFields.trim(raw).lowercased()
            guard columns.contains(name) else {
                throw InventoryError(code: "csv_unknown_column", line: header.line,
                                     column: AssetFields.safeName(name, position: offset + 1))
            }
            guard position[name] == nil else {
                throw InventoryError(code: "csv_duplicate_column", line: header.line, column: name)
            }
            position[name] = offset
        }
        for required in ["id", "kind"] where position[required] == nil {
            throw InventoryError(code: "csv_missing_column", line: header.line, column: required)
        }

        var out: [(line: Int, asset: Asset)] = []
        out.reserveCapacity(records.count - 1)
        for record in records.dropFirst() {
            guard record.fields.count == header.fields.count else {
                throw InventoryError(code: "csv_column_count", line: record.line)
            }
            func text(_ column: String) -> String? {
                guard let i = position[column] else { return nil }
                let value = AssetFields.trim(record.fields[i])
                return value.isEmpty ? nil : value
            }
            do throws(InventoryError) {
                guard let id = text("id") else { throw InventoryError(code: "missing_field", column: "id") }
                guard let kind = text("kind") else { throw InventoryError(code: "missing_field", column: "kind") }
                let asset = Asset(
                    id: id, kind: kind, account: text("account"), region: text("region"), name: text("name"),
                    owner: text("owner"), environment: text("environment"),
                    criticality: try AssetFields.criticality(text("criticality"), column: "criticality"),
                    internetExposed: try AssetFields.boolean(text("internet_exposed") ?? "", column: "internet_exposed"),
                    protected: try AssetFields.boolean(text("protected") ?? "", column: "protected"),
                    tags: try AssetFields.tags(text("tags") ?? "", column: "tags"),
                    privateIPs: AssetFields.list(text("private_ips") ?? ""),
                    publicIPs: AssetFields.list(text("public_ips") ?? ""),
                    networkInterfaces: AssetFields.list(text("network_interfaces") ?? ""),
                    imageID: text("image_id"),
                    securityGroups: AssetFields.list(text("security_groups") ?? ""),
                    user: text("user")
                )
                out.append((record.line, asset))
            } catch {
                var located = error
                located.line = record.line
                throw located
            }
        }
        return out
    }
}
