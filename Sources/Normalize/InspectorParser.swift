import OCSF

/// Amazon Inspector (v2) findings, as the API returns them (`{"findings":[...]}` from
/// ListFindings, or a bare array of findings), one finding object, or an EventBridge event
/// (`detail-type` "Inspector2 Finding", the finding in `detail`). Each finding becomes an OCSF 1.3
/// Vulnerability Finding (2002); docs/sources.md has the field table.
public struct InspectorParser: JSONSourceParser {
    /// An Inspector parser; it has no configuration.
    public init() {}

    /// `inspector`.
    public var sourceName: String { "inspector" }

    typealias Form = EntryDocument

    /// Strict: a finding has a `findingArn` and a camel-case `awsAccountId` or `severity`, which
    /// neither CloudTrail events nor ASFF findings (`Id`, `AwsAccountId`) have. An empty
    /// ListFindings page (`{"findings":[]}`, optionally with `nextToken`) is claimed too.
    public func recognizes(_ document: JSON) -> Bool {
        if case .object(let members) = document, members["findings"]?.arrayValue?.isEmpty == true,
           members.keys.allSatisfy({ $0 == "findings" || $0 == "nextToken" }) {
            return true
        }
        if case .object(let members) = document, members["detail-type"]?.stringValue == "Inspector2 Finding" {
            return true
        }
        return Self.form(of: document).isRecognized(by: Self.looksLikeFinding)
    }

    /// Maps every finding independently: a bad one becomes a failure carrying its index and
    /// bytes, and its siblings still become events.
    public func normalize(_ document: JSON, raw: [UInt8]) -> NormalizeResult {
        Self.form(of: document).normalize(source: sourceName, map: InspectorMapping.event(from:))
    }

    /// Which shape `document` has. Lenient: any other object is taken as one finding, so a
    /// record sent with the `inspector` header but lacking fields reports what it lacks.
    static func form(of document: JSON) -> Form {
        switch document {
        case .array(let entries):
            return .entries(entries)
        case .object(let members):
            if let findings = members["findings"] {
                guard case .array(let entries) = findings else { return .unrecognized("findings is not an array") }
                return .entries(entries)
            }
            if members["detail-type"]?.stringValue == "Inspector2 Finding" {
                guard let detail = members["detail"], detail.objectValue != nil else {
                    return .unrecognized("EventBridge detail is not an object")
                }
                return .single(detail)
            }
            return .single(document)
        default:
            return .unrecognized("an Inspector document must be a JSON object or array")
        }
    }

    static func looksLikeFinding(_ value: JSON) -> Bool {
        guard case .object(let members) = value, members["findingArn"]?.stringValue != nil else { return false }
        return members["awsAccountId"]?.stringValue != nil || members["severity"]?.stringValue != nil
    }
}

/// The mapping of one Inspector finding to OCSF 1.3 Vulnerability Finding (2002).
enum InspectorMapping {
    /// Top-level keys consumed by the mapping; everything else goes to `unmapped` as-is.
    static let mappedKeys: Set<String> = [
        "findingArn", "awsAccountId", "title", "description", "type", "severity", "status",
        "firstObservedAt", "lastObservedAt", "updatedAt", "epss", "exploitAvailable", "fixAvailable",
        "remediation", "resources",
    ]

    /// `packageVulnerabilityDetails` keys carried into the vulnerability; the rest stays there.
    static let mappedPackageDetailKeys: Set<String> = [
        "vulnerabilityId", "cvss", "referenceUrls", "relatedVulnerabilities", "source", "sourceUrl",
        "vendorCreatedAt", "vendorUpdatedAt", "vendorSeverity", "vulnerablePackages",
    ]

    /// `vulnerablePackages[]` keys carried into `affected_packages`.
    static let mappedPackageKeys: Set<String> = [
        "name", "version", "fixedInVersion", "packageManager", "arch", "epoch", "release", "remediation", "filePath",
    ]

    /// `codeVulnerabilityDetails` keys carried into the vulnerability.
    static let mappedCodeDetailKeys: Set<String> = ["cwes", "detectorName", "filePath", "referenceUrls"]

