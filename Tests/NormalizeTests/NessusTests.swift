import Normalize
import OCSF
import Testing

/// Every parser of this change, JSON sources first, in the recommended detection order.
fileprivate let detectionOrder: [any SourceParser] = [
    CloudTrailParser(), InspectorParser(), ASFFParser(), NessusParser(), QualysParser(),
]

fileprivate func nessus(_ bytes: [UInt8], parser: NessusParser = NessusParser(), header: String? = "nessus") -> NormalizeResult {
    Normalizer(parsers: [parser]).normalize(RawRecord(bytes: bytes, source: header))
}

fileprivate func nessus(_ text: String) -> NormalizeResult { nessus(Array(text.utf8)) }


@Suite("Tenable / Nessus CSV")
struct NessusTests {
    /// Every shared Tenable CSV: events, skipped all-empty rows, where time came from. DefectDojo's
    /// asserted counts differ where it drops informational rows and merges rows of one plugin on
    /// one host (a row per CVE): nessus_many_vuln2-*.csv 29 (two rows share plugin/host/port),
    /// nessus_was_many_vuln.csv 5, issue_9612/11102 2, tenable_many_vuln.csv 9 (20 rows of 9
    /// plugin/host pairs). Here every non-empty row is an event.
    static let samples: [(file: String, events: Int, skipped: Int, timeSource: String, defectDojo: Int)] = [
        ("nessus-template.csv", 5, 0, "none", 5),
        ("nessus_many_vuln.csv", 4, 529, "Last Observed", 4),
        ("nessus_many_vuln2-all.csv", 30, 0, "none", 29),
        ("nessus_many_vuln2-default.csv", 30, 0, "none", 29),
        ("nessus_new.csv", 99, 0, "last_seen", 99),
        ("nessus_was_many_vuln.csv", 5, 24, "none", 5),
        ("nessus_was_no_vuln.csv", 0, 0, "-", 0),
        ("nessus_was_one_vuln.csv", 1, 0, "none", 1),
        ("issue_9612.csv", 3, 0, "Last Observed", 2),
        ("issue_11102.csv", 3, 0, "Last Observed", 2),
        ("tenable_many_vuln.csv", 20, 2, "Last Found", 9),
    ]

    @Test("Every shared Tenable CSV: counts, detection without a header", arguments: samples.map(\.file))
    func sample(file: String) throws {
        let expected = try #require(Self.samples.first { $0.file == file })
        let bytes = try fixture("nessus/\(file)")
        let result = nessus(bytes)
        #expect(result.failures.isEmpty, "\(result.failures)")
        #expect(result.events.count == expected.events)
        #expect(result.skipped == expected.skipped)
        #expect(result.events.count >= expected.defectDojo)
        #expect(Set(result.events.compactMap { $0.string("unmapped.time_source") }) == (expected.events == 0 ? [] : [expected.timeSource]))
        let detected = Normalizer(parsers: detectionOrder).normalize(RawRecord(bytes: bytes))
        #expect(detected.source == "nessus")
        #expect(detected.events.count == expected.events)
        for event in result.events {
            #expect(event.int("class_uid") == 2002)
            #expect(event.string("resources.0.uid") != nil)
            #expect(event.string("metadata.product.name") == "Nessus")
        }
        #expect(Set(result.events.compactMap { $0.string("metadata.uid") }).count == result.events.count)
    }

