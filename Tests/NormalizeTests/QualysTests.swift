import Normalize
import OCSF
import Testing

/// Every parser of this change, JSON sources first, in the recommended detection order.
fileprivate let detectionOrder: [any SourceParser] = [
    CloudTrailParser(), InspectorParser(), ASFFParser(), NessusParser(), QualysParser(),
]

fileprivate func qualys(_ bytes: [UInt8], header: String? = "qualys") -> NormalizeResult {
    Normalizer(parsers: [QualysParser()]).normalize(RawRecord(bytes: bytes, source: header))
}

fileprivate func qualys(_ text: String) -> NormalizeResult { qualys(Array(text.utf8)) }


@Suite("Qualys VM XML")
struct QualysTests {
    /// DefectDojo `qualys/Qualys_Sample_Report.xml` (BSD-3-Clause): an ASSET_DATA_REPORT with 7
    /// hosts and 301 VULN_INFO entries; DefectDojo asserts 301 findings, and so many events here.
    @Test("Qualys_Sample_Report.xml: 301 detections joined with the glossary")
    func sampleReport() throws {
        let bytes = try fixture("qualys/Qualys_Sample_Report.xml")
        let result = qualys(bytes)
        #expect(result.failures.isEmpty)
        #expect(result.events.count == 301)
        let severities = result.events.reduce(into: [Int64: Int]()) { $0[$1.int("severity_id") ?? -1, default: 0] += 1 }
        #expect(severities == [1: 217, 2: 39, 3: 32, 4: 6, 5: 7])
        #expect(result.events.filter { $0.value(at: "finding_info.types") == ["Ig"] }.count == 209)
        #expect(Set(result.events.compactMap { $0.string("resources.0.uid") }).count == 7)
        #expect(Set(result.events.compactMap { $0.string("metadata.uid") }).count == 301)

        let first = result.events[0]
        #expect(first.string("metadata.log_name") == "ASSET_DATA_REPORT")
        #expect(first.string("metadata.product.name") == "Qualys VM")
        #expect(first.string("metadata.event_code") == "6")
        #expect(first.string("finding_info.title") == "DNS Host Name")
        #expect(first.string("finding_info.uid") == "qid-6@64.41.200.243")
        #expect(first.int("time") == millis("2019-07-31T21:57:48Z"))
        #expect(first.int("severity_id") == 1)
        #expect(first.int("status_id") == 0)
        #expect(first.string("device.ip") == "64.41.200.243")
        #expect(first.string("device.hostname") == "demo13.s02.sjc01.qualys.com")
        #expect(first.string("unmapped.detection.RESULT.#text") == "IP address\tHost name\n64.41.200.243\tdemo13.s02.sjc01.qualys.com")
        #expect(first.string("unmapped.host.OPERATING_SYSTEM") == "Ubuntu / Tiny Core Linux / Linux 2.6.x")
        #expect(first.string("unmapped.vuln_details.CATEGORY") == "Information gathering")

        let tcp = try #require(result.events.first { $0.string("finding_info.uid") == "qid-82054@64.41.200.243" })
        #expect(tcp.string("vulnerabilities.0.cve.uid") == "CVE-2004-0230")
        #expect(tcp.value(at: "vulnerabilities.0.references") == ["http://cve.mitre.org/cgi-bin/cvename.cgi?name=CVE-2004-0230"])
        #expect(tcp.string("finding_info.title") == "TCP Sequence Number Approximation Based Denial of Service")
        #expect(tcp.string("status") == "New")
        #expect(tcp.int("activity_id") == 1)

        // A QID with CVSS v2 and v3 scores "9.3 (AV:N/AC:M/Au:N/C:C/I:C/A:C)".
        let scored = try #require(result.events.first { $0.value(at: "vulnerabilities.0.cve.cvss.1.base_score")?.doubleValue == 9.3 })
        #expect(scored.value(at: "vulnerabilities.0.cve.cvss.0.base_score")?.doubleValue == 9.0)
        #expect(scored.string("vulnerabilities.0.cve.cvss.0.vector_string") == "AV:N/AC:H/PR:N/UI:N/S:C/C:H/I:H/A:H")
        #expect(scored.string("vulnerabilities.0.cve.cvss.1.version") == "2.0")

        let detected = Normalizer(parsers: detectionOrder).normalize(RawRecord(bytes: bytes))
        #expect(detected.source == "qualys")
        #expect(detected.events.count == 301)
    }

