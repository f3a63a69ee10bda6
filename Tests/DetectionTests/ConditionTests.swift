@testable import Detection
import OCSF
import Testing

@Suite("Field tests and conditions")
struct ConditionTests {
    let event: JSON = [
        "class_uid": 3002,
        "severity_id": 3,
        "score": 7.5,
        "big": 9_007_199_254_740_993,
        "port_text": "8080",
        "nothing": nil,
        "api": ["operation": "ConsoleLogin", "service": ["name": "signin.amazonaws.com"]],
        "actor": ["user": ["name": "Alice", "groups": ["admins", "ops"]]],
        "src_endpoint": ["ip": "10.1.2.3"],
        "dst_endpoint": ["ip": "2001:db8:1::5"],
        "mapped": ["ip": "::ffff:192.168.1.20"],
        "flag": true,
    ]

    func test(_ path: String, _ op: FieldTest.Op, _ values: [JSON], ci: Bool = false) throws -> Bool {
        try FieldTest(path: path, op: op, values: values, caseInsensitive: ci).matches(event)
    }

    @Test func equalsComparesTextNumbersAndBooleans() throws {
        #expect(try test("api.operation", .equals, ["ConsoleLogin"]))
        #expect(try !test("api.operation", .equals, ["consolelogin"]))
        #expect(try test("api.operation", .equals, ["consolelogin"], ci: true))
        #expect(try test("class_uid", .equals, [3002]))
        #expect(try test("class_uid", .equals, [3002.0]))
        #expect(try test("class_uid", .equals, ["3002"]))
        #expect(try test("flag", .equals, [true]))
        #expect(try !test("missing.path", .equals, ["x"]))
        #expect(throws: RuleError.self) { try FieldTest(path: "nothing", op: .equals, values: [nil]) }
    }

    @Test func inMatchesAnyValue() throws {
        #expect(try test("api.operation", .in, ["StopLogging", "ConsoleLogin"]))
        #expect(try !test("api.operation", .in, ["StopLogging", "DeleteTrail"]))
        #expect(try test("actor.user.name", .in, ["bob", "ALICE"], ci: true))
    }

    @Test func prefixSuffixContains() throws {
        #expect(try test("api.service.name", .prefix, ["signin."]))
        #expect(try !test("api.service.name", .prefix, ["SIGNIN."]))
        #expect(try test("api.service.name", .prefix, ["SIGNIN."], ci: true))
        #expect(try test("api.service.name", .suffix, ["ec2.amazonaws.com", ".amazonaws.com"]))
        #expect(try !test("api.service.name", .suffix, [".com.au"]))
        #expect(try test("api.service.name", .contains, ["amazonaws"]))
        #expect(try test("actor.user.name", .contains, ["LIC"], ci: true))
        #expect(try !test("actor.user.name", .contains, ["LIC"]))
    }

    @Test func regexSearchesAndHonoursAnchorsAndCase() throws {
        #expect(try test("api.operation", .regex, ["Login$"]))
        #expect(try test("api.operation", .regex, ["^Console"]))
        #expect(try !test("api.operation", .regex, ["^Login"]))
        #expect(try !test("api.operation", .regex, ["^consolelogin$"]))
        #expect(try test("api.operation", .regex, ["^consolelogin$"], ci: true))
        #expect(try test("src_endpoint.ip", .regex, [#"^10\.\d+\.\d+\.\d+$"#]))
        #expect(throws: RuleError.self) { try FieldTest(path: "a", op: .regex, values: ["([a-z"]) }
    }

    @Test func cidrMatchesIPv4() throws {
        #expect(try test("src_endpoint.ip", .cidr, ["10.0.0.0/8"]))
        #expect(try test("src_endpoint.ip", .cidr, ["192.168.0.0/16", "10.1.2.0/24"]))
        #expect(try test("src_endpoint.ip", .cidr, ["10.1.2.3"]))
        #expect(try !test("src_endpoint.ip", .cidr, ["10.1.3.0/24"]))
        #expect(try !test("src_endpoint.ip", .cidr, ["11.0.0.0/8"]))
        #expect(try test("src_endpoint.ip", .cidr, ["0.0.0.0/0"]))
        // An IPv4-mapped IPv6 address is the IPv4 address.
        #expect(try test("mapped.ip", .cidr, ["192.168.0.0/16"]))
        // Text that is no address never matches.
        #expect(try !test("api.operation", .cidr, ["0.0.0.0/0"]))
    }

    @Test func cidrMatchesIPv6() throws {
        #expect(try test("dst_endpoint.ip", .cidr, ["2001:db8::/32"]))
        #expect(try test("dst_endpoint.ip", .cidr, ["2001:db8:1::/48"]))
        #expect(try !test("dst_endpoint.ip", .cidr, ["2001:db8:2::/48"]))
        #expect(try test("dst_endpoint.ip", .cidr, ["2001:0db8:0001:0000:0000:0000:0000:0005/128"]))
        #expect(try !test("dst_endpoint.ip", .cidr, ["10.0.0.0/8"]))
        #expect(try !test("src_endpoint.ip", .cidr, ["::/0"]))
    }

