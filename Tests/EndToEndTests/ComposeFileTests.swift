import Foundation
import Testing
import Yams

/// compose/docker-compose.yml, as Docker Compose itself reads it (no daemon needed):
/// valid, every stage replicated, and every command naming an executable this package builds
/// and files the image carries.
@Suite(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/docker-compose"), "docker-compose not installed (scripts/setup installs it)"))
struct ComposeFileTests {
    func compose(_ arguments: [String]) throws -> Binaries.Outcome {
        try Binaries.run("/usr/bin/docker-compose", ["-f", Binaries.repository + "/compose/docker-compose.yml"] + arguments, mergeErrors: true)
    }

    @Test("the compose file is valid and runs every stage replicated, with commands that exist")
    func composeFile() throws {
        let checked = try compose(["config", "-q"])
        #expect(checked.status == 0, "\(checked.output)")
        let rendered = try compose(["config"])
        #expect(rendered.status == 0)
        let document = try #require(try Yams.load(yaml: rendered.output) as? [String: Any])
        let services = try #require(document["services"] as? [String: Any])
        #expect(Set(services.keys) == ["kafka", "topic-init", "ingest", "enrich", "detect", "respond"])

        let executables = ["ingest": "vigil-ingest", "enrich": "vigil-enrich", "detect": "vigil-detect", "respond": "vigil-respond"]
        for (name, executable) in executables {
            let service = try #require(services[name] as? [String: Any], "\(name)")
            let command = try #require(service["command"] as? [String], "\(name)")
            #expect(command.first == executable)
            #expect(FileManager.default.fileExists(atPath: Binaries.repository + "/Sources/" + executable.dropFirst("vigil-".count).capitalized),
                    "\(executable) is built from Sources/")
            let replicas = (service["deploy"] as? [String: Any])?["replicas"] as? Int
            #expect((replicas ?? 1) >= 2, "\(name) runs several copies")
            let environment = service["environment"] as? [String: Any]
            #expect(environment?["VIGIL_BROKERS"] as? String == "kafka:9092")
            // Paths under the image's share directory are the repository's own folders.
            for argument in command where argument.hasPrefix("/usr/local/share/vigil/") {
                let local = Binaries.repository + "/" + argument.dropFirst("/usr/local/share/vigil/".count)
                #expect(FileManager.default.fileExists(atPath: local), "\(name): \(argument) has no \(local)")
            }
        }
        let initCommand = (services["topic-init"] as? [String: Any])?["command"] as? [String]
        #expect(initCommand?.prefix(3) == ["vigil", "topics", "create"])
    }

    @Test("docker-compose.test.yml with docker-compose.yml: valid, and a harness service that checks the deployment it starts nothing of")
    func testOverride() throws {
        let both = ["-f", Binaries.repository + "/compose/docker-compose.test.yml"]
        let checked = try compose(both + ["config", "-q"])
        #expect(checked.status == 0, "\(checked.output)")
        let rendered = try compose(both + ["config"])
        #expect(rendered.status == 0)
        let document = try #require(try Yams.load(yaml: rendered.output) as? [String: Any])
        let services = try #require(document["services"] as? [String: Any])
        #expect(Set(services.keys) == ["kafka", "topic-init", "ingest", "enrich", "detect", "respond", "harness"])
        // The override adds the harness and changes nothing of the deployment.
        let base = try #require(try Yams.load(yaml: try compose(["config"]).output) as? [String: Any])
        let baseServices = try #require(base["services"] as? [String: Any])
        for name in baseServices.keys {
            let merged = try Yams.dump(object: services[name] as Any, sortKeys: true)
            #expect(merged == (try Yams.dump(object: baseServices[name] as Any, sortKeys: true)), "\(name) unchanged")
        }

        let harness = try #require(services["harness"] as? [String: Any])
        let command = try #require(harness["command"] as? [String])
        #expect(command.prefix(2) == ["vigil", "harness"])
        // Against the compose Kafka, starting no stage of its own.
        let bootstrap = try #require(command.firstIndex(of: "--bootstrap"))
        #expect(command[bootstrap + 1] == "kafka:9092")
        #expect(command.contains("--no-services"))
        #expect(!command.contains("--scenario"))
        for argument in command where argument.hasPrefix("/usr/local/share/vigil/") {
            let local = Binaries.repository + "/" + argument.dropFirst("/usr/local/share/vigil/".count)
            #expect(FileManager.default.fileExists(atPath: local), "harness: \(argument) has no \(local)")
        }
        let build = harness["build"] as? [String: Any]
        #expect((build?["dockerfile"] as? String) == "compose/Dockerfile")
        #expect(harness["image"] as? String == (services["ingest"] as? [String: Any])?["image"] as? String, "the stages' image")
        let dependsOn = try #require(harness["depends_on"] as? [String: Any])
        #expect(Set(dependsOn.keys) == ["topic-init", "ingest", "enrich", "detect", "respond"])
        #expect(((dependsOn["topic-init"] as? [String: Any])?["condition"] as? String) == "service_completed_successfully")
        #expect("\(harness["restart"] ?? "")" == "no", "a job, not a service to restart")
    }
}
