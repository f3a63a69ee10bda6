import Normalize
import OCSF
import Testing

/// Parsers in the detection order recommended for the built-in list.
fileprivate let detectionOrder: [any SourceParser] = [CloudTrailParser(), InspectorParser(), ASFFParser()]

fileprivate func asff(_ bytes: [UInt8], header: String? = "asff") -> NormalizeResult {
    Normalizer(parsers: [ASFFParser()]).normalize(RawRecord(bytes: bytes, source: header))
}

fileprivate func asff(_ text: String) -> NormalizeResult { asff(Array(text.utf8)) }


fileprivate func classCounts(_ events: [JSON]) -> [Int64: Int] {
    events.reduce(into: [:]) { $0[$1.int("class_uid") ?? 0, default: 0] += 1 }
}

@Suite("ASFF findings")
struct ASFFTests {
    /// Every shared ASFF sample with its DefectDojo-asserted count (or raw count where DefectDojo
    /// asserts none) and the OCSF classes the rule gives. DefectDojo asserts 1 for
    /// config_repeated_findings.json because it merges duplicates; each record here is its own event.
    static let samples: [(file: String, events: Int, classes: [Int64: Int])] = [
        ("asff/many_vulns.json", 5, [2002: 5]),
        ("asff/one_vuln.json", 1, [2002: 1]),
        ("asff/guardduty_iamuser_networkpermissions.json", 1, [2004: 1]),
        ("asff/prowler-output.asff.json", 731, [2003: 731]),
        ("asff/securityhub/config_many_findings.json", 3, [2003: 3]),
        ("asff/securityhub/config_multiple_resources.json", 2, [2003: 2]),
        ("asff/securityhub/config_one_finding.json", 1, [2003: 1]),
        ("asff/securityhub/config_one_finding_active.json", 1, [2003: 1]),
        ("asff/securityhub/config_repeated_findings.json", 2, [2003: 2]),
        ("asff/securityhub/guardduty.json", 4, [2004: 4]),
        ("asff/securityhub/inspector_ec2_cve.json", 5, [2002: 5]),
        ("asff/securityhub/inspector_ec2_cve_no_vulnerabilities.json", 1, [2002: 1]),
        ("asff/securityhub/inspector_ec2_ghsa.json", 1, [2002: 1]),
        ("asff/securityhub/inspector_ecr.json", 7, [2002: 7]),
        ("asff/securityhub/issue_10956.json", 1, [2002: 1]),
        ("asff/securityhub/missing_account_id.json", 1, [2002: 1]),
    ]

    @Test("Every shared ASFF sample: counts, classes, detection without a header", arguments: samples.map(\.file))
    func sample(file: String) throws {
        let expected = try #require(Self.samples.first { $0.file == file })
        let bytes = try fixture(file)
        let result = asff(bytes)
        #expect(result.failures.isEmpty, "\(result.failures)")
        #expect(result.events.count == expected.events)
        #expect(classCounts(result.events) == expected.classes)
        let detected = Normalizer(parsers: detectionOrder).normalize(RawRecord(bytes: bytes))
        #expect(detected.source == "asff")
        #expect(detected.events.map { $0.serialized() } == result.events.map { $0.serialized() })
        #expect(!InspectorParser().recognizes(SourceInput(raw: bytes)))
        #expect(!CloudTrailParser().recognizes(SourceInput(raw: bytes)))
        for event in result.events {
            #expect(event.string("finding_info.uid") != nil)
            #expect(event.int("time") != nil)
            #expect(event.string("cloud.provider") == "AWS")
        }
    }

