import Foundation
import Normalize
import OCSF
import Testing

/// Every event the normalize tests' sample corpora produce, checked against the OCSF 1.3.0
/// classes pinned in `Fixtures/ocsf-schema/schema.json` (see docs/sources.md, "OCSF conformance").
@Suite("OCSF conformance")
struct OCSFConformanceTests {
    /// A non-conformance that is known and owned elsewhere: it is reported as a known issue (the
    /// test stays green, and stays green once it is fixed); anything else fails the test.
    struct KnownNonConformance: Sendable {
        var corpora: Set<String>
        var classUID: Int64
        /// The problem's path with array indices written `[]`.
        var path: String
        var message: String
        var why: String

        func matches(corpus: String, classUID: Int64, problem: ConformanceProblem) -> Bool {
            corpora.contains(corpus) && classUID == self.classUID && OCSFConformanceTests.shape(problem.path) == path
                && problem.message.contains(message)
        }
    }

    static let cloudTrailCorpora: Set<String> = ["otrf", "own", "streamalert", "samples"]

    /// What stays non-conformant, and why (docs/sources.md, "OCSF conformance", has the reasons
    /// at length). Fixed since: `cvss.vendor_name` (now `unmapped.cvss_sources`) and Prowler
    /// checks without `compliance.standards` (now from `Types`, else the product's catalogue).
    static let known: [KnownNonConformance] = [
        KnownNonConformance(corpora: ["awsconfig"], classUID: 5019, path: "resources", message: "not an attribute",
                            why: "Device Config State Change 5019 has no resources in OCSF 1.3.0; AWS Config items are put there because the inventory (Sources/Inventory/InventoryUpdates.swift) reads the item from resources[0]: moving it needs that reader changed first"),
        KnownNonConformance(corpora: ["fim"], classUID: 1001, path: "actor", message: "missing required",
                            why: "osquery file_events rows, Wazuh syscheck alerts without who-data and AIDE reports do not say who changed the file; File System Activity requires an actor and Vigil does not invent one"),
        KnownNonConformance(corpora: ["fim"], classUID: 1001, path: "device", message: "missing required",
                            why: "AIDE reports name no host, so AIDE events have no device (FileIntegrityTests pins its absence); File System Activity requires one"),
    ]

    /// Events each corpus yielded when this test was written: a corpus that shrinks (a fixture
    /// no longer read, a parser that stopped producing events) would otherwise pass vacuously.
    static let minimumEvents: [String: Int] = [
        "otrf": 103, "own": 6, "streamalert": 3, "asff": 768, "awsconfig": 11, "azure-activity": 10, "fim": 23, "gcp-audit": 9,
        "inspector": 43, "nessus": 200, "okta": 12, "qualys": 306, "syslog": 26, "vpcflow": 26, "samples": 13,
    ]

