import LatticaCore
import LatticaData
import LatticaLearning
import Testing

/// `DADAO.Problem` (ridge and softmax), the simulator on softmax, and the state file.
@Suite struct DADAOProblemTests {
    /// A small softmax problem: 300 digits rows, 3 Dirichlet(0.5) shards.
    static let small = Result { () throws -> DADAO.SoftmaxProblem in
        let digits = try DataFiles.fixture("digits").scaled(by: 1.0 / 16)
        return DADAO.SoftmaxProblem(data: digits.subset(0..<400), nodes: 3, split: .dirichlet(alpha: 0.5), seed: 7, l2: 1e-2)
    }

    /// ∇f_k against central finite differences of f_k (computed as the loss of a one-shard problem).
    @Test func softmaxGradient_matchesFiniteDifferences() throws {
        let p = try Self.small.get()
        var rng = SeededRandom(seed: 3)
        let x = (0..<p.dimension).map { _ in rng.nextGaussian() * 0.3 }
        // f_k alone: (1/n)·Σ f_i with only shard k's gradient differs; use F = (1/n)Σ f_i and its gradient.
        let g = p.meanGradient(at: x)
        let h = 1e-5
        var worst = 0.0
        for _ in 0..<40 {
            let i = Int(rng.next() % UInt64(p.dimension))
            var xp = x, xm = x
            xp[i] += h; xm[i] -= h
            let fd = (p.loss(at: xp) - p.loss(at: xm)) / (2 * h)
            worst = max(worst, abs(fd - g[i]) / max(1e-6, abs(fd) + abs(g[i])))
        }
        #expect(worst < 1e-5, "relative error \(worst)")
    }

    /// L and μ hold along random pairs: ‖∇f_k(x) − ∇f_k(y)‖ ≤ L‖x − y‖ and
    /// ⟨∇f_k(x) − ∇f_k(y), x − y⟩ ≥ μ‖x − y‖², for every shard; and L is not loose by orders.
    @Test func softmaxConstants_boundTheGradients() throws {
        let p = try Self.small.get()
        var rng = SeededRandom(seed: 5)
        var largest = 0.0
        for k in 0..<p.nodes {
            for _ in 0..<10 {
                let x = (0..<p.dimension).map { _ in rng.nextGaussian() }
                let y = x.map { $0 + rng.nextGaussian() * 0.1 }
                let gx = p.gradient(node: k, at: x), gy = p.gradient(node: k, at: y)
                let dg = zip(gx, gy).map { $0 - $1 }, dx = zip(x, y).map { $0 - $1 }
                let ndx = dx.reduce(0) { $0 + $1 * $1 }
                let ratio = dg.reduce(0) { $0 + $1 * $1 }.squareRoot() / ndx.squareRoot()
                largest = max(largest, ratio)
                #expect(ratio <= p.L * (1 + 1e-9))
                #expect(zip(dg, dx).reduce(0) { $0 + $1.0 * $1.1 } >= p.mu * ndx * (1 - 1e-9))
            }
        }
        #expect(largest > p.L / 100, "L \(p.L) against the largest ratio seen \(largest)")
    }

    /// The minimisers: ridge's exact x* and softmax's accelerated descent both zero the gradient.
    @Test func minimisers_zeroTheMeanGradient() throws {
        let ridge = DADAO.RidgeProblem(data: try DataFiles.fixture("breast_cancer"), nodes: 4, conditionNumber: 50)
        let gr = ridge.meanGradient(at: ridge.minimiser())
        #expect(gr.reduce(0) { $0 + $1 * $1 }.squareRoot() < 1e-8)
        let p = try Self.small.get()
        let x = p.minimiser()
        #expect(p.meanGradient(at: x).reduce(0) { $0 + $1 * $1 }.squareRoot() < 1e-8)
        #expect(p.loss(at: x) < p.loss(at: x.map { $0 * 0.9 }))
        #expect(p.accuracy(at: x) > 0.85, "\(p.accuracy(at: x))")
    }

