import Foundation

/// Finds and reads the YAML files of a configuration directory (rules, playbooks).
public enum YAMLDirectory {
    /// Every `*.yaml` / `*.yml` file under `directory`, recursively, with its text.
    ///
    /// Entries whose name starts with `.` (and everything below a hidden directory) are
    /// skipped. A `directory` that is itself a symlink is resolved before it is walked, but
    /// the returned paths start with `directory` as given. Paths are sorted, so the result
    /// does not depend on the file system's listing order.
    ///
    /// - Throws: `YAMLProblem` of kind `.unreadable` naming the directory when it is not a
    ///   readable directory, or naming the first file (in path order) that cannot be read
    ///   or is not UTF-8 text.
    public static func files(in directory: String) throws(YAMLProblem) -> [(path: String, text: String)] {
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        guard manager.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue,
              // Resolved so a directory reached through a symlink is still walked.
              let enumerator = manager.enumerator(atPath: URL(fileURLWithPath: directory).resolvingSymlinksInPath().path)
        else {
            throw YAMLProblem(kind: .unreadable, file: directory, reason: "not a readable directory")
        }
        var relativePaths: [String] = []
        while let next = enumerator.nextObject() as? String {
            if next.split(separator: "/").contains(where: { $0.hasPrefix(".") }) { continue }
            if next.hasSuffix(".yaml") || next.hasSuffix(".yml") { relativePaths.append(next) }
        }
        var files: [(path: String, text: String)] = []
        for relative in relativePaths.sorted() {
            let path = directory.hasSuffix("/") ? directory + relative : directory + "/" + relative
            guard let data = manager.contents(atPath: path) else {
                throw YAMLProblem(kind: .unreadable, file: path, reason: "cannot read the file")
            }
            guard let text = String(validating: data, as: UTF8.self) else {
                throw YAMLProblem(kind: .unreadable, file: path, reason: "not UTF-8 text")
            }
            files.append((path, text))
        }
        return files
    }
}