    /// The allocation-free IPv4 reader agrees with the general parser on every text it
    /// accepts, and accepts every zone-free text the general parser reads as IPv4.
    @Test func ipv4FastPathAgreesWithTheParser() {
        var texts = ["0.0.0.0", "255.255.255.255", "10.1.2.3", "256.1.1.1", "01.2.3.4", "0.0.0.00", "1.2.3", "1.2.3.4.5",
                     "1..2.3", ".1.2.3", "1.2.3.", "", "1.2.3.4 ", "١.2.3.4", "1.2.3.4%eth0", "::ffff:1.2.3.4", "1000.1.1.1", "1.2.3.-4"]
        var generator = SeededGenerator(seed: 3)
        let alphabet = Array("0123456789.%:a ")
        for _ in 0..<20_000 {
            texts.append(String((0..<Int.random(in: 0...16, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! }))
            texts.append((0..<4).map { _ in String(Int.random(in: 0...270, using: &generator)) }.joined(separator: "."))
        }
        var accepted = 0
        for text in texts {
            let general = IPAddress(text)
            if let number = IPAddress.v4Number(text) {
                accepted += 1
                let bytes = (0..<4).map { UInt8(truncatingIfNeeded: number >> UInt32(24 - 8 * $0)) }
                #expect(general?.bytes == bytes, "\(text)")
            } else if !text.contains("%") {
                #expect(general?.bytes.count != 4, "\(text) is IPv4 to the parser")
            }
            for network in ["10.0.0.0/8", "0.0.0.0/0", "10.1.2.3/32", "2001:db8::/32"] {
                guard case .success(let block) = IPNetwork.parse(network), let number = IPAddress.v4Number(text), let general else { continue }
                #expect(block.contains(v4: number) == block.contains(general), "\(text) in \(network)")
            }
        }
        #expect(accepted > 10_000, "\(accepted) accepted")
    }

    @Test func invalidNetworksAreRejected() {
        for bad in ["10.0.0.0/33", "10.0.0.1/8", "300.1.1.1", "10.0.0/8", "2001:db8::/129", "2001:db8:::1", "fe80::1%eth0", "010.0.0.0/8", "/8"] {
            #expect(throws: RuleError.self, "\(bad)") { try FieldTest(path: "ip", op: .cidr, values: [.string(bad)]) }
        }
    }

    @Test func numericComparisonsOnIntegersAndDoubles() throws {
        #expect(try test("severity_id", .gt, [2]))
        #expect(try !test("severity_id", .gt, [3]))
        #expect(try test("severity_id", .gte, [3]))
        #expect(try test("severity_id", .lt, [3.5]))
        #expect(try test("severity_id", .lte, [3]))
        #expect(try !test("severity_id", .lt, [3]))
        #expect(try test("score", .gt, [7]))
        #expect(try test("score", .lte, [7.5]))
        #expect(try !test("score", .lt, [7.5]))
        #expect(try test("score", .gte, [7.25]))
        // Integers compare exactly beyond double precision.
        #expect(try test("big", .gt, [9_007_199_254_740_992]))
        // A quoted number counts as the number; other text never compares.
        #expect(try test("port_text", .gte, [8080]))
        #expect(try !test("api.operation", .gt, [0]))
        #expect(throws: RuleError.self) { try FieldTest(path: "a", op: .gt, values: ["five"]) }
    }

    @Test func existsTreatsNullAsAbsent() throws {
        #expect(try test("actor.user.name", .exists, [true]))
        #expect(try !test("actor.user.name", .exists, [false]))
        #expect(try test("actor.user.uid", .exists, [false]))
        #expect(try test("nothing", .exists, [false]))
        #expect(try !test("nothing", .exists, [true]))
    }

    @Test func arraysMatchWhenAnyElementMatches() throws {
        #expect(try test("actor.user.groups", .equals, ["ops"]))
        #expect(try !test("actor.user.groups", .equals, ["dev"]))
        #expect(try test("actor.user.groups.0", .equals, ["admins"]))
    }

    @Test func nestedAllAnyNot() throws {
        let isLogin = Condition.field(try FieldTest(path: "api.operation", op: .equals, values: ["ConsoleLogin"]))
        let isAlice = Condition.field(try FieldTest(path: "actor.user.name", op: .equals, values: ["alice"], caseInsensitive: true))
        let isBob = Condition.field(try FieldTest(path: "actor.user.name", op: .equals, values: ["bob"]))
        let privateNet = Condition.field(try FieldTest(path: "src_endpoint.ip", op: .cidr, values: ["10.0.0.0/8"]))
        #expect(evaluate(.all([isLogin, .any([isBob, isAlice])]), on: event))
        #expect(!evaluate(.all([isLogin, .any([isBob, .not(isAlice)])]), on: event))
        #expect(evaluate(.all([isLogin, .not(.all([isBob, privateNet]))]), on: event))
        #expect(!evaluate(.not(.any([isBob, privateNet])), on: event))
        #expect(evaluate(.all([]), on: event))
        #expect(!evaluate(.any([]), on: event))
    }

    @Test func conditionsParseFromYAML() throws {
        let yaml = """
            id: test.nested
            version: 2
            title: Nested
            severity: informational
            match:
              all:
                - field: api.operation
                  equals: consolelogin
                  case_insensitive: true
                - any:
                    - field: actor.user.name
                      in: [bob, Alice]
                    - field: src_endpoint.ip
                      cidr: 192.168.0.0/16
                - not:
                    field: score
                    gt: 9
            """
        let rules = try RuleSet.parse(yaml: yaml, file: "nested.yaml")
        #expect(rules.count == 1)
        #expect(rules[0].version == 2)
        #expect(rules[0].match.matches(event))
        var other = event
        other.set("actor.user.name", "carol")
        #expect(!rules[0].match.matches(other))
    }
}