    /// DefectDojo `asff/prowler-output.asff.json`: Prowler 3.3.0 checks, Compliance.Status PASSED,
    /// FAILED and Prowler's own INFOED.
    @Test("Prowler output: compliance status, control, requirements, standards")
    func prowler() throws {
        let result = asff(try fixture("asff/prowler-output.asff.json"))
        let statuses = result.events.reduce(into: [String: Int]()) { $0[$1.string("compliance.status") ?? "-", default: 0] += 1 }
        #expect(statuses == ["Pass": 441, "Fail": 286, "INFOED": 4])
        let first = result.events[0]
        #expect(first.int("class_uid") == 2003)
        #expect(first.int("type_uid") == 200301)
        #expect(first.int("compliance.status_id") == 3)
        #expect(first.string("compliance.status_code") == "FAILED")
        #expect(first.string("compliance.control") == "prowler-accessanalyzer_enabled")
        #expect(first.value(at: "compliance.requirements") == ["CIS-1.5 1.20", "CIS-1.4 1.20"])
        #expect(first.value(at: "compliance.standards") == ["CIS-1.5", "CIS-1.4"])
        #expect(first.string("metadata.product.name") == "Prowler")
        #expect(first.string("metadata.product.vendor_name") == "prowler")
        #expect(first.string("metadata.product.uid") == "arn:aws:securityhub:ap-northeast-1::product/prowler/prowler")
        #expect(first.int("severity_id") == 2)
        #expect(first.int("status_id") == 1)
        #expect(first.string("status_detail") == "ACTIVE")
        #expect(first.int("time") == millis("2023-03-18T15:43:31Z"))
        #expect(first.string("finding_info.title") == "Check if IAM Access Analyzer is enabled")
        #expect(first.string("remediation.desc")?.hasPrefix("Enable IAM Access Analyzer") == true)
        #expect(first.value(at: "remediation.references") == ["https://docs.aws.amazon.com/IAM/latest/UserGuide/what-is-access-analyzer.html"])
        #expect(first.string("resources.0.uid") == "123456789012")
        #expect(first.string("cloud.region") == "ap-northeast-1")
        #expect(first.string("unmapped.GeneratorId") == "prowler-accessanalyzer_enabled")
        #expect(first.value(at: "unmapped.Compliance") == nil)
        let infoed = try #require(result.events.first { $0.string("compliance.status_code") == "INFOED" })
        #expect(infoed.int("compliance.status_id") == 99)

        // 353 checks name no standard (AssociatedStandards and RelatedRequirements empty): the
        // CIS-typed ones take their Types classifier, the rest the product's own catalogue.
        let noStandard = result.events.filter { $0.value(at: "compliance.requirements") == nil }
        #expect(noStandard.count == 353)
        let standards = noStandard.reduce(into: [String: Int]()) {
            $0[($1.value(at: "compliance.standards")?.arrayValue ?? []).compactMap(\.stringValue).joined(separator: ","), default: 0] += 1
        }
        #expect(standards == ["CIS AWS Foundations Benchmark": 34, "Prowler": 319])
        #expect(result.events.allSatisfy { $0.value(at: "compliance.standards")?.arrayValue?.isEmpty == false })
    }

    /// DefectDojo `awssecurityhub/inspector_ecr.json`: Inspector findings through Security Hub.
    @Test("Security Hub Inspector ECR finding: CVE, CVSS, packages, EPSS")
    func inspectorECR() throws {
        let event = asff(try fixture("asff/securityhub/inspector_ecr.json")).events[0]
        #expect(event.string("finding_info.uid") == "arn:aws:inspector2:eu-central-1:123456789012:finding/fbd353dda17ad52c47774ad7d62360b2")
        #expect(event.value(at: "finding_info.types") == ["Software and Configuration Checks/Vulnerabilities/CVE"])
        #expect(event.string("metadata.product.name") == "Inspector")
        #expect(event.string("metadata.product.vendor_name") == "Amazon")
        #expect(event.int("severity_id") == 3)
        #expect(event.int("time") == millis("2023-08-30T21:11:07Z"))
        #expect(event.int("finding_info.created_time") == millis("2023-08-23T14:00:39Z"))
        #expect(event.string("vulnerabilities.0.cve.uid") == "CVE-2023-2650")
        #expect(event.value(at: "vulnerabilities.0.cve.cvss.0.base_score")?.doubleValue == 6.5)
        #expect(event.string("vulnerabilities.0.cve.cvss.0.vector_string") == "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:N/I:N/A:H")
        #expect(event.value(at: "vulnerabilities.0.cve.cvss.0.vendor_name") == nil)
        #expect(event.string("unmapped.cvss_sources.0.cve") == "CVE-2023-2650")
        #expect(event.string("unmapped.cvss_sources.0.version") == event.string("vulnerabilities.0.cve.cvss.0.version"))
        #expect(event.string("vulnerabilities.0.cve.epss.score") == "0.0014")
        #expect(event.string("vulnerabilities.0.affected_packages.0.name") == "openssl")
        #expect(event.int("vulnerabilities.0.affected_packages.0.epoch") == 0)
        #expect(event.string("vulnerabilities.0.affected_packages.0.fixed_in_version") == "0:1.1.1n-0+deb11u5")
        #expect(event.string("vulnerabilities.0.vendor_name") == "DEBIAN_CVE")
        #expect(event.string("vulnerabilities.0.severity") == "not yet assigned")
        #expect(event.value(at: "vulnerabilities.0.is_fix_available") == true)
        #expect(event.string("resources.0.type") == "AwsEcrContainerImage")
        #expect(event.string("resources.0.data.AwsEcrContainerImage.RepositoryName") == "repo-os")
        #expect(event.string("status") == "New")
        #expect(event.string("status_detail") == "NEW")
        #expect(event.value(at: "unmapped.Vulnerabilities") == nil)
        #expect(event.string("unmapped.ProductFields.aws/inspector/inspectorScore") == "6.5")
    }