    /// DefectDojo `tenable/nessus/nessus-template.csv`: Nessus layout without any per-row time.
    @Test("nessus-template.csv: values; no time means time 0 and time_source none, or the configured scan time")
    func template() throws {
        let bytes = try fixture("nessus/nessus-template.csv")
        let event = nessus(bytes).events[0]
        #expect(event.int("time") == 0)
        #expect(event.value(at: "metadata.original_time") == nil)
        #expect(event.string("metadata.event_code") == "42873")
        #expect(event.string("finding_info.title") == "SSL Medium Strength Cipher Suites Supported (SWEET32)")
        #expect(event.string("finding_info.desc") == "The remote service supports the use of medium strength SSL ciphers.")
        #expect(event.string("finding_info.uid") == "plugin-42873@192.168.0.100:3389/tcp")
        #expect(event.int("severity_id") == 4)
        #expect(event.string("vulnerabilities.0.severity") == "High")
        #expect(event.string("vulnerabilities.0.cve.uid") == "CVE-2016-2183")
        #expect(event.value(at: "vulnerabilities.0.cve.cvss.0.base_score")?.doubleValue == 75)
        #expect(event.string("vulnerabilities.0.cve.cvss.0.version") == "3.0")
        #expect(event.value(at: "vulnerabilities.0.cve.cvss.1.base_score")?.doubleValue == 50)
        #expect(event.string("vulnerabilities.0.remediation.desc")?.isEmpty == false)
        #expect(event.string("device.ip") == "192.168.0.100")
        #expect(event.string("resources.0.uid") == "192.168.0.100")
        #expect(event.string("unmapped.Port") == "3389")
        #expect(event.string("unmapped.Protocol") == "tcp")
        #expect(event.string("unmapped.Plugin Publication Date") == "23/11/2009")
        #expect(event.value(at: "unmapped.CVSS v4_0 Base Score") == nil)
        #expect(event.string("unmapped.CVSS v2_0 Temporal Score") == nil)
        #expect(event.string("unmapped.time_source") == "none")
        #expect(event.int("activity_id") == 1 && event.int("status_id") == 1)

        let scanTime = millis("2025-03-01T10:00:00Z")
        let scanned = nessus(bytes, parser: NessusParser(scanTime: scanTime)).events[0]
        #expect(scanned.int("time") == scanTime)
        #expect(scanned.string("unmapped.time_source") == "scan_time")
        #expect(scanned.string("metadata.uid") != event.string("metadata.uid"))
        #expect(nessus(bytes, parser: NessusParser(scanTime: scanTime)).events[0].serialized() == scanned.serialized())
    }

