import OCSF

/// Skips, per event, the rules whose `match` cannot hold, without evaluating them.
///
/// Most rules start with equality tests on a few fields (`class_uid`, `api.service.name`,
/// `api.operation`). Each such test that is a member of the rule's top-level `all` (or is the
/// whole `match`), is case-sensitive and uses `equals` or `in`, becomes an entry of a table per
/// field path: operand text → tests. For an event, one lookup per path finds every indexed
/// test the event passes; a rule is evaluated only when it passes all of its indexed tests.
/// The lookup key is the field's scalar text, which is exactly what those tests compare (an
/// integer field's text is its canonical digits, as the compiled test's integer operands are),
/// and an array field passes a test when an element does, as in ``evaluate(_:on:)``. So the
/// prefilter never skips a rule that would match; the rules it keeps are evaluated in full.
/// At most 64 tests are indexed (one machine word per event); the rules beyond are always
/// evaluated. Immutable once built, and shared by reference between copies of the selector.
final class RulePrefilter: Sendable {
    /// Per indexed field: a test that reads it, and which tests each of its texts passes (as
    /// bits).
    private let readers: [FieldTest]
    private let passes: [[String: UInt64]]
    /// Per rule (in rule order), the bits of its indexed tests; 0: always evaluated.
    private let required: [UInt64]

    init(rules: [Rule]) {
        var byPath: [String: (reader: FieldTest, passes: [String: UInt64])] = [:]
        var pathOrder: [String] = []
        var required: [UInt64] = []
        var next = 0
        for rule in rules {
            var bits: UInt64 = 0
            for test in Self.indexable(rule.match) where next < 64 {
                let bit = UInt64(1) << UInt64(next)
                next += 1
                bits |= bit
                if byPath[test.path] == nil {
                    byPath[test.path] = (test, [:])
                    pathOrder.append(test.path)
                }
                for value in test.values {
                    guard let text = value.scalarText else { continue }
                    byPath[test.path]!.passes[text, default: 0] |= bit
                }
            }
            required.append(bits)
        }
        self.readers = pathOrder.map { byPath[$0]!.reader }
        self.passes = pathOrder.map { byPath[$0]!.passes }
        self.required = required
    }

    /// The tests of `condition` that every matching event passes and that a lookup decides:
    /// case-sensitive `equals` / `in` at the top level or in a top-level `all`.
    static func indexable(_ condition: Condition) -> [FieldTest] {
        func eligible(_ condition: Condition) -> FieldTest? {
            guard case .field(let test) = condition, !test.caseInsensitive, test.op == .equals || test.op == .in else { return nil }
            return test
        }
        switch condition {
        case .field: return eligible(condition).map { [$0] } ?? []
        case .all(let members): return members.compactMap(eligible)
        case .any, .not: return []
        }
    }

    /// The indexed tests `event` passes, as bits (0 at once when nothing is indexed).
    func passedTests(_ event: JSON) -> UInt64 {
        var passed: UInt64 = 0
        for index in readers.indices {
            guard let value = readers[index].value(in: event) else { continue }
            if case .array(let items) = value {
                for item in items {
                    if let text = item.scalarText, let bits = passes[index][text] { passed |= bits }
                }
            } else if let text = value.scalarText, let bits = passes[index][text] {
                passed |= bits
            }
        }
        return passed
    }

    /// Whether rule `index` (in rule order) may match an event that passed `passed`.
    func mayMatch(rule index: Int, passed: UInt64) -> Bool {
        let bits = required[index]
        return passed & bits == bits
    }
}
