import Foundation
import Normalize
import OCSF

/// The sample corpora the other normalize tests read, gathered so every event they produce can
/// be checked against the pinned OCSF schema.
enum ConformanceCorpus {
    /// One corpus: a fixture folder (or the repository's `samples/`) and the header its records carry.
    struct Corpus: Sendable {
        var name: String
        var source: String
        var files: [URL]
    }

    /// Fixture folders by the `vigil-source` header their records carry. `own`, `otrf` and
    /// `streamalert` (top level) are CloudTrail.
    static let folders: [(folder: String, source: String)] = [
        ("otrf", "cloudtrail"), ("own", "cloudtrail"), ("streamalert", "cloudtrail"),
        ("asff", "asff"), ("awsconfig", "awsconfig"), ("azure-activity", "azure-activity"),
        ("fim", "fim"), ("gcp-audit", "gcp-audit"), ("inspector", "inspector"), ("nessus", "nessus"),
        ("okta", "okta"), ("qualys", "qualys"), ("syslog", "syslog"), ("vpcflow", "vpcflow"),
    ]

    /// Fixtures of other formats that the other tests use only to show a parser refuses them
    /// (they are not records of the folder's source, so forcing its header on them says nothing).
    static let foreignFixtures: Set<String> = [
        "aliyun_actiontrail.json", "entra_signin_not_activity.json", "not_audit_text_payload.json",
    ]

    /// Files that hold records (not licences, provenance notes or foreign fixtures).
    static func isData(_ url: URL) -> Bool {
        let name = url.lastPathComponent
        return !name.hasPrefix("LICENSE") && name != "SOURCES.md" && !name.hasPrefix(".") && !foreignFixtures.contains(name)
    }

    static func fixturesRoot() throws -> URL {
        guard let root = Bundle.module.url(forResource: "Fixtures", withExtension: nil) else {
            throw CocoaError(.fileNoSuchFile)
        }
        return root
    }

    /// The repository's `samples/` folder (demo data, CloudTrail), found from this source file.
    static var samplesRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("samples/cloudtrail")
    }

    static func files(under root: URL) -> [URL] {
        guard let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey]) else { return [] }
        var out: [URL] = []
        for case let url as URL in walker where isData(url) {
            if (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true { out.append(url) }
        }
        return out.sorted { $0.path < $1.path }
    }

    static func all() throws -> [Corpus] {
        let root = try fixturesRoot()
        var corpora = folders.map { entry in
            Corpus(name: entry.folder, source: entry.source, files: files(under: root.appendingPathComponent(entry.folder)))
        }
        corpora.append(Corpus(name: "samples", source: "cloudtrail", files: files(under: samplesRoot)))
        return corpora
    }

    /// Files that hold one JSON record per line although they end in `.json`.
    static let lineFiles: Set<String> = ["ec2_proxy_s3_exfiltration_2020-09-14011940.json"]

    /// The records of one file as the other tests feed them: JSON lines one record per line
    /// (StreamAlert's flat test file only the lines of the corpus's own log type), StreamAlert
    /// rule-test arrays their `data` members, the VPC flow examples document one S3-style file
    /// per example, everything else the whole file as one record.
    static func records(of url: URL, corpus: Corpus) throws -> [[UInt8]] {
        let bytes = [UInt8](try Data(contentsOf: url))
        let ext = url.pathExtension
        if ext == "jsonl" || ext == "ndjson" || lineFiles.contains(url.lastPathComponent) {
            return bytes.split(separator: 0x0A).compactMap { line -> [UInt8]? in
                // A line that is not JSON (the fixtures include broken ones) goes as it is.
                if let record = try? JSON.parse(line), let log = record["log"]?.stringValue, let data = record["data"] {
                    return log.hasPrefix(corpus.name + ":") ? data.serialized() : nil
                }
                return Array(line)
            }
        }
        if url.lastPathComponent == "flow_log_examples.json", let entries = try JSON.parse(bytes).arrayValue {
            return entries.map { entry in
                let format = entry["format"]?.arrayValue?.compactMap(\.stringValue) ?? []
                let lines = entry["records"]?.arrayValue?.compactMap(\.stringValue) ?? []
                return Array((([format.joined(separator: " ")] + lines).joined(separator: "\n") + "\n").utf8)
            }
        }
        if ext == "json", let cases = try? JSON.parse(bytes).arrayValue,
           !cases.isEmpty, cases.allSatisfy({ $0["data"] != nil && $0["log"] != nil }) {
            return cases.compactMap { $0["data"]?.serialized() }
        }
        return [bytes]
    }

    /// Every event the corpus yields, with the file it came from. Failures are the other tests' business.
    static func events(of corpus: Corpus) throws -> [(file: String, event: JSON)] {
        var out: [(file: String, event: JSON)] = []
        for url in corpus.files {
            for record in try records(of: url, corpus: corpus) {
                let result = Normalizer().normalize(RawRecord(bytes: record, source: corpus.source, recordTime: 1_700_000_000_000))
                for event in result.events { out.append((url.lastPathComponent, event)) }
            }
        }
        return out
    }
}
