// swift-tools-version:6.1
//
// Lattica-Swift: a peer-to-peer node for decentralized learning.
// Module graph and the sans-I/O rule: Docs/ARCHITECTURE.md.
//
// Pure targets (no libuv, SQLite, Dispatch, Foundation, sockets):
//   LatticaCore, LatticaWire, LatticaDHT, LatticaCRDT, LatticaModel, LatticaSHA, LatticaAveraging,
//   LatticaLearning, LatticaSimulation, LatticaNAT
// Scripts/check-layering.sh enforces that.

import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

// The clang importer needs the SHA target feature to lower the SHA-NI intrinsics of LatticaSHA
// (only that target; it checks CPUID before any of them runs).
#if arch(x86_64)
let shaExtensions: [SwiftSetting] = [.unsafeFlags(["-Xcc", "-msha", "-Xcc", "-mssse3", "-Xcc", "-msse4.1"])]
#else
let shaExtensions: [SwiftSetting] = []
#endif

let argumentParser = Target.Dependency.product(name: "ArgumentParser", package: "swift-argument-parser")
let logging = Target.Dependency.product(name: "Logging", package: "swift-log")
let metrics = Target.Dependency.product(name: "Metrics", package: "swift-metrics")
let prometheus = Target.Dependency.product(name: "Prometheus", package: "swift-prometheus")
let realModule = Target.Dependency.product(name: "RealModule", package: "swift-numerics")

