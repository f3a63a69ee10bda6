import OCSF
import Testing

/// `JSON.scan(_:plan:)` against `JSON.parse` of the same bytes: it accepts and rejects exactly
/// what the parser does, with the same error, and every member it records is what the parsed
/// document holds at that path.
@Suite struct JSONScanTests {
    /// The plan's paths: names the generated documents use, nested, with array indices and
    /// the empty name.
    static let paths = ["a", "a.b", "a.b.c", "a.0", "b", "b.a", "b.a.b", "c", "c.0.a", "", ".a", "é", "a\"b"]

    struct Plan {
        let plan: JSONScanPlan
        let parents: [Int]
        let names: [String]
        /// Each path of `paths` and its node.
        let probes: [(path: String, node: Int)]
    }

    static func plan() -> Plan {
        var parents: [Int] = []
        var names: [String] = []
        var nodes: [[String]: Int] = [:]
        var probes: [(path: String, node: Int)] = []
        for path in paths {
            let components = path.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            var parent = -1
            for length in 1...components.count {
                let prefix = Array(components.prefix(length))
                if let node = nodes[prefix] {
                    parent = node
                    continue
                }
                parents.append(parent)
                names.append(components[length - 1])
                parent = names.count - 1
                nodes[prefix] = parent
            }
            probes.append((path, parent))
        }
        return Plan(plan: JSONScanPlan(parents: parents, names: names), parents: parents, names: names, probes: probes)
    }

    /// The value of `node` as the scan's offsets give it, resolving an unreached member
    /// through its parent, as the select step's field cache does.
    static func resolve(_ node: Int, _ plan: Plan, in result: JSONScanResult, document: JSON) -> JSON? {
        let offset = result.offsets[node]
        if offset > 0 { return result.value(at: offset) }
        if offset < 0 { return nil }
        let parent = plan.parents[node] < 0 ? document : resolve(plan.parents[node], plan, in: result, document: document)
        return parent.flatMap { JSON.object(["k": $0]).value(at: "k." + plan.names[node]) }
    }

    /// Scans `bytes`, parses them, and records every disagreement.
    static func check(_ bytes: [UInt8], _ plan: Plan) -> Bool {
        let parsed = Result { () throws(JSONParseError) -> JSON in try JSON.parse(bytes) }
        let scanned = Result { () throws(JSONParseError) -> JSONScanResult? in try JSON.scan(bytes, plan: plan.plan) }
        switch (parsed, scanned) {
        case (.failure(let parseError), .failure(let scanError)):
            if parseError != scanError { Issue.record("errors differ: \(parseError) vs \(scanError) for \(show(bytes))") }
            return false
        case (.success(let document), .success(let result)):
            guard case .object = document else {
                if result != nil { Issue.record("a non-object scanned as an object: \(show(bytes))") }
                return false
            }
            guard let result else {
                Issue.record("an object not scanned: \(show(bytes))")
                return false
            }
            #expect(result.document() == document)
            for (path, node) in plan.probes {
                let want = document.value(at: path)
                let got = resolve(node, plan, in: result, document: document)
                if got != want {
                    Issue.record("\(path): scan \(String(describing: got)), parse \(String(describing: want)) in \(show(bytes))")
                }
            }
            return true
        default:
            Issue.record("one accepts, the other rejects: parse \(parsed), scan \(String(describing: try? scanned.get())) for \(show(bytes))")
            return false
        }
    }

    static func show(_ bytes: [UInt8]) -> String { String(decoding: bytes.prefix(300), as: UTF8.self) }

    @Test("members are found where the parser puts them: nesting, repeats, escapes, non-objects")
    func handPicked() {
        let plan = Self.plan()
        let documents = [
            #"{"a":{"b":{"c":1}},"b":{"a":{"b":"x"}},"c":[{"a":true}]}"#,
            #" { "a" : { "b" : { "c" : 1 } } , "zz" : [ 1 , { "a" : 2 } ] } "#,
            // A repeated member: the last one counts, and forgets what the first one held.
            #"{"a":{"b":{"c":1}},"a":{"x":2}}"#,
            #"{"a":{"b":{"c":1}},"a":null}"#,
            #"{"a":[5,6],"a":{"b":{"c":3}}}"#,
            #"{"a":{"b":1,"b":{"c":4}}}"#,
            // Escaped names spell the plan's names.
            #"{"\u0061":{"\u0062":{"c":"esc"}},"a\"b":1,"\u00e9":2,"":{"a":3}}"#,
            // Array indices and values that are not objects.
            #"{"a":[{"x":1},2],"c":[{"a":9}],"b":"text"}"#,
            #"{"a":"str","b":5,"c":{}}"#,
            #"{}"#, #"{"":{}}"#, #"{"é":"ü","a":"\ud83d\ude00"}"#,
            #"{"a":{"b":{"c":[1,2,{"d":-1.5e3}]}}}"#,
            #"[1,2]"#, #""a""#, "3", "null", "true",
        ]
        var objects = 0
        for document in documents where Self.check(Array(document.utf8), plan) { objects += 1 }
        #expect(objects == documents.count - 5)
    }

