import Testing
@testable import OCSF

@Suite struct SHA256Tests {
    @Test func knownVectors() {
        #expect(StableID.hex(SHA256.hash(data: Array("".utf8)))
            == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(StableID.hex(SHA256.hash(data: Array("abc".utf8)))
            == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        // Two-block message (56 bytes) from FIPS 180-4 examples.
        #expect(StableID.hex(SHA256.hash(data: Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)))
            == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        let million = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
        #expect(StableID.hex(SHA256.hash(data: million))
            == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func stableIDSeparatesParts() {
        #expect(StableID.hash(["ab", "c"]) != StableID.hash(["a", "bc"]))
        #expect(StableID.hash(["rule", "user"]) == StableID.hash(["rule", "user"]))
        #expect(StableID.hash(["x"]).count == 32)
    }
}

@Suite struct JSONTests {
    @Test func roundTripIsSortedAndCompact() throws {
        let text = #"{ "b": [1, 2.5, true, null], "a": "x\"y\n\u00e9\ud83d\ude00" }"#
        let value = try JSON.parse(text)
        #expect(value.jsonText == "{\"a\":\"x\\\"y\\né\u{1F600}\",\"b\":[1,2.5,true,null]}")
        #expect(try JSON.parse(value.jsonText) == value)
    }

    @Test func integersStayExact() throws {
        let value = try JSON.parse("1714567890123")
        #expect(value == .int(1_714_567_890_123))
        #expect(try JSON.parse("-0.5e2") == .double(-50))
    }

    @Test(arguments: [
        ("", JSONParseError.Reason.unexpectedEnd),
        ("{\"a\":", .unexpectedEnd),
        ("{\"a\" 1}", .unexpectedCharacter),
        ("[1,]", .unexpectedCharacter),
        ("01", .trailingData),
        ("\"\\x\"", .invalidEscape),
        ("\"\\ud800\"", .invalidEscape),
        ("1.", .invalidNumber),
        ("{} {}", .trailingData),
        ("\"a\u{01}b\"", .controlCharacterInString),
    ])
    func rejectsMalformed(input: String, reason: JSONParseError.Reason) {
        #expect(throws: JSONParseError.self) { try JSON.parse(input) }
        do { _ = try JSON.parse(input) } catch { #expect(error.reason == reason) }
    }

    @Test func rejectsInvalidUTF8() {
        let bytes: [UInt8] = [0x22, 0xFF, 0xFE, 0x22]
        do { _ = try JSON.parse(bytes); Issue.record("accepted invalid UTF-8") } catch {
            #expect(error.reason == .invalidUTF8)
        }
    }

    @Test func hostileNestingIsRejectedNotCrashing() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        do { _ = try JSON.parse(deep); Issue.record("accepted") } catch { #expect(error.reason == .tooDeep) }
        let ok = String(repeating: "[", count: 200) + String(repeating: "]", count: 200)
        #expect((try? JSON.parse(ok)) != nil)
    }

    @Test func pathsReadAndWrite() throws {
        var value = try JSON.parse(#"{"actor":{"user":{"name":"alice"}},"resources":[{"uid":"i-1"}]}"#)
        #expect(value.value(at: "actor.user.name") == "alice")
        #expect(value.value(at: "resources.0.uid") == "i-1")
        #expect(value.value(at: "resources.1.uid") == nil)
        value.set("cloud.region", "eu-west-1")
        #expect(value.value(at: "cloud.region") == "eu-west-1")
        value.set("actor.user.name", nil)
        #expect(value.value(at: "actor.user.name") == nil)
        #expect(value.value(at: "actor.user") == .object([:]))
    }

    @Test func pathEdgeCases() throws {
        let value = try JSON.parse(#"{"a":{"":{"b":1}},"list":[[10,20]],"é":{"ü":"x"},"n":5,"":{"k":2}}"#)
        #expect(value.value(at: "a..b") == 1)  // an empty component is the empty key
        #expect(value.value(at: ".k") == 2)
        #expect(value.value(at: "list.0.1") == 20)
        #expect(value.value(at: "list.0.2") == nil)
        #expect(value.value(at: "list.-1") == nil)
        #expect(value.value(at: "list.x") == nil)
        #expect(value.value(at: "é.ü") == "x")
        #expect(value.value(at: "n.anything") == nil)
        #expect(value.value(at: "missing") == nil)
        #expect(value.value(at: "n") == 5)
        #expect(JSON.int(1).value(at: "a") == nil)
    }
}

@Suite struct TimestampTests {
    @Test func parsesRFC3339Forms() {
        #expect(Timestamp.parseISO8601("1970-01-01T00:00:00Z") == 0)
        #expect(Timestamp.parseISO8601("2024-05-01T12:34:56Z") == 1_714_566_896_000)
        #expect(Timestamp.parseISO8601("2024-05-01T12:34:56.789Z") == 1_714_566_896_789)
        #expect(Timestamp.parseISO8601("2024-05-01T14:34:56+02:00") == 1_714_566_896_000)
        #expect(Timestamp.parseISO8601("2024-05-01 12:34:56") == 1_714_566_896_000)
        #expect(Timestamp.parseISO8601("2024-13-01T00:00:00Z") == nil)
        #expect(Timestamp.parseISO8601("yesterday") == nil)
        #expect(Timestamp.parseISO8601("2024-05-01T12:34:56Zjunk") == nil)
    }

    @Test func formatsAndRoundTrips() {
        #expect(Timestamp.formatISO8601(1_714_566_896_789) == "2024-05-01T12:34:56.789Z")
        for millis: Int64 in [0, 951_782_400_000, 4_102_444_799_999, -86_400_000] {
            #expect(Timestamp.parseISO8601(Timestamp.formatISO8601(millis)) == millis)
        }
    }
}

@Suite struct SHA256StreamingTests {
    @Test func feedingInPiecesEqualsOneShot() {
        var generator = SystemRandomNumberGenerator()
        let data = (0..<10_000).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let whole = SHA256.hash(data: data)
        for split in [1, 3, 63, 64, 65, 127, 1000] {
            var hasher = SHA256()
            var index = 0
            while index < data.count {
                let end = min(index + split, data.count)
                hasher.update(data: data[index..<end])
                index = end
            }
            #expect(hasher.finalize() == whole, "pieces of \(split)")
        }
        // A non-contiguous sequence takes the copying path and agrees too.
        var lazy = SHA256()
        lazy.update(data: data.lazy.map { $0 })
        #expect(lazy.finalize() == whole)
    }
}
