import Foundation
import LatticaCore
import LatticaLearning

extension LearningBench {
    /// Trainer throughput on Fashion-MNIST (784-128-10 MLP, batch 64, Adam) and test accuracy
    /// after `epochs`; returns samples/s.
    @discardableResult
    public static func trainerBenchmark(_ o: Options, epochs: Int = 2, emit: (String) -> Void) throws -> Double {
        let dir = o.fashionDirectory
        func path(_ base: String) -> String {
            FileManager.default.fileExists(atPath: "\(dir)/\(base)") ? "\(dir)/\(base)" : "\(dir)/\(base).gz"
        }
        let train = try DataFiles.readIDX(images: path("train-images-idx3-ubyte"), labels: path("train-labels-idx1-ubyte"))
        let test = try DataFiles.readIDX(images: path("t10k-images-idx3-ubyte"), labels: path("t10k-labels-idx1-ubyte"))
        let arch = MLPArchitecture(sizes: [784, 128, 10])
        var rng = SeededRandom(seed: 1)
        var p = arch.initialParameters(rng: &rng)
        var s = LocalTrainer.Settings(); s.batchSize = 64; s.learningRate = 1e-3; s.clipNorm = nil
        var trainer = LocalTrainer(architecture: arch, data: train, settings: s, seed: 2)
        let steps = epochs * train.count / s.batchSize
        trainer.train(&p, steps: 20)  // warm-up
        let clock = ContinuousClock()
        let t0 = clock.now
        trainer.train(&p, steps: steps)
        let secs = (clock.now - t0).secondsDouble
        let rate = Double(steps * s.batchSize) / secs
        var ws = MLPWorkspace(arch, maxBatch: 1000)
        let acc = arch.accuracy(parameters: p, on: test, workspace: &ws)
        if o.json {
            emit(String(format: "{\"benchmark\": \"trainer\", \"dataset\": \"fashion-mnist\", \"model\": \"784-128-10\", \"batch\": 64, \"samples_per_second\": %.0f, \"test_accuracy\": %.2f, \"anchor_accuracy\": 87.5}", rate, acc * 100))
        } else {
            emit(String(format: "trainer: Fashion-MNIST 784-128-10 MLP, batch 64, Adam: %.0f samples/s; test accuracy after %d epochs %.1f%% (central anchor 87.5%%)", rate, epochs, acc * 100))
        }
        return rate
    }

    /// Aggregators over k vectors of n float32 (read in place, never copied); seconds per call.
    public static func aggregationBenchmark(_ o: Options, k: Int = 8, emit: (String) -> Void) {
        let n = o.perfVectorLength
        var rng = SeededRandom(seed: 4)
        let inputs: [UnsafeMutableBufferPointer<Float>] = (0..<k).map { _ in
            let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: n)
            var x = rng.next()
            for i in 0..<n {
                x = x &* 6364136223846793005 &+ 1442695040888963407
                b[i] = Float(Int32(truncatingIfNeeded: x >> 32)) * (1.0 / 2147483648.0)
            }
            return b
        }
        defer { inputs.forEach { $0.deallocate() } }
        let views = inputs.map { UnsafeBufferPointer($0) }
        let rules: [(String, Aggregation.Rule, Double?)] = [
            ("Flag (r=2)", .flag(r: 2, iterations: 1), 0.3), ("median", .median, 0.5),
            ("CenteredClip", .centeredClip(tau: nil, iterations: 20), nil), ("Multi-Krum", .multiKrum(f: 2, m: 4), nil),
            ("trimmed mean", .trimmedMean(trim: 2), nil), ("mean", .mean, nil),
        ]
        let clock = ContinuousClock()
        for (name, rule, target) in rules {
            var best = Double.infinity
            for _ in 0..<2 {
                let t0 = clock.now
                let out = Aggregation.aggregate(views, rule: rule)
                best = min(best, (clock.now - t0).secondsDouble)
                precondition(out.count == n)
            }
            if o.json {
                emit(String(format: "{\"benchmark\": \"aggregation\", \"aggregator\": \"%@\", \"k\": %d, \"n\": %d, \"seconds\": %.3f, \"target_seconds\": %@}",
                            name, k, n, best, target.map { String($0) } ?? "null"))
            } else {
                emit(String(format: "aggregation %-13@ k = %d × %d float32: %.3f s%@", name, k, n, best,
                            target.map { String(format: " (target ≤ %.1f s, ratio %.2f)", $0, best / $0) } ?? ""))
            }
        }
    }
}
