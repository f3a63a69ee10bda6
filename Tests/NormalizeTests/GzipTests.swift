import Normalize
import OCSF
import Testing

@Suite("gzip") struct GzipTests {
    let text = Array(String(repeating: #"{"eventName":"GetObject","eventSource":"s3.amazonaws.com"}"#, count: 2000).utf8)

    @Test func roundTripAndDetection() throws {
        let compressed = Gzip.compress(text)
        #expect(Gzip.isCompressed(compressed))
        #expect(!Gzip.isCompressed(text))
        #expect(compressed.count < text.count / 10)
        #expect(try Gzip.decompress(compressed) == text)
    }

    @Test func concatenatedMembersAreJoined() throws {
        let joined = Gzip.compress(Array("first\n".utf8)) + Gzip.compress(Array("second\n".utf8))
        #expect(try Gzip.decompress(joined) == Array("first\nsecond\n".utf8))
    }

    @Test func truncatedCorruptAndTrailingDataAreErrors() {
        let compressed = Gzip.compress(text)
        do { _ = try Gzip.decompress(Array(compressed.prefix(compressed.count / 2))); Issue.record("truncated data inflated") } catch {
            #expect(error.code == "truncated")
        }
        var corrupt = compressed
        for index in 12..<40 { corrupt[index] ^= 0x5A }
        do { _ = try Gzip.decompress(corrupt); Issue.record("corrupt data inflated") } catch { #expect(error.code == "corrupt") }
        do { _ = try Gzip.decompress(compressed + Array("junk".utf8)); Issue.record("trailing junk accepted") } catch {
            #expect(error.code == "corrupt")
        }
    }

    @Test func aBombStopsAtTheLimit() {
        let zeros = Gzip.compress([UInt8](repeating: 0, count: 8 << 20))
        #expect(zeros.count < 64 * 1024)
        do { _ = try Gzip.decompress(zeros, limit: 1 << 20); Issue.record("inflated past the limit") } catch {
            #expect(error.code == "too_large")
        }
    }
}

@Suite("gzip records through the normalizer") struct GzipNormalizerTests {
    let trail = Array(#"{"Records":[{"eventVersion":"1.08","eventTime":"2026-11-20T09:14:02Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"us-east-1","eventID":"gz-1","userIdentity":{"type":"IAMUser","userName":"alice"}},{"eventVersion":"1.08","eventTime":"2026-11-20T09:14:03Z","eventSource":"s3.amazonaws.com","eventName":"PutObject","awsRegion":"us-east-1","eventID":"gz-2","userIdentity":{"type":"IAMUser","userName":"alice"}}]}"#.utf8)

    @Test func aCompressedCloudTrailFileNormalizesLikeThePlainOne() {
        let plain = Normalizer().normalize(RawRecord(bytes: trail, source: "cloudtrail"))
        let compressed = Normalizer().normalize(RawRecord(bytes: Gzip.compress(trail), source: "cloudtrail"))
        #expect(compressed.events.count == 2)
        #expect(compressed.events == plain.events)
        // Detection works on the inflated bytes too.
        let detected = Normalizer().normalize(RawRecord(bytes: Gzip.compress(trail)))
        #expect(detected.source == "cloudtrail" && detected.detected && detected.events.count == 2)
    }

    @Test func badNestedAndOversizedGzipAreDeadLetteredWithAReason() {
        let compressed = Gzip.compress(trail)
        let truncated = Normalizer().normalize(RawRecord(bytes: Array(compressed.prefix(20)), source: "cloudtrail"))
        #expect(truncated.events.isEmpty && truncated.failures.map(\.code) == ["invalid_gzip"])
        let nested = Normalizer().normalize(RawRecord(bytes: Gzip.compress(compressed), source: "cloudtrail"))
        #expect(nested.failures.map(\.code) == ["invalid_gzip"])
        #expect(nested.failures.first?.message.contains("nested") == true)
        var small = Normalizer()
        small.gzipLimit = 100
        let bomb = small.normalize(RawRecord(bytes: compressed, source: "cloudtrail"))
        #expect(bomb.failures.map(\.code) == ["invalid_gzip"])
        #expect(bomb.failures.first?.message.contains("too_large") == true)
    }

    @Test func syslogYearsFollowTheRecordTime() {
        let line = Array("Dec 31 23:59:58 bastion-1 sshd[812]: Failed password for root from 203.0.113.9 port 4022 ssh2\n".utf8)
        // Read on 2 January 2027: the line is from the last day of 2026.
        let result = Normalizer().normalize(RawRecord(bytes: line, source: "syslog", recordTime: 1_798_848_000_000))
        #expect(result.events.first?["time"]?.intValue == 1_798_761_598_000)
    }
}
