import OCSF

/// AWS Security Finding Format: `{"Findings":[...]}` (Security Hub GetFindings and
/// BatchImportFindings bodies; some exports spell it `findings`), a bare array (Prowler
/// `-M json-asff`), a single finding, or an EventBridge event (`detail-type` "Security Hub
/// Findings - Imported" or "- Custom Action", findings in `detail.findings`).
///
/// Class per finding: Vulnerability Finding 2002 when it lists `Vulnerabilities`, else Compliance
/// Finding 2003 when it has a `Compliance.Status`, else 2002 when a `Types` entry is in the
/// "Software and Configuration Checks/Vulnerabilities" namespace, else Detection Finding 2004
/// (GuardDuty, Macie, ...). docs/sources.md has the field table.
public struct ASFFParser: JSONSourceParser {
    /// An ASFF parser; it has no configuration.
    public init() {}

    /// `asff`.
    public var sourceName: String { "asff" }

    typealias Form = EntryDocument

    /// Strict: an ASFF finding has `SchemaVersion` and `ProductArn` (both required by the
    /// format), which CloudTrail events and Inspector's own findings never have. An empty
    /// `{"Findings":[]}` page is claimed too (the capitalised key is ASFF's alone).
    public func recognizes(_ document: JSON) -> Bool {
        if case .object(let members) = document {
            if members["Findings"]?.arrayValue?.isEmpty == true { return true }
            if let type = members["detail-type"]?.stringValue, type.hasPrefix("Security Hub Findings") { return true }
        }
        return Self.form(of: document).isRecognized(by: Self.looksLikeFinding)
    }

    /// Maps every finding independently: a bad one becomes a failure carrying its index and
    /// bytes, and its siblings still become events.
    public func normalize(_ document: JSON, raw: [UInt8]) -> NormalizeResult {
        Self.form(of: document).normalize(source: sourceName, map: ASFFMapping.event(from:))
    }

    /// Which shape `document` has. Lenient: any other object is taken as one finding, so a
    /// record sent with the `asff` header but lacking fields reports what it lacks.
    static func form(of document: JSON) -> Form {
        switch document {
        case .array(let entries):
            return .entries(entries)
        case .object(let members):
            for key in ["Findings", "findings"] {
                guard let findings = members[key] else { continue }
                guard case .array(let entries) = findings else { return .unrecognized("\(key) is not an array") }
                return .entries(entries)
            }
            if let type = members["detail-type"]?.stringValue, type.hasPrefix("Security Hub Findings") {
                guard let findings = members["detail"]?["findings"] else {
                    return .unrecognized("EventBridge detail has no findings array")
                }
                guard case .array(let entries) = findings else { return .unrecognized("detail.findings is not an array") }
                return .entries(entries)
            }
            return .single(document)
        default:
            return .unrecognized("an ASFF document must be a JSON object or array")
        }
    }

    static func looksLikeFinding(_ value: JSON) -> Bool {
        guard case .object(let members) = value else { return false }
        return members["SchemaVersion"]?.stringValue != nil && members["ProductArn"]?.stringValue != nil
    }
}

/// The mapping of one ASFF finding to OCSF 1.3 (2002, 2003 or 2004; see `ASFFParser`).
enum ASFFMapping {
    /// Top-level keys always consumed; `Vulnerabilities`, `Compliance` and `Resources` are added
    /// per finding when carried whole. Everything else goes to `unmapped` as-is.
    static let mappedKeys: Set<String> = [
        "Id", "ProductArn", "ProductName", "CompanyName", "AwsAccountId", "Region", "Title",
        "Description", "Types", "FirstObservedAt", "LastObservedAt", "CreatedAt", "UpdatedAt",
        "SourceUrl", "Remediation", "Workflow", "RecordState",
    ]

    /// The namespace of ASFF finding types that name a software vulnerability.
    static let vulnerabilityTypePrefix = "Software and Configuration Checks/Vulnerabilities"

