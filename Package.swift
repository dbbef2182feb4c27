// swift-tools-version:6.0
// cardsync: agency queues <-> the bureau's central PostgreSQL (through libpq), conflicts, reports.
import PackageDescription

let logging: Target.Dependency = .product(name: "Logging", package: "swift-log")
let argumentParser: Target.Dependency = .product(name: "ArgumentParser", package: "swift-argument-parser")

let package = Package(
    name: "cardsync",
    platforms: [.macOS(.v15)],  // Synchronization.Mutex
    products: [
        .executable(name: "cardsync", targets: ["cardsync"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        // The C library, nothing else: a modulemap and a shim header.
        .systemLibrary(
            name: "CLibPQ",
            path: "Sources/CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),
        // A small safe Swift layer over libpq: connections, parameters, rows, transactions, COPY.
        .target(name: "PostgresClient", dependencies: ["CLibPQ", logging], path: "Sources/PostgresClient"),
        // A private PostgreSQL cluster (initdb/pg_ctl), used as the embedded default and by the tests.
        .target(name: "LocalPostgres", dependencies: [logging], path: "Sources/LocalPostgres"),
        // Domain types and rules that need no database: events, statuses, identity numbers, JSON.
        .target(name: "CardCore", path: "Sources/CardCore"),
        // The central database: selection, schema migrations, verification.
        .target(
            name: "CardDatabase",
            dependencies: ["PostgresClient", "LocalPostgres", "CardCore", logging],
            path: "Sources/CardDatabase"
        ),
        // Agency queues, push/pull sync, lifecycle folding, conflicts, reconciliation.
        .target(
            name: "CardSync",
            dependencies: ["CardCore", "CardDatabase", "PostgresClient", logging],
            path: "Sync"
        ),
        // Monthly issuance, backlog and throughput reports.
        .target(
            name: "CardReports",
            dependencies: ["CardCore", "PostgresClient", logging],
            path: "Reports"
        ),
        // Not what runs at a bureau: the synthetic city (generate, demo, benchmarks, tests) and the
        // benchmarks themselves live under Bench/, so that Sync/ and Reports/ hold only the product.
        .target(name: "Workload", dependencies: ["CardCore"], path: "Bench/Workload"),
        .target(
            name: "CardBench",
            dependencies: ["CardCore", "PostgresClient", "CardSync", "CardReports", logging],
            path: "Bench",
            exclude: ["Workload"]
        ),
        .executableTarget(
            name: "cardsync",
            dependencies: [
                "CardCore", "CardDatabase", "CardSync", "CardReports", "Workload", "CardBench",
                "PostgresClient", "LocalPostgres", argumentParser, logging,
            ],
            path: "Sources/cardsync"
        ),
        // Shared test helpers: a throwaway PostgreSQL cluster per test run, temp directories.
        .target(
            name: "TestSupport",
            dependencies: ["PostgresClient", "LocalPostgres", "CardDatabase", logging],
            path: "Tests/TestSupport"
        ),
        // Valid events, outbox lines and scratch queues, shared by the unit and the server tests.
        .target(name: "EventFixtures", dependencies: ["CardCore", "CardSync"], path: "Tests/EventFixtures"),
        .testTarget(name: "PostgresClientTests", dependencies: ["PostgresClient", "LocalPostgres", "TestSupport"]),
        // Tests that need no server, in one target so that `swift test --filter UnitTests` runs
        // just them (about 20 s); every other test target starts real PostgreSQL clusters.
        .testTarget(name: "UnitTests", dependencies: ["CardCore", "CardSync", "CardReports", "Workload", "PostgresClient", "TestSupport", "EventFixtures"]),
        .testTarget(name: "CardSyncTests", dependencies: ["CardSync", "CardCore", "CardDatabase", "PostgresClient", "LocalPostgres", "TestSupport", "EventFixtures", "Workload", "CardBench"]),
        .testTarget(name: "CardReportsTests", dependencies: ["CardReports", "CardSync", "CardCore", "CardDatabase", "PostgresClient", "LocalPostgres", "TestSupport", "Workload", "CardBench"]),
        .testTarget(name: "CLITests", dependencies: ["TestSupport", "PostgresClient", "CardCore", "CardReports"]),
    ],
    swiftLanguageModes: [.v6]
)
