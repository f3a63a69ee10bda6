import Foundation
import OCSF
import Testing
import YAMLFiles
import Yams

@Suite("YAML reader")
struct YAMLReaderTests {
    let reader = YAMLReader(file: "conf/x.yaml")

    /// The single document of `yaml`.
    func document(_ yaml: String) throws -> Node {
        let documents = try reader.documents(yaml)
        try #require(documents.count == 1)
        return documents[0]
    }

    /// The problem `body` throws, or `nil` (recorded as an issue) when it throws none.
    func problem<T>(_ body: () throws(YAMLProblem) -> T) -> YAMLProblem? {
        do {
            let value = try body()
            Issue.record("expected a problem, got \(value)")
            return nil
        } catch {
            return error
        }
    }

    @Test func readsValues() throws {
        let root = try document("""
            name: vigil
            count: 42
            on: TRUE
            tags: [a, b]
            one: solo
            values: [1, 2.5, "3", null, x]
            """)
        let members = try reader.mapping(root, allowed: ["name", "count", "on", "tags", "one", "values"], what: "config")
        #expect(try reader.string(reader.required(members, "name", in: root, what: "config"), what: "name") == "vigil")
        #expect(try reader.int(members["count"]!, what: "count") == 42)
        #expect(try reader.bool(members["on"]!, what: "on") == true)
        #expect(try reader.stringList(members["tags"]!, what: "tags") == ["a", "b"])
        #expect(try reader.stringList(members["one"]!, what: "one") == ["solo"])
        #expect(try reader.scalarList(members["values"]!, what: "values") == [.int(1), .double(2.5), .string("3"), .null, .string("x")])
        #expect(try reader.scalarJSON(members["on"]!, what: "on") == .bool(true))
    }

    @Test func problemsNameFileAndLine() throws {
        let root = try document("a: 1\nb: ''\nc: []\nd: null\ne: [x, 7]\n")
        let members = try reader.mapping(root, allowed: ["a", "b", "c", "d", "e"], what: "config")

        let unknown = problem { () throws(YAMLProblem) in try reader.mapping(root, allowed: ["a"], what: "config") }
        #expect(unknown == YAMLProblem(kind: .invalid, file: "conf/x.yaml", line: 2,
                                       reason: "unknown key 'b' in config (expected one of: a)"))
        #expect(problem { () throws(YAMLProblem) in try reader.required(members, "z", in: root, what: "config") }?.line == 1)
        #expect(problem { () throws(YAMLProblem) in try reader.string(members["b"]!, what: "b") }?.reason == "b must not be empty")
        #expect(try reader.string(members["b"]!, what: "b", allowEmpty: true) == "")
        #expect(problem { () throws(YAMLProblem) in try reader.string(members["d"]!, what: "d", allowEmpty: true) }?.line == 4)
        #expect(try reader.stringList(members["c"]!, what: "c") == [])
        let emptyList = problem { () throws(YAMLProblem) in try reader.stringList(members["c"]!, what: "c", allowEmptyList: false) }
        #expect(emptyList?.reason == "c must be a non-empty list of strings")
        #expect(emptyList?.line == 3)
        #expect(problem { () throws(YAMLProblem) in try reader.int(members["b"]!, what: "b") }?.kind == .invalid)
        #expect(problem { () throws(YAMLProblem) in try reader.bool(members["a"]!, what: "a") }?.line == 1)
        #expect(problem { () throws(YAMLProblem) in try reader.scalarList(members["c"]!, what: "c") }?.reason == "c must not be an empty list")
        #expect(problem { () throws(YAMLProblem) in try reader.scalarJSON(members["e"]!, what: "e") }?.line == 5)
    }

    @Test func syntaxErrorNamesItsLineWithoutContent() {
        let failure = problem { () throws(YAMLProblem) in try reader.documents("a: 1\nb: {c: secret-value\nd: 2\n") }
        #expect(failure?.kind == .syntax)
        #expect(failure?.file == "conf/x.yaml")
        #expect(failure?.line == 3)
        #expect(failure?.reason.hasPrefix("not valid YAML") == true)
        #expect(failure?.description.hasPrefix("conf/x.yaml:3: syntax: not valid YAML") == true)
        #expect(failure?.description.contains("secret-value") == false)

        let duplicate = problem { () throws(YAMLProblem) in try reader.documents("a: 1\na: 2\n") }
        #expect(duplicate?.kind == .syntax)
        #expect(duplicate?.reason == "duplicate key in a mapping")
    }

    @Test func documentsKeepTheirLines() throws {
        let documents = try reader.documents("a: 1\n---\nb: 2\n")
        #expect(documents.map { $0.mark?.line } == [1, 3])
        #expect(try reader.documents("").isEmpty)
    }
}

@Suite("YAML directory")
struct YAMLDirectoryTests {
    /// A fresh temporary directory, removed by `body`'s caller via the returned path.
    static func temporaryDirectory() throws -> String {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("vigil-yamlfiles-\(UInt64.random(in: 0 ... .max))").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func write(_ text: String, to path: String) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    @Test func sortedYAMLFilesWithHiddenEntriesSkipped() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Self.write("b: 1\n", to: directory + "/b.yml")
        try Self.write("a: 1\n", to: directory + "/a.yaml")
        try Self.write("n: 1\n", to: directory + "/sub/nested.yaml")
        try Self.write("h: 1\n", to: directory + "/.hidden.yaml")
        try Self.write("h: 1\n", to: directory + "/.git/inside.yaml")
        try Self.write("h: 1\n", to: directory + "/sub/.inner/deep.yaml")
        try Self.write("not yaml\n", to: directory + "/README.md")

        let files = try YAMLDirectory.files(in: directory)
        #expect(files.map(\.path) == [directory + "/a.yaml", directory + "/b.yml", directory + "/sub/nested.yaml"])
        #expect(files.map(\.text) == ["a: 1\n", "b: 1\n", "n: 1\n"])
        // A trailing slash does not double the separator.
        #expect(try YAMLDirectory.files(in: directory + "/").first?.path == directory + "/a.yaml")
    }

    @Test func directoryThroughSymlinkIsWalked() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Self.write("a: 1\n", to: directory + "/real/a.yaml")
        try FileManager.default.createSymbolicLink(atPath: directory + "/link", withDestinationPath: directory + "/real")
        #expect(try YAMLDirectory.files(in: directory + "/link").map(\.path) == [directory + "/link/a.yaml"])
    }

    @Test func nonUTF8FileIsUnreadable() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Self.write("a: 1\n", to: directory + "/a.yaml")
        try Data([0x61, 0x3A, 0x20, 0xFF, 0xFE, 0x0A]).write(to: URL(fileURLWithPath: directory + "/b.yaml"))
        #expect(throws: YAMLProblem(kind: .unreadable, file: directory + "/b.yaml", reason: "not UTF-8 text")) {
            try YAMLDirectory.files(in: directory)
        }
    }

    @Test func missingDirectoryIsUnreadable() {
        let missing = "/nonexistent/vigil/yaml"
        #expect(throws: YAMLProblem(kind: .unreadable, file: missing, reason: "not a readable directory")) {
            try YAMLDirectory.files(in: missing)
        }
    }
}