    static func event(from entry: JSON) -> Result<JSON, EntryProblem> {
        typealias F = FindingSupport
        guard case .object(let fields) = entry else {
            return .failure(EntryProblem(code: NormalizeFailure.Code.invalidEntry, message: "the finding is not a JSON object"))
        }
        guard let id = F.text(fields["Id"]) else {
            return .failure(EntryProblem(code: NormalizeFailure.Code.missingField, message: "Id is missing or not a string"))
        }
        let time: (millis: Int64, original: String, field: String)
        switch F.firstTime(fields, ["UpdatedAt", "LastObservedAt", "CreatedAt"]) {
        case .success(let found): time = found
        case .failure(.missing):
            return .failure(EntryProblem(code: NormalizeFailure.Code.invalidTime, message: "UpdatedAt, LastObservedAt and CreatedAt are missing"))
        case .failure(.invalid(let field)):
            return .failure(EntryProblem(code: NormalizeFailure.Code.invalidTime, message: "\(field) is not an RFC 3339 timestamp"))
        }
        var unmapped = fields.filter { !mappedKeys.contains($0.key) }

        let vulnerabilities = F.list(fields["Vulnerabilities"]).compactMap(\.objectValue)
        let complianceStatus = F.text(fields["Compliance"]?["Status"])
        let types = F.strings(fields["Types"])
        let ocsfClass: OCSFClass
        if !vulnerabilities.isEmpty {
            ocsfClass = .vulnerabilityFinding
        } else if complianceStatus != nil {
            ocsfClass = .complianceFinding
        } else if types.contains(where: { $0.hasPrefix(vulnerabilityTypePrefix) }) {
            ocsfClass = .vulnerabilityFinding
        } else {
            ocsfClass = .detectionFinding
        }

        let (status, sourceStatus) = findingStatus(fields)
        let recordState = F.text(fields["RecordState"])?.uppercased()
        let activity: F.Activity = if recordState == "ARCHIVED" || status == .resolved {
            .close
        } else if status == .suppressed || status == .inProgress {
            .update
        } else {
            .create
        }

        let productFields = fields["ProductFields"]
        let productARN = F.text(fields["ProductArn"])
        let arnProduct = productARN.flatMap(productParts)
        let productName = F.text(fields["ProductName"]) ?? F.text(productFields?["aws/securityhub/ProductName"])
            ?? F.text(productFields?["ProviderName"]) ?? arnProduct?.product ?? "Security Hub"
        let vendorName = F.text(fields["CompanyName"]) ?? F.text(productFields?["aws/securityhub/CompanyName"])
            ?? arnProduct?.company ?? "AWS"

        var event = F.base(
            class: ocsfClass, activity: activity, time: time.millis, severity: severity(fields),
            status: status, sourceStatus: sourceStatus,
            uid: StableID.hash([productARN ?? "", id, String(time.millis)]),
            product: productName, vendor: vendorName, originalTime: time.original
        )
        if let productARN { event.set("metadata.product.uid", .string(productARN)) }

        var info: [String: JSON] = ["uid": .string(id)]
        info["title"] = F.text(fields["Title"]).map(JSON.string)
        info["desc"] = F.text(fields["Description"]).map(JSON.string)
        if !types.isEmpty { info["types"] = .array(types.map(JSON.string)) }
        let firstSeen = fields["FirstObservedAt"].flatMap(F.time)?.millis
        let lastSeen = fields["LastObservedAt"].flatMap(F.time)?.millis
        info["first_seen_time"] = firstSeen.map(JSON.int)
        info["last_seen_time"] = lastSeen.map(JSON.int)
        info["created_time"] = fields["CreatedAt"].flatMap(F.time).map { .int($0.millis) }
        info["modified_time"] = fields["UpdatedAt"].flatMap(F.time).map { .int($0.millis) }
        info["src_url"] = F.text(fields["SourceUrl"]).map(JSON.string)
        info["product_uid"] = productARN.map(JSON.string)
        event["finding_info"] = .object(info)

        let remediation = self.remediation(fields["Remediation"])
        switch ocsfClass {
        case .vulnerabilityFinding:
            var cvssSources: [JSON] = []
            var list = vulnerabilities.map { vulnerability($0, finding: fields, remediation: remediation, cvssSources: &cvssSources) }
            if list.isEmpty {
                // A vulnerability-typed finding without details (Inspector findings whose
                // Vulnerabilities list is empty): the finding itself is the vulnerability.
                var bare: [String: JSON] = [:]
                bare["title"] = info["title"]
                bare["desc"] = info["desc"]
                bare["severity"] = F.text(fields["Severity"]?["Label"]).map(JSON.string)
                bare["remediation"] = remediation
                list = [.object(bare)]
            }
            for index in list.indices {
                list[index]["first_seen_time"] = firstSeen.map(JSON.int)
                list[index]["last_seen_time"] = lastSeen.map(JSON.int)
            }
            event["vulnerabilities"] = .array(list)
            if F.list(fields["Vulnerabilities"]).count == vulnerabilities.count { unmapped["Vulnerabilities"] = nil }
            if !cvssSources.isEmpty { unmapped["cvss_sources"] = .array(cvssSources) }
        case .complianceFinding:
            event["compliance"] = compliance(fields, productName: productName)
            event["remediation"] = remediation
            unmapped["Compliance"] = nil
        default:
            event["remediation"] = remediation
        }

        let (resources, device, resourcesComplete) = self.resources(fields)
        if !resources.isEmpty { event["resources"] = .array(resources) }
        if resourcesComplete { unmapped["Resources"] = nil }
        var profiles: [JSON] = ["cloud"]
        if let device {
            event["device"] = .object(device)
            profiles.append("host")
        }
        event.set("metadata.profiles", .array(profiles))

        var cloud: [String: JSON] = ["provider": "AWS"]
        let region = F.text(fields["Region"]) ?? F.list(fields["Resources"]).lazy.compactMap { F.text($0["Region"]) }.first
            ?? productARN.flatMap(InspectorMapping.arnRegion)
        cloud["region"] = region.map(JSON.string)
        if let account = F.text(fields["AwsAccountId"]) { cloud["account"] = F.awsAccount(account) }
        event["cloud"] = .object(cloud)

        if !unmapped.isEmpty { event["unmapped"] = .object(unmapped) }
        return .success(event)
    }