    static func event(from entry: JSON) -> Result<JSON, EntryProblem> {
        typealias F = FindingSupport
        guard case .object(let fields) = entry else {
            return .failure(EntryProblem(code: NormalizeFailure.Code.invalidEntry, message: "the finding is not a JSON object"))
        }
        guard let arn = F.text(fields["findingArn"]) else {
            return .failure(EntryProblem(code: NormalizeFailure.Code.missingField, message: "findingArn is missing or not a string"))
        }
        let time: (millis: Int64, original: String, field: String)
        switch F.firstTime(fields, ["updatedAt", "lastObservedAt"]) {
        case .success(let found): time = found
        case .failure(.missing):
            return .failure(EntryProblem(code: NormalizeFailure.Code.invalidTime, message: "updatedAt and lastObservedAt are missing"))
        case .failure(.invalid(let field)):
            return .failure(EntryProblem(code: NormalizeFailure.Code.invalidTime, message: "\(field) is not a timestamp"))
        }

        let severityLabel = F.text(fields["severity"])
        let severity = severityLabel.flatMap(F.severity(label:)) ?? .unknown
        let sourceStatus = F.text(fields["status"])
        let (status, activity): (F.Status, F.Activity) = switch sourceStatus?.uppercased() {
        case "ACTIVE": (.new, .create)
        case "SUPPRESSED": (.suppressed, .update)
        case "CLOSED": (.resolved, .close)
        case nil: (.unknown, .create)
        default: (.other, .update)
        }

        // A finding keeps its ARN for life; the event is one state of it, so the uid also
        // names the update time (by value, so API and EventBridge copies of one state agree).
        var event = F.base(
            class: .vulnerabilityFinding, activity: activity, time: time.millis, severity: severity,
            status: status, sourceStatus: sourceStatus, uid: StableID.hash([arn, String(time.millis)]),
            product: "Inspector", vendor: "AWS", originalTime: time.original
        )
        if let type = F.text(fields["type"]) { event.set("metadata.event_code", .string(type)) }

        var info: [String: JSON] = ["uid": .string(arn)]
        info["title"] = F.text(fields["title"]).map(JSON.string)
        info["desc"] = F.text(fields["description"]).map(JSON.string)
        let firstSeen = fields["firstObservedAt"].flatMap(F.time)?.millis
        let lastSeen = fields["lastObservedAt"].flatMap(F.time)?.millis
        info["first_seen_time"] = firstSeen.map(JSON.int)
        info["last_seen_time"] = lastSeen.map(JSON.int)
        info["modified_time"] = fields["updatedAt"].flatMap(F.time).map { .int($0.millis) }
        if let type = F.text(fields["type"]) { info["types"] = [.string(type)] }
        event["finding_info"] = .object(info)

        var unmapped = fields.filter { !mappedKeys.contains($0.key) }
        var vulnerability = self.vulnerability(fields, severityLabel: severityLabel, unmapped: &unmapped)
        vulnerability["first_seen_time"] = firstSeen.map(JSON.int)
        vulnerability["last_seen_time"] = lastSeen.map(JSON.int)
        event["vulnerabilities"] = [.object(vulnerability)]

        let account = F.text(fields["awsAccountId"])
        let resourceList = F.list(fields["resources"])
        var resources: [JSON] = []
        var device: [String: JSON]?
        for item in resourceList {
            guard let resource = item.objectValue else { continue }
            resources.append(self.resource(resource, account: account))
            if device == nil { device = ec2Device(resource) }
        }
        if !resources.isEmpty { event["resources"] = .array(resources) }
        // Kept verbatim when anything in it could not be carried (not a list, an entry without id).
        if let declared = fields["resources"], declared.arrayValue == nil
            || resourceList.contains(where: { F.text($0["id"]) == nil }) {
            unmapped["resources"] = declared
        }
        var profiles: [JSON] = ["cloud"]
        if let device {
            event["device"] = .object(device)
            profiles.append("host")
        }
        event.set("metadata.profiles", .array(profiles))

        var cloud: [String: JSON] = ["provider": "AWS"]
        cloud["region"] = (arnRegion(arn) ?? resourceList.first.flatMap { F.text($0["region"]) }).map(JSON.string)
        if let account { cloud["account"] = F.awsAccount(account) }
        event["cloud"] = .object(cloud)

        if !unmapped.isEmpty { event["unmapped"] = .object(unmapped) }
        return .success(event)
    }

