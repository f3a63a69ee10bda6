/// An RFC 4180 reader over bytes for Tenable's CSV exports: quoted fields with doubled quotes
/// and line breaks inside, LF or CRLF record ends, a UTF-8 byte-order mark, and `,` or `;` as
/// delimiter (Tenable Vulnerability Management exports use `;`). Lenient where exports are
/// sloppy: a quote inside an unquoted field is kept as text, and text after a closing quote
/// is appended. Linear in the input; never traps.
struct NessusCSV {
    /// One record: its fields, where its bytes are (without the line end), and whether it ended
    /// inside an open quote (the input was truncated).
    struct Record {
        var fields: [String]
        var range: Range<Int>
        var unterminated: Bool
    }

    let bytes: [UInt8]
    let delimiter: UInt8
    /// Where the data starts (after a byte-order mark).
    let start: Int

    init(bytes: [UInt8]) {
        self.bytes = bytes
        start = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
        delimiter = Self.guessDelimiter(bytes, from: start)
    }

    static let quote = UInt8(ascii: "\"")
    static let lineFeed = UInt8(ascii: "\n")
    static let carriageReturn = UInt8(ascii: "\r")

    /// `;` when the first line has more semicolons than commas outside quotes, else `,`.
    static func guessDelimiter(_ bytes: [UInt8], from start: Int) -> UInt8 {
        var commas = 0, semicolons = 0, inQuotes = false
        var index = start
        while index < bytes.count, index < start + 65_536 {
            let byte = bytes[index]
            if byte == quote { inQuotes.toggle() }
            else if !inQuotes, byte == lineFeed { break }
            else if !inQuotes, byte == UInt8(ascii: ",") { commas += 1 }
            else if !inQuotes, byte == UInt8(ascii: ";") { semicolons += 1 }
            index += 1
        }
        return semicolons > commas ? UInt8(ascii: ";") : UInt8(ascii: ",")
    }

    /// The record starting at `position`, and where the next one starts; `nil` at the end.
    func record(at position: Int) -> (Record, next: Int)? {
        guard position < bytes.count else { return nil }
        var fields: [String] = []
        var field: [UInt8] = []
        var index = position
        var inQuotes = false
        var quotedField = false
        var end = bytes.count
        var next = bytes.count
        while index < bytes.count {
            let byte = bytes[index]
            if inQuotes {
                if byte == Self.quote {
                    if index + 1 < bytes.count, bytes[index + 1] == Self.quote {
                        field.append(Self.quote)
                        index += 2
                        continue
                    }
                    inQuotes = false
                } else {
                    field.append(byte)
                }
                index += 1
                continue
            }
            if byte == delimiter {
                fields.append(String(decoding: field, as: UTF8.self))
                field.removeAll(keepingCapacity: true)
                quotedField = false
            } else if byte == Self.lineFeed || byte == Self.carriageReturn {
                end = index
                next = index + 1
                if byte == Self.carriageReturn, next < bytes.count, bytes[next] == Self.lineFeed { next += 1 }
                break
            } else if byte == Self.quote, field.isEmpty, !quotedField {
                inQuotes = true
                quotedField = true
            } else {
                field.append(byte)
            }
            index += 1
        }
        fields.append(String(decoding: field, as: UTF8.self))
        if index >= bytes.count { end = bytes.count }
        return (Record(fields: fields, range: position..<end, unterminated: inQuotes), next)
    }

    /// Every record, the header first.
    func records() -> [Record] {
        var out: [Record] = []
        var position = start
        while let (record, next) = record(at: position) {
            out.append(record)
            position = next
        }
        return out
    }

    /// The header row's fields (the first record), without reading further.
    func header() -> [String]? {
        record(at: start).map(\.0.fields)
    }
}
