import Normalize
import OCSF
import Testing

/// Parsers in the detection order recommended for the built-in list.
fileprivate let detectionOrder: [any SourceParser] = [CloudTrailParser(), InspectorParser(), ASFFParser()]

fileprivate func inspector(_ bytes: [UInt8], header: String? = "inspector") -> NormalizeResult {
    Normalizer(parsers: [InspectorParser()]).normalize(RawRecord(bytes: bytes, source: header))
}

fileprivate func inspector(_ text: String) -> NormalizeResult { inspector(Array(text.utf8)) }


@Suite("Amazon Inspector findings")
struct InspectorTests {
    /// DefectDojo `aws_inspector2_many_vul.json` (BSD-3-Clause): 8 findings, DefectDojo asserts 8.
    @Test("aws_inspector2_many_vul.json: 8 findings, closed, untriaged and EC2 mapped")
    func manyVul() throws {
        let result = inspector(try fixture("inspector/aws_inspector2_many_vul.json"))
        #expect(result.failures.isEmpty)
        #expect(result.events.count == 8)
        let first = result.events[0]
        #expect(first.int("class_uid") == 2002)
        #expect(first.int("type_uid") == 200203)
        #expect(first.int("activity_id") == 3)
        #expect(first.int("status_id") == 4)
        #expect(first.string("status") == "Resolved")
        #expect(first.string("status_detail") == "CLOSED")
        #expect(first.int("severity_id") == 3)
        #expect(result.events[1].int("severity_id") == 0)
        #expect(result.events[1].string("vulnerabilities.0.severity") != nil)
        #expect(result.events.filter { $0.int("activity_id") == 1 }.count == 7)

        let ec2 = result.events[7]
        #expect(ec2.string("finding_info.uid") == "arn:aws:inspector2:us-east-1:012345678901:finding/000e155e74c3ccb3b2e13d08a65ccafc")
        #expect(ec2.string("finding_info.title") == "CVE-2015-8035 - libxml2, libxml2-python")
        #expect(ec2.int("time") == millis("2024-03-19T15:31:08.006+01:00"))
        #expect(ec2.string("metadata.original_time") == "2024-03-19T15:31:08.006000+01:00")
        #expect(ec2.int("finding_info.first_seen_time") == millis("2023-07-30T11:11:39.233+02:00"))
        #expect(ec2.int("severity_id") == 2)
        #expect(ec2.string("vulnerabilities.0.cve.uid") == "CVE-2015-8035")
        #expect(ec2.value(at: "vulnerabilities.0.cve.cvss.0.base_score")?.doubleValue == 2.6)
        #expect(ec2.string("vulnerabilities.0.cve.cvss.0.version") == "2.0")
        #expect(ec2.string("vulnerabilities.0.cve.cvss.0.vector_string") == "AV:N/AC:H/Au:N/C:N/I:N/A:P")
        // Who scored it: not in OCSF 1.3.0's cvss (vendor_name is 1.4), so kept in unmapped.
        #expect(ec2.value(at: "vulnerabilities.0.cve.cvss.0.vendor_name") == nil)
        #expect(ec2.value(at: "unmapped.cvss_sources") == [["cve": "CVE-2015-8035", "version": "2.0", "base_score": 2.6, "source": "NVD"]])
        #expect(ec2.value(at: "vulnerabilities.0.affected_packages")?.arrayValue?.count == 2)
        #expect(ec2.string("vulnerabilities.0.affected_packages.1.name") == "libxml2-python")
        #expect(ec2.string("vulnerabilities.0.affected_packages.1.fixed_in_version") == "0:2.9.1-6.el7.4")
        #expect(ec2.string("vulnerabilities.0.affected_packages.1.package_manager") == "OS")
        #expect(ec2.string("vulnerabilities.0.severity") == "LOW")
        #expect(ec2.value(at: "vulnerabilities.0.references")?.arrayValue?.count == 7)
        #expect(ec2.string("resources.0.uid") == "i-0b22a22eec53b9321")
        #expect(ec2.string("resources.0.type") == "AWS_EC2_INSTANCE")
        #expect(ec2.string("resources.0.name") == "my-instance")
        #expect(ec2.string("resources.0.data.awsEc2Instance.imageId") == "ami-01234567890abcdef")
        #expect(ec2.value(at: "resources.0.labels") == ["Backup_Policy=Monthly", "Name=my-instance"])
        #expect(ec2.string("device.instance_uid") == "i-0b22a22eec53b9321")
        #expect(ec2.string("device.ip") == "8.84.11.16")
        #expect(ec2.string("device.vpc_uid") == "vpc-01234567890abcdef")
        #expect(ec2.string("cloud.account.uid") == "012345678901")
        #expect(ec2.string("cloud.region") == "us-east-1")
        #expect(ec2.value(at: "metadata.profiles") == ["cloud", "host"])
        #expect(OCSFEvent.primaryKey(ec2) == "i-0b22a22eec53b9321")
    }

