import LatticaCore
import LatticaBLAS
import LatticaLearning
import Testing

@Suite struct AggregationTests {
    init() { _ = BLASSetup.installed }  // OpenBLAS, as the trainer uses (latticad keeps the portable loops)
    func close(_ a: [Float], _ b: [Float], _ tol: Float = 1e-5) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= tol * max(1, abs($1)) }
    }

    @Test func mean_averagesEveryCoordinate() {
        #expect(Aggregation.aggregate([[1, 2], [3, 4], [5, 9]], rule: .mean) == [3, 5])
    }

    @Test func median_isTheMiddleValue_forOddAndEvenK_onEveryLanePath() {
        var rng = SeededRandom(seed: 3)
        for k in [3, 7, 8] {
            let n = 21  // two SIMD blocks and a ragged tail
            let xs = (0..<k).map { _ in (0..<n).map { _ in Float(rng.nextGaussian()) } }
            let got = Aggregation.aggregate(xs, rule: .median)
            let want = (0..<n).map { c -> Float in
                let s = xs.map { $0[c] }.sorted()
                return k % 2 == 1 ? s[k / 2] : (s[k / 2 - 1] + s[k / 2]) / 2
            }
            #expect(close(got, want), "k = \(k)")
        }
    }

    @Test func median_ignoresAMinorityOfHugeOutliers() {
        let xs: [[Float]] = [[1, 1], [1.1, 0.9], [0.9, 1.1], [1e9, -1e9], [-1e9, 1e9]]
        #expect(Aggregation.aggregate(xs, rule: .median) == [1, 1])
    }

    @Test func trimmedMean_dropsTrimValuesOnEachSide() {
        let xs: [[Float]] = [[1, 10], [2, 20], [3, 30], [100, -1000]]
        #expect(Aggregation.aggregate(xs, rule: .trimmedMean(trim: 1)) == [2.5, 15])
    }

    @Test func multiKrum_averagesOnlyTheClusteredInputs() {
        let good: [[Float]] = [[1, 0, 0], [1, 0, 0], [1, 0, 0], [1, 0, 0], [1, 0, 0]]
        let bad: [[Float]] = [[-10, 5, 5], [40, -3, 9]]
        let got = Aggregation.aggregate(bad + good, rule: .multiKrum(f: 2, m: 3))
        #expect(got == [1, 0, 0])
    }

    @Test func krumScores_sumTheNearestSquaredDistances() {
        // Points on a line at 0, 1, 3: k = 3, f = 0 → 1 neighbour each.
        let d = Aggregation.squaredDistances([[0], [1], [3]].map { $0 as [Float] }.withBuffers())
        #expect(Aggregation.krumScores(squaredDistances: d, k: 3, f: 0) == [1, 1, 4])
    }

    @Test func centeredClip_returnsTheCommonVector_andResistsOutliers() {
        let same: [[Float]] = Array(repeating: [2, -1, 0.5], count: 6)
        #expect(close(Aggregation.aggregate(same, rule: .centeredClip(tau: nil, iterations: 20)), [2, -1, 0.5]))
        var rng = SeededRandom(seed: 9)
        let honest = (0..<6).map { _ in (0..<50).map { _ in Float(1 + 0.1 * rng.nextGaussian()) } }
        let byz: [[Float]] = Array(repeating: [Float](repeating: -100, count: 50), count: 2)
        let out = Aggregation.aggregate(honest + byz, rule: .centeredClip(tau: nil, iterations: 20))
        let mean = Aggregation.aggregate(honest + byz, rule: .mean)
        #expect(out.allSatisfy { $0 > 0.3 } && mean.allSatisfy { $0 < -20 })
    }

    @Test func gram_matchesNaiveDotProducts() {
        var rng = SeededRandom(seed: 1)
        let xs = (0..<4).map { _ in (0..<5000).map { _ in Float(rng.nextGaussian()) } }
        let g = Aggregation.gram(xs.withBuffers())
        for i in 0..<4 { for j in 0..<4 {
            let want = zip(xs[i], xs[j]).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            #expect(abs(g[i * 4 + j] - want) < 1e-6 * max(1, abs(want)) + 1e-2)
        } }
    }

    @Test func symmetricEigen_recoversKnownEigenpairs() {
        // [[2,1],[1,2]]: eigenvalues 3 (1,1)/√2 and 1 (1,−1)/√2.
        let (values, vectors) = SymmetricEigen.decompose([2, 1, 1, 2], size: 2)
        #expect(abs(values[0] - 3) < 1e-12 && abs(values[1] - 1) < 1e-12)
        #expect(abs(abs(vectors[0]) - 0.5.squareRoot()) < 1e-12 && abs(vectors[0] - vectors[2]) < 1e-12)
    }

    @Test func flag_ofParallelInputs_isTheirDirectionAtTheMedianNorm() {
        let u: [Float] = [0.6, 0.8, 0]
        let xs = [1, 2, 3, 4, 5].map { s in u.map { $0 * Float(s) } }
        for r in [1, 2] {
            #expect(close(Aggregation.aggregate(xs, rule: .flag(r: r, iterations: 1)), u.map { $0 * 3 }, 1e-4), "r = \(r)")
        }
    }

    @Test func flag_withOneDimension_followsTheMajoritySubspace() {
        let xs: [[Float]] = Array(repeating: [1, 0.05, 0], count: 6) + Array(repeating: [0, 0, -30], count: 2)
        let out = Aggregation.aggregate(xs, rule: .flag(r: 1, iterations: 3))
        #expect(out[0] > 0.5 && abs(out[2]) < 0.05, "\(out)")
    }

    /// Known answer from the reference's algorithm (Scripts/bench/flag_reference.py, numpy): one
    /// IRLS step from the unweighted flag mean, output Σ Y·Yᵀ·x̂_i (reference: / r) times the lower
    /// median norm over k. Four honest inputs of norm ≈ 1.2, four of norm ≈ 50.
    @Test func flag_knownAnswer_matchesTheReferenceAlgorithm() {
        let xs: [[Float]] = [[1.0, 0.2, 0.1, 0.0, 0.3], [0.9, 0.1, 0.2, 0.1, 0.2], [1.1, 0.3, 0.0, 0.1, 0.4], [0.8, 0.2, 0.1, 0.2, 0.3],
                             [30, -40, 10, 5, 0], [-20, 10, 45, -5, 10], [5, 5, -10, 50, -30], [-10, -30, 0, 10, 40]]
        let expected: [Float] = [0.5823618, 0.0636542, 0.1039208, 0.0234167, 0.2443205]
        let out = Aggregation.aggregate(xs, rule: .flag(r: 2, iterations: 1))
        #expect(close(out, expected, 1e-4), "\(out)")
    }

    /// Half of the inputs huge (4 of 8 N(0,1) vectors, as plain Flag meets under Gaussian noise at
    /// 4/16 Byzantine): the step stays at the honest scale (with the averaging median of the norms,
    /// as before the fix, ‖out‖ is about 8× the largest honest norm here; numpy check).
    @Test func flag_halfHugeInputs_cannotInflateTheStep() {
        for seed: UInt64 in [1, 2, 3, 4, 5] {
            var r = SeededRandom(seed: seed)
            let n = 500
            let dir = (0..<n).map { _ in Float(r.nextGaussian()) }
            let honest = (0..<4).map { _ in dir.map { 0.03 * $0 + 0.01 * Float(r.nextGaussian()) } }
            let noise = (0..<4).map { _ in (0..<n).map { _ in Float(r.nextGaussian()) } }
            let out = Aggregation.aggregate(honest + noise, rule: .flag(r: 2, iterations: 1))
            let maxHonest = honest.map { $0.l2Norm }.max()!
            #expect(out.l2Norm <= maxHonest, "seed \(seed): ‖out‖ = \(out.l2Norm), honest ≤ \(maxHonest)")
        }
    }

    @Test func flagCoefficients_ignoreZeroInputs() {
        let xs: [[Float]] = [[0, 0], [1, 0], [1, 0]]
        #expect(close(Aggregation.aggregate(xs, rule: .flag(r: 1, iterations: 1)), [1, 0]))
    }
}

