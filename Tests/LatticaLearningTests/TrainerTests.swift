import LatticaCore
import LatticaData
import LatticaLearning
import Testing

@Suite struct TrainerTests {
    init() { _ = BLASSetup.installed }  // OpenBLAS, as the trainer uses (latticad keeps the portable loops)
    static func digits() throws -> Dataset { try DataFiles.fixture("digits").scaled(by: 1.0 / 16) }

    @Test func mlp_reachesCentralBaseline_onDigitsWithAdam() throws {
        let (train, test) = try Self.digits().trainTestSplit(testFraction: 0.25, seed: 1)
        let arch = MLPArchitecture(sizes: [64, 64, 10])
        var rng = SeededRandom(seed: 7)
        var p = arch.initialParameters(rng: &rng)
        var settings = LocalTrainer.Settings(); settings.batchSize = 32; settings.learningRate = 3e-3
        var trainer = LocalTrainer(architecture: arch, data: train, settings: settings, seed: 3)
        trainer.train(&p, steps: 1500)
        var ws = MLPWorkspace(arch, maxBatch: 256)
        let acc = arch.accuracy(parameters: p, on: test, workspace: &ws)
        #expect(acc >= 0.95, "central MLP(64) accuracy \(acc)")
    }

    @Test func softmaxRegression_reachesCentralBaseline_onDigits() throws {
        let (train, test) = try Self.digits().trainTestSplit(testFraction: 0.25, seed: 1)
        let arch = MLPArchitecture(sizes: [64, 10])
        var rng = SeededRandom(seed: 7)
        var p = arch.initialParameters(rng: &rng)
        var settings = LocalTrainer.Settings(); settings.batchSize = 32; settings.learningRate = 1e-2
        var trainer = LocalTrainer(architecture: arch, data: train, settings: settings, seed: 3)
        trainer.train(&p, steps: 1500)
        var ws = MLPWorkspace(arch, maxBatch: 256)
        let acc = arch.accuracy(parameters: p, on: test, workspace: &ws)
        #expect(acc >= 0.93, "softmax regression accuracy \(acc)")
    }

    @Test func gradient_matchesFiniteDifferences_forTanhAndRelu() {
        for act in Activation.allCases {
            let arch = MLPArchitecture(sizes: [5, 4, 3], activation: act)
            var rng = SeededRandom(seed: 11)
            let p = arch.initialParameters(rng: &rng)
            let x = (0..<(6 * 5)).map { _ in Float(rng.nextGaussian()) }
            let y: [Int32] = [0, 1, 2, 1, 0, 2]
            var ws = MLPWorkspace(arch, maxBatch: 6)
            var g = [Float](repeating: 0, count: arch.parameterCount)
            func loss(_ q: [Float]) -> Float {
                var gg = [Float](repeating: 0, count: arch.parameterCount)
                return q.withUnsafeBufferPointer { qb in x.withUnsafeBufferPointer { xb in y.withUnsafeBufferPointer { yb in
                    gg.withUnsafeMutableBufferPointer { arch.lossAndGradient(parameters: qb, x: xb.baseAddress!, labels: yb.baseAddress!, batch: 6, gradient: $0, workspace: &ws) } } } }
            }
            _ = p.withUnsafeBufferPointer { pb in x.withUnsafeBufferPointer { xb in y.withUnsafeBufferPointer { yb in
                g.withUnsafeMutableBufferPointer { arch.lossAndGradient(parameters: pb, x: xb.baseAddress!, labels: yb.baseAddress!, batch: 6, gradient: $0, workspace: &ws) } } } }
            var worst: Float = 0
            for i in stride(from: 0, to: p.count, by: 3) {
                var a = p, b = p
                a[i] += 2e-4; b[i] -= 2e-4
                let num = (loss(a) - loss(b)) / 4e-4
                worst = max(worst, abs(num - g[i]))
            }
            #expect(worst < 2e-3, "\(act): max |numeric − analytic| = \(worst)")
        }
    }

    @Test func adam_andSgdMomentum_decreaseAQuadratic() {
        var a = Optimizer.adam(Adam(parameterCount: 2, learningRate: 0.1))
        var s = Optimizer.sgd(SGDMomentum(parameterCount: 2, learningRate: 0.05, momentum: 0.9))
        var pa: [Float] = [3, -2], ps: [Float] = [3, -2]
        for _ in 0..<300 {
            a.step(parameters: &pa, gradient: pa.map { 2 * $0 })
            s.step(parameters: &ps, gradient: ps.map { 2 * $0 })
        }
        #expect(pa.l2Norm < 0.05 && ps.l2Norm < 0.05)
    }

    @Test func gradientClipping_capsTheNorm_andKeepsTheDirection() {
        var g: [Float] = [3, 4]
        let before = GradientClipping.clipNorm(&g, maxNorm: 1)
        #expect(before == 5)
        #expect(abs(g.l2Norm - 1) < 1e-6 && abs(g[0] / g[1] - 0.75) < 1e-6)
        var small: [Float] = [0.3, 0.4]
        GradientClipping.clipNorm(&small, maxNorm: 1)
        #expect(small == [0.3, 0.4])
    }

    @Test func tensorMatmul_agreesWithNaiveProduct_includingTransposes() {
        var rng = SeededRandom(seed: 5)
        let a = Tensor(shape: [3, 4], scalars: (0..<12).map { _ in Float(rng.nextGaussian()) })
        let b = Tensor(shape: [4, 2], scalars: (0..<8).map { _ in Float(rng.nextGaussian()) })
        let c = a.matmul(b)
        for i in 0..<3 { for j in 0..<2 {
            let want = (0..<4).reduce(Float(0)) { $0 + a[i, $1] * b[$1, j] }
            #expect(abs(c[i, j] - want) < 1e-5)
        } }
        let bt = Tensor(shape: [2, 4], scalars: (0..<8).map { b[$0 % 4, $0 / 4] })
        #expect(a.matmul(bt, transposeOther: true).scalars.elementsEqual(c.scalars) { abs($0 - $1) < 1e-5 })
        let at = Tensor(shape: [4, 3], scalars: (0..<12).map { a[$0 % 3, $0 / 3] })
        #expect(at.matmul(b, transposeSelf: true).scalars.elementsEqual(c.scalars) { abs($0 - $1) < 1e-5 })
    }
}