let package = Package(
    name: "lattica-swift",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "latticad", targets: ["latticad"]),
        .executable(name: "lattica", targets: ["lattica"]),
        .executable(name: "lattica-bench", targets: ["lattica-bench"]),
        .executable(name: "lattica-train", targets: ["lattica-train"]),
    ],
    dependencies: [
        // CLI parsing for both executables (brief: swift-argument-parser).
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // Logging and metrics facades (brief: swift-log, swift-metrics).
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        // Prometheus text exposition behind swift-metrics; small (atomics + metrics only).
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        // exp/log/tanh on Float without Foundation/Glibc in pure targets.
        .package(url: "https://github.com/apple/swift-numerics", from: "1.0.0"),
    ],
    targets: [
        // C libraries, found through pkg-config, installed from Debian by Scripts/setup.sh.
        .systemLibrary(name: "CLibUV", pkgConfig: "libuv", providers: [.apt(["libuv1-dev"])]),
        .systemLibrary(name: "CSodium", pkgConfig: "libsodium", providers: [.apt(["libsodium-dev"])]),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),

        // Pure: value types, codecs, seeded randomness, time as a parameter.
        .target(name: "LatticaCore", swiftSettings: strict),
        // libsodium wrappers and key files.
        .target(name: "LatticaCrypto", dependencies: ["LatticaCore", "CSodium"], swiftSettings: strict),
        // Pure: multistream-select, Noise, yamux, identify, ping state machines.
        .target(name: "LatticaWire", dependencies: ["LatticaCore", "LatticaCrypto"], swiftSettings: strict),
        // Pure: Kademlia.
        .target(name: "LatticaDHT", dependencies: ["LatticaCore", "LatticaCrypto"], swiftSettings: strict),
        // Pure: tensors, trainer, averaging schedules, robust aggregators, attacks.
        // Pure: robust aggregators, averaging schedules, reputation, attacks, the averaging wire
        // format, float kernels: what latticad needs of the learning layer (it links only this).
        .target(name: "LatticaAveraging", dependencies: ["LatticaCore", realModule], swiftSettings: strict),
        // Pure: tensors, MLP, optimizers, trainer, data sets, experiments (the trainer's side).
        .target(name: "LatticaLearning", dependencies: ["LatticaCore", "LatticaAveraging", realModule], swiftSettings: strict),
        // OpenBLAS behind LatticaLearning's BLAS protocol, for the processes that train (not latticad).
        .target(name: "LatticaBLAS", dependencies: ["LatticaAveraging", "CBLAS", "CKernels"], swiftSettings: strict),
        // C kernels of the trainer that OpenBLAS has no call for (the fused Adam step), built per
        // instruction set and chosen by CPUID at run time (no -march: the binary stays portable).
        .target(name: "CKernels", linkerSettings: [.linkedLibrary("m")]),
        // Pure: CRDT state store core (delta CRDTs, HLC, signed batches, sync instance).
        .target(name: "LatticaCRDT", dependencies: ["LatticaCore", "LatticaCrypto"], swiftSettings: strict),
        // Pure: SHA-256 with the x86 SHA extensions (checked at run time), for model transfer.
        .target(name: "LatticaSHA", swiftSettings: strict + shaExtensions),
        // Pure: content-addressed, chunked, resumable model transfer (/lattica/model/1.0.0).
        .target(name: "LatticaModel", dependencies: ["LatticaCore", "LatticaCrypto", "LatticaSHA"], swiftSettings: strict),
        // Pure: virtual clock + simulated network.
        .target(name: "LatticaSimulation", dependencies: ["LatticaCore"], swiftSettings: strict),
        // The libuv shell: loop thread, TCP/UDP, timers, async bridge.
        .target(name: "LatticaUV", dependencies: ["LatticaCore", "CLibUV", logging], swiftSettings: strict),
        // SQLite persistence.
        .target(name: "LatticaStore", dependencies: ["LatticaCore", "CSQLite", logging], swiftSettings: strict),
        // NAT traversal as sans-I/O state machines and codecs: observed addresses, AutoNAT v2, STUN,
        // Circuit Relay v2, DCUtR.
        .target(name: "LatticaNAT", dependencies: ["LatticaCore", "LatticaCrypto"], swiftSettings: strict),
        // Control API types shared by latticad and lattica (JSON over a Unix socket).
        .target(name: "LatticaAPI", dependencies: ["LatticaCore"], swiftSettings: strict),
        // Data files (CSV, IDX, fixtures) for the learning layer: the I/O side of LatticaLearning.
        .target(name: "LatticaData", dependencies: ["LatticaLearning"], swiftSettings: strict),
        // Composes everything: config, data dir, daemon, control server, metrics.
        .target(
            name: "LatticaNode",
            dependencies: [
                "LatticaCore", "LatticaCrypto", "LatticaWire", "LatticaDHT", "LatticaCRDT", "LatticaModel", "LatticaAveraging", "LatticaUV", "LatticaStore",
                "LatticaNAT", "LatticaAPI", "CKernels", logging, metrics, prometheus,
            ],
            swiftSettings: strict
        ),

        // The Swift runtime and FoundationEssentials linked statically: only the code latticad uses
        // is mapped: an idle daemon measured 18.2–18.5 MiB RSS (release with testing) against 20.7 MiB with the shared libraries.
        // (libFoundationEssentials.a needs its two helper archives named.)
        .executableTarget(name: "latticad", dependencies: ["LatticaNode", argumentParser, logging], swiftSettings: strict,
                          linkerSettings: [.unsafeFlags(["-static-stdlib", "-Xlinker", "-l_FoundationCollections", "-Xlinker", "-l_FoundationCShims", "-Xlinker", "--gc-sections"])]),
        .executableTarget(name: "lattica", dependencies: ["LatticaAPI", "LatticaCore", argumentParser], swiftSettings: strict),
        // The built-in trainer: a local client of latticad (Docs/TRAINER-API.md), never the loop thread.
        .executableTarget(name: "lattica-train", dependencies: ["LatticaAPI", "LatticaCore", "LatticaLearning", "LatticaBLAS", "LatticaData", argumentParser], swiftSettings: strict),
        .executableTarget(
            name: "lattica-bench",
            dependencies: [
                "LatticaCore", "LatticaCrypto", "LatticaUV", "LatticaWire", "LatticaLearning", "LatticaBLAS", "LatticaData",
                "LatticaSimulation", "LatticaNode", argumentParser,
            ],
            swiftSettings: strict
        ),

        .testTarget(name: "LatticaCoreTests", dependencies: ["LatticaCore"]),
        .testTarget(name: "LatticaCryptoTests", dependencies: ["LatticaCrypto"]),
        .testTarget(name: "LatticaWireTests", dependencies: ["LatticaWire", "LatticaSimulation"]),
        .testTarget(name: "LatticaDHTTests", dependencies: ["LatticaDHT", "LatticaSimulation"]),
        .testTarget(name: "LatticaLearningTests", dependencies: ["LatticaLearning", "LatticaBLAS", "LatticaData", "LatticaSimulation"]),
        .testTarget(name: "LatticaSimulationTests", dependencies: ["LatticaSimulation"]),
        .testTarget(name: "LatticaCRDTTests", dependencies: ["LatticaCRDT"]),
        .testTarget(name: "LatticaModelTests", dependencies: ["LatticaModel", "LatticaSHA"]),
        .testTarget(name: "LatticaUVTests", dependencies: ["LatticaUV"]),
        .testTarget(name: "LatticaStoreTests", dependencies: ["LatticaStore"]),
        .testTarget(name: "LatticaNATTests", dependencies: ["LatticaNAT", "LatticaSimulation"]),
        .testTarget(name: "LatticaNodeTests", dependencies: ["LatticaNode", "LatticaAPI"]),
    ]
)
