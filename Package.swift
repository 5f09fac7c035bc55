// swift-tools-version:6.0
import PackageDescription

// Layout mirrors the data flow (see README "Architecture"): store → chunks → windows → network → outputs → analysis.
let package = Package(
    name: "brainmap",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "brainmap", targets: ["brainmap"]),
        .library(name: "VolumeStore", targets: ["VolumeStore"]),
        .library(name: "NeuralNet", targets: ["NeuralNet"]),
        .library(name: "Phantom", targets: ["Phantom"]),
        .library(name: "Run", targets: ["Run"]),
        .library(name: "Pipeline", targets: ["Pipeline"]),
        .library(name: "Analysis", targets: ["Analysis"]),
        .library(name: "Report", targets: ["Report"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // System libraries from Debian, found through pkg-config.
        .systemLibrary(name: "CBlosc", pkgConfig: "blosc", providers: [.apt(["libblosc-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "CTiff", pkgConfig: "libtiff-4", providers: [.apt(["libtiff-dev"])]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CLZ4", pkgConfig: "liblz4", providers: [.apt(["liblz4-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),

        // Parses untrusted local and remote bytes: built with overflow and bounds checks (plain -O in release).
        .target(name: "VolumeStore", dependencies: ["CBlosc", "CTiff", "CCurl", "CZstd", "CZlib", "CLZ4"]),
        // FFT16 and the per-block kernels around it in C: one source built for AVX2+FMA and for the baseline, the
        // CPU picks at load. Optimised in debug builds too (the test suite runs them on real sizes).
        .target(name: "CKernels", cSettings: [.unsafeFlags(["-O3"])]),
        // The numeric kernels are optimised in debug builds too: the test suite runs them on real sizes.
        .target(name: "NeuralNet", dependencies: ["COpenBLAS", "CKernels"],
                swiftSettings: [.unsafeFlags(["-Ounchecked"], .when(configuration: .release)), .unsafeFlags(["-O"], .when(configuration: .debug))]),
        .target(name: "Phantom", dependencies: ["VolumeStore"],
                swiftSettings: [.unsafeFlags(["-Ounchecked"], .when(configuration: .release)), .unsafeFlags(["-O"], .when(configuration: .debug))]),
        // A run's one owner: manifest, step generations and lineage, done markers, array replacement, shard exchange.
        .target(name: "Run", dependencies: ["VolumeStore"]),
        // Composes VolumeStore and NeuralNet on Run: plans, windows, bounded stages, run outputs.
        .target(name: "Pipeline", dependencies: ["VolumeStore", "NeuralNet", "Run"],
                swiftSettings: [.unsafeFlags(["-O"], .when(configuration: .debug))]),
        // Streams a run's outputs through mergeable statistics: PCA, NMF, GMM, k-means, metrics, factor selection.
        .target(name: "Analysis", dependencies: ["Pipeline", "Run", "VolumeStore", "NeuralNet", "COpenBLAS"],
                swiftSettings: [.unsafeFlags(["-O"], .when(configuration: .debug))]),
        // Reads a run's results (arrays through VolumeStore, JSON files) into PNG images and an HTML page; serves runs.
        .target(name: "Report", dependencies: ["VolumeStore", "Run", "CPNG"],
                swiftSettings: [.unsafeFlags(["-O"], .when(configuration: .debug))]),
        .executableTarget(name: "brainmap", dependencies: [
            "VolumeStore", "NeuralNet", "Phantom", "Run", "Pipeline", "Analysis", "Report",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // Shared by the test targets: runs the Python reference implementations.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "VolumeStoreTests", dependencies: ["VolumeStore", "TestSupport"]),
        .testTarget(name: "NeuralNetTests", dependencies: ["NeuralNet", "CKernels", "TestSupport"]),
        .testTarget(name: "PhantomTests", dependencies: ["Phantom", "VolumeStore"]),
        .testTarget(name: "RunTests", dependencies: ["Run", "Pipeline", "Analysis", "Phantom", "VolumeStore", "NeuralNet", "TestSupport"]),
        .testTarget(name: "PipelineTests", dependencies: ["Pipeline", "Run", "Phantom", "VolumeStore", "NeuralNet", "TestSupport"]),
        .testTarget(name: "AnalysisTests", dependencies: ["Analysis", "Run", "Pipeline", "VolumeStore", "NeuralNet", "TestSupport"]),
        .testTarget(name: "ReportTests", dependencies: ["Report", "VolumeStore", "NeuralNet", "TestSupport"]),
    ]
)