    /// DefectDojo `qualys/empty.xml`: the same layout without hosts; DefectDojo asserts 0.
    @Test("empty.xml: no hosts, nothing")
    func emptyReport() throws {
        let result = qualys(try fixture("qualys/empty.xml"))
        #expect(result.events.isEmpty && result.failures.isEmpty)
        #expect(QualysParser().recognizes(SourceInput(raw: try fixture("qualys/empty.xml"))))
    }

    @Test("Host detection list: statuses, ignored, info, time fallbacks, DNS_DATA")
    func hostDetection() throws {
        let result = qualys(try fixture("qualys/own_host_list_vm_detection.xml"))
        #expect(result.failures.isEmpty)
        #expect(result.events.count == 5)
        let active = result.events[0]
        #expect(active.string("metadata.log_name") == "HOST_LIST_VM_DETECTION_OUTPUT")
        #expect(active.string("finding_info.uid") == "900001")
        #expect(active.string("finding_info.title") == "Qualys QID 38739")
        #expect(active.int("time") == millis("2024-05-31T22:10:00Z"))
        #expect(active.int("finding_info.first_seen_time") == millis("2024-01-15T03:00:00Z"))
        #expect(active.int("severity_id") == 4)
        #expect((active.int("activity_id"), active.int("status_id")) == (2, 1))
        #expect(active.string("status_detail") == "Active")
        #expect(active.string("device.uid") == "1234567")
        #expect(active.string("device.name") == "WEB01")
        #expect(active.string("unmapped.detection.RESULTS") == "TLSv1.0 is supported & enabled <on this port>")
        #expect(active.string("unmapped.detection.PORT") == "443")
        #expect(active.string("unmapped.host.OS") == "Ubuntu Linux 22.04")

        let info = result.events[1]
        #expect(info.int("severity_id") == 1)
        #expect(info.value(at: "finding_info.types") == ["Info"])

        let fixed = result.events[2]
        #expect((fixed.int("activity_id"), fixed.int("status_id")) == (3, 4))
        #expect(fixed.int("time") == millis("2024-04-01T03:00:00Z"))

        let ignored = result.events[3]
        #expect((ignored.int("activity_id"), ignored.int("status_id")) == (2, 3))
        #expect(ignored.string("status_detail") == "Ignored")
        #expect(ignored.int("severity_id") == 5)
        #expect(ignored.string("device.hostname") == "db-01.example.com")
        #expect(ignored.string("finding_info.uid") == "qid-370914@1234568")

        // No detection time, no host scan time: the response's DATETIME.
        let new = result.events[4]
        #expect(new.int("time") == millis("2024-06-01T12:00:00Z"))
        #expect((new.int("activity_id"), new.int("status_id")) == (1, 1))
        #expect(new.int("severity_id") == 2)
    }