    /// DefectDojo `tenable/issue_9612.csv`: Tenable.sc layout with `Feb 19, 2024 21:01:01 UTC` times.
    @Test("issue_9612.csv: Tenable.sc times, Critical, the host as device")
    func tenableSC() throws {
        let result = nessus(try fixture("nessus/issue_9612.csv"))
        let event = result.events[0]
        #expect(event.int("time") == millis("2024-02-19T21:01:01Z"))
        #expect(event.string("metadata.original_time") == "Feb 19, 2024 21:01:01 UTC")
        #expect(event.int("finding_info.first_seen_time") == millis("2024-02-05T21:01:08Z"))
        #expect(event.int("severity_id") == 5)
        #expect(event.string("finding_info.title") == "Microsoft SQL Server Unsupported Version Detection (remote check)")
        #expect(event.string("finding_info.uid") == "plugin-73756@2.3.4.5:1433/tcp")
        #expect(event.value(at: "finding_info.types") == ["Databases"])
        #expect(event.string("device.ip") == "2.3.4.5")
        #expect(event.value(at: "vulnerabilities.0.cve") == nil)
        // Without a CVE the scores stay where they were.
        #expect(event.string("unmapped.CVSS V3 Base Score") == "10.0")
        #expect(result.events.map { $0.string("finding_info.uid") ?? "" } == [
            "plugin-73756@2.3.4.5:1433/tcp", "plugin-73756@2.3.4.5:5555/tcp", "plugin-73756@1.2.3.4:1433/tcp",
        ])
    }

    /// DefectDojo `tenable/nessus/nessus_many_vuln.csv`: 4 rows then 529 empty ones; MST times.
    @Test("nessus_many_vuln.csv: MST times and 529 all-empty rows skipped")
    func mountainTime() throws {
        let result = nessus(try fixture("nessus/nessus_many_vuln.csv"))
        #expect(result.events[0].int("time") == millis("2021-01-05T17:24:08Z"))
        #expect(result.events[0].string("vulnerabilities.0.cve.uid") == "CVE-2004-2761")
        #expect(result.events[0].value(at: "vulnerabilities.0.is_exploit_available") == true)
        #expect(result.events[0].string("unmapped.Plugin Text")?.hasPrefix("Plugin Output:") == true)
    }

    /// DefectDojo `tenable/nessus/nessus_new.csv`: Tenable VM export, `;`-separated, multi-line fields.
    @Test("nessus_new.csv: semicolons, definition.* columns, the finding's own id")
    func tenableVM() throws {
        let result = nessus(try fixture("nessus/nessus_new.csv"))
        let event = result.events[0]
        #expect(event.string("finding_info.uid") == "0012b94a-f4a1-4f2c-babc-6cac61f3cd0a")
        #expect(event.string("metadata.event_code") == "33851")
        #expect(event.int("time") == millis("2023-07-12T12:14:16.850Z"))
        #expect(event.int("finding_info.first_seen_time") == millis("2023-06-28T11:50:44.895Z"))
        #expect(event.int("severity_id") == 2)
        #expect(event.string("status_detail") == "ACTIVE")
        #expect(event.string("device.ip") == "10.0.0.1")
        #expect(event.string("device.hostname") == "Blah1")
        #expect(event.string("resources.0.uid") == "10.0.0.1")
        #expect(event.string("unmapped.definition.cvss3.base_vector") == "CVSS:3.0/AV:N/AC:H/PR:L/UI:N/S:U/C:N/I:L/A:N")
        #expect(event.string("unmapped.asset.id") == "aecb524a-c10d-4d41-89d9-fa887ae8fb00")
    }

    /// DefectDojo `tenable/nessus/nessus_many_vuln2-default.csv`: 29 informational rows (Risk None).
    @Test("nessus_many_vuln2-default.csv: informational rows are events; multi-line quoted fields")
    func informational() throws {
        let result = nessus(try fixture("nessus/nessus_many_vuln2-default.csv"))
        #expect(result.events.filter { $0.int("severity_id") == 1 }.count == 29)
        let first = result.events[0]
        #expect(first.string("vulnerabilities.0.desc") == "This plugin attempts to determine the type and the version of the\n  remote web server.")
        #expect(first.string("unmapped.Plugin Output") == "The remote web server type is :\n\nCowboy")
        #expect(first.string("vulnerabilities.0.severity") == "None")
    }

    /// DefectDojo `tenable/nessus_was/nessus_was_many_vuln.csv`: web app scan, host names.
    @Test("nessus_was_many_vuln.csv: a host name, lower-case risks")
    func was() throws {
        let event = nessus(try fixture("nessus/nessus_was_many_vuln.csv")).events[0]
        #expect(event.string("device.hostname") == "google.com")
        #expect(event.value(at: "device.ip") == nil)
        #expect(event.int("severity_id") == 4)
        #expect(event.string("finding_info.uid") == "plugin-98104@google.com/http")
    }

    @Test("Hand-made: BOM, CRLF, quoted line breaks, bad rows fail alone with header + row as bytes")
    func handMade() throws {
        let header = "Plugin ID,CVE,CVSS,Risk,Host,Protocol,Port,Name,Last Observed"
        let rows = [
            #"10001,CVE-2024-0001,5.0,Medium,198.51.100.1,tcp,22,"Line one"#,
            #"line two ""quoted""",2024-01-02T03:04:05Z"#,
            "10002,,,Low,,tcp,80,No host,2024-01-02T03:04:05Z",
            ",,,Low,198.51.100.2,tcp,80,No plugin,2024-01-02T03:04:05Z",
            "10003,,,Low,198.51.100.3,tcp,80,Bad time,SECRETVALUE",
            "10004,,,High,198.51.100.4,tcp,443,Extra,2024-01-02T03:04:05Z,surplus",
            "",
            #"10005,,,Low,198.51.100.5,tcp,80,"unterminated"#,
        ]
        let text = "\u{FEFF}" + header + "\r\n" + rows.joined(separator: "\r\n")
        let result = nessus(text)
        #expect(result.events.count == 2)
        #expect(result.skipped == 1)
        #expect(result.failures.map(\.code) == ["missing_field", "missing_field", "invalid_time", "invalid_entry"])
        #expect(result.failures.map(\.entryIndex) == [1, 2, 3, 6])
        #expect(result.failures[0].message == "Host is missing")
        #expect(result.failures[2].message == "Last Observed is not a timestamp")
        #expect(result.failures[1].entryBytes == Array((header + "\n" + rows[3]).utf8))
        for failure in result.failures { #expect(!failure.description.contains("SECRETVALUE")) }
        let first = result.events[0]
        #expect(first.string("finding_info.title") == "Line one\r\nline two \"quoted\"")
        #expect(first.int("time") == millis("2024-01-02T03:04:05Z"))
        #expect(result.events[1].string("unmapped.column_10") == "surplus")
    }

    @Test("Detection: Tenable CSVs only; no JSON, XML or other CSV")
    func detection() throws {
        let parser = NessusParser()
        #expect(!parser.recognizes(SourceInput(raw: try fixture("own/assume_role.json"))))
        #expect(!parser.recognizes(SourceInput(raw: try fixture("qualys/Qualys_Sample_Report.xml"))))
        #expect(!parser.recognizes(SourceInput(raw: Array("IP,Network,DNS,NetBIOS,Tracking Method,OS,IP Status,QID,Title,Severity\n".utf8))))
        #expect(!parser.recognizes(SourceInput(raw: Array("a,b,c\n1,2,3\n".utf8))))
        #expect(!CloudTrailParser().recognizes(SourceInput(raw: try fixture("nessus/nessus-template.csv"))))
        #expect(Normalizer(parsers: detectionOrder).normalize(RawRecord(bytes: try fixture("own/assume_role.json"))).source == "cloudtrail")
        #expect(nessus(Array("a,b,c\n1,2,3\n".utf8)).failures.map(\.code) == ["unrecognized_format"])
        #expect(nessus([]).failures.map(\.code) == ["unrecognized_format"])
        #expect(nessus(Array("Plugin ID,Risk,Host\n\"10001,High,h\n".utf8)).failures.map(\.code) == ["invalid_entry"])
        #expect(nessus(Array("\"Plugin ID,Risk,Host\n10001,High,h\n".utf8)).failures.map(\.code) == ["unrecognized_format"])
    }

    @Test("Hostile: a 10 MB field, invalid UTF-8, determinism")
    func hostile() throws {
        let big = String(repeating: "o", count: 10_000_000)
        let event = try onlyEvent(nessus("Plugin ID,Risk,Host,Plugin Output\n1,Low,h.example.com,\"\(big)\"\n"))
        #expect(event.string("unmapped.Plugin Output")?.utf8.count == 10_000_000)
        let invalid = Array("Plugin ID,Risk,Host,Name\n1,Low,h.example.com,".utf8) + [0xC3, 0x28, 0xFF] + Array("\n".utf8)
        #expect(try onlyEvent(nessus(invalid)).string("finding_info.title")?.contains("\u{FFFD}") == true)
        let bytes = try fixture("nessus/tenable_many_vuln.csv")
        #expect(nessus(bytes).events.map { $0.serialized() } == nessus(bytes).events.map { $0.serialized() })
    }

    @Test("2,000 random byte mutations of a sample: no crash, every outcome accounted for")
    func mutations() throws {
        let original = try fixture("nessus/nessus-template.csv")
        var random = XorShift(seed: 0xC5F0_0D5E_ED00_1234)
        for _ in 0..<2000 {
            var bytes = original
            for _ in 0..<(1 + random.below(8)) {
                bytes[random.below(bytes.count)] = UInt8(truncatingIfNeeded: random.next())
            }
            let lines = bytes.filter { $0 == 0x0A || $0 == 0x0D }.count
            for header in [String?.none, "nessus"] {
                let result = Normalizer(parsers: detectionOrder).normalize(RawRecord(bytes: bytes, source: header))
                #expect(result.events.count + result.failures.count + result.skipped >= 1)
                for failure in result.failures {
                    #expect(failure.message.utf8.count < 200)
                    // A mutated quote can split or join rows, never invent more than there are lines.
                    if let index = failure.entryIndex { #expect(index >= 0 && index <= lines) }
                }
            }
        }
    }
}