    /// `Severity.Label`, else `Severity.Normalized` by ASFF's bands (0 informational, 1-39 low,
    /// 40-69 medium, 70-89 high, 90-100 critical), else `FindingProviderFields.Severity.Label`.
    static func severity(_ fields: [String: JSON]) -> OCSFSeverity {
        typealias F = FindingSupport
        if let label = F.text(fields["Severity"]?["Label"]), let severity = F.severity(label: label) { return severity }
        if let normalized = F.number(fields["Severity"]?["Normalized"]) {
            switch normalized {
            case ..<1: return .informational
            case ..<40: return .low
            case ..<70: return .medium
            case ..<90: return .high
            default: return .critical
            }
        }
        if let label = F.text(fields["FindingProviderFields"]?["Severity"]?["Label"]), let severity = F.severity(label: label) {
            return severity
        }
        return .unknown
    }

    /// `Workflow.Status` (NEW, NOTIFIED, SUPPRESSED, RESOLVED), else the deprecated
    /// `WorkflowState` (NEW, ASSIGNED, IN_PROGRESS, DEFERRED, RESOLVED), else `RecordState`
    /// (ACTIVE is New, ARCHIVED is Resolved), with the label used.
    static func findingStatus(_ fields: [String: JSON]) -> (FindingSupport.Status, String?) {
        typealias F = FindingSupport
        if let label = F.text(fields["Workflow"]?["Status"]) ?? F.text(fields["WorkflowState"]) {
            let status: F.Status = switch label.uppercased() {
            case "NEW": .new
            case "NOTIFIED", "ASSIGNED", "IN_PROGRESS": .inProgress
            case "SUPPRESSED", "DEFERRED": .suppressed
            case "RESOLVED": .resolved
            default: .other
            }
            return (status, label)
        }
        if let state = F.text(fields["RecordState"]) {
            switch state.uppercased() {
            case "ACTIVE": return (.new, state)
            case "ARCHIVED": return (.resolved, state)
            default: return (.other, state)
            }
        }
        return (.unknown, nil)
    }

