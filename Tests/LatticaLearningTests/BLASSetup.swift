import LatticaBLAS

/// The tests run the learning layer on OpenBLAS, as lattica-train and lattica-bench do.
enum BLASSetup {
    static let installed: Void = LatticaBLAS.install()
}
