import Normalize
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