    /// OCSF `remediation` from `Remediation.Recommendation` {Text, Url}.
    static func remediation(_ value: JSON?) -> JSON? {
        typealias F = FindingSupport
        guard let text = F.text(value?["Recommendation"]?["Text"]) else { return nil }
        var remediation: [String: JSON] = ["desc": .string(text)]
        if let url = F.text(value?["Recommendation"]?["Url"]) { remediation["references"] = [.string(url)] }
        return .object(remediation)
    }

    /// One ASFF `Vulnerabilities[]` entry as Vulnerability Details. Who scored each CVSS entry
    /// (`Cvss[].Source`) has no attribute in OCSF 1.3.0's `cvss` (`vendor_name` is 1.4), so it
    /// is added to `cvssSources` (see `FindingSupport.cvssSource`) for `unmapped.cvss_sources`.
    static func vulnerability(_ item: [String: JSON], finding: [String: JSON], remediation: JSON?,
                              cvssSources: inout [JSON]) -> JSON {
        typealias F = FindingSupport
        var out: [String: JSON] = [:]
        out["title"] = F.text(finding["Title"]).map(JSON.string)
        out["desc"] = F.text(finding["Description"]).map(JSON.string)
        out["remediation"] = remediation
        let vendor = item["Vendor"]
        var cve: [String: JSON] = [:]
        cve["uid"] = F.text(item["Id"]).map(JSON.string)
        let scores = F.list(item["Cvss"]).compactMap { score -> JSON? in
            guard let base = F.number(score["BaseScore"]), let version = F.text(score["Version"]) else { return nil }
            var cvss: [String: JSON] = ["base_score": .double(base), "version": .string(version)]
            cvss["vector_string"] = F.text(score["BaseVector"]).map(JSON.string)
            if let source = F.cvssSource(F.text(score["Source"]), cve: F.text(item["Id"]), version: version, baseScore: base) {
                cvssSources.append(source)
            }
            return .object(cvss)
        }
        if !scores.isEmpty { cve["cvss"] = .array(scores) }
        if let epss = F.number(item["EpssScore"]) { cve["epss"] = ["score": .string(JSON.double(epss).scalarText ?? "")] }
        cve["created_time"] = vendor?["VendorCreatedAt"].flatMap(F.time).map { .int($0.millis) }
        cve["modified_time"] = vendor?["VendorUpdatedAt"].flatMap(F.time).map { .int($0.millis) }
        if cve["uid"] != nil { out["cve"] = .object(cve) }
        out["severity"] = (F.text(vendor?["VendorSeverity"]) ?? F.text(finding["Severity"]?["Label"])).map(JSON.string)
        out["vendor_name"] = F.text(vendor?["Name"]).map(JSON.string)
        out["is_fix_available"] = F.yesNo(item["FixAvailable"]).map(JSON.bool)
        out["is_exploit_available"] = F.yesNo(item["ExploitAvailable"]).map(JSON.bool)
        var seen: Set<String> = []
        let references = (F.strings(vendor?["Url"]) + F.strings(item["ReferenceUrls"])).filter { seen.insert($0).inserted }
        if !references.isEmpty { out["references"] = .array(references.map(JSON.string)) }
        let related = F.strings(item["RelatedVulnerabilities"])
        if !related.isEmpty { out["related_vulnerabilities"] = .array(related.map(JSON.string)) }
        let packages = F.list(item["VulnerablePackages"]).compactMap { package -> JSON? in
            guard package.objectValue != nil else { return nil }
            var p: [String: JSON] = [:]
            p["name"] = F.text(package["Name"]).map(JSON.string)
            p["version"] = F.text(package["Version"]).map(JSON.string)
            p["epoch"] = F.text(package["Epoch"]).flatMap { Int64($0) }.map(JSON.int)
            p["release"] = F.text(package["Release"]).map(JSON.string)
            p["architecture"] = F.text(package["Architecture"]).map(JSON.string)
            p["package_manager"] = F.text(package["PackageManager"]).map(JSON.string)
            p["fixed_in_version"] = F.text(package["FixedInVersion"]).map(JSON.string)
            p["path"] = F.text(package["FilePath"]).map(JSON.string)
            if let text = F.text(package["Remediation"]) { p["remediation"] = ["desc": .string(text)] }
            return .object(p)
        }
        if !packages.isEmpty { out["affected_packages"] = .array(packages) }
        let code = F.list(item["CodeVulnerabilities"]).compactMap { entry -> JSON? in
            guard let path = entry["FilePath"] else { return nil }
            var file: [String: JSON] = [:]
            file["name"] = F.text(path["FileName"]).map(JSON.string)
            file["path"] = F.text(path["FilePath"]).map(JSON.string)
            var affected: [String: JSON] = ["file": .object(file)]
            affected["start_line"] = path["StartLine"]?.intValue.map(JSON.int)
            affected["end_line"] = path["EndLine"]?.intValue.map(JSON.int)
            return .object(affected)
        }
        if !code.isEmpty { out["affected_code"] = .array(code) }
        if let cwe = F.list(item["CodeVulnerabilities"]).lazy.compactMap({ F.strings($0["Cwes"]).first }).first {
            out["cwe"] = ["uid": .string(cwe)]
        }
        return .object(out)
    }

