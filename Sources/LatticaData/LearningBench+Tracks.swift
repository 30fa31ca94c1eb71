import Foundation
import LatticaLearning

extension LearningBench {
    static let bristleAnchors: [Experiment.BristleRule: [Double]] = [
        .mean: [62.0, 0.7, 6.0, 12.8, 13.4, 42.8, 47.8],
        .median: [31.2, 47.9, 26.1, 34.3, 26.5, 34.4, 42.0],
        .flag: [62.1, 1.0, 5.2, 11.7, 14.3, 42.0, 47.7],
        .bristle: [86.0, 81.6, 77.8, 46.8, 41.4, 32.5, 38.7],
    ]

    /// The Bristle track: 4 classes per node, frozen pretrained hidden layer, 300 iterations.
    public static func bristleTrack(_ o: Options, digits: Dataset, iterations: Int = 300, localSteps: Int = 5, emit: (String) -> Void) {
        let cols: [(String, Attack, Int)] = [("clean", .none, 0), ("label-flip 4", .labelFlip, 4), ("label-flip 8", .labelFlip, 8),
                                            ("noise 4", .gaussian, 4), ("noise 8", .gaussian, 8), ("ALIE 4", .alie, 4), ("ALIE 8", .alie, 8)]
        if !o.json {
            emit("")
            emit("Bristle track: transfer learning (hidden layer pretrained on 20% and frozen), 16 nodes × 4 classes, \(iterations) iterations × \(localSteps) local steps, Adam 1e-3; cell = ours (anchor)")
            emit(pad("method", 12) + cols.map { pad($0.0, 18) }.joined())
        }
        for rule in Experiment.BristleRule.allCases {
            var line = pad(rule.rawValue, 12)
            for (ci, (name, attack, count)) in cols.enumerated() {
                var c = Experiment.BristleConfig()
                c.rule = rule; c.attack = attack; c.attackers = count; c.iterations = iterations; c.localSteps = localSteps
                let accs = o.seeds.map { Experiment.runBristle(c, data: digits, seed: $0) }
                let acc = accs.reduce(0, +) / Double(accs.count) * 100
                let anchor = bristleAnchors[rule]![ci]
                if o.json {
                    emit(String(format: "{\"track\": \"bristle\", \"method\": \"%@\", \"aggregator\": \"%@\", \"attack\": \"%@\", \"attackers\": %d, \"accuracy\": %.2f, \"anchor\": %.1f, \"seeds\": [%@]}",
                                rule.rawValue, rule.rawValue, attack.rawValue, count, acc, anchor, o.seeds.map(String.init).joined(separator: ", ")))
                } else {
                    line += pad(String(format: "%.1f (%.1f)", acc, anchor), 18)
                }
                _ = name
            }
            if !o.json { emit(line) }
        }
    }

    /// The DADAO track: ridge regression on breast_cancer, ring and complete graphs, t = 3000.
    public static func dadaoTrack(_ o: Options, breastCancer: Dataset, horizon: Double = 3000, emit: (String) -> Void) {
        let anchors: [Experiment.Graph: (Double, Double)] = [.ring: (3.7e-4, 2.3e-2), .complete: (4.8e-4, 1.8e-2)]
        if !o.json {
            emit("")
            emit("DADAO track: ridge regression, breast_cancer, 16 nodes sorted by label; mean ‖x_i − x*‖² at t = \(Int(horizon)) (anchor)")
        }
        for g in Experiment.Graph.allCases {
            var c = Experiment.DADAOConfig()
            c.graph = g; c.horizon = horizon
            let outs = o.seeds.map { Experiment.runDADAO(c, data: breastCancer, seed: $0) }
            let dad = outs.map { $0.dadao.last!.1 }.reduce(0, +) / Double(outs.count)
            let base = outs.map { $0.baseline.last!.1 }.reduce(0, +) / Double(outs.count)
            let first = outs[0]
            // Crossing time: first sample where DADAO's error drops below the baseline's.
            let cross = zip(first.dadao, first.baseline).first { $0.0.0 > 0 && $0.0.1 < $0.1.1 }?.0.0
            if o.json {
                emit(String(format: "{\"track\": \"dadao\", \"graph\": \"%@\", \"dadao\": %.3e, \"baseline\": %.3e, \"anchor_dadao\": %.1e, \"anchor_baseline\": %.1e, \"chi1\": %.1f, \"chi2\": %.2f, \"kappa\": %.0f}",
                            g.rawValue, dad, base, anchors[g]!.0, anchors[g]!.1, first.chi1, first.chi2, first.kappa))
            } else {
                emit(String(format: "%-9@ χ1 = %.1f, χ2 = %.2f, λ_mix = %.1f, κ = %.0f:  DADAO %.2e (%.1e)   gossip+GD %.2e (%.1e)   DADAO below baseline from t ≈ %@",
                            g.rawValue, first.chi1, first.chi2, first.lambdaMix, first.kappa, dad, anchors[g]!.0, base, anchors[g]!.1, cross.map { String(Int($0)) } ?? "never"))
                let pts = stride(from: 0, to: first.dadao.count, by: max(1, first.dadao.count / 10)).map { String(format: "t=%d: %.1e/%.1e", Int(first.dadao[$0].0), first.dadao[$0].1, first.baseline[$0].1) }
                emit("          seed \(o.seeds[0]) curve (DADAO/baseline): " + pts.joined(separator: "  "))
            }
        }
    }
}