    static func shape(_ path: String) -> String {
        path.replacingOccurrences(of: #"\[\d+\]"#, with: "[]", options: .regularExpression)
    }

    static func validator() throws -> OCSFValidator {
        OCSFValidator(schema: try PinnedOCSFSchema.pinned())
    }

    @Test("The pinned schema is the version Vigil's events declare, and has every class Vigil emits")
    func pinnedVersion() throws {
        let schema = try PinnedOCSFSchema.pinned()
        #expect(schema.version == ocsfVersion)
        #expect(Set(schema.classes.keys) == Set(OCSFClass.allCases.map(\.rawValue)))
        #expect(schema.classes[3002]?.attributes["user"]?.requirement == .required)
        #expect(schema.objects["metadata"]?.attributes["version"]?.requirement == .required)
        #expect(schema.objects["resource_details"]?.attributes["region"]?.profile == "cloud")
    }

    @Test("Every event of a sample corpus conforms to its OCSF 1.3.0 class", arguments: minimumEvents.keys.sorted())
    func corpus(_ name: String) throws {
        let corpus = try #require(try ConformanceCorpus.all().first { $0.name == name })
        let validator = try Self.validator()
        let events = try ConformanceCorpus.events(of: corpus)
        #expect(events.count >= Self.minimumEvents[name] ?? 1, "\(name): \(events.count) events")
        var unexpected: [String] = []
        var known: [String: [String]] = [:]
        for (file, event) in events {
            let classUID = event["class_uid"]?.intValue ?? 0
            for problem in validator.validate(event) {
                if let issue = Self.known.first(where: { $0.matches(corpus: name, classUID: classUID, problem: problem) }) {
                    known[issue.why, default: []].append("\(file): \(problem)")
                } else {
                    unexpected.append("\(file) (class \(classUID)): \(problem)")
                }
            }
        }
        #expect(unexpected.isEmpty, """
            \(unexpected.count) problem(s) in the \(events.count) events of \(name); the first:
            \(unexpected.prefix(10).joined(separator: "\n"))
            """)
        for (why, examples) in known.sorted(by: { $0.key < $1.key }) {
            withKnownIssue(Comment(rawValue: why), isIntermittent: true) {
                Issue.record("\(examples.count) problem(s), e.g. \(examples[0])")
            }
        }
    }

    /// A conforming event to break: a syslog authentication failure (host profile).
    func syslogEvent() throws -> JSON {
        let line = "Mar 14 09:12:01 web-1 sshd[4242]: Failed password for invalid user admin from 203.0.113.7 port 52311 ssh2"
        let result = Normalizer().normalize(RawRecord(bytes: Array(line.utf8), source: "syslog", recordTime: 1_710_000_000_000))
        let event = try #require(result.events.first)
        #expect(try Self.validator().validate(event).isEmpty, "the starting event must conform")
        return event
    }

    @Test("A missing required attribute is reported with its path, at the top level and nested")
    func missingRequired() throws {
        let validator = try Self.validator()
        var event = try syslogEvent()
        event["time"] = nil
        event.set("metadata.product.vendor_name", nil)
        let problems = validator.validate(event)
        #expect(problems.contains(ConformanceProblem(path: "time", message: "missing required attribute of class authentication")))
        #expect(problems.contains(ConformanceProblem(path: "metadata.product.vendor_name", message: "missing required attribute of object product")))
        #expect(problems.count == 2)

        var noUser = try syslogEvent()
        noUser["user"] = nil
        #expect(validator.validate(noUser).map(\.path) == ["user"])
    }

    @Test("A wrong type is reported: string for timestamp, string enum id, object for array, array for scalar, seconds for milliseconds")
    func wrongTypes() throws {
        let validator = try Self.validator()
        var event = try syslogEvent()
        event["time"] = "2024-03-14T09:12:01Z"
        event["severity_id"] = "1"
        event.set("src_endpoint.port", "52311")
        event["message"] = ["one", "two"]
        event.set("metadata.profiles", "host")
        event.set("metadata.original_time", 5)
        event["start_time"] = 1_710_407_521
        let problems = Dictionary(validator.validate(event).map { ($0.path, $0.message) }, uniquingKeysWith: { $0 + "; " + $1 })
        #expect(problems["time"] == "expected timestamp_t, found a string")
        #expect(problems["severity_id"] == "expected integer_t, found a string")
        #expect(problems["src_endpoint.port"] == "expected port_t, found a string")
        #expect(problems["message"] == "expected a single string_t, found an array")
        #expect(problems["metadata.profiles"] == "expected an array of string_t, found a string")
        #expect(problems["metadata.original_time"] == "expected string_t, found an integer")
        #expect(problems["start_time"] == "timestamp_t 1710407521 looks like seconds, not epoch milliseconds")
    }

    @Test("Unknown attributes are reported except under unmapped and vigil; profile attributes need their profile")
    func unknownAndProfiles() throws {
        let validator = try Self.validator()
        var event = try syslogEvent()
        event["colour"] = "blue"
        event.set("user.shoe_size", 44)
        event.set("unmapped.anything", ["goes": true])
        event.set("vigil.asset.id", "i-0abc")
        event["cloud"] = ["provider": "AWS"]
        let problems = validator.validate(event)
        #expect(problems.contains(ConformanceProblem(path: "colour", message: "not an attribute of class authentication")))
        #expect(problems.contains(ConformanceProblem(path: "user.shoe_size", message: "not an attribute of object user")))
        #expect(problems.contains(ConformanceProblem(path: "cloud", message: "belongs to profile cloud, which metadata.profiles does not declare")))
        #expect(!problems.contains { $0.path.hasPrefix("unmapped") || $0.path.hasPrefix("vigil") })
        #expect(problems.count == 3)

        // Declaring the profile makes cloud (and its required provider) part of the class.
        event.set("metadata.profiles", ["host", "cloud"])
        event["cloud"] = ["region": "eu-west-1"]
        #expect(validator.validate(event).contains(ConformanceProblem(path: "cloud.provider", message: "missing required attribute of object cloud")))
    }

    @Test("Array elements are checked one by one, with their index in the path")
    func arrays() throws {
        let validator = try Self.validator()
        var event = try syslogEvent()
        event["enrichments"] = nil
        event["observables"] = nil
        event.set("user.groups", [["name": "wheel"], ["name": 7]])
        #expect(validator.validate(event) == [ConformanceProblem(path: "user.groups[1].name", message: "expected string_t, found an integer")])
    }
}