    /// The ASFF `Types` prefix whose third part (the classifier) names a standard:
    /// `Software and Configuration Checks/Industry and Regulatory Standards/CIS AWS Foundations Benchmark`.
    static let standardTypePrefix = "Software and Configuration Checks/Industry and Regulatory Standards/"

    /// OCSF `compliance` from `Compliance` and the Security Hub control fields. Status: PASSED 1
    /// Pass, WARNING 2 Warning, FAILED 3 Fail; anything else (NOT_AVAILABLE, Prowler's INFOED)
    /// 99 Other with the label as `status`. `status_code` keeps the label as written.
    ///
    /// `standards` (required by OCSF 1.3.0) from, in order: `Compliance.AssociatedStandards[].StandardsId`;
    /// `ProductFields.StandardsArn` / `StandardsGuideArn`; the classifiers of `Types` entries under
    /// "Industry and Regulatory Standards"; else the product's own name (`productName`): a check
    /// no framework claims (many Prowler checks) is a control of the product's own catalogue.
    static func compliance(_ fields: [String: JSON], productName: String) -> JSON {
        typealias F = FindingSupport
        let section = fields["Compliance"]
        let label = F.text(section?["Status"]) ?? ""
        let (id, caption): (Int64, String) = switch label.uppercased() {
        case "PASSED": (1, "Pass")
        case "WARNING": (2, "Warning")
        case "FAILED": (3, "Fail")
        default: (99, label)
        }
        var out: [String: JSON] = ["status_id": .int(id), "status": .string(caption), "status_code": .string(label)]
        let productFields = fields["ProductFields"]
        let control = F.text(section?["SecurityControlId"]) ?? F.text(productFields?["ControlId"])
            ?? F.text(productFields?["RuleId"]) ?? F.text(fields["GeneratorId"])
        out["control"] = control.map(JSON.string)
        let requirements = F.strings(section?["RelatedRequirements"])
        if !requirements.isEmpty { out["requirements"] = .array(requirements.map(JSON.string)) }
        var standards = F.list(section?["AssociatedStandards"]).compactMap { F.text($0["StandardsId"]) }
        if standards.isEmpty, let arn = F.text(productFields?["StandardsArn"]) ?? F.text(productFields?["StandardsGuideArn"]) {
            standards = [arn]
        }
        if standards.isEmpty {
            var seen: Set<String> = []
            standards = F.strings(fields["Types"]).compactMap { type -> String? in
                guard type.hasPrefix(standardTypePrefix) else { return nil }
                let classifier = String(type.dropFirst(standardTypePrefix.count))
                return classifier.isEmpty ? nil : classifier
            }.filter { seen.insert($0).inserted }
        }
        if standards.isEmpty { standards = [productName] }
        out["standards"] = .array(standards.map(JSON.string))
        let reasons = F.list(section?["StatusReasons"]).compactMap { F.text($0["Description"]) ?? F.text($0["ReasonCode"]) }
        if !reasons.isEmpty { out["status_detail"] = .string(reasons.joined(separator: "; ")) }
        return .object(out)
    }

