// swift-tools-version:6.1
// Vigil: continuous security monitoring for cloud estates, as a streaming pipeline over Kafka.
//
// Dependencies, each justified:
//   swift-argument-parser   the `vigil` CLI and the stage executables' flags
//   swift-log               structured logging (JSON lines) everywhere
//   swift-service-lifecycle graceful SIGTERM/SIGINT for every long-running stage
//   swift-nio               the small /metrics, /healthz, /readyz HTTP endpoint of each stage
//   GRDB.swift              the SQLite asset inventory
//   Yams                    YAML rules and playbooks
import PackageDescription

let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "vigil",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "vigil", targets: ["Vigil"]),
        .executable(name: "vigil-ingest", targets: ["VigilIngest"]),
        .executable(name: "vigil-enrich", targets: ["VigilEnrich"]),
        .executable(name: "vigil-detect", targets: ["VigilDetect"]),
        .executable(name: "vigil-respond", targets: ["VigilRespond"]),
        // For the package-benchmark suites in Benchmarks/, which depend on this package by path.
        .library(name: "OCSF", targets: ["OCSF"]),
        .library(name: "Normalize", targets: ["Normalize"]),
        .library(name: "Inventory", targets: ["Inventory"]),
        .library(name: "Detection", targets: ["Detection"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.9.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
    ],
    targets: [
        // librdkafka through pkg-config; only `Kafka` imports it.
        .systemLibrary(name: "CRdKafka", pkgConfig: "rdkafka",
                       providers: [.apt(["librdkafka-dev"])]),
        .target(name: "Kafka", dependencies: [
            "CRdKafka",
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: strictSettings),
        // The OCSF event model and JSON value: pure, shared by every stage.
        .target(name: "OCSF", swiftSettings: strictSettings),
        .target(name: "Pipeline", dependencies: [
            "Kafka", "OCSF",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "Yams", package: "Yams"),
        ], swiftSettings: strictSettings),
        // zlib for gzip log deliveries.
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .target(name: "Normalize", dependencies: ["OCSF", "CZlib"], swiftSettings: strictSettings),
        // How the inventory, the ledger and the shippers' checkpoints open their SQLite files.
        .target(name: "LocalDatabase", dependencies: [
            .product(name: "GRDB", package: "GRDB.swift"),
        ], swiftSettings: strictSettings),
        .target(name: "Inventory", dependencies: [
            "OCSF", "LocalDatabase",
            .product(name: "GRDB", package: "GRDB.swift"),
        ], swiftSettings: strictSettings),
        // Reading YAML config files (rules, playbooks): directory walk, file+line problems.
        .target(name: "YAMLFiles", dependencies: [
            "OCSF",
            .product(name: "Yams", package: "Yams"),
        ], swiftSettings: strictSettings),
        .target(name: "Detection", dependencies: [
            "OCSF", "YAMLFiles",
            .product(name: "Yams", package: "Yams"),
        ], swiftSettings: strictSettings),
        // AWS over plain HTTPS with SigV4 (no SDK): S3 for shippers, EC2 and IAM for response.
        .target(name: "AWS", dependencies: ["OCSF"], swiftSettings: strictSettings),
        // Playbooks, guards, the executor and its SQLite ledger.
        .target(name: "Response", dependencies: [
            "OCSF", "YAMLFiles", "AWS", "LocalDatabase",
            .product(name: "Yams", package: "Yams"),
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: strictSettings),
        // Shippers into <prefix>raw: the syslog receiver, S3 (checkpointed in SQLite), files.
        .target(name: "Shipping", dependencies: [
            "Kafka", "Pipeline", "OCSF", "AWS", "LocalDatabase",
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ], swiftSettings: strictSettings),
        // Stage wiring shared by the thin executables, the CLI and the tests.
        .target(name: "Stages", dependencies: [
            "Pipeline", "Kafka", "OCSF", "Normalize", "Inventory", "Detection", "Response", "AWS",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: strictSettings),
        .executableTarget(name: "VigilIngest", dependencies: ["Stages", .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          path: "Sources/Ingest", swiftSettings: strictSettings),
        .executableTarget(name: "VigilEnrich", dependencies: ["Stages", .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          path: "Sources/Enrich", swiftSettings: strictSettings),
        .executableTarget(name: "VigilDetect", dependencies: ["Stages", .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          path: "Sources/Detect", swiftSettings: strictSettings),
        .executableTarget(name: "VigilRespond", dependencies: ["Stages", .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          path: "Sources/Respond", swiftSettings: strictSettings),
        .executableTarget(name: "Vigil", dependencies: [
            "Stages", "Shipping", "Pipeline", "Kafka", "OCSF", "Normalize", "Inventory", "Detection", "Response", "AWS",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Yams", package: "Yams"),
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: strictSettings),

        .testTarget(name: "OCSFTests", dependencies: ["OCSF"], swiftSettings: strictSettings),
        .testTarget(name: "KafkaTests", dependencies: ["Kafka", "TestSupport"], swiftSettings: strictSettings),
        .testTarget(name: "PipelineTests", dependencies: ["Pipeline", "Kafka", "OCSF", "TestSupport"],
                    swiftSettings: strictSettings),
        .testTarget(name: "NormalizeTests", dependencies: ["Normalize", "OCSF"],
                    resources: [.copy("Fixtures")], swiftSettings: strictSettings),
        .testTarget(name: "InventoryTests", dependencies: ["Inventory", "OCSF"], swiftSettings: strictSettings),
        .testTarget(name: "DetectionTests", dependencies: ["Detection", "OCSF"], swiftSettings: strictSettings),
        .testTarget(name: "YAMLFilesTests", dependencies: ["YAMLFiles", "OCSF", .product(name: "Yams", package: "Yams")],
                    swiftSettings: strictSettings),
        .testTarget(name: "ResponseTests", dependencies: ["Response", "OCSF", "AWS", "TestSupport"], swiftSettings: strictSettings),
        .testTarget(name: "AWSTests", dependencies: ["AWS", "OCSF", "TestSupport"], swiftSettings: strictSettings),
        .testTarget(name: "ShippingTests", dependencies: ["Shipping", "Kafka", "Pipeline", "AWS", "TestSupport"],
                    swiftSettings: strictSettings),
        .testTarget(name: "EndToEndTests", dependencies: ["Stages", "Pipeline", "Kafka", "OCSF", "AWS", "Inventory", "TestSupport",
                                                       .product(name: "Yams", package: "Yams")],
                    swiftSettings: strictSettings),
        // Starts a real broker process for integration tests; not shipped.
        .target(name: "TestSupport", dependencies: [
            "Kafka", "Pipeline", "AWS",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ], path: "Tests/TestSupport",
                swiftSettings: strictSettings),
    ]
)