    /// The Vulnerability Details object: CVE, CVSS, packages and references for package
    /// findings; CWE and code location for code findings; title and description always.
    static func vulnerability(_ fields: [String: JSON], severityLabel: String?, unmapped: inout [String: JSON]) -> [String: JSON] {
        typealias F = FindingSupport
        var vulnerability: [String: JSON] = [:]
        vulnerability["title"] = F.text(fields["title"]).map(JSON.string)
        vulnerability["desc"] = F.text(fields["description"]).map(JSON.string)
        vulnerability["severity"] = severityLabel.map(JSON.string)
        vulnerability["is_fix_available"] = F.yesNo(fields["fixAvailable"]).map(JSON.bool)
        vulnerability["is_exploit_available"] = F.yesNo(fields["exploitAvailable"]).map(JSON.bool)
        if let text = F.text(fields["remediation"]?["recommendation"]?["text"]) {
            var remediation: [String: JSON] = ["desc": .string(text)]
            if let url = F.text(fields["remediation"]?["recommendation"]?["Url"] ?? fields["remediation"]?["recommendation"]?["url"]) {
                remediation["references"] = [.string(url)]
            }
            vulnerability["remediation"] = .object(remediation)
        }
        var references: [String] = []

        if let details = fields["packageVulnerabilityDetails"]?.objectValue {
            var cve: [String: JSON] = [:]
            cve["uid"] = F.text(details["vulnerabilityId"]).map(JSON.string)
            var cvssSources: [JSON] = []
            let scores = F.list(details["cvss"]).compactMap { score -> JSON? in
                guard let base = F.number(score["baseScore"]), let version = F.text(score["version"]) else { return nil }
                var cvss: [String: JSON] = ["base_score": .double(base), "version": .string(version)]
                cvss["vector_string"] = F.text(score["scoringVector"]).map(JSON.string)
                // Who scored it: OCSF 1.3.0's cvss has no vendor_name (1.4 added it).
                if let source = F.cvssSource(F.text(score["source"]), cve: F.text(details["vulnerabilityId"]),
                                             version: version, baseScore: base) {
                    cvssSources.append(source)
                }
                return .object(cvss)
            }
            if !cvssSources.isEmpty { unmapped["cvss_sources"] = .array(cvssSources) }
            if !scores.isEmpty { cve["cvss"] = .array(scores) }
            if let epss = F.number(fields["epss"]?["score"]) { cve["epss"] = ["score": .string(JSON.double(epss).scalarText ?? "")] }
            cve["created_time"] = details["vendorCreatedAt"].flatMap(F.time).map { .int($0.millis) }
            cve["modified_time"] = details["vendorUpdatedAt"].flatMap(F.time).map { .int($0.millis) }
            if cve["uid"] != nil { vulnerability["cve"] = .object(cve) }
            // The vendor's own rating ("medium", "unimportant") is what OCSF's `severity` asks for here.
            vulnerability["severity"] = (F.text(details["vendorSeverity"]) ?? severityLabel).map(JSON.string)
            vulnerability["vendor_name"] = F.text(details["source"]).map(JSON.string)
            references += F.strings(details["sourceUrl"]) + F.strings(details["referenceUrls"])
            let related = F.strings(details["relatedVulnerabilities"])
            if !related.isEmpty { vulnerability["related_vulnerabilities"] = .array(related.map(JSON.string)) }

            var packageResidue: [JSON] = []
            var packages: [JSON] = []
            for item in F.list(details["vulnerablePackages"]) {
                guard let package = item.objectValue else { packageResidue.append(item); continue }
                packages.append(affectedPackage(package))
                packageResidue.append(F.residue(package, mapped: mappedPackageKeys) ?? .object([:]))
            }
            if !packages.isEmpty { vulnerability["affected_packages"] = .array(packages) }
            var rest = details.filter { !mappedPackageDetailKeys.contains($0.key) }
            if packageResidue.contains(where: { $0 != .object([:]) }) { rest["vulnerablePackages"] = .array(packageResidue) }
            if !rest.isEmpty { unmapped["packageVulnerabilityDetails"] = .object(rest) }
            else { unmapped["packageVulnerabilityDetails"] = nil }
        }

        if let details = fields["codeVulnerabilityDetails"]?.objectValue {
            let cwes = F.strings(details["cwes"])
            if let first = cwes.first { vulnerability["cwe"] = ["uid": .string(first)] }
            if let detector = F.text(details["detectorName"]) { vulnerability["title"] = .string(detector) }
            if let path = details["filePath"]?.objectValue {
                var file: [String: JSON] = [:]
                file["name"] = F.text(path["fileName"]).map(JSON.string)
                file["path"] = F.text(path["filePath"]).map(JSON.string)
                // OCSF requires `type_id`; a code finding's file is a source file.
                file["type_id"] = 1
                file["type"] = "Regular File"
                var code: [String: JSON] = ["file": .object(file)]
                code["start_line"] = path["startLine"]?.intValue.map(JSON.int)
                code["end_line"] = path["endLine"]?.intValue.map(JSON.int)
                vulnerability["affected_code"] = [.object(code)]
            }
            references += F.strings(details["referenceUrls"])
            // Every CWE but the first (OCSF 1.3 has one `cwe`) stays in the residue.
            var rest = details.filter { !mappedCodeDetailKeys.contains($0.key) }
            if cwes.count > 1 { rest["cwes"] = details["cwes"] }
            unmapped["codeVulnerabilityDetails"] = rest.isEmpty ? nil : .object(rest)
        }

        var seen: Set<String> = []
        let unique = references.filter { seen.insert($0).inserted }
        if !unique.isEmpty { vulnerability["references"] = .array(unique.map(JSON.string)) }
        return vulnerability
    }

