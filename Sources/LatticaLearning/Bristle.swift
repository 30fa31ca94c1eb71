public import LatticaCore
import RealModule

/// Bristle (Verbraeken et al., reference: trustchain-superapp fedml `Bristle.kt`): robust
/// aggregation for transfer learning where only the output layer trains.
public enum Bristle {
    public struct Settings: Hashable, Sendable {
        /// Prioritizer: this many peers closest in Euclidean distance …
        public var closest = 20
        /// … plus this many random others.
        public var random = 5
        public init() {}
    }

    /// Prioritizer: indices of the `closest` peer models nearest to `own` plus `random` others.
    public static func prioritize(own: [Float], peers: [[Float]], settings: Settings = Settings(), rng: inout SeededRandom) -> [Int] {
        let order = peers.indices.sorted { (own.distance(to: peers[$0]), $0) < (own.distance(to: peers[$1]), $1) }
        var chosen = Array(order.prefix(settings.closest))
        var rest = Array(order.dropFirst(settings.closest))
        rest.shuffle(using: &rng)
        chosen += rest.prefix(settings.random)
        return chosen
    }

    /// Per-class F1 scores of predictions against labels (0 for a class never seen nor predicted).
    public static func f1PerClass(predicted: [Int], labels: [Int32], classes: Int) -> [Double] {
        var tp = [Double](repeating: 0, count: classes), fp = tp, fn = tp
        for (p, y) in zip(predicted, labels) {
            if p == Int(y) { tp[p] += 1 } else { fp[p] += 1; fn[Int(y)] += 1 }
        }
        return (0..<classes).map { c in
            let d = 2 * tp[c] + fp[c] + fn[c]
            return d > 0 ? 2 * tp[c] / d : 0
        }
    }

    /// Integrator weight of one peer for one class: d = 10·|F1_own − F1_p|; score = d^(3+F1_own)
    /// if the peer is better, else −d^(4+F1_own) (floor −100); weight = max(0, 10·σ(score/100) − 4)
    /// · certainty.
    public static func weight(ownF1: Double, peerF1: Double, certainty: Double) -> Double {
        let d = 10 * abs(ownF1 - peerF1)
        let score = peerF1 > ownF1 ? Double.pow(d, 3 + ownF1) : max(-100, -Double.pow(d, 4 + ownF1))
        let sigma = 1 / (1 + Double.exp(-score / 100))
        return max(0, 10 * sigma - 4) * certainty
    }

    /// certainty = max(0, mean F1_p − std F1_p) over the classes.
    public static func certainty(_ f1: [Double]) -> Double {
        let m = f1.reduce(0, +) / Double(f1.count)
        let v = f1.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(f1.count)
        return max(0, m - v.squareRoot())
    }

    /// Per-class integration of output layers. `layout(c)` gives the parameter indices belonging to
    /// class c (its weight column and bias). W_c = (own_c + Σ_p w_pc·W_p,c) / (1 + Σ_p w_pc).
    /// `present` are the classes in the local validation set (certainty is measured on them);
    /// nil = all classes.
    public static func integrate(
        own: [Float], ownF1: [Double], peers: [[Float]], peerF1: [[Double]], classes: Int, present: [Int]? = nil,
        layout: (Int) -> [Int]
    ) -> [Float] {
        var out = own
        let certainties = peerF1.map { f in certainty(present.map { $0.map { f[$0] } } ?? f) }
        for c in 0..<classes {
            let idx = layout(c)
            var total = 1.0
            var acc = idx.map { Double(own[$0]) }
            for (p, model) in peers.enumerated() {
                let w = weight(ownF1: ownF1[c], peerF1: peerF1[p][c], certainty: certainties[p])
                guard w > 0 else { continue }
                total += w
                for (j, i) in idx.enumerated() { acc[j] += w * Double(model[i]) }
            }
            for (j, i) in idx.enumerated() { out[i] = Float(acc[j] / total) }
        }
        return out
    }
}
