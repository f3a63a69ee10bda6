// Pure: which `vigil-source` an S3 object key stands for, from the layout AWS delivers logs in.

/// What the S3 shipper does with an object key.
public enum S3KeyDisposition: Sendable, Equatable {
    /// Ship it with this `vigil-source` header.
    case ship(source: String)
    /// Never ship it, by design (a CloudTrail digest, AWS Config's writability check, a
    /// folder marker); counted as ignored.
    case ignore
    /// Not a layout the shipper knows and no fallback source was given; left alone, counted
    /// and reported, and looked at again on every poll (so a later `--source` still ships it).
    case unrecognized
}

/// The AWS log delivery layout:
/// `[trail prefix/]AWSLogs/[organization id/]<account id>/<service>/<region>/<yyyy>/<mm>/<dd>/<file>`.
///
/// | service folder | result |
/// | --- | --- |
/// | `CloudTrail`, `CloudTrail-Insight` | `cloudtrail` |
/// | `vpcflowlogs` | `vpcflow` (text files; Parquet deliveries are unrecognized: no parser reads them) |
/// | `Config` | `awsconfig` (`ConfigWritabilityCheckFile` ignored) |
/// | `CloudTrail-Digest` | ignored (integrity digests, not events) |
///
/// The service folder is looked for among the folders after the first `AWSLogs` folder (or
/// among all folders when there is none), so a trail prefix that happens to be called
/// `Config` is not mistaken for AWS Config. Folder names are matched exactly, as AWS writes them.
public enum S3KeyLayout {
    /// What to do with `key`. `fallbackSource` applies to keys outside the layouts above;
    /// it never overrides an inferred source or an ignored key.
    public static func disposition(ofKey key: String, fallbackSource: String? = nil) -> S3KeyDisposition {
        if key.isEmpty || key.hasSuffix("/") { return .ignore }
        let components = key.split(separator: "/", omittingEmptySubsequences: false)
        let fileName = components[components.count - 1]
        let folders = components.dropLast()
        let searched = folders.firstIndex(of: "AWSLogs").map { folders[($0 + 1)...] } ?? folders[...]
        for folder in searched {
            switch folder {
            case "CloudTrail", "CloudTrail-Insight":
                return .ship(source: "cloudtrail")
            case "CloudTrail-Digest":
                return .ignore
            case "vpcflowlogs":
                return fileName.hasSuffix(".parquet") ? .unrecognized : .ship(source: "vpcflow")
            case "Config":
                return fileName == "ConfigWritabilityCheckFile" ? .ignore : .ship(source: "awsconfig")
            default:
                continue
            }
        }
        if fileName == "ConfigWritabilityCheckFile" { return .ignore }
        return fallbackSource.map { .ship(source: $0) } ?? .unrecognized
    }
}