    @Test("invalid documents fail exactly as the parser fails them")
    func invalid() {
        let plan = Self.plan()
        let documents = [
            "", " ", "{", "{\"a\"", "{\"a\":", "{\"a\":1", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "{\"a\":1}x", "{\"a\":1} {}",
            "{\"a\":tru}", "{\"a\":nul}", "{\"a\":01}", "{\"a\":1.}", "{\"a\":1e}", "{\"a\":-}", "{\"a\":1e999}",
            "{\"a\":\"\\x\"}", "{\"a\":\"\\ud800\"}", "{\"a\":\"\\udc00\"}", "{\"a\":\"\\u12\"}", "{\"a\":\"\u{01}\"}",
            "{\"\u{01}\":1}", "{\"a\":[1,]}", "{\"a\":[1 2]}", "{\"a\":{\"b\":}}", "{\"a\":{\"b\":1}", "{\"b\":{\"a\":{\"b\":[}}}",
            String(repeating: "[", count: 300) + String(repeating: "]", count: 300),
            "{\"a\":" + String(repeating: "{\"a\":", count: 300) + "1" + String(repeating: "}", count: 301),
        ]
        for document in documents {
            #expect(!Self.check(Array(document.utf8), plan), "accepted: \(document)")
        }
        // Invalid UTF-8, in a skipped string, a recorded member and a member name.
        for bytes: [UInt8] in [
            Array(#"{"z":""#.utf8) + [0xC3, 0x28] + Array(#""}"#.utf8),
            Array(#"{"a":""#.utf8) + [0xFF] + Array(#""}"#.utf8),
            Array(#"{""#.utf8) + [0xED, 0xA0, 0x80] + Array(#"":1}"#.utf8),
        ] {
            #expect(!Self.check(bytes, plan))
        }
    }

    /// A random document over the plan's names, with every kind of value.
    static func document(_ random: inout SeededGenerator, depth: Int = 0) -> String {
        let names = ["a", "b", "c", "0", "", "é", "a\\\"b", "\\u0061", "zz", "b.a"]
        switch Int.random(in: 0..<(depth > 3 ? 6 : 9), using: &random) {
        case 0: return ["1", "-0", "12345678901234567890", "1.5", "-2e-3", "0.1E+2", "true", "false", "null"].randomElement(using: &random)!
        case 1: return ["\"\"", "\"x\"", "\"a\\\"b\\n\\u00e9\"", "\"ü\"", "\"\\ud83d\\ude00\""].randomElement(using: &random)!
        case 2..<4: return "\"" + names.randomElement(using: &random)! + "\""
        case 4..<6: return String(Int.random(in: -1000...1000, using: &random))
        case 6:
            let count = Int.random(in: 0...3, using: &random)
            return "[" + (0..<count).map { _ in document(&random, depth: depth + 1) }.joined(separator: ",") + "]"
        default:
            let count = Int.random(in: 0...4, using: &random)
            let members = (0..<count).map { _ in
                "\"\(names.randomElement(using: &random)!)\"" + [":", " : ", ":\n"].randomElement(using: &random)!
                    + document(&random, depth: depth + 1)
            }
            return "{" + members.joined(separator: [",", " , "].randomElement(using: &random)!) + "}"
        }
    }

    @Test("generated documents, and every prefix and byte change of some, agree with the parser")
    func generated() {
        let plan = Self.plan()
        var random = SeededGenerator(seed: 42)
        var accepted = 0
        var rejected = 0
        let interesting: [UInt8] = Array("\"\\{}[],:0-.eE tnu".utf8) + [0x01, 0x80, 0xC3, 0xFF]
        for round in 0..<1500 {
            var text = Self.document(&random)
            if !text.hasPrefix("{") { text = "{\"a\":" + text + ",\"b\":" + Self.document(&random) + "}" }
            let bytes = Array(text.utf8)
            if Self.check(bytes, plan) { accepted += 1 } else { rejected += 1 }
            guard round % 10 == 0 else { continue }
            for length in 0..<bytes.count {
                if Self.check(Array(bytes.prefix(length)), plan) { accepted += 1 } else { rejected += 1 }
            }
            for _ in 0..<20 {
                var changed = bytes
                changed[Int.random(in: 0..<changed.count, using: &random)] = interesting.randomElement(using: &random)!
                if Self.check(changed, plan) { accepted += 1 } else { rejected += 1 }
            }
        }
        // Both sides are exercised.
        #expect(accepted > 1500, "\(accepted) accepted")
        #expect(rejected > 5_000, "\(rejected) rejected")
    }

    @Test("strings read eight bytes at a time stop at every quote, backslash and control byte, wherever it is")
    func stringBytesAtEveryPosition() throws {
        let plan = Self.plan()
        // Up to three words and a tail: every position in a word, and the tail after it.
        for length in 0..<28 {
            for position in 0..<max(length, 1) {
                for special: [UInt8] in [[0x00], [0x01], [0x1F], [0x20], [0x21], [0x22], [0x5C], [0x5C, 0x6E], [0x5B], [0x7F], [0xC3, 0xA9], [0xFF]] {
                    var text = [UInt8](repeating: UInt8(ascii: "x"), count: length)
                    if length > 0 { text.replaceSubrange(position..<position + 1, with: special) }
                    // As a member the plan records ("a") and as one it skips ("zz").
                    for name in ["a", "zz"] {
                        let document = Array("{\"\(name)\":\"".utf8) + text + Array("\",\"b\":1}".utf8)
                        let accepted = Self.check(document, plan)
                        let plain = special.count == 1 && special[0] >= 0x20 && special[0] < 0x80
                            && special[0] != 0x22 && special[0] != 0x5C
                        let expected: Bool = length == 0 || plain || special == [0xC3, 0xA9] || special == [0x5C, 0x6E]
                        if accepted != expected { Issue.record("length \(length), byte \(special) at \(position): accepted \(accepted)") }
                        if accepted, plain || length == 0 {
                            #expect(try JSON.parse(document)[name] == .string(String(decoding: text, as: UTF8.self)))
                        }
                    }
                }
            }
        }
    }
}