    static func affectedPackage(_ package: [String: JSON]) -> JSON {
        typealias F = FindingSupport
        var out: [String: JSON] = [:]
        out["name"] = F.text(package["name"]).map(JSON.string)
        out["version"] = F.text(package["version"]).map(JSON.string)
        out["fixed_in_version"] = F.text(package["fixedInVersion"]).map(JSON.string)
        out["package_manager"] = F.text(package["packageManager"]).map(JSON.string)
        out["architecture"] = F.text(package["arch"]).map(JSON.string)
        out["epoch"] = package["epoch"]?.intValue.map(JSON.int)
        out["release"] = F.text(package["release"]).map(JSON.string)
        out["path"] = F.text(package["filePath"]).map(JSON.string)
        if let remediation = F.text(package["remediation"]) { out["remediation"] = ["desc": .string(remediation)] }
        return .object(out)
    }

    /// One affected resource: its id (instance id, image ARN with digest, function ARN), type,
    /// region, partition, tags as `labels`, the type-specific details in `data`.
    static func resource(_ resource: [String: JSON], account: String?) -> JSON {
        typealias F = FindingSupport
        var out: [String: JSON] = [:]
        out["uid"] = F.text(resource["id"]).map(JSON.string)
        out["type"] = F.text(resource["type"]).map(JSON.string)
        out["region"] = F.text(resource["region"]).map(JSON.string)
        out["cloud_partition"] = F.text(resource["partition"]).map(JSON.string)
        let labels = F.labels(resource["tags"])
        if !labels.isEmpty { out["labels"] = .array(labels) }
        if let details = resource["details"], details.objectValue?.isEmpty == false { out["data"] = details }
        let details = resource["details"]
        let name = F.text(resource["tags"]?["Name"])
            ?? F.text(details?["awsEcrContainerImage"]?["repositoryName"])
            ?? F.text(details?["awsLambdaFunction"]?["functionName"])
        out["name"] = name.map(JSON.string)
        if let account { out["owner"] = ["account": F.awsAccount(account)] }
        return .object(out)
    }

    /// The Host profile's `device` for an EC2 instance: what detections join on.
    static func ec2Device(_ resource: [String: JSON]) -> [String: JSON]? {
        typealias F = FindingSupport
        guard F.text(resource["type"]) == "AWS_EC2_INSTANCE", let id = F.text(resource["id"]) else { return nil }
        let instance = resource["details"]?["awsEc2Instance"]
        var device: [String: JSON] = ["type_id": 6, "type": "Virtual", "instance_uid": .string(id), "uid": .string(id)]
        device["region"] = F.text(resource["region"]).map(JSON.string)
        let addresses = F.strings(instance?["ipV4Addresses"]) + F.strings(instance?["ipV6Addresses"])
        device["ip"] = addresses.first(where: IPAddress.isLiteral).map(JSON.string)
        device["subnet_uid"] = F.text(instance?["subnetId"]).map(JSON.string)
        device["vpc_uid"] = F.text(instance?["vpcId"]).map(JSON.string)
        device["name"] = F.text(resource["tags"]?["Name"]).map(JSON.string)
        return device
    }

    /// The region of an ARN (`arn:aws:inspector2:us-east-1:...` → `us-east-1`).
    static func arnRegion(_ arn: String) -> String? {
        let parts = arn.split(separator: ":", maxSplits: 5, omittingEmptySubsequences: false)
        guard parts.count >= 4, parts[0] == "arn", !parts[3].isEmpty else { return nil }
        return String(parts[3])
    }
}
