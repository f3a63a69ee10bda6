// swift-tools-version:6.1
// Vigil's package-benchmark suites, kept in their own package so that neither the benchmark
// dependency nor its malloc interposer reaches the shipped executables or `make test`.
// Run them with scripts/bench-normalize, scripts/bench-enrich and scripts/bench-detect (see
// docs/performance.md).
//
// Dependencies:
//   vigil (the parent package, by path)  the code under test: its `OCSF`, `Normalize`,
//                                        `Inventory` and `Detection` libraries
//   ordo-one/benchmark                   the harness; `traits: ["MallocInterposer"]` keeps malloc
//                                        counts (no jemalloc or other system package) and drops
//                                        the Linux 6.3 runtime interposer, which the machines'
//                                        package mirror does not carry
import PackageDescription

/// A package-benchmark suite in Benchmarks/<name>: the harness, the parent package's `libraries`,
/// and the same language settings as the parent package.
func suite(_ name: String, libraries: [String], extra: [Target.Dependency] = [], exclude: [String] = []) -> Target {
    .executableTarget(
        name: name,
        dependencies: [.product(name: "Benchmark", package: "benchmark")]
            + libraries.map { .product(name: $0, package: "vigil") } + extra,
        path: "Benchmarks/\(name)",
        exclude: exclude,
        swiftSettings: [
            .enableUpcomingFeature("ExistentialAny"),
            .enableUpcomingFeature("MemberImportVisibility"),
        ],
        plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
    )
}

let package = Package(
    name: "VigilBenchmarks",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "vigil", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        // package-benchmark finds suites under Benchmarks/ of the package root.
        suite("NormalizeBenchmarks", libraries: ["OCSF", "Normalize"]),
        suite("EnrichBenchmarks", libraries: ["OCSF", "Inventory"]),
        suite("DetectBenchmarks", libraries: ["OCSF", "Normalize", "Detection"], extra: ["CDetectHeap"], exclude: ["CHeap"]),
        // glibc's heap statistics (mallinfo2) for DetectBenchmarks' bytes per open key.
        .target(name: "CDetectHeap", path: "Benchmarks/DetectBenchmarks/CHeap"),
    ]
)