extension Array where Element == [Float] {
    func withBuffers() -> [UnsafeBufferPointer<Float>] {
        // Test helper: stable copies that live for the test process (never freed; tests are short).
        map { a in
            let p = UnsafeMutableBufferPointer<Float>.allocate(capacity: a.count)
            _ = p.initialize(from: a)
            return UnsafeBufferPointer(p)
        }
    }
}

@Suite struct PortableBLASTests {
    /// latticad aggregates on the portable loops: they agree with OpenBLAS on random shapes.
    @Test func portableLoops_agreeWithOpenBLAS_onRandomShapes() {
        var rng = SeededRandom(seed: 0xB1A5)
        let portable = PortableBLAS(), open = OpenBLAS()
        for trial in 0..<40 {
            let m = 1 + Int(rng.next() % 9), n = 1 + Int(rng.next() % 9), k = 1 + Int(rng.next() % 40)
            let tA = trial % 2 == 0, tB = trial % 3 == 0
            let a = (0..<(m * k)).map { _ in Float(rng.nextGaussian()) }, b = (0..<(k * n)).map { _ in Float(rng.nextGaussian()) }
            var c1 = (0..<(m * n)).map { _ in Float(rng.nextGaussian()) }, c2 = c1
            portable.sgemm(transA: tA, transB: tB, m: m, n: n, k: k, alpha: 0.5, a: a, lda: tA ? m : k, b: b, ldb: tB ? k : n, beta: 0.25, c: &c1, ldc: n)
            open.sgemm(transA: tA, transB: tB, m: m, n: n, k: k, alpha: 0.5, a: a, lda: tA ? m : k, b: b, ldb: tB ? k : n, beta: 0.25, c: &c2, ldc: n)
            #expect(zip(c1, c2).allSatisfy { abs($0 - $1) <= 1e-3 * max(1, abs($1)) }, "gemm trial \(trial)")
            var s1 = [Float](repeating: 0, count: m * m), s2 = s1
            portable.ssyrk(n: m, k: k, a: a, c: &s1)
            open.ssyrk(n: m, k: k, a: a, c: &s2)
            for i in 0..<m { for j in i..<m { #expect(abs(s1[i * m + j] - s2[i * m + j]) <= 1e-3 * max(1, abs(s2[i * m + j])), "syrk trial \(trial)") } }
            var y1 = b, y2 = b
            portable.saxpy(n: b.count, alpha: -1.5, x: b.reversed(), y: &y1)
            open.saxpy(n: b.count, alpha: -1.5, x: b.reversed(), y: &y2)
            #expect(zip(y1, y2).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($1)) }, "axpy trial \(trial)")
        }
    }

    /// The trainer's C Adam (every instruction-set variant picks the same arithmetic) agrees with
    /// the portable Swift loop over many steps, on lengths that leave a remainder past the vectors.
    @Test func cAdam_agreesWithThePortableLoop() {
        let seed: UInt64 = 0xADA4
        var rng = SeededRandom(seed: seed)
        let portable = PortableBLAS(), open = OpenBLAS()
        for n in [1, 15, 16, 17, 100, 1003] {
            var p1 = (0..<n).map { _ in Float(rng.nextGaussian()) }, p2 = p1
            var m1 = [Float](repeating: 0, count: n), m2 = m1, v1 = m1, v2 = m1
            for t in 1...50 {
                let g = (0..<n).map { _ in Float(rng.nextGaussian()) * 0.1 }
                let c1 = 1 - Float.pow(0.9, t), c2 = 1 - Float.pow(0.999, t)
                let step = 1e-2 * c2.squareRoot() / c1, eps = 1e-8 * c2.squareRoot()
                portable.adam(n: n, p: &p1, g: g, m: &m1, v: &v1, beta1: 0.9, beta2: 0.999, step: step, epsilon: eps)
                open.adam(n: n, p: &p2, g: g, m: &m2, v: &v2, beta1: 0.9, beta2: 0.999, step: step, epsilon: eps)
            }
            let worst = zip(p1, p2).map { abs($0 - $1) / max(1, abs($0)) }.max() ?? 0
            #expect(worst <= 1e-5, "n \(n), seed \(seed): worst relative difference \(worst) (C variant \(OpenBLAS.kernelVariant))")
            #expect(p1 != p1.map { _ in 0 }, "the step moved nothing")
        }
    }
}
