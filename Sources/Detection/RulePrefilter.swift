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
    /// Per indexed field (the most tested first): its node in the selector's ``FieldPaths``,
    /// which tests each of its texts passes (as bits), the same for the texts that are the
    /// canonical digits of an integer, by integer (so an integer field is looked up without
    /// being formatted), and every test on the field.
    private let readers: [Int]
    private let passes: [[String: UInt64]]
    private let integerPasses: [[Int64: UInt64]]
    private let readerTests: [UInt64]
    /// Per rule (in rule order), the bits of its indexed tests; 0: always evaluated.
    private let required: [UInt64]
    /// The non-zero entries of `required`: the rules a failed test can rule out.
    private let indexedRules: [UInt64]

    init(rules: [Rule], paths: inout FieldPaths.Builder) {
        var byPath: [String: (node: Int, passes: [String: UInt64], tests: UInt64)] = [:]
        var required: [UInt64] = []
        var next = 0
        for rule in rules {
            var bits: UInt64 = 0
            for test in Self.indexable(rule.match) where next < 64 {
                let bit = UInt64(1) << UInt64(next)
                next += 1
                bits |= bit
                if byPath[test.path] == nil {
                    byPath[test.path] = (paths.node(components: test.components), [:], 0)
                }
                byPath[test.path]!.tests |= bit
                for value in test.values {
                    guard let text = value.scalarText else { continue }
                    byPath[test.path]!.passes[text, default: 0] |= bit
                }
            }
            required.append(bits)
        }
        // Fields read by more tests first: `class_uid` usually rules out most rules at once,
        // and the fields only ruled-out rules test are then not read at all.
        let order = byPath.keys.sorted {
            let (left, right) = (byPath[$0]!.tests.nonzeroBitCount, byPath[$1]!.tests.nonzeroBitCount)
            return left != right ? left > right : $0 < $1
        }
        self.readers = order.map { byPath[$0]!.node }
        self.passes = order.map { byPath[$0]!.passes }
        self.integerPasses = order.map { path in
            var integers: [Int64: UInt64] = [:]
            for (text, bits) in byPath[path]!.passes {
                if let integer = Int64(text), String(integer) == text { integers[integer] = bits }
            }
            return integers
        }
        self.readerTests = order.map { byPath[$0]!.tests }
        self.required = required
        self.indexedRules = required.filter { $0 != 0 }
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

    /// The indexed tests the event of `fields` passes, as bits (0 at once when nothing is
    /// indexed). A field that only rules already ruled out test is not read, so its tests'
    /// bits may be missing: those rules fail ``mayMatch(rule:passed:)`` either way.
    func passedTests(_ fields: inout EventFields) -> UInt64 {
        var passed: UInt64 = 0
        var failed: UInt64 = 0
        // The tests of the rules not ruled out yet.
        var needed = UInt64.max
        for index in readers.indices {
            let tests = readerTests[index]
            guard tests & needed != 0 else { continue }
            var here: UInt64 = 0
            if let value = fields.value(readers[index]) {
                if case .array(let items) = value {
                    for item in items { here |= bits(item, index) }
                } else {
                    here = bits(value, index)
                }
            }
            passed |= here
            guard tests & ~here != 0 else { continue }
            failed |= tests & ~here
            needed = 0
            for rule in indexedRules where rule & failed == 0 { needed |= rule }
        }
        return passed
    }

    /// The tests of field `index` that the scalar `value` passes.
    private func bits(_ value: JSON, _ index: Int) -> UInt64 {
        if case .int(let integer) = value { return integerPasses[index][integer] ?? 0 }
        guard let text = value.scalarText else { return 0 }
        return passes[index][text] ?? 0
    }

    /// Whether rule `index` (in rule order) may match an event that passed `passed`.
    func mayMatch(rule index: Int, passed: UInt64) -> Bool {
        let bits = required[index]
        return passed & bits == bits
    }
}
