/// Where a Sigma field lives in the OCSF events Vigil's normalizer produces, for one Sigma
/// log source. docs/sigma.md prints the CloudTrail table; keep the two in step, and both in
/// step with `CloudTrailMapping` in Sources/Normalize (the only source of truth for what the
/// normalized events contain).
public struct SigmaFieldMapping: Sendable {
    /// Where one Sigma field is found.
    public struct Target: Sendable, Equatable {
        /// The OCSF paths that may hold the value. Usually one; CloudTrail's `sourceIPAddress`
        /// lands in one of three depending on its form, so a test passes when any of them does.
        public var paths: [String]
        /// The one path used when the field groups a window (`group-by`, `count() by`): a
        /// group key needs a single field.
        public var groupPath: String
        /// Why the mapping is not exact, when it is not; shown in docs, never silently assumed.
        public var caveat: String?

        /// A target at one or more paths; `groupPath` defaults to the first.
        public init(_ paths: [String], groupPath: String? = nil, caveat: String? = nil) {
            self.paths = paths
            self.groupPath = groupPath ?? paths[0]
            self.caveat = caveat
        }
    }

    /// One row of the table.
    public struct Entry: Sendable {
        /// The Sigma field name, or for a prefix entry the prefix including its final `.`.
        public var sigmaField: String
        /// Where it is found; for a prefix entry, the OCSF prefix the rest is appended to.
        public var target: Target?
        /// For fields that exist but cannot be tested: why.
        public var refusal: String?
        /// Whether `sigmaField` is a prefix (`requestParameters.`) rather than a whole name.
        public var isPrefix: Bool { sigmaField.hasSuffix(".") }

        /// A row: a field (or prefix ending in `.`) with its target, or with why it is refused.
        public init(sigmaField: String, target: Target?, refusal: String?) {
            self.sigmaField = sigmaField
            self.target = target
            self.refusal = refusal
        }
    }

    /// The rows, exact names and prefixes; a name is looked up exactly first, then by the
    /// longest matching prefix.
    public let entries: [Entry]

    /// A mapping from rows.
    public init(entries: [Entry]) {
        self.entries = entries
    }

    /// The target of `field`, or why there is none.
    public func target(for field: String) -> Result<Target, SigmaFieldMappingFailure> {
        if let exact = entries.first(where: { !$0.isPrefix && $0.sigmaField == field }) {
            if let refusal = exact.refusal { return .failure(.refused(field: field, reason: refusal)) }
            if let target = exact.target { return .success(target) }
        }
        let prefixes = entries.filter { $0.isPrefix && field.hasPrefix($0.sigmaField) && field.count > $0.sigmaField.count }
        if let best = prefixes.max(by: { $0.sigmaField.count < $1.sigmaField.count }), let target = best.target {
            let rest = String(field.dropFirst(best.sigmaField.count))
            guard !rest.split(separator: ".", omittingEmptySubsequences: false).contains(where: \.isEmpty) else {
                return .failure(.unmapped(field: field))
            }
            return .success(Target(target.paths.map { $0 + rest }, groupPath: target.groupPath + rest, caveat: target.caveat))
        }
        return .failure(.unmapped(field: field))
    }
}

/// Why a Sigma field has no OCSF path.
public enum SigmaFieldMappingFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// The field is not in the table: not a field of the source, or not one Vigil maps.
    case unmapped(field: String)
    /// The field exists but cannot be tested by Vigil's conditions.
    case refused(field: String, reason: String)

    /// `unmapped field 'status'`.
    public var description: String {
        switch self {
        case .unmapped(let field): "unmapped field '\(field)' (not a field of the log source's normalized events)"
        case .refused(let field, let reason): "field '\(field)' cannot be tested: \(reason)"
        }
    }
}

/// A Sigma log source Vigil can convert rules for: which `logsource` it matches, where its
/// fields are, and the OCSF facts conversions rely on.
public struct SigmaLogSourceProfile: Sendable {
    /// `logsource.product` (lower case).
    public var product: String
    /// `logsource.service` (lower case).
    public var service: String
    /// The field table.
    public var mapping: SigmaFieldMapping
    /// The field holding the whole raw record as text, for Sigma keyword searches; `nil` when
    /// the normalized events keep none (keyword rules are then not convertible).
    public var rawMessageField: String?
    /// A field every normalized event of the source has with one value, used as the group of
    /// a window when Sigma groups nothing (a global count): Vigil windows need a group.
    public var wholeSourceGroupField: String

