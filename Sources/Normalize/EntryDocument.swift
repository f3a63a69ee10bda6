import OCSF

/// The shapes a JSON log document takes in most sources: one entry, a list of entries (a
/// batch, an API page, an export), or something the parser cannot take, with the reason.
enum EntryDocument {
    case single(JSON)
    case entries([JSON])
    case unrecognized(String)

    /// Whether the entry, or the first object entry of a list, has the source's shape.
    func isRecognized(by looksLike: (JSON) -> Bool) -> Bool {
        switch self {
        case .single(let entry): return looksLike(entry)
        case .entries(let entries):
            guard let first = entries.first(where: { $0.objectValue != nil }) else { return false }
            return looksLike(first)
        case .unrecognized: return false
        }
    }

    /// Maps every entry independently: a bad entry becomes a failure carrying its index and
    /// bytes, and its siblings still become events. A single entry's failure is the record's.
    func normalize(source: String, map: (JSON) -> Result<JSON, EntryProblem>) -> NormalizeResult {
        var result = NormalizeResult(source: source)
        switch self {
        case .single(let entry):
            switch map(entry) {
            case .success(let event): result.events.append(event)
            case .failure(let problem): result.failures.append(problem.failure())
            }
        case .entries(let entries):
            result.events.reserveCapacity(entries.count)
            for (index, entry) in entries.enumerated() {
                result.append(map(entry), index: index, entry: entry)
            }
        case .unrecognized(let reason):
            result.failures.append(NormalizeFailure(code: NormalizeFailure.Code.unrecognizedFormat, message: reason))
        }
        return result
    }
}

extension NormalizeResult {
    /// Adds one entry's outcome: its event, or a failure naming the entry.
    mutating func append(_ mapped: Result<JSON, EntryProblem>, index: Int, entry: JSON) {
        switch mapped {
        case .success(let event): events.append(event)
        case .failure(let problem): failures.append(problem.failure(entryIndex: index, entryBytes: entry.serialized()))
        }
    }
}
