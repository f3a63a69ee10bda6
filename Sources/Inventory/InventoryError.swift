/// The one error type of the Inventory module.
///
/// The description names the failure, the line (CSV), the item (JSON array index) and the column or
/// field, but never a value from the file or the database: inventory rows can carry owner names,
/// addresses and tags that do not belong in logs.
public struct InventoryError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A stable, machine-readable code such as `csv_bad_boolean` or `database_busy`.
    public var code: String
    /// Whether trying the same operation again later may succeed (a locked or busy database).
    public var isRetriable: Bool
    /// The 1-based line of an import file where the failing record starts, when there is one.
    public var line: Int?
    /// The 1-based position of the failing object in a JSON import array, when there is one.
    public var item: Int?
    /// The column or field the failure is about (a schema name such as `internet_exposed`),
    /// or `#N` for the N-th header column when its name is not one of ours.
    public var column: String?
    /// The SQLite extended result code behind a database failure, when there is one.
    public var sqliteCode: Int32?

    /// Makes an error; most code uses the static constructors below.
    public init(code: String, isRetriable: Bool = false, line: Int? = nil, item: Int? = nil,
                column: String? = nil, sqliteCode: Int32? = nil) {
        self.code = code
        self.isRetriable = isRetriable
        self.line = line
        self.item = item
        self.column = column
        self.sqliteCode = sqliteCode
    }

    /// `inventory: <summary> [code] at line 3, column internet_exposed`.
    public var description: String {
        var text = "inventory: \(Self.summary(for: code)) [\(code)]"
        var place: [String] = []
        if let line { place.append("line \(line)") }
        if let item { place.append("item \(item)") }
        if let column { place.append("column \(column)") }
        if !place.isEmpty { text += " at " + place.joined(separator: ", ") }
        if let sqliteCode { text += " (sqlite \(sqliteCode))" }
        return text
    }

    static func summary(for code: String) -> String {
        switch code {
        case "open_failed": "cannot open or migrate the inventory database"
        case "database_busy": "the inventory database is busy or locked"
        case "database_error": "an inventory database operation failed"
        case "corrupt_record": "a stored inventory record could not be decoded"
        case "file_unreadable": "the import file cannot be read"
        case "file_not_utf8": "the import file is not UTF-8 text"
        case "csv_missing_header": "the CSV file has no header row"
        case "csv_unknown_column": "the CSV header names a column that is not an inventory column"
        case "csv_duplicate_column": "the CSV header names a column twice"
        case "csv_missing_column": "the CSV header lacks a required column"
        case "csv_column_count": "the row has a different number of fields than the header"
        case "csv_unterminated_quote": "a quoted field is not closed"
        case "csv_bad_quote": "a quote appears inside an unquoted field or after a closing quote"
        case "missing_field": "a required field is empty"
        case "bad_boolean": "a boolean field is not true/false/yes/no/1/0"
        case "bad_criticality": "criticality is not low, medium, high or critical"
        case "bad_tags": "a tag is not written as key=value"
        case "bad_field_type": "a field has the wrong JSON type"
        case "unknown_field": "an object has a field that is not an inventory field"
        case "json_invalid": "the import file is not valid JSON"
        case "json_not_array": "the JSON import must be an array of asset objects"
        case "json_item_not_object": "a JSON import item is not an object"
        default: "inventory operation failed"
        }
    }
}