    @Test("Bad detections fail alone with their canonical JSON; bad documents fail whole")
    func failures() throws {
        let text = """
        <HOST_LIST_VM_DETECTION_OUTPUT><RESPONSE><HOST_LIST><HOST><ID>1</ID><IP>192.0.2.1</IP><DETECTION_LIST>
        <DETECTION><QID>1</QID><LAST_FOUND_DATETIME>2024-01-01T00:00:00Z</LAST_FOUND_DATETIME></DETECTION>
        <DETECTION><TYPE>Confirmed</TYPE><LAST_FOUND_DATETIME>2024-01-01T00:00:00Z</LAST_FOUND_DATETIME></DETECTION>
        <DETECTION><QID>2</QID><LAST_FOUND_DATETIME>SECRETVALUE</LAST_FOUND_DATETIME></DETECTION>
        <DETECTION><QID>3</QID></DETECTION>
        </DETECTION_LIST></HOST></HOST_LIST></RESPONSE></HOST_LIST_VM_DETECTION_OUTPUT>
        """
        let result = qualys(text)
        #expect(result.events.count == 1)
        #expect(result.failures.map(\.code) == ["missing_field", "invalid_time", "invalid_time"])
        #expect(result.failures.map(\.entryIndex) == [1, 2, 3])
        #expect(result.failures[1].message == "LAST_FOUND_DATETIME is not a timestamp")
        let entry = try JSON.parse(try #require(result.failures[0].entryBytes))
        #expect(entry.string("host.IP") == "192.0.2.1")
        #expect(entry.string("detection.TYPE") == "Confirmed")
        for failure in result.failures { #expect(!failure.description.contains("SECRETVALUE")) }

        #expect(qualys("<HOST_LIST_VM_DETECTION_OUTPUT><RESPONSE>").failures.map(\.code) == ["unrecognized_format"])
        #expect(qualys("<SIMPLE_RETURN><RESPONSE><TEXT>SECRETVALUE</TEXT></RESPONSE></SIMPLE_RETURN>").failures.map(\.code) == ["unrecognized_format"])
        #expect(qualys("<OTHER/>").failures.map(\.code) == ["unrecognized_format"])
        #expect(qualys("").failures.map(\.code) == ["unrecognized_format"])
        #expect(qualys("not xml at all SECRETVALUE").failures.map(\.code) == ["unrecognized_format"])
        #expect(qualys([0x3C, 0x61, 0x3E, 0xC3, 0x28, 0xFF, 0x3C, 0x2F, 0x61, 0x3E]).failures.count == 1)
    }

    @Test("Hostile XML: billion laughs, external entities and deep nesting are refused quickly")
    func hostileXML() throws {
        var laughs = #"<?xml version="1.0"?><!DOCTYPE HOST_LIST_VM_DETECTION_OUTPUT [<!ENTITY lol "lol">"#
        var previous = "lol"
        for level in 1...9 {
            laughs += #"<!ENTITY lol\#(level) "\#(String(repeating: "&\(previous);", count: 10))">"#
            previous = "lol\(level)"
        }
        laughs += "]><HOST_LIST_VM_DETECTION_OUTPUT><RESPONSE><DATETIME>&lol9;</DATETIME></RESPONSE></HOST_LIST_VM_DETECTION_OUTPUT>"
        let clock = ContinuousClock()
        let started = clock.now
        let result = qualys(laughs)
        #expect(result.failures.map(\.code) == ["unrecognized_format"])
        #expect(result.failures.first?.message.contains("ENTITY") == true)
        #expect(clock.now - started < .seconds(2))

        let external = #"<?xml version="1.0"?><!DOCTYPE HOST_LIST_VM_DETECTION_OUTPUT [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><HOST_LIST_VM_DETECTION_OUTPUT><RESPONSE><DATETIME>&xxe;</DATETIME></RESPONSE></HOST_LIST_VM_DETECTION_OUTPUT>"#
        #expect(qualys(external).events.isEmpty)
        #expect(qualys(external).failures.map(\.code) == ["unrecognized_format"])

        let deep = "<HOST_LIST_VM_DETECTION_OUTPUT>" + String(repeating: "<a>", count: 100_000) + String(repeating: "</a>", count: 100_000) + "</HOST_LIST_VM_DETECTION_OUTPUT>"
        #expect(qualys(deep).failures.map(\.code) == ["unrecognized_format"])

        // A 5 MB RESULTS value is data, not an attack: it normalizes and is kept. A 10 MB text
        // node is past libxml2's own limit: the document fails whole, without a crash.
        func document(results: Int) -> String {
            "<HOST_LIST_VM_DETECTION_OUTPUT><RESPONSE><HOST_LIST><HOST><IP>192.0.2.1</IP><DETECTION_LIST><DETECTION><QID>1</QID><LAST_FOUND_DATETIME>2024-01-01T00:00:00Z</LAST_FOUND_DATETIME><RESULTS>"
                + String(repeating: "r", count: results) + "</RESULTS></DETECTION></DETECTION_LIST></HOST></HOST_LIST></RESPONSE></HOST_LIST_VM_DETECTION_OUTPUT>"
        }
        #expect(try onlyEvent(qualys(document(results: 5_000_000))).string("unmapped.detection.RESULTS")?.utf8.count == 5_000_000)
        #expect(qualys(document(results: 10_000_001)).failures.map(\.code) == ["unrecognized_format"])

        // Bytes that are not UTF-8 in an element or attribute name (FoundationXML would trap).
        let badName: [UInt8] = Array("<HOST_LIST_VM_DETECTION_OUTPUT><b".utf8) + [0xC3, 0x28] + Array(">x</b".utf8) + [0xC3, 0x28] + Array("></HOST_LIST_VM_DETECTION_OUTPUT>".utf8)
        #expect(qualys(badName).failures.map(\.message) == ["XML is not valid UTF-8"])
        let badAttribute: [UInt8] = Array("<HOST_LIST_VM_DETECTION_OUTPUT><b i".utf8) + [0xFF] + Array("d=\"1\">x</b></HOST_LIST_VM_DETECTION_OUTPUT>".utf8)
        #expect(qualys(badAttribute).failures.map(\.message) == ["XML is not valid UTF-8"])
    }

    @Test("Detection: Qualys XML only")
    func detection() throws {
        let parser = QualysParser()
        #expect(parser.recognizes(SourceInput(raw: try fixture("qualys/own_host_list_vm_detection.xml"))))
        #expect(!parser.recognizes(SourceInput(raw: try fixture("own/assume_role.json"))))
        #expect(!parser.recognizes(SourceInput(raw: try fixture("nessus/nessus-template.csv"))))
        #expect(!parser.recognizes(SourceInput(raw: Array("<NessusClientData_v2><Report/></NessusClientData_v2>".utf8))))
        #expect(!CloudTrailParser().recognizes(SourceInput(raw: try fixture("qualys/Qualys_Sample_Report.xml"))))
        #expect(!NessusParser().recognizes(SourceInput(raw: try fixture("qualys/Qualys_Sample_Report.xml"))))
        #expect(Normalizer(parsers: [QualysParser()]).normalize(RawRecord(bytes: try fixture("own/assume_role.json"))).failures.map(\.code) == ["unrecognized_format"])
    }

    @Test("Determinism: same bytes, same events")
    func determinism() throws {
        let bytes = try fixture("qualys/own_host_list_vm_detection.xml")
        #expect(qualys(bytes).events.map { $0.serialized() } == qualys(bytes).events.map { $0.serialized() })
    }

    @Test("2,000 random byte mutations of a sample: no crash, every outcome accounted for")
    func mutations() throws {
        let original = try fixture("qualys/own_host_list_vm_detection.xml")
        var random = XorShift(seed: 0x9E37_79B9_7F4A_7C15)
        for _ in 0..<2000 {
            var bytes = original
            for _ in 0..<(1 + random.below(8)) {
                bytes[random.below(bytes.count)] = UInt8(truncatingIfNeeded: random.next())
            }
            let result = qualys(bytes)
            #expect(result.events.count + result.failures.count >= 1)
            #expect(result.events.count + result.failures.count <= 5 || result.failures.count == 1)
            for failure in result.failures { #expect(failure.message.utf8.count < 200) }
        }
    }

    @Test("2,000 mutations with XML-significant ASCII bytes, which reach the XML parser itself")
    func asciiMutations() throws {
        let original = try fixture("qualys/own_host_list_vm_detection.xml")
        let alphabet = Array("<>/&;:=\"'!?[]-#xX0 \nABCDEFGHIJKLMNOPQRSTUVWXYZ_".utf8)
        var random = XorShift(seed: 0x2545_F491_4F6C_DD1D)
        for _ in 0..<2000 {
            var bytes = original
            for _ in 0..<(1 + random.below(6)) {
                let position = random.below(bytes.count)
                switch random.below(3) {
                case 0: bytes[position] = alphabet[random.below(alphabet.count)]
                case 1: bytes.remove(at: position)
                default: bytes.insert(alphabet[random.below(alphabet.count)], at: position)
                }
            }
            let result = qualys(bytes)
            #expect(result.events.count + result.failures.count >= 1)
            for failure in result.failures { #expect(failure.message.utf8.count < 200) }
        }
    }
}