    /// DefectDojo `awssecurityhub/inspector_ec2_cve_no_vulnerabilities.json`: a CVE-typed finding with
    /// an empty Vulnerabilities list is still a Vulnerability Finding, the finding being the vulnerability.
    @Test("Vulnerability-typed finding without Vulnerabilities: 2002 with the finding as its vulnerability")
    func noVulnerabilities() throws {
        let event = try onlyEvent(asff(try fixture("asff/securityhub/inspector_ec2_cve_no_vulnerabilities.json")))
        #expect(event.int("class_uid") == 2002)
        #expect(event.string("vulnerabilities.0.title") == "CVE-2022-3643 - kernel")
        #expect(event.string("vulnerabilities.0.severity") == "CRITICAL")
        #expect(event.string("device.instance_uid") == "i-11111111111111111")
        #expect(event.string("device.ip") == "11.1.11.111")
        #expect(event.value(at: "metadata.profiles") == ["cloud", "host"])
    }

    /// DefectDojo `awssecurityhub/guardduty.json`: GuardDuty findings are detections, not vulnerabilities.
    @Test("GuardDuty via Security Hub: Detection Finding 2004 with the instance as device")
    func guardDuty() throws {
        let event = asff(try fixture("asff/securityhub/guardduty.json")).events[0]
        #expect(event.int("class_uid") == 2004)
        #expect(event.string("class_name") == "Detection Finding")
        #expect(event.int("type_uid") == 200401)
        #expect(event.value(at: "finding_info.types") == ["TTPs/Defense Evasion/DefenseEvasion:EC2-UnusualDNSResolver"])
        #expect(event.string("finding_info.src_url")?.hasPrefix("https://us-east-1.console.aws.amazon.com/guardduty/") == true)
        #expect(event.int("finding_info.last_seen_time") == millis("2200-01-17T11:21:23Z"))
        #expect(event.int("time") == millis("2024-01-17T11:33:21.196Z"))
        #expect(event.string("metadata.product.name") == "GuardDuty")
        #expect(event.string("device.instance_uid") == "i-1234567890")
        #expect(event.string("device.ip") == "1.2.2.2")
        #expect(event.value(at: "resources.0.labels")?.arrayValue?.count == 4)
        #expect(event.string("unmapped.ProductFields.aws/guardduty/service/action/actionType") == "NETWORK_CONNECTION")
        #expect(event["vulnerabilities"] == nil && event["compliance"] == nil)
    }

    /// DefectDojo `awssecurityhub/config_multiple_resources.json`: a control failing on three resources.
    @Test("Security Hub control finding: control id, standards ARN, every resource")
    func controlFinding() throws {
        let event = asff(try fixture("asff/securityhub/config_multiple_resources.json")).events[0]
        #expect(event.int("class_uid") == 2003)
        #expect(event.string("compliance.control") == "EC2.2")
        #expect(event.value(at: "compliance.standards") == ["arn:aws:securityhub:::standards/aws-foundational-security-best-practices/v/1.0.0"])
        #expect(event.int("compliance.status_id") == 3)
        #expect(event.value(at: "resources")?.arrayValue?.count == 3)
        #expect(event.string("resources.2.uid") == "arn:aws:ec2:us-east-1:012345678912:vpc/vpc-0bbb3333dddd4444c")
        #expect(event.int("severity_id") == 4)
        #expect(event.string("cloud.account.uid") == "012345678912")
        #expect(event.string("cloud.region") == "us-east-1")
    }

    @Test("EventBridge Imported event: WARNING, Normalized severity, archived and resolved")
    func eventBridge() throws {
        let bytes = try fixture("asff/own_eventbridge_imported_archived.json")
        let event = try onlyEvent(asff(bytes))
        #expect(event.int("class_uid") == 2003)
        #expect(event.int("activity_id") == 3)
        #expect(event.int("status_id") == 4)
        #expect(event.string("status_detail") == "RESOLVED")
        #expect(event.int("severity_id") == 4)
        #expect(event.int("compliance.status_id") == 2)
        #expect(event.string("compliance.status") == "Warning")
        #expect(event.string("compliance.control") == "S3.8")
        #expect(event.string("compliance.status_detail")?.hasPrefix("AWS Config evaluated") == true)
        #expect(event.string("metadata.product.name") == "Security Hub")
        #expect(event.string("metadata.product.vendor_name") == "AWS")
        #expect(event.int("time") == millis("2024-05-02T08:00:00Z"))
        #expect(Normalizer(parsers: detectionOrder).normalize(RawRecord(bytes: bytes)).source == "asff")
    }

