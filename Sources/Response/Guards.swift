import OCSF

/// Why a guard refused a command. The raw value is the command's `blocked_by`.
public enum GuardBlock: String, Sendable, CaseIterable {
    /// The alert names nothing this action can act on.
    case noTarget = "no_target"
    /// The asset is protected (inventory flag, or the `vigil:protected` tag).
    case protectedAsset = "protected"
    /// The asset's environment is outside the action's `environments`.
    case environmentScope = "environment_scope"
    /// The action's `rate_limit` is used up for the period.
    case rateLimit = "rate_limit"
    /// The action's `target_rate_limit` is used up for this target.
    case targetRateLimit = "target_rate_limit"
    /// The action's `blast_radius` would be exceeded.
    case blastRadius = "blast_radius"
}

/// What the guards decided for one planned command.
public enum GuardDecision: Sendable, Equatable {
    /// Go ahead (to the executor, which acts or, for a dry run, only records).
    case allow
    /// Wait for `vigil approve`.
    case pending
    /// Refused, with the guard and a reason in words.
    case blocked(GuardBlock, String)
}

/// The memory of the rate-limit and blast-radius guards, and of the command ids already
/// planned (so a redelivered alert neither repeats a command nor uses up a limit).
///
/// Periods are counted in alert (event) time, so the same alerts in the same order give the
/// same decisions in a replay. A guard counts a command when it was allowed or left pending;
/// blocked commands do not use up a limit.
public struct GuardState: Sendable {
    private var actionTimes: [String: [Int64]] = [:]
    private var targetTimes: [String: [Int64]] = [:]
    private var touched: [String: [(time: Int64, target: String)]] = [:]
    private var planned: Set<String> = []
    /// How many command ids are remembered for de-duplication before the memory starts over.
    public static let plannedCapacity = 100_000

    /// An empty state.
    public init() {}

    /// Records `commandID`; `false` when it was planned before.
    mutating func firstTime(_ commandID: String) -> Bool {
        if planned.count >= Self.plannedCapacity { planned.removeAll(keepingCapacity: true) }
        return planned.insert(commandID).inserted
    }

    /// Events of `times` within one period of `time`, either side: out-of-order alerts are
    /// counted conservatively, never letting more through than the limit.
    private static func within(_ times: [Int64], of time: Int64, period: Int64) -> Int {
        times.reduce(0) { $0 + (abs($1 - time) < period ? 1 : 0) }
    }

    private static func pruned(_ times: [Int64], now: Int64, period: Int64) -> [Int64] {
        times.filter { $0 > now - 2 * period }
    }

    /// Applies the guards of `action` (of `playbook`) for `target` and records the command
    /// when it is allowed or pending. `groupSize` gives the size of a blast-radius group.
    mutating func decide(playbook: String, action: ActionSpec, target: String, facts: AlertFacts,
                         groupSize: (_ tag: String, _ value: String) -> Int?) -> GuardDecision {
        let time = facts.time
        if action.kind.touchesAsset {
            if let asset = facts.asset, asset.id == target || action.kind == .disableAccessKey || action.kind == .tagResource {
                if asset.protected || asset.tags["vigil:protected"] == "true" {
                    return .blocked(.protectedAsset, "asset \(asset.id) is protected")
                }
            }
            if let environments = action.environments {
                let environment = facts.asset?.environment ?? ""
                guard environments.contains(environment) else {
                    return .blocked(.environmentScope, "environment '\(environment.isEmpty ? "unknown" : environment)' is outside \(environments.joined(separator: ", "))")
                }
            }
        }
        let actionKey = "\(playbook)|\(action.kind.rawValue)"
        let targetKey = "\(actionKey)|\(target)"
        if let limit = action.rateLimit,
           Self.within(actionTimes[actionKey] ?? [], of: time, period: limit.periodMillis) >= limit.max {
            return .blocked(.rateLimit, "\(action.kind.rawValue) already ran \(limit.max) time(s) within \(limit.periodMillis / 1000)s")
        }
        if let limit = action.targetRateLimit,
           Self.within(targetTimes[targetKey] ?? [], of: time, period: limit.periodMillis) >= limit.max {
            return .blocked(.targetRateLimit, "\(action.kind.rawValue) already ran \(limit.max) time(s) on \(target) within \(limit.periodMillis / 1000)s")
        }
        if let radius = action.blastRadius {
            let recent = (touched[actionKey] ?? []).filter { abs($0.time - time) < radius.periodMillis }
            var targets = Set(recent.map(\.target))
            if !targets.contains(target) {
                targets.insert(target)
                if let max = radius.maxTargets, targets.count > max {
                    return .blocked(.blastRadius, "\(action.kind.rawValue) would touch \(targets.count) targets within \(radius.periodMillis / 1000)s (max \(max))")
                }
                if let percent = radius.maxPercent, let asset = facts.asset, let group = asset.tags[radius.groupTag],
                   let size = groupSize(radius.groupTag, group), size > 0 {
                    let groupKey = "\(actionKey)|group:\(group)"
                    let inGroup = Set((touched[groupKey] ?? []).filter { abs($0.time - time) < radius.periodMillis }.map(\.target))
                        .union([target]).count
                    if inGroup * 100 > percent * size {
                        return .blocked(.blastRadius, "\(action.kind.rawValue) would touch \(inGroup) of \(size) in group \(group) (max \(percent)%)")
                    }
                }
            }
        }

        // Allowed or pending: count it.
        if let limit = action.rateLimit {
            actionTimes[actionKey] = Self.pruned(actionTimes[actionKey] ?? [], now: time, period: limit.periodMillis) + [time]
        }
        if let limit = action.targetRateLimit {
            targetTimes[targetKey] = Self.pruned(targetTimes[targetKey] ?? [], now: time, period: limit.periodMillis) + [time]
        }
        if let radius = action.blastRadius {
            touched[actionKey] = (touched[actionKey] ?? []).filter { $0.time > time - 2 * radius.periodMillis } + [(time, target)]
            if let group = facts.asset?.tags[radius.groupTag] {
                let groupKey = "\(actionKey)|group:\(group)"
                touched[groupKey] = (touched[groupKey] ?? []).filter { $0.time > time - 2 * radius.periodMillis } + [(time, target)]
            }
        }

        switch action.approval {
        case .none: return .allow
        case .required: return .pending
        case .environments(let environments):
            let environment = facts.asset?.environment ?? ""
            return environment.isEmpty || environments.contains(environment) ? .pending : .allow
        }
    }
}