    /// DefectDojo `aws_inspector2_one_vul.json` (BSD-3-Clause): 1 ECR finding, DefectDojo asserts 1.
    @Test("aws_inspector2_one_vul.json: the ECR image finding, field by field")
    func oneVul() throws {
        let event = try onlyEvent(inspector(try fixture("inspector/aws_inspector2_one_vul.json")))
        #expect(event.string("metadata.product.name") == "Inspector")
        #expect(event.string("metadata.product.vendor_name") == "AWS")
        #expect(event.string("metadata.version") == "1.3.0")
        #expect(event.string("metadata.event_code") == "PACKAGE_VULNERABILITY")
        #expect(event.int("activity_id") == 1)
        #expect(event.string("activity_name") == "Create")
        #expect(event.int("status_id") == 1)
        #expect(event.string("status") == "New")
        #expect(event.int("time") == millis("2024-06-14T04:03:53.051+02:00"))
        #expect(event.int("finding_info.last_seen_time") == millis("2024-06-14T04:03:53.051+02:00"))
        #expect(event.value(at: "finding_info.types") == ["PACKAGE_VULNERABILITY"])
        #expect(event.string("finding_info.desc")?.hasPrefix("A memory leak flaw") == true)
        #expect(event.string("vulnerabilities.0.cve.uid") == "CVE-2021-3744")
        #expect(event.value(at: "vulnerabilities.0.cve.cvss.0.base_score")?.doubleValue == 5.5)
        #expect(event.string("vulnerabilities.0.cve.cvss.0.version") == "3.1")
        #expect(event.string("vulnerabilities.0.cve.epss.score") == "0.00075")
        #expect(event.string("vulnerabilities.0.severity") == "unimportant")
        #expect(event.string("vulnerabilities.0.vendor_name") == "DEBIAN_CVE")
        #expect(event.value(at: "vulnerabilities.0.is_fix_available") == true)
        #expect(event.value(at: "vulnerabilities.0.is_exploit_available") == false)
        #expect(event.value(at: "vulnerabilities.0.references") == ["https://security-tracker.debian.org/tracker/CVE-2021-3744"])
        #expect(event.string("vulnerabilities.0.remediation.desc") == "None Provided")
        #expect(event.value(at: "vulnerabilities.0.affected_packages.0") == [
            "name": "linux", "version": "4.19.118", "fixed_in_version": "0:4.19.232-1", "package_manager": "OS",
            "architecture": "AMD64", "epoch": 0, "release": "2", "remediation": ["desc": "apt-get update && apt-get upgrade"],
        ])
        #expect(event.string("unmapped.packageVulnerabilityDetails.vulnerablePackages.0.sourceLayerHash")?.hasPrefix("sha256:11a8") == true)
        #expect(event.value(at: "unmapped.inspectorScore")?.doubleValue == 5.5)
        #expect(event.string("resources.0.uid") == "arn:aws:ecr:us-east-1:012345678901:repository/my-awesome-docker-image/sha256:c667ad018b538adadb5bd1db75836c8561b23bc7d31d9cd8941fa74f5df93802")
        #expect(event.string("resources.0.type") == "AWS_ECR_CONTAINER_IMAGE")
        #expect(event.string("resources.0.name") == "my-awesome-docker-image")
        #expect(event.string("resources.0.owner.account.uid") == "012345678901")
        #expect(event["device"] == nil)
        #expect(event.value(at: "metadata.profiles") == ["cloud"])
    }

    /// DefectDojo `aws_inspector2_package_vuln_metadata.json` (BSD-3-Clause): 28 Lambda findings,
    /// DefectDojo asserts 28; one is a code finding.
    @Test("aws_inspector2_package_vuln_metadata.json: 28 Lambda findings, the code finding's CWE and location")
    func packageVulnMetadata() throws {
        let result = inspector(try fixture("inspector/aws_inspector2_package_vuln_metadata.json"))
        #expect(result.failures.isEmpty)
        #expect(result.events.count == 28)
        #expect(Set(result.events.compactMap { $0.string("resources.0.type") }) == ["AWS_LAMBDA_FUNCTION"])
        #expect(result.events.filter { $0.int("severity_id") == 5 }.count == 1)
        let code = try #require(result.events.first { $0.string("metadata.event_code") == "CODE_VULNERABILITY" })
        #expect(code.string("vulnerabilities.0.cwe.uid")?.hasPrefix("CWE-") == true)
        #expect(code.string("vulnerabilities.0.affected_code.0.file.path") != nil)
        #expect(code.value(at: "vulnerabilities.0.cve") == nil)
        #expect(code.string("resources.0.name") == "web-user-manager-api-stage-healthCheck-EXAMPLE1ABCD")
        // "2026-02-18 12:01:00.079000+01:00": ISO 8601 with a space instead of T.
        #expect(result.events.allSatisfy { ($0.int("time") ?? 0) > millis("2026-01-01T00:00:00Z") })
        #expect(Set(result.events.compactMap { $0.string("metadata.uid") }).count == 28)
    }

    /// DefectDojo `aws_inspector2_package_vuln_metadata_multi_cwe_fabricated.json`: 3 findings.
    @Test("multi_cwe_fabricated: the first CWE mapped, all kept in unmapped")
    func multiCWE() throws {
        let result = inspector(try fixture("inspector/aws_inspector2_package_vuln_metadata_multi_cwe_fabricated.json"))
        #expect(result.failures.isEmpty)
        #expect(result.events.count == 3)
        let code = result.events[0]
        #expect(code.string("vulnerabilities.0.cwe.uid") == "CWE-117")
        #expect(code.string("vulnerabilities.0.title") == "Log injection")
        #expect(code.int("vulnerabilities.0.affected_code.0.start_line") == 268)
        #expect(code.string("vulnerabilities.0.affected_code.0.file.name") == "api_client.py")
        #expect(code.value(at: "unmapped.codeVulnerabilityDetails.cwes") == ["CWE-117", "CWE-93"])
        #expect(code.value(at: "unmapped.cwes") == ["CWE-117", "CWE-93"])
        #expect(code.int("time") == millis("2026-02-18T13:41:11.095+01:00"))
        #expect(code.string("cloud.region") == "us-west-2")
    }

    @Test("aws_inspector2_zero_vul.json is an empty page; empty_with_error.json is not a finding")
    func emptyFiles() throws {
        let zero = try fixture("inspector/aws_inspector2_zero_vul.json")
        let result = Normalizer(parsers: detectionOrder).normalize(RawRecord(bytes: zero))
        #expect(result.source == "inspector")
        #expect(result.events.isEmpty && result.failures.isEmpty)

        let empty = try fixture("inspector/empty_with_error.json")
        #expect(inspector(empty).failures.map(\.code) == ["missing_field"])
        #expect(Normalizer(parsers: detectionOrder).normalize(RawRecord(bytes: empty)).failures.map(\.code) == ["unrecognized_format"])
    }

    @Test("EventBridge event with Java-style timestamps, status CLOSED")
    func eventBridgeClosed() throws {
        let event = try onlyEvent(inspector(try fixture("inspector/own_eventbridge_ec2_closed.json")))
        #expect(event.int("time") == millis("2024-09-04T17:00:36.951Z"))
        #expect(event.string("metadata.original_time") == "Wed Sep 04 17:00:36.951 UTC 2024")
        #expect(event.int("finding_info.first_seen_time") == millis("2024-09-04T16:59:44.356Z"))
        #expect(event.int("activity_id") == 3 && event.int("status_id") == 4)
        #expect(event.value(at: "vulnerabilities.0.cve.cvss")?.arrayValue?.count == 2)
        #expect(event.int("vulnerabilities.0.cve.created_time") == millis("2024-07-25T20:15:00Z"))
        #expect(event.value(at: "vulnerabilities.0.related_vulnerabilities") == ["USN-0000-1"])
        #expect(event.value(at: "vulnerabilities.0.references") == [
            "https://ubuntu.com/security/CVE-2024-0001", "https://www.cve.org/CVERecord?id=CVE-2024-0001",
        ])
        #expect(event.string("device.ip") == "198.51.100.7")
        #expect(event.string("device.name") == "web-1")
        #expect(event.value(at: "resources.0.labels") == ["Name=web-1", "team=blue"])
        #expect(event.string("cloud.region") == "eu-central-1")
        #expect(event.string("cloud.account.uid") == "111122223333")
        // The envelope repeats the detail; its own fields are not carried.
        #expect(event.value(at: "unmapped.detail-type") == nil)
    }

    @Test("EventBridge event with `Mar 20, 2023, 6:08:05 PM` timestamps, network reachability, SUPPRESSED")
    func eventBridgeSuppressed() throws {
        let event = try onlyEvent(inspector(try fixture("inspector/own_eventbridge_network_suppressed.json")))
        #expect(event.int("time") == millis("2023-03-20T18:08:05Z"))
        #expect(event.int("status_id") == 3)
        #expect(event.string("status") == "Suppressed")
        #expect(event.int("activity_id") == 2)
        #expect(event.int("severity_id") == 4)
        #expect(event.value(at: "vulnerabilities.0.cve") == nil)
        #expect(event.string("vulnerabilities.0.title") == "Port 22 is reachable from an Internet Gateway - TCP")
        #expect(event.int("unmapped.networkReachabilityDetails.openPortRange.begin") == 22)
        #expect(event.string("device.instance_uid") == "i-0fedcba9876543210")
    }

    @Test("Raw API page: epoch-second timestamps, GHSA id, PARTIAL fix, nextToken")
    func epochSeconds() throws {
        let result = inspector(try fixture("inspector/own_api_epoch_seconds.json"))
        let event = try onlyEvent(result)
        #expect(event.int("time") == 1_717_286_400_500)
        #expect(event.int("finding_info.first_seen_time") == 1_717_200_000_123)
        #expect(event.string("metadata.original_time") == "1717286400.5")
        #expect(event.int("severity_id") == 5)
        #expect(event.string("vulnerabilities.0.cve.uid") == "GHSA-xxxx-yyyy-zzzz")
        #expect(event.value(at: "vulnerabilities.0.is_fix_available") == true)
        #expect(event.string("vulnerabilities.0.affected_packages.0.path") == "examplelib-1.0.0.dist-info/METADATA")
        #expect(event.string("resources.0.name") == "example-fn")
        #expect(event.string("cloud.region") == "us-west-2")
        let detected = Normalizer(parsers: detectionOrder).normalize(RawRecord(bytes: try fixture("inspector/own_api_epoch_seconds.json")))
        #expect(detected.source == "inspector")
    }

    @Test("One bad finding fails alone, with its index and bytes")
    func badEntries() throws {
        let good = #"{"findingArn":"arn:aws:inspector2:us-east-1:111122223333:finding/aa","awsAccountId":"111122223333","severity":"HIGH","status":"ACTIVE","updatedAt":"2024-01-01T00:00:00Z"}"#
        let text = #"{"findings":[\#(good),"SECRETVALUE",{"awsAccountId":"1","updatedAt":"2024-01-01T00:00:00Z"},{"findingArn":"x","updatedAt":"SECRETVALUE"},{"findingArn":"y"}]}"#
        let result = inspector(text)
        #expect(result.events.count == 1)
        #expect(result.failures.map(\.code) == ["invalid_entry", "missing_field", "invalid_time", "invalid_time"])
        #expect(result.failures.map(\.entryIndex) == [1, 2, 3, 4])
        #expect(result.failures[0].entryBytes == JSON.string("SECRETVALUE").serialized())
        #expect(result.failures[3].message == "updatedAt and lastObservedAt are missing")
        for failure in result.failures { #expect(!failure.description.contains("SECRETVALUE")) }
        // A single finding at fault is the record: no index.
        #expect(inspector(#"{"findingArn":"x","severity":"LOW","updatedAt":"yesterday"}"#).failures.map(\.entryIndex) == [nil])
    }

    @Test("Wrong shapes give failures, never a crash")
    func wrongShapes() {
        #expect(inspector(#"{"findings":"SECRETVALUE"}"#).failures.map(\.code) == ["unrecognized_format"])
        #expect(inspector(#"{"detail-type":"Inspector2 Finding","detail":[1]}"#).failures.map(\.code) == ["unrecognized_format"])
        #expect(inspector("42").failures.map(\.code) == ["unrecognized_format"])
        #expect(inspector(#"{"findings":[{"findingArn":"a","updatedAt":"2024-01-01T00:00:00Z","resources":"x","packageVulnerabilityDetails":{"cvss":"x","vulnerablePackages":[1]},"severity":7}]}"#).events.count == 1)
        #expect(inspector(#"{"findings":[{"findingArn":"a","updatedAt":"2024-01-01T00:00:00Z"#).failures.map(\.code) == ["invalid_json"])
        #expect(inspector([0x7B, 0x22, 0xC3, 0x28, 0x22, 0x3A, 0x31, 0x7D]).failures.map(\.code) == ["invalid_json"])
    }

    @Test("Detection: inspector documents are claimed by Inspector only; CloudTrail keeps its own")
    func detection() throws {
        for file in ["aws_inspector2_many_vul.json", "aws_inspector2_one_vul.json", "own_eventbridge_ec2_closed.json",
                     "own_eventbridge_network_suppressed.json", "aws_inspector2_package_vuln_metadata.json"] {
            let bytes = try fixture("inspector/\(file)")
            let result = Normalizer(parsers: detectionOrder).normalize(RawRecord(bytes: bytes))
            #expect(result.source == "inspector", "\(file)")
            #expect(result.detected)
            #expect(!CloudTrailParser().recognizes(SourceInput(raw: bytes)), "\(file)")
            #expect(!ASFFParser().recognizes(SourceInput(raw: bytes)), "\(file)")
        }
        for file in ["own/assume_role.json", "own/eventbridge_console_sign_in.json", "streamalert/records_delete_subnet.json"] {
            let bytes = try fixture(file)
            #expect(!InspectorParser().recognizes(SourceInput(raw: bytes)), "\(file)")
            #expect(Normalizer(parsers: [InspectorParser()]).normalize(RawRecord(bytes: bytes)).failures.map(\.code) == ["unrecognized_format"])
            #expect(Normalizer(parsers: detectionOrder).normalize(RawRecord(bytes: bytes)).source == "cloudtrail")
        }
        // ASFF (Security Hub's copy of an Inspector finding) is not Inspector's own format.
        #expect(!InspectorParser().recognizes(SourceInput(raw: try fixture("asff/securityhub/inspector_ecr.json"))))
    }

    @Test("Determinism: same bytes, same events; the same state via API and EventBridge shares a uid")
    func determinism() throws {
        let bytes = try fixture("inspector/aws_inspector2_many_vul.json")
        let a = inspector(bytes).events.map { $0.serialized() }
        let b = inspector(bytes).events.map { $0.serialized() }
        #expect(a == b)
        let envelope = try #require(try JSON.parse(fixture("inspector/own_eventbridge_ec2_closed.json"))["detail"])
        let bare = try onlyEvent(inspector(envelope.serialized()))
        let wrapped = try onlyEvent(inspector(try fixture("inspector/own_eventbridge_ec2_closed.json")))
        #expect(bare.serialized() == wrapped.serialized())
    }

    @Test("A 10 MB description still normalizes")
    func hugeField() throws {
        let big = String(repeating: "d", count: 10_000_000)
        let text = #"{"findingArn":"arn:aws:inspector2:us-east-1:111122223333:finding/aa","severity":"LOW","updatedAt":"2024-01-01T00:00:00Z","description":"\#(big)"}"#
        let event = try onlyEvent(inspector(text))
        #expect(event.string("finding_info.desc")?.utf8.count == 10_000_000)
    }

    @Test("2,000 random byte mutations of a sample: no crash, every outcome accounted for")
    func mutations() throws {
        let original = try fixture("inspector/aws_inspector2_one_vul.json")
        var random = XorShift(seed: 0x1234_5678_9ABC_DEF1)
        for _ in 0..<2000 {
            var bytes = original
            for _ in 0..<(1 + random.below(8)) {
                bytes[random.below(bytes.count)] = UInt8(truncatingIfNeeded: random.next())
            }
            for header in [String?.none, "inspector"] {
                let result = Normalizer(parsers: detectionOrder).normalize(RawRecord(bytes: bytes, source: header))
                #expect(result.events.count + result.failures.count >= 1)
                #expect(result.events.count <= 1)
                for failure in result.failures { #expect(failure.message.utf8.count < 200) }
            }
        }
    }
}
