// AWS over plain HTTPS: SigV4 signing, credentials, error bodies. Pure: nothing runs.
import AWS
import Foundation
import OCSF
import Testing

private func bytes(hex: String) -> [UInt8] {
    var out: [UInt8] = []
    var index = hex.startIndex
    while index < hex.endIndex {
        let next = hex.index(index, offsetBy: 2)
        out.append(UInt8(hex[index..<next], radix: 16)!)
        index = next
    }
    return out
}

@Suite("HMAC-SHA256 (RFC 4231)")
struct HMACTests {
    @Test("RFC 4231 test cases 1, 2, 3, 6, 7", arguments: [
        ([UInt8](repeating: 0x0b, count: 20), Array("Hi There".utf8),
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
        (Array("Jefe".utf8), Array("what do ya want for nothing?".utf8),
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
        ([UInt8](repeating: 0xaa, count: 20), [UInt8](repeating: 0xdd, count: 50),
         "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
        ([UInt8](repeating: 0xaa, count: 131), Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8),
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
        ([UInt8](repeating: 0xaa, count: 131),
         Array("This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.".utf8),
         "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
    ])
    func vectors(key: [UInt8], message: [UInt8], expected: String) {
        #expect(hexString(HMACSHA256.authenticate(message: message, key: key)) == expected)
    }

    @Test("RFC 4231 test case 4 (25-byte key)")
    func case4() {
        let key = bytes(hex: "0102030405060708090a0b0c0d0e0f10111213141516171819")
        let mac = HMACSHA256.authenticate(message: [UInt8](repeating: 0xcd, count: 50), key: key)
        #expect(hexString(mac) == "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b")
    }
}

@Suite("SigV4")
struct SigV4Tests {
    static let exampleCredentials = AWSCredentials(accessKeyID: "AKIDEXAMPLE",
                                                   secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    /// 2015-08-30T12:36:00Z.
    static let exampleDate = Date(timeIntervalSince1970: 1_440_938_160)

    @Test("amz date format")
    func amzDate() {
        #expect(SigV4Signer.amzDate(Self.exampleDate) == "20150830T123600Z")
        #expect(SigV4Signer.amzDate(Date(timeIntervalSince1970: 0)) == "19700101T000000Z")
    }

    @Test("signing key of the General Reference example")
    func signingKey() {
        let key = SigV4Signer.signingKey(secret: Self.exampleCredentials.secretAccessKey, date: "20150830",
                                         region: "us-east-1", service: "iam")
        #expect(hexString(key) == "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9")
    }

    @Test("IAM ListUsers example: canonical request, string to sign, signature")
    func iamListUsers() {
        let signer = SigV4Signer(credentials: Self.exampleCredentials, region: "us-east-1", service: "iam")
        let headers = ["Host": "iam.amazonaws.com",
                       "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"]
        let query: [(name: String, value: String)] = [("Version", "2010-05-08"), ("Action", "ListUsers")]
        var all = headers
        all["X-Amz-Date"] = "20150830T123600Z"
        let (canonical, signed) = signer.canonicalRequest(method: "GET", path: "/", query: query, headers: all,
                                                          payloadHash: SigV4Signer.emptyPayloadHash)
        #expect(canonical == """
            GET
            /
            Action=ListUsers&Version=2010-05-08
            content-type:application/x-www-form-urlencoded; charset=utf-8
            host:iam.amazonaws.com
            x-amz-date:20150830T123600Z

            content-type;host;x-amz-date
            e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
            """)
        #expect(signed == "content-type;host;x-amz-date")
        #expect(hexString(SHA256.hash(data: Array(canonical.utf8)))
            == "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59")
        #expect(signer.stringToSign(canonicalRequest: canonical, amzDate: "20150830T123600Z") == """
            AWS4-HMAC-SHA256
            20150830T123600Z
            20150830/us-east-1/iam/aws4_request
            f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59
            """)

        let added = signer.sign(method: "GET", path: "/", query: query, headers: headers,
                                payloadHash: SigV4Signer.emptyPayloadHash, date: Self.exampleDate)
        #expect(added["x-amz-date"] == "20150830T123600Z")
        #expect(added["x-amz-content-sha256"] == nil)
        #expect(added["Authorization"] == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
            + "SignedHeaders=content-type;host;x-amz-date, "
            + "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7")
    }

    @Test("S3 GET object example (S3 API reference, sig-v4-header-based-auth)")
    func s3GetObject() {
        let credentials = AWSCredentials(accessKeyID: "AKIAIOSFODNN7EXAMPLE",
                                         secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
        let signer = SigV4Signer(credentials: credentials, region: "us-east-1", service: "s3")
        let added = signer.sign(method: "GET", path: "/test.txt", query: [],
                                headers: ["Host": "examplebucket.s3.amazonaws.com", "Range": "bytes=0-9"],
                                payloadHash: SigV4Signer.emptyPayloadHash,
                                date: Date(timeIntervalSince1970: 1_369_353_600))
        #expect(added["x-amz-content-sha256"] == SigV4Signer.emptyPayloadHash)
        #expect(added["Authorization"] == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            + "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
            + "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    }

    @Test("RFC 3986 encoding and query canonicalization")
    func queryCanonicalization() {
        #expect(SigV4Signer.encode("a b/c~d_e.f-g*h+i=") == "a%20b%2Fc~d_e.f-g%2Ah%2Bi%3D")
        #expect(SigV4Signer.encode("é") == "%C3%A9")
        #expect(SigV4Signer.encodePath("/bucket/AWSLogs/1/a b.json") == "/bucket/AWSLogs/1/a%20b.json")
        let query = SigV4Signer.canonicalQuery([("prefix", "AWSLogs/"), ("list-type", "2"), ("b", "2"), ("b", "1"), ("empty", "")])
        #expect(query == "b=1&b=2&empty=&list-type=2&prefix=AWSLogs%2F")
    }

    @Test("session token is signed; header case and spacing do not change the signature")
    func invariants() {
        let withToken = AWSCredentials(accessKeyID: "AKID", secretAccessKey: "secret", sessionToken: "token/+=")
        let signer = SigV4Signer(credentials: withToken, region: "eu-west-1", service: "s3")
        let date = Date(timeIntervalSince1970: 1_700_000_000)
        let one = signer.sign(method: "GET", path: "/b/k", query: [("x", "1")], headers: ["Host": "h", "X-Custom": "a   b "],
                              payloadHash: SigV4Signer.emptyPayloadHash, date: date)
        let two = signer.sign(method: "get", path: "/b/k", query: [("x", "1")], headers: ["host": "h", "x-custom": " a b"],
                              payloadHash: SigV4Signer.emptyPayloadHash, date: date)
        #expect(one["x-amz-security-token"] == "token/+=")
        #expect(one["Authorization"]!.contains("SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token;x-custom,"))
        #expect(one["Authorization"] == two["Authorization"])
        // A different body, path, or secret gives a different signature.
        let otherBody = signer.sign(method: "GET", path: "/b/k", query: [("x", "1")], headers: ["Host": "h", "X-Custom": "a b"],
                                    payloadHash: String(repeating: "0", count: 64), date: date)
        #expect(otherBody["Authorization"] != one["Authorization"])
        let otherPath = signer.sign(method: "GET", path: "/b/k2", query: [("x", "1")], headers: ["Host": "h", "X-Custom": "a b"],
                                    payloadHash: SigV4Signer.emptyPayloadHash, date: date)
        #expect(otherPath["Authorization"] != one["Authorization"])
        // The secret never appears in what is sent.
        #expect(!one.values.contains { $0.contains("secret") })
    }
}

@Suite("Credentials")
struct CredentialTests {
    static let file = """
        # comment
        [default]
        aws_access_key_id = AKIADEFAULT
        aws_secret_access_key = defaultsecret

        [ci]
        ; another comment
        aws_access_key_id=AKIACI
        aws_secret_access_key=cisecret
        aws_session_token = citoken
        [broken]
        aws_access_key_id = AKIAONLY
        """

    @Test("profiles from a shared credentials file")
    func parse() {
        #expect(AWSCredentials.parseSharedCredentials(Self.file, profile: "default")
            == AWSCredentials(accessKeyID: "AKIADEFAULT", secretAccessKey: "defaultsecret"))
        #expect(AWSCredentials.parseSharedCredentials(Self.file, profile: "ci")
            == AWSCredentials(accessKeyID: "AKIACI", secretAccessKey: "cisecret", sessionToken: "citoken"))
        #expect(AWSCredentials.parseSharedCredentials(Self.file, profile: "broken") == nil)
        #expect(AWSCredentials.parseSharedCredentials(Self.file, profile: "absent") == nil)
    }

    @Test("environment first, then the file named by AWS_SHARED_CREDENTIALS_FILE and AWS_PROFILE")
    func load() throws {
        let env = ["AWS_ACCESS_KEY_ID": "AKIAENV", "AWS_SECRET_ACCESS_KEY": "envsecret", "AWS_SESSION_TOKEN": "envtoken"]
        #expect(try AWSCredentials.load(environment: env)
            == AWSCredentials(accessKeyID: "AKIAENV", secretAccessKey: "envsecret", sessionToken: "envtoken"))

        let path = NSTemporaryDirectory() + "vigil-aws-credentials-\(UUID().uuidString)"
        try Self.file.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(try AWSCredentials.load(environment: ["AWS_SHARED_CREDENTIALS_FILE": path, "AWS_PROFILE": "ci"]).accessKeyID == "AKIACI")
        #expect(try AWSCredentials.load(environment: ["AWS_SHARED_CREDENTIALS_FILE": path]).accessKeyID == "AKIADEFAULT")
        #expect(throws: AWSError.self) { try AWSCredentials.load(environment: ["AWS_SHARED_CREDENTIALS_FILE": path, "AWS_PROFILE": "broken"]) }
        #expect(throws: AWSError.self) { try AWSCredentials.load(environment: ["HOME": "/nonexistent-vigil"]) }
    }

    @Test("descriptions never show the secret or token")
    func redacted() {
        let credentials = AWSCredentials(accessKeyID: "AKIAX", secretAccessKey: "s3cr3t", sessionToken: "t0k3n")
        for text in [credentials.description, credentials.debugDescription, String(describing: credentials), "\(credentials)"] {
            #expect(text.contains("AKIAX"))
            #expect(!text.contains("s3cr3t"))
            #expect(!text.contains("t0k3n"))
        }
    }
}

@Suite("Error bodies")
struct ErrorBodyTests {
    @Test("S3 REST-XML error; echoed request details are dropped")
    func s3XML() {
        let body = Array("""
            <?xml version="1.0" encoding="UTF-8"?>
            <Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match</Message>\
            <AWSAccessKeyId>AKIASECRETID</AWSAccessKeyId><StringToSign>AWS4-HMAC-SHA256 x</StringToSign>\
            <RequestId>4442587FB7D0A2F9</RequestId></Error>
            """.utf8)
        let error = AWSClient.error(status: 403, body: body)
        #expect(error.code == "SignatureDoesNotMatch")
        #expect(error.status == 403)
        #expect(error.requestID == "4442587FB7D0A2F9")
        #expect(!error.isRetriable)
        #expect(!error.description.contains("AKIASECRETID"))
        #expect(!error.description.contains("AWS4-HMAC"))
    }

    @Test("query-protocol ErrorResponse (IAM, EC2-style Response/Errors)")
    func queryXML() {
        let iam = AWSClient.error(status: 400, body: Array("""
            <ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type>\
            <Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>abc</RequestId></ErrorResponse>
            """.utf8))
        #expect(iam == AWSError(code: "Throttling", status: 400, message: "Rate exceeded", requestID: "abc"))
        #expect(iam.isRetriable)
        let ec2 = AWSClient.error(status: 400, body: Array("""
            <Response><Errors><Error><Code>InvalidInstanceID.NotFound</Code><Message>no such instance</Message></Error></Errors>\
            <RequestID>r1</RequestID></Response>
            """.utf8))
        #expect(ec2.code == "InvalidInstanceID.NotFound")
        #expect(ec2.requestID == "r1")
    }

    @Test("JSON error bodies and header-only errors")
    func json() {
        let json = AWSClient.error(status: 400, body: Array(#"{"__type":"com.amazon.coral.service#ThrottlingException","message":"slow down"}"#.utf8))
        #expect(json.code == "ThrottlingException")
        #expect(json.message == "slow down")
        #expect(json.isRetriable)
        let plain = AWSClient.error(status: 503, headers: ["x-amz-request-id": "q"], body: [])
        #expect(plain.code == "http_error")
        #expect(plain.isRetriable)
        #expect(plain.requestID == "q")
        #expect(!AWSClient.error(status: 404, body: Array("<Error><Code>NoSuchKey</Code></Error>".utf8)).isRetriable)
        #expect(AWSError(code: "SlowDown", status: 503).description == "aws error SlowDown (HTTP 503)")
    }

    @Test("ListObjectsV2 page")
    func listPage() throws {
        let page = try S3ListPage.parse(Array("""
            <?xml version="1.0" encoding="UTF-8"?>
            <ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>AWSLogs/</Prefix>\
            <KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated>\
            <Contents><Key>AWSLogs/1/a.json.gz</Key><LastModified>2024-05-01T10:00:00.000Z</LastModified>\
            <ETag>&quot;abc&quot;</ETag><Size>12</Size><StorageClass>STANDARD</StorageClass></Contents>\
            <Contents><Key>AWSLogs/1/b.json.gz</Key><LastModified>2024-05-01T10:00:01Z</LastModified>\
            <ETag>"def"</ETag><Size>3</Size></Contents>\
            <NextContinuationToken>tok==</NextContinuationToken></ListBucketResult>
            """.utf8))
        #expect(page.objects.map(\.key) == ["AWSLogs/1/a.json.gz", "AWSLogs/1/b.json.gz"])
        #expect(page.objects.map(\.etag) == ["abc", "def"])
        #expect(page.objects.map(\.size) == [12, 3])
        #expect(page.objects[0].lastModified == Date(timeIntervalSince1970: 1_714_557_600))
        #expect(page.objects[1].lastModified == Date(timeIntervalSince1970: 1_714_557_601))
        #expect(page.nextToken == "tok==")
        #expect(throws: AWSError.self) { try S3ListPage.parse(Array("<Error/>".utf8)) }
    }
}