    /// `Resources[]` as OCSF resources, the first EC2 instance as the Host profile's `device`,
    /// and whether every entry was carried (so the original can leave `unmapped`).
    static func resources(_ fields: [String: JSON]) -> ([JSON], [String: JSON]?, Bool) {
        typealias F = FindingSupport
        guard let declared = fields["Resources"] else { return ([], nil, true) }
        let items = F.list(declared)
        var complete = declared.arrayValue != nil
        var list: [JSON] = []
        var device: [String: JSON]?
        let account = F.text(fields["AwsAccountId"])
        for item in items {
            guard let resource = item.objectValue, let id = F.text(resource["Id"]) else { complete = false; continue }
            var out: [String: JSON] = ["uid": .string(id)]
            out["type"] = F.text(resource["Type"]).map(JSON.string)
            out["region"] = F.text(resource["Region"]).map(JSON.string)
            out["cloud_partition"] = F.text(resource["Partition"]).map(JSON.string)
            let labels = F.labels(resource["Tags"])
            if !labels.isEmpty { out["labels"] = .array(labels) }
            if let details = resource["Details"], details.objectValue?.isEmpty == false { out["data"] = details }
            out["name"] = F.text(resource["Tags"]?["Name"]).map(JSON.string)
            if let account { out["owner"] = ["account": F.awsAccount(account)] }
            list.append(.object(out))
            if device == nil, F.text(resource["Type"]) == "AwsEc2Instance" {
                let instance = resource["Details"]?["AwsEc2Instance"]
                let instanceID = instanceIDFrom(id) ?? F.text(fields["ProductFields"]?["aws/inspector/instanceId"]) ?? id
                var d: [String: JSON] = ["type_id": 6, "type": "Virtual", "instance_uid": .string(instanceID), "uid": .string(instanceID)]
                d["region"] = F.text(resource["Region"]).map(JSON.string)
                let addresses = F.strings(instance?["IpV4Addresses"]) + F.strings(instance?["IpV6Addresses"])
                d["ip"] = addresses.first(where: IPAddress.isLiteral).map(JSON.string)
                d["subnet_uid"] = F.text(instance?["SubnetId"]).map(JSON.string)
                d["vpc_uid"] = F.text(instance?["VpcId"]).map(JSON.string)
                d["name"] = F.text(resource["Tags"]?["Name"]).map(JSON.string)
                device = d
            }
        }
        return (list, device, complete)
    }

    /// `i-0abc...` from an instance ARN (`...:instance/i-0abc`, or `...:i-0abc` as some exports
    /// write it) or a bare instance id.
    static func instanceIDFrom(_ id: String) -> String? {
        let tail = id.split(whereSeparator: { $0 == "/" || $0 == ":" }).last.map(String.init) ?? id
        return tail.hasPrefix("i-") ? tail : nil
    }

    /// Company and product from `arn:aws:securityhub:<region>::product/<company>/<product>`.
    static func productParts(_ arn: String) -> (company: String, product: String)? {
        // arn : aws : securityhub : region : (account) : product/company/product
        let fields = arn.split(separator: ":", maxSplits: 5, omittingEmptySubsequences: false)
        guard fields.count == 6 else { return nil }
        let parts = fields[5].split(separator: "/", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "product", !parts[1].isEmpty, !parts[2].isEmpty else { return nil }
        return (String(parts[1]), String(parts[2]))
    }
}
