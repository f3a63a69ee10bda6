import Foundation

/// An access key pair, with the session token of temporary credentials.
///
/// `description` shows only the access key id: the secret and the token never reach a log.
public struct AWSCredentials: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The access key id (`AKIA...`, `ASIA...`).
    public var accessKeyID: String
    /// The secret access key.
    public var secretAccessKey: String
    /// The session token of temporary (STS) credentials.
    public var sessionToken: String?

    /// Makes credentials.
    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }

    /// `AWSCredentials(AKIDEXAMPLE, secret: <redacted>, session token: <redacted>)`.
    public var description: String {
        "AWSCredentials(\(accessKeyID), secret: <redacted>\(sessionToken == nil ? "" : ", session token: <redacted>"))"
    }

    /// Same as `description`: debug output must not leak the secret either.
    public var debugDescription: String { description }

    /// From `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`, when both keys are set.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> AWSCredentials? {
        guard let id = environment["AWS_ACCESS_KEY_ID"], !id.isEmpty,
              let secret = environment["AWS_SECRET_ACCESS_KEY"], !secret.isEmpty else { return nil }
        let token = environment["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        return AWSCredentials(accessKeyID: id, secretAccessKey: secret, sessionToken: token)
    }

    /// Parses the text of a shared credentials file (INI: `[profile]`, `key = value`, `#`/`;`
    /// comments) and returns the named profile's keys, or `nil` when the profile is absent or
    /// incomplete.
    public static func parseSharedCredentials(_ text: String, profile: String) -> AWSCredentials? {
        var current: String?
        var values: [String: String] = [:]
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") && line.hasSuffix("]") {
                var name = String(line.dropFirst().dropLast()).trimmingCharacters(in: .whitespaces)
                // `[profile x]` belongs in ~/.aws/config, but tolerate it here too.
                if name.hasPrefix("profile ") { name = String(name.dropFirst(8)).trimmingCharacters(in: .whitespaces) }
                current = name
                continue
            }
            guard current == profile, let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            values[key] = value
        }
        guard let id = values["aws_access_key_id"], !id.isEmpty,
              let secret = values["aws_secret_access_key"], !secret.isEmpty else { return nil }
        let token = values["aws_session_token"].flatMap { $0.isEmpty ? nil : $0 }
        return AWSCredentials(accessKeyID: id, secretAccessKey: secret, sessionToken: token)
    }

    /// The shared credentials file: `AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`.
    public static func sharedCredentialsPath(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let explicit = environment["AWS_SHARED_CREDENTIALS_FILE"], !explicit.isEmpty {
            return (explicit as NSString).expandingTildeInPath
        }
        let home = environment["HOME"] ?? NSHomeDirectory()
        return (home as NSString).appendingPathComponent(".aws/credentials")
    }

    /// The standard chain: environment variables, then the shared credentials file's
    /// `AWS_PROFILE` (default `default`) profile. Throws `missing_credentials` when neither has
    /// keys, `credentials_file_unreadable` when the file exists but cannot be read.
    public static func load(environment: [String: String] = ProcessInfo.processInfo.environment) throws(AWSError) -> AWSCredentials {
        if let fromEnvironment = fromEnvironment(environment) { return fromEnvironment }
        let path = sharedCredentialsPath(environment)
        let profile = environment["AWS_PROFILE"].flatMap { $0.isEmpty ? nil : $0 } ?? "default"
        if FileManager.default.fileExists(atPath: path) {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw AWSError(code: "credentials_file_unreadable", message: "cannot read \(path)")
            }
            if let found = parseSharedCredentials(String(decoding: data, as: UTF8.self), profile: profile) { return found }
            throw AWSError(code: "missing_credentials", message: "profile \(profile) in \(path) has no access key pair")
        }
        throw AWSError(code: "missing_credentials",
                       message: "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or create \(path)")
    }
}