    @Test("Severity without a label: Normalized bands, then FindingProviderFields")
    func severityFallbacks() throws {
        func severity(_ fragment: String) throws -> Int64? {
            let text = #"{"SchemaVersion":"2018-10-08","ProductArn":"arn:aws:securityhub:us-east-1::product/aws/macie","Id":"f1","UpdatedAt":"2024-01-01T00:00:00Z",\#(fragment)}"#
            return try onlyEvent(asff(text)).int("severity_id")
        }
        #expect(try severity(#""Severity":{"Normalized":0}"#) == 1)
        #expect(try severity(#""Severity":{"Normalized":39}"#) == 2)
        #expect(try severity(#""Severity":{"Normalized":40}"#) == 3)
        #expect(try severity(#""Severity":{"Normalized":89}"#) == 4)
        #expect(try severity(#""Severity":{"Normalized":90}"#) == 5)
        #expect(try severity(#""FindingProviderFields":{"Severity":{"Label":"LOW"}}"#) == 2)
        #expect(try severity(#""Severity":{"Label":"weird"}"#) == 0)
    }

    @Test("One bad finding fails alone; wrong shapes fail cleanly")
    func badEntries() {
        let good = #"{"SchemaVersion":"2018-10-08","ProductArn":"arn:aws:securityhub:us-east-1::product/aws/guardduty","Id":"a","UpdatedAt":"2024-01-01T00:00:00Z"}"#
        let result = asff(#"[\#(good),7,{"SchemaVersion":"x","ProductArn":"y"},{"Id":"b","UpdatedAt":"SECRETVALUE"},{"Id":"c"}]"#)
        #expect(result.events.count == 1)
        #expect(result.failures.map(\.code) == ["invalid_entry", "missing_field", "invalid_time", "invalid_time"])
        #expect(result.failures.map(\.entryIndex) == [1, 2, 3, 4])
        #expect(result.failures[0].entryBytes == Array("7".utf8))
        for failure in result.failures { #expect(!failure.description.contains("SECRETVALUE")) }
        #expect(asff(#"{"Findings":{"Id":"SECRETVALUE"}}"#).failures.map(\.code) == ["unrecognized_format"])
        #expect(asff(#"{"detail-type":"Security Hub Findings - Imported","detail":{}}"#).failures.map(\.code) == ["unrecognized_format"])
        #expect(asff("true").failures.map(\.code) == ["unrecognized_format"])
        #expect(asff(#"[{"SchemaVersion":"2018-10-08","ProductArn":"p","Id":"a","UpdatedAt":"2024-01-01T00:00:00Z","Resources":[1,{"Id":5}],"Vulnerabilities":[{"Cvss":"x","VulnerablePackages":[3]}],"Types":"x"}]"#).events.count == 1)
        #expect(asff(#"[{"SchemaVersion":"2018-10-08""#).failures.map(\.code) == ["invalid_json"])
        // Without a header, a bare empty array is nobody's.
        #expect(Normalizer(parsers: detectionOrder).normalize(RawRecord(bytes: Array("[]".utf8))).failures.map(\.code) == ["unrecognized_format"])
    }

    @Test("Determinism and a 10 MB field")
    func determinismAndSize() throws {
        let bytes = try fixture("asff/securityhub/guardduty.json")
        #expect(asff(bytes).events.map { $0.serialized() } == asff(bytes).events.map { $0.serialized() })
        let big = String(repeating: "x", count: 10_000_000)
        let text = #"{"SchemaVersion":"2018-10-08","ProductArn":"arn:aws:securityhub:us-east-1::product/aws/guardduty","Id":"a","UpdatedAt":"2024-01-01T00:00:00Z","Description":"\#(big)"}"#
        #expect(try onlyEvent(asff(text)).string("finding_info.desc")?.utf8.count == 10_000_000)
    }

    @Test("2,000 random byte mutations of a sample: no crash, every outcome accounted for")
    func mutations() throws {
        let original = try fixture("asff/one_vuln.json")
        var random = XorShift(seed: 0x0DDB_1A5E_5BAD_5EED)
        for _ in 0..<2000 {
            var bytes = original
            for _ in 0..<(1 + random.below(8)) {
                bytes[random.below(bytes.count)] = UInt8(truncatingIfNeeded: random.next())
            }
            for header in [String?.none, "asff"] {
                let result = Normalizer(parsers: detectionOrder).normalize(RawRecord(bytes: bytes, source: header))
                #expect(result.events.count + result.failures.count >= 1)
                for failure in result.failures { #expect(failure.message.utf8.count < 200) }
            }
        }
    }
}