    /// The simulator's DADAO on softmax goes towards the exact minimiser (linearly: the error
    /// falls by 10^2 over the horizon), the nodes agree, and their accuracy reaches the minimiser's.
    @Test func simulatedDADAO_softmax_convergesTowardsTheMinimiser() throws {
        let p = try Self.small.get()
        let xStar = p.minimiser()
        var c = Experiment.DADAOConfig()
        c.nodes = 3
        c.graph = .complete
        c.horizon = 600
        c.sampleEvery = 100
        let o = Experiment.runDADAO(c, problem: p, xStar: xStar, seed: 1)
        let errs = o.dadao.map(\.1)
        print("simulated DADAO softmax, 3 nodes: err \(errs), accuracy \(o.accuracy), minimiser \(p.accuracy(at: xStar))")
        #expect(errs.last! < errs.first! / 100, "\(errs)")
        #expect(errs.last! < errs[3], "\(errs)")
        #expect(o.consensus.last! < errs.first! / 1000, "\(o.consensus)")
        #expect(abs(o.accuracy.last! - p.accuracy(at: xStar)) < 0.02)
        #expect(o.dadao.last!.1 < o.baseline.last!.1, "DADAO \(o.dadao.last!.1) baseline \(o.baseline.last!.1)")
        // The final merge of the simulator (the daemons' merge) keeps the nodes where they are.
        var s = Averaging.Settings(method: .robust(k: 3, rule: Aggregation.Rule(named: "centered-clip", k: 3)))
        s.mergeRule = Aggregation.Rule(named: "centered-clip", k: 3)
        let merged = Experiment.dadaoFinalMerge(o.final, settings: s, seed: 1)
        #expect(merged.count == 3)
        for m in merged { #expect(DADAO.RidgeProblem.squaredDistance(m, xStar) < errs.first! / 100) }
    }

    // MARK: the state file

    func snapshot(_ d: Int, seed: UInt64) -> DADAO.Snapshot {
        var rng = SeededRandom(seed: seed)
        let state = (0..<6).map { _ in (0..<d).map { _ in rng.nextGaussian() } }
        return DADAO.Snapshot(L: 2.5, mu: 0.01, time: 123.25, wallStartNanoseconds: 1_764_000_000_000_000_000,
                              gradients: 120, gossips: 300, failures: 2, rejected: 1, state: state)
    }

    @Test func stateFile_roundTrips_byteForByte() throws {
        let s = snapshot(3, seed: 1)
        let b = DADAO.StateFile.encode(s)
        #expect(b.count == 88 + 48 * 3)
        #expect(Array(b[0..<8]) == [0x4C, 0x44, 0x41, 0x53, 1, 0, 0, 0])
        #expect(Array(b[8..<12]) == [3, 0, 0, 0])
        #expect(Array(b[16..<24]) == [0, 0, 0, 0, 0, 0, 4, 0x40])  // 2.5
        #expect(Array(b[48..<56]) == [120, 0, 0, 0, 0, 0, 0, 0])
        #expect(try DADAO.StateFile.decode(b) == s)
        #expect(try DADAO.StateFile.decode(b, expectedDimension: 3) == s)
        #expect(throws: DADAO.StateFile.DecodeError.wrongDimension(got: 3, expected: 4)) { try DADAO.StateFile.decode(b, expectedDimension: 4) }
        #expect(throws: DADAO.StateFile.DecodeError.wrongSize(got: b.count - 1, expected: b.count)) { try DADAO.StateFile.decode(Array(b.dropLast())) }
        var flipped = b; flipped[100] ^= 1
        #expect(throws: DADAO.StateFile.DecodeError.badChecksum) { try DADAO.StateFile.decode(flipped) }
        #expect(throws: DADAO.StateFile.DecodeError.truncated(0)) { try DADAO.StateFile.decode([]) }
        // An instance restored from it continues exactly as the original.
        let k = DADAO.Constants(L: 2.5, mu: 0.01, chi1: 1, lambdaMix: 1.5)
        let a = DADAO.Instance(restoring: s.state, lastEvent: Instant(nanoseconds: 123_250_000_000), constants: k)
        #expect(a.snapshot(wallStartNanoseconds: s.wallStartNanoseconds).state == s.state)
        #expect(a.lastEvent.seconds == 123.25)
    }

    /// Random, mutated, truncated and extended files never trap; what decodes re-encodes to the
    /// same bytes; a flipped byte anywhere is refused.
    @Test func stateFileDecoder_neverTraps_onHostileBytes() {
        let seed: UInt64 = 0x57A7_EF11
        print("DADAO state file fuzz seed \(seed)")
        var rng = SeededRandom(seed: seed)
        var decoded = 0
        for round in 0..<3000 {
            let d = 1 + Int(rng.next() % 5)
            var b = DADAO.StateFile.encode(snapshot(d, seed: UInt64(round)))
            switch rng.next() % 5 {
            case 0: b = (0..<Int(rng.next() % 400)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            case 1: b[Int(rng.next() % UInt64(b.count))] ^= UInt8(1 + rng.next() % 255)
            case 2: b = Array(b.prefix(Int(rng.next() % UInt64(b.count))))
            case 3: b += (0..<(1 + Int(rng.next() % 16))).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            default: // a header of a huge or odd dimension
                let dim = UInt32(truncatingIfNeeded: rng.next())
                for i in 0..<4 { b[8 + i] = UInt8(truncatingIfNeeded: dim >> (8 * UInt32(i))) }
            }
            do {
                let s = try DADAO.StateFile.decode(b)
                decoded += 1
                #expect(DADAO.StateFile.encode(s) == b, "seed \(seed) round \(round)")
            } catch {
                #expect(!error.description.isEmpty)
            }
        }
        // Mutations are caught by the checksum (a collision in 3000 draws is ~1e-16): none decodes.
        #expect(decoded == 0, "seed \(seed): \(decoded) hostile files decoded")
    }
}