    /// A profile.
    public init(product: String, service: String, mapping: SigmaFieldMapping, rawMessageField: String?,
                wholeSourceGroupField: String) {
        self.product = product
        self.service = service
        self.mapping = mapping
        self.rawMessageField = rawMessageField
        self.wholeSourceGroupField = wholeSourceGroupField
    }

    /// `product: aws, service: cloudtrail`, as `CloudTrailMapping` normalizes it.
    public static let cloudTrail = SigmaLogSourceProfile(
        product: "aws", service: "cloudtrail", mapping: .cloudTrail, rawMessageField: nil,
        wholeSourceGroupField: "metadata.product.name")

    /// The profiles `vigil rules import-sigma` knows.
    public static let supported: [SigmaLogSourceProfile] = [.cloudTrail]
}

extension SigmaFieldMapping {
    /// CloudTrail record fields (as SigmaHQ's AWS rules name them) → OCSF paths in the events
    /// `CloudTrailMapping` produces. Top-level keys the normalizer does not consume are kept
    /// as-is under `unmapped`, so they are reached there; keys it consumes are reached at their
    /// OCSF home. Whole objects (`requestParameters` itself) are refused: Vigil's text
    /// operators read scalars, and a Sigma backend that searches them as JSON text would
    /// match differently.
    public static let cloudTrail: SigmaFieldMapping = {
        func row(_ field: String, _ paths: String..., group: String? = nil, caveat: String? = nil) -> Entry {
            Entry(sigmaField: field, target: Target(paths, groupPath: group, caveat: caveat), refusal: nil)
        }
        func refuse(_ field: String, _ reason: String) -> Entry {
            Entry(sigmaField: field, target: nil, refusal: reason)
        }
        func wholeObject(_ name: String) -> String {
            "\(name) is a JSON object in normalized events and Vigil's operators test scalar fields; a rule must name a member (\(name).KEY)"
        }
        var rows: [Entry] = [
            row("eventName", "api.operation"),
            row("eventSource", "api.service.name"),
            row("eventID", "metadata.uid"),
            row("eventType", "metadata.log_name"),
            row("eventTime", "metadata.original_time"),
            row("awsRegion", "cloud.region"),
            row("sourceIPAddress", "src_endpoint.ip", "src_endpoint.domain", "src_endpoint.name", group: "src_endpoint.ip",
                caveat: "an address lands in src_endpoint.ip, a service host name (ec2.amazonaws.com) in src_endpoint.domain, anything else (\"AWS Internal\") in src_endpoint.name; tests pass when any does, windows group by src_endpoint.ip"),
            row("userAgent", "http_request.user_agent"),
            row("errorCode", "api.response.error"),
            row("errorMessage", "api.response.message"),
            row("requestID", "api.request.uid"),
            row("apiVersion", "api.version"),
            row("userIdentity.type", "actor.user.type"),
            row("userIdentity.principalId", "actor.user.uid"),
            row("userIdentity.arn", "actor.user.uid_alt"),
            row("userIdentity.accountId", "actor.user.account.uid"),
            row("userIdentity.accessKeyId", "actor.user.credential_uid"),
            row("userIdentity.userName", "actor.user.name",
                caveat: "without a userName the normalizer fills actor.user.name from the session issuer or the ARN, so a role session's name can match too"),
            row("userIdentity.invokedBy", "actor.invoked_by"),
            // userIdentity keys the normalizer does not consume stay under unmapped.userIdentity.
            row("userIdentity.", "unmapped.userIdentity."),
            refuse("userIdentity", wholeObject("userIdentity")),
        ]
        for container in ["requestParameters", "responseElements", "additionalEventData", "serviceEventDetails",
                          "tlsDetails", "insightDetails", "edgeDeviceDetails", "addendum"] {
            rows.append(row(container + ".", "unmapped." + container + "."))
            rows.append(refuse(container, wholeObject(container)))
        }
        for scalar in ["recipientAccountId", "eventVersion", "eventCategory", "readOnly", "managementEvent",
                       "sharedEventID", "vpcEndpointId", "vpcEndpointAccountId", "sessionCredentialFromConsole"] {
            rows.append(row(scalar, "unmapped." + scalar))
        }
        rows.append(refuse("resources", "an array of objects in CloudTrail; Vigil paths cannot say \"any element\""))
        return SigmaFieldMapping(entries: rows)
    }()
}
