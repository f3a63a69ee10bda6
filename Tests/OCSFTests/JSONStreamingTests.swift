import OCSF
import Testing

/// `JSON.parseObject(buffer:streamingArrayAt:element:)` against `JSON.parse` of the same bytes.
@Suite struct JSONStreamingTests {
    /// Streams `text`, collecting what it hands over.
    func stream(_ text: String) -> (Result<JSONStreamedObject, JSONParseError>?, [(Int, JSON)]) {
        var handed: [(Int, JSON)] = []
        let outcome = Array(text.utf8).withUnsafeBufferPointer { buffer in
            JSON.parseObject(buffer: buffer, streamingArrayAt: "Records") { handed.append(($0, $1)) }
        }
        return (outcome, handed)
    }

    @Test func elementsArriveInOrderAndTheRestAreMembers() throws {
        let (outcome, handed) = stream(#" {"a":1, "Records":[{"x":1}, 2 ,"three"], "b":[true]} "#)
        let object = try #require(try outcome?.get())
        #expect(object.streamedCount == 3)
        #expect(object.members == ["a": 1, "b": [true]])
        #expect(handed.map(\.0) == [0, 1, 2])
        #expect(handed.map(\.1) == [["x": 1], 2, "three"])
    }

    @Test func theLastOccurrenceOfTheKeyCounts() throws {
        let (again, handed) = stream(#"{"Records":[1,2],"Records":[3]}"#)
        #expect(try again?.get().streamedCount == 1)
        #expect(handed.map(\.0) == [0, 1, 0])
        let (notArray, _) = stream(#"{"Records":[1],"Records":{"k":2}}"#)
        let object = try #require(try notArray?.get())
        #expect(object.streamedCount == nil)
        #expect(object.members["Records"] == ["k": 2])
        let (empty, _) = stream(#"{"Records":[1],"Records":[]}"#)
        #expect(try empty?.get().streamedCount == 0)
    }

    @Test(arguments: [
        #"{"Records":[{"a":1},]}"#, #"{"Records":[1]} x"#, #"{"Records":[1]"#, #"{"Records":[1],"b":tru}"#,
        #"{"Records":[{"k":"\ud800"}]}"#, #"{"Records":[1}"#, "{\"Records\":[" + String(repeating: "[", count: 300),
    ])
    func failsExactlyAsParseDoes(text: String) {
        let (outcome, _) = stream(text)
        var expected: JSONParseError?
        do { _ = try JSON.parse(text) } catch { expected = error }
        guard case .failure(let error)? = outcome else {
            Issue.record("streaming accepted what parse rejects")
            return
        }
        #expect(error == expected)
    }

    @Test func notAnObjectIsLeftToParse() {
        #expect(stream(#"[{"Records":[]}]"#).0 == nil)
        #expect(stream("  ").0 == nil)
    }
}

/// A hasher that absorbed a shared prefix, copied and finished per suffix (flow-log uids).
@Suite struct SHA256PrefixTests {
    @Test func copiedPrefixEqualsHashingEverything() {
        var prefix = SHA256()
        prefix.update(data: Array("version account-id interface-id".utf8))
        prefix.update(byte: 0x1F)
        for length in [0, 1, 23, 24, 31, 32, 55, 56, 63, 64, 65, 100, 200] {
            let line = String(repeating: "7", count: length)
            var copy = prefix
            copy.update(data: Array(line.utf8))
            #expect(StableID.hex(of: copy) == StableID.hash(["version account-id interface-id", line]))
            #expect(StableID.hex(of: copy, length: 64) == StableID.hash(["version account-id interface-id", line], length: 64))
        }
    }
}
