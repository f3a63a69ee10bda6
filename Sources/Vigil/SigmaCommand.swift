import ArgumentParser
import Detection
import Foundation
import OCSF

/// `vigil rules import-sigma FILE|DIR... [--out DIR] [--json]`.
struct RulesImportSigma: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import-sigma",
        abstract: "Convert Sigma rules (AWS CloudTrail) into Vigil rules, reporting each rule converted or why not.",
        discussion: """
            Every *.yml / *.yaml under the given directories (hidden entries skipped) and every given file is read as Sigma: \
            detection rules and correlation rules (event_count, value_count), each converted into one Vigil rule with id \
            sigma.<Sigma id>. Sigma fields are mapped to the OCSF paths Vigil's CloudTrail normalizer fills; a rule that needs \
            a field, modifier or construct Vigil cannot express is reported with the reason and not written. Each written rule \
            loads with `vigil rules check`, carries the Sigma author and the Detection Rule License in its header and \
            description, and is tagged `sigma`. docs/sigma.md lists what is supported and the field table.

            Without --out nothing is written. The exit status is 0 when the input could be read, whatever the conversion \
            rate; 1 when it could not or held no Sigma file.

            Examples:
              vigil rules import-sigma sigma/rules/cloud/aws --out rules/sigma
              vigil rules import-sigma aws_cloudtrail_disable_logging.yml
              vigil rules import-sigma sigma/rules/cloud/aws --json | tail -1 | jq .rate
            """)

    @Argument(help: "Sigma rule files or directories.") var paths: [String]
    @Option(help: "Directory to write the converted rules to (created if missing). Default: write nothing.") var out: String?
    @Flag(help: "End with one JSON line: {rules, converted, failed, rate, failures: [{file, reason}]}.") var json = false

    func validate() throws {
        guard !paths.isEmpty else { throw ValidationError("Give at least one Sigma rule file or directory.") }
    }

    func run() async throws {
        var files: [(path: String, text: String)] = []
        for path in paths {
            do { files += try Self.sigmaFiles(at: path) } catch {
                printError("\(path): \(error)")
                throw ExitCode(1)
            }
        }
        guard !files.isEmpty else {
            printError("no *.yml or *.yaml file under \(paths.joined(separator: ", "))")
            throw ExitCode(1)
        }
        let report = SigmaImport.convert(files: files)
        if let out {
            do {
                try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
                for outcome in report.written {
                    guard let name = outcome.outputName, let yaml = outcome.yaml else { continue }
                    try Data(yaml.utf8).write(to: URL(fileURLWithPath: out).appendingPathComponent(name))
                }
            } catch {
                printError("cannot write to \(out): \(error.localizedDescription)")
                throw ExitCode(1)
            }
        }
        for outcome in report.outcomes {
            if let failure = outcome.failure {
                print("not converted \(outcome.file): \(failure)")
            } else if let name = outcome.outputName, let id = outcome.ruleID {
                let target = out.map { ($0.hasSuffix("/") ? $0 : $0 + "/") + name } ?? name
                print("converted     \(outcome.file) -> \(target) (\(id))")
            } else {
                print("converted     \(outcome.file): \(outcome.note ?? "no rule of its own")")
            }
        }
        print(report.summary + (out == nil ? "; nothing written (no --out)" : ""))
        if json { print(report.json().jsonText) }
    }

    /// The YAML files of `path`: the file itself, or every *.yml / *.yaml below the directory
    /// (hidden entries skipped), in path order.
    static func sigmaFiles(at path: String) throws -> [(path: String, text: String)] {
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        guard manager.fileExists(atPath: path, isDirectory: &isDirectory) else { throw SigmaInputError("no such file or directory") }
        var found: [String] = []
        if isDirectory.boolValue {
            guard let walker = manager.enumerator(atPath: URL(fileURLWithPath: path).resolvingSymlinksInPath().path) else {
                throw SigmaInputError("not a readable directory")
            }
            while let next = walker.nextObject() as? String {
                if next.split(separator: "/").contains(where: { $0.hasPrefix(".") }) { continue }
                if next.hasSuffix(".yml") || next.hasSuffix(".yaml") {
                    found.append((path.hasSuffix("/") ? path : path + "/") + next)
                }
            }
            found.sort()
        } else {
            found = [path]
        }
        return try found.map { file in
            guard let data = manager.contents(atPath: file) else { throw SigmaInputError("\(file): cannot read the file") }
            guard let text = String(validating: data, as: UTF8.self) else { throw SigmaInputError("\(file): not UTF-8 text") }
            return (file, text)
        }
    }
}

/// A Sigma input path that cannot be read.
struct SigmaInputError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

private func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
