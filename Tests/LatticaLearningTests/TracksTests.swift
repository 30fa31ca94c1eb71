import LatticaCore
import LatticaData
import LatticaLearning
import Testing

@Suite struct TracksTests {
    init() { _ = BLASSetup.installed }  // OpenBLAS, as the trainer uses (latticad keeps the portable loops)
    @Test func expm6_matchesTheClosedFormOfARotation() {
        var a = [Double](repeating: 0, count: 36)
        a[0 * 6 + 1] = -1; a[1 * 6 + 0] = 1; a[2 * 6 + 2] = -0.5
        let e = DADAO.expm6(a, t: 2)
        #expect(abs(e[0] - Foundation_cos(2)) < 1e-10 && abs(e[1 * 6 + 0] - Foundation_sin(2)) < 1e-10)
        #expect(abs(e[2 * 6 + 2] - 0.36787944117144233) < 1e-10 && e[5 * 6 + 5] == 1)
    }

    @Test func graphConstants_matchTheDADAOPaperValues() {
        let ring = Experiment.graphConstants(Experiment.edges(.ring, nodes: 16), nodes: 16)
        #expect(abs(ring.chi1 - 105.1) < 0.1 && abs(ring.chi2 - 7.5) < 1e-6)
        let complete = Experiment.graphConstants(Experiment.edges(.complete, nodes: 16), nodes: 16)
        #expect(abs(complete.chi1 - 7.5) < 1e-6 && abs(complete.chi2 - 7.5) < 1e-6)
    }

    @Test func dadao_convergesLinearly_andBeatsGossipPlusGradientDescent() throws {
        var c = Experiment.DADAOConfig(); c.horizon = 1200; c.graph = .complete
        let o = Experiment.runDADAO(c, data: try DataFiles.fixture("breast_cancer"), seed: 1)
        #expect(abs(o.kappa - 1709) < 1)
        let end = o.dadao.last!.1, base = o.baseline.last!.1
        #expect(end < 1e-2 * o.dadao[0].1, "DADAO error \(end)")
        #expect(end < base / 10, "DADAO \(end) vs baseline \(base)")
    }

    @Test func bristleWeight_followsTheFormula() {
        // Equal F1: d = 0 → score 0 → σ = ½ → weight = (10·½ − 4)·certainty = certainty.
        #expect(abs(Bristle.weight(ownF1: 0.5, peerF1: 0.5, certainty: 0.8) - 0.8) < 1e-12)
        // Much worse peer: score floored at −100 → 10·σ(−1) − 4 < 0 → 0.
        #expect(Bristle.weight(ownF1: 0.9, peerF1: 0.1, certainty: 1) == 0)
        // Better peer gets more than an equal one.
        #expect(Bristle.weight(ownF1: 0.2, peerF1: 0.6, certainty: 1) > 1)
        #expect(abs(Bristle.certainty([0.5, 0.5]) - 0.5) < 1e-12 && Bristle.certainty([0, 1]) == 0)
        #expect(Bristle.f1PerClass(predicted: [0, 0, 1, 1], labels: [0, 1, 1, 1], classes: 3) == [2.0 / 3, 0.8, 0])
    }

    @Test func bristleIntegrator_mixesEachClassByItsOwnWeights() {
        // Two classes, one parameter each; the peer is better on class 1 only.
        let out = Bristle.integrate(own: [0, 0], ownF1: [1, 0.2], peers: [[10, 10]], peerF1: [[0.2, 1]], classes: 2) { [$0] }
        #expect(out[0] == 0)         // peer much worse on class 0: weight 0
        #expect(out[1] > 5)          // peer much better on class 1: dominates
    }

    @Test func bristleTrack_beatsMean_underLabelFlip() throws {
        let digits = try DataFiles.fixture("digits").scaled(by: 1.0 / 16)
        var c = Experiment.BristleConfig(); c.iterations = 100; c.attack = .labelFlip; c.attackers = 4
        c.rule = .bristle
        let bristle = Experiment.runBristle(c, data: digits, seed: 1)
        c.rule = .mean
        let mean = Experiment.runBristle(c, data: digits, seed: 1)
        #expect(bristle > mean + 0.1, "Bristle \(bristle) vs mean \(mean)")
    }
}

func Foundation_cos(_ x: Double) -> Double { var r = 1.0, t = 1.0; for i in 1...30 { t *= -x * x / Double((2 * i - 1) * (2 * i)); r += t }; return r }
func Foundation_sin(_ x: Double) -> Double { var r = x, t = x; for i in 1...30 { t *= -x * x / Double((2 * i) * (2 * i + 1)); r += t }; return r }
