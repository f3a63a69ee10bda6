import Foundation
import OCSF
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Posts notifications to HTTP webhooks: one attempt per call (the executor retries).
///
/// The body is JSON: the command's facts (`format: json`, the default), or a Slack-compatible
/// `{"text": ...}` message (`format: slack`). The command id goes in an `Idempotency-Key`
/// header, so a receiver that honours it drops the repeat a crash-and-retry may send.
public struct WebhookNotifier: Sendable {
    /// How long one request may take.
    public var timeout: Duration

    /// A notifier with a per-request timeout.
    public init(timeout: Duration = .seconds(10)) { self.timeout = timeout }

    /// The webhook URL for a notify command: `params.webhook`, else the variable named by
    /// `params.webhook_env`, else `VIGIL_WEBHOOK_<CHANNEL>` (upper-cased, other characters as
    /// `_`). URLs stay out of playbook files this way; they are secrets for most chat tools.
    public static func url(for command: ResponseCommand, environment: [String: String]) throws(ResponseError) -> URL {
        let channel = command.params["channel"] ?? command.target
        let variable = command.params["webhook_env"] ?? "VIGIL_WEBHOOK_" + String(channel.uppercased().map {
            $0.isASCII && ($0.isLetter || $0.isNumber) ? $0 : "_"
        })
        guard let text = command.params["webhook"] ?? environment[variable], !text.isEmpty else {
            throw ResponseError(code: .notConfigured, reason: "no webhook for channel '\(channel)': set params.webhook or \(variable)")
        }
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https", url.host != nil else {
            throw ResponseError(code: .notConfigured, reason: "the webhook for channel '\(channel)' is not an http(s) URL")
        }
        return url
    }

    /// The notification body for a command.
    public static func body(for command: ResponseCommand) -> [UInt8] {
        let json = command.json
        let severity = json["severity"]?.stringValue ?? "Unknown"
        let text = "[Vigil] \(severity) alert \(command.alertID): rule \(command.ruleID) (playbook \(command.playbook))"
        if command.params["format"] == "slack" {
            let payload: JSON = ["text": .string(text)]
            return payload.serialized()
        }
        var payload: JSON = [
            "text": .string(text),
            "command_id": .string(command.id),
            "alert_id": .string(command.alertID),
            "rule_id": .string(command.ruleID),
            "severity": .string(severity),
            "playbook": .string(command.playbook),
            "channel": .string(command.target),
        ]
        if let time = json["created_time"] { payload["alert_time"] = time }
        return payload.serialized()
    }

    /// Posts `body` to `url` once; a status outside 2xx throws `webhook_failed` (retriable for
    /// 408, 429 and 5xx, and for network failures).
    public func post(to url: URL, body: [UInt8], idempotencyKey: String) async throws(ResponseError) {
        var request = URLRequest(url: url)
        request.httpMethod = "POST"
        request.timeoutInterval = Double(timeout.components.seconds)
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.setValue(idempotencyKey, forHTTPHeaderField: "Idempotency-Key")
        request.httpBody = Data(body)
        let response: URLResponse
        do {
            (_, response) = try await URLSession.shared.data(for: request)
        } catch {
            // Not the error's description: it names the URL, and webhook URLs carry secrets.
            let code = (error as? URLError).map { " (URLError \($0.code.rawValue))" } ?? ""
            throw ResponseError(code: .webhookFailed, reason: "webhook unreachable\(code)", isRetriable: true)
        }
        guard let http = response as? HTTPURLResponse else {
            throw ResponseError(code: .webhookFailed, reason: "webhook answered with something other than HTTP", isRetriable: true)
        }
        guard (200..<300).contains(http.statusCode) else {
            let status = http.statusCode
            throw ResponseError(code: .webhookFailed, reason: "webhook answered HTTP \(status)",
                                isRetriable: status >= 500 || status == 429 || status == 408)
        }
    }
}
