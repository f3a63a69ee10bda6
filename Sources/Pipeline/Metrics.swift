import Synchronization

/// Counters and gauges of one process, rendered in the Prometheus text format.
/// Names follow Prometheus conventions (`vigil_records_in_total`); labels are fixed per series.
public final class MetricsRegistry: Sendable {
    private struct Series: Hashable {
        let name: String
        let labels: [String: String]
    }

    private struct State {
        var counters: [Series: Double] = [:]
        var gauges: [Series: Double] = [:]
        var help: [String: (String, String)] = [:]
    }

    private let state = Mutex(State())

    /// An empty registry.
    public init() {}

    /// Adds `amount` to a counter.
    public func increment(_ name: String, by amount: Double = 1, labels: [String: String] = [:], help: String = "") {
        state.withLock { state in
            state.counters[Series(name: name, labels: labels), default: 0] += amount
            if state.help[name] == nil { state.help[name] = ("counter", help) }
        }
    }

    /// Sets a gauge.
    public func set(_ name: String, _ value: Double, labels: [String: String] = [:], help: String = "") {
        state.withLock { state in
            state.gauges[Series(name: name, labels: labels)] = value
            if state.help[name] == nil { state.help[name] = ("gauge", help) }
        }
    }

    /// Removes every series of a gauge (for example lag of partitions no longer owned).
    public func clearGauge(_ name: String) {
        state.withLock { state in state.gauges = state.gauges.filter { $0.key.name != name } }
    }

    /// A counter's value (0 when absent); labels must match exactly.
    public func counter(_ name: String, labels: [String: String] = [:]) -> Double {
        state.withLock { $0.counters[Series(name: name, labels: labels)] ?? 0 }
    }

    /// Sum of a counter over all label sets.
    public func counterTotal(_ name: String) -> Double {
        state.withLock { $0.counters.filter { $0.key.name == name }.values.reduce(0, +) }
    }

    /// The Prometheus text exposition of every series.
    public func render() -> String {
        state.withLock { state in
            var out = ""
            let all = state.counters.map { ($0.key, $0.value) } + state.gauges.map { ($0.key, $0.value) }
            let byName = Dictionary(grouping: all, by: { $0.0.name })
            for name in byName.keys.sorted() {
                let (type, help) = state.help[name] ?? ("untyped", "")
                if !help.isEmpty { out += "# HELP \(name) \(help)\n" }
                out += "# TYPE \(name) \(type)\n"
                let lines = byName[name]!.map { series, value -> String in
                    let labels = series.labels.keys.sorted().map { key in
                        "\(key)=\"\(MetricsRegistry.escape(series.labels[key]!))\""
                    }
                    let labelText = labels.isEmpty ? "" : "{\(labels.joined(separator: ","))}"
                    return "\(name)\(labelText) \(MetricsRegistry.format(value))"
                }
                for line in lines.sorted() { out += line + "\n" }
            }
            return out
        }
    }

    private static func escape(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(character)
            }
        }
        return out
    }

    private static func format(_ value: Double) -> String {
        value.rounded() == value && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }
}

/// Liveness and readiness of a stage, for `/healthz` and `/readyz`.
public final class HealthState: Sendable {
    private let state = Mutex<(alive: Bool, ready: Bool, reason: String)>((true, false, "starting"))

    /// A stage that is alive and not yet ready.
    public init() {}

    /// Marks the stage ready (it has joined its group and can process).
    public func markReady() { state.withLock { $0 = (true, true, "ready") } }

    /// Marks the stage not ready, with a reason shown on `/readyz`.
    public func markNotReady(_ reason: String) { state.withLock { $0.ready = false; $0.reason = reason } }

    /// Marks the stage dead (a fatal error): `/healthz` fails so an orchestrator restarts it.
    public func markDead(_ reason: String) { state.withLock { $0 = (false, false, reason) } }

    /// Current state.
    public var snapshot: (alive: Bool, ready: Bool, reason: String) { state.withLock { $0 } }
}
