import AWS
import Foundation
import Testing
import TestSupport

@Suite("S3 client against moto", .enabled(if: MotoServer.isAvailable), .timeLimit(.minutes(10)))
struct MotoS3Tests {
    @Test("create bucket, put, list in pages and get objects")
    func roundTrip() async throws {
        let moto = try await MotoServer.start()
        defer { moto.stop() }
        let client = try moto.client()
        try await client.createBucket("logs")
        for index in 0..<5 {
            try await client.putObject(bucket: "logs", key: "AWSLogs/1/CloudTrail/us-east-1/2026/11/2\(index) a.json",
                                       body: Array("object \(index)".utf8))
        }
        var keys: [String] = []
        var token: String?
        var pages = 0
        repeat {
            let page = try await client.listObjectsV2(bucket: "logs", prefix: "AWSLogs/", continuationToken: token, maxKeys: 2)
            keys += page.objects.map(\.key)
            token = page.nextToken
            pages += 1
        } while token != nil && pages < 10
        #expect(pages == 3)
        #expect(keys.count == 5)
        #expect(keys == keys.sorted())
        let body = try await client.getObject(bucket: "logs", key: keys[2])
        #expect(String(decoding: body, as: UTF8.self) == "object 2")
        await #expect(throws: AWSError.self) { _ = try await client.getObject(bucket: "logs", key: "missing") }
    }
}
