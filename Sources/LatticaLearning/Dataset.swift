public import LatticaCore
import RealModule

/// A labelled classification data set held in memory: `count` rows of `featureCount` float32
/// features (row-major) and an integer label per row in 0..<classes.
public struct Dataset: Sendable, Hashable {
    public var features: [Float]
    public var labels: [Int32]
    public let featureCount: Int
    public let classes: Int

    public init(features: [Float], labels: [Int32], featureCount: Int, classes: Int) {
        precondition(featureCount > 0 && features.count == labels.count * featureCount)
        precondition(labels.allSatisfy { $0 >= 0 && Int($0) < classes }, "label out of range")
        self.features = features; self.labels = labels; self.featureCount = featureCount; self.classes = classes
    }

    public var count: Int { labels.count }

    /// The rows at `indices`, in that order.
    public func subset(_ indices: some Collection<Int>) -> Dataset {
        var f = [Float](); f.reserveCapacity(indices.count * featureCount)
        var l = [Int32](); l.reserveCapacity(indices.count)
        for i in indices {
            f.append(contentsOf: features[(i * featureCount)..<((i + 1) * featureCount)])
            l.append(labels[i])
        }
        return Dataset(features: f, labels: l, featureCount: featureCount, classes: classes)
    }

    /// Every feature multiplied by `s` (digits pixels 0...16 → 0...1 with s = 1/16).
    public func scaled(by s: Float) -> Dataset {
        Dataset(features: features.map { $0 * s }, labels: labels, featureCount: featureCount, classes: classes)
    }

    /// Per-feature mean and standard deviation (std 1 where a feature is constant).
    public func featureMoments() -> (mean: [Float], std: [Float]) {
        var mean = [Double](repeating: 0, count: featureCount), sq = mean
        for r in 0..<count { for c in 0..<featureCount { let v = Double(features[r * featureCount + c]); mean[c] += v; sq[c] += v * v } }
        let n = Double(max(count, 1))
        var std = [Float](repeating: 1, count: featureCount)
        for c in 0..<featureCount {
            mean[c] /= n
            let v = sq[c] / n - mean[c] * mean[c]
            if v > 1e-12 { std[c] = Float(v.squareRoot()) }
        }
        return (mean.map { Float($0) }, std)
    }

    /// (x − mean) / std per feature.
    public func standardized(mean: [Float], std: [Float]) -> Dataset {
        var f = features
        for r in 0..<count { for c in 0..<featureCount { f[r * featureCount + c] = (f[r * featureCount + c] - mean[c]) / std[c] } }
        return Dataset(features: f, labels: labels, featureCount: featureCount, classes: classes)
    }

    /// Labels replaced by `classes − 1 − y` (the label-flip attack's training data).
    public func labelFlipped() -> Dataset {
        Dataset(features: features, labels: labels.map { Int32(classes - 1) - $0 }, featureCount: featureCount, classes: classes)
    }

    /// A seeded random split: `testFraction` of the rows (stratified per class) held out.
    public func trainTestSplit(testFraction: Double, seed: UInt64) -> (train: Dataset, test: Dataset) {
        var rng = SeededRandom(seed: seed)
        var train: [Int] = [], test: [Int] = []
        for c in 0..<classes {
            var idx = (0..<count).filter { labels[$0] == c }
            idx.shuffle(using: &rng)
            let t = Int((Double(idx.count) * testFraction).rounded())
            test += idx[..<t]; train += idx[t...]
        }
        train.shuffle(using: &rng); test.shuffle(using: &rng)
        return (subset(train), subset(test))
    }
}

/// How the training rows are dealt out to nodes.
public enum DataSplit: Sendable, Hashable, CustomStringConvertible {
    /// Uniformly at random, equal shares.
    case iid
    /// Per class, proportions drawn from Dirichlet(alpha) over the nodes (Hsu et al. 2019).
    case dirichlet(alpha: Double)
    /// Each node holds `classesPerNode` classes (consecutive, wrapping), rows of a class shared
    /// equally among the nodes holding it (the Bristle track).
    case classesPerNode(Int)

    public var description: String {
        switch self {
        case .iid: "iid"
        case .dirichlet(let a): "dirichlet(\(a))"
        case .classesPerNode(let k): "\(k)-classes-per-node"
        }
    }

    /// Row indices of `data` for each of `nodes` nodes. Every node gets at least one row.
    public func assign(_ data: Dataset, nodes: Int, seed: UInt64) -> [[Int]] {
        precondition(nodes > 0)
        var rng = SeededRandom(seed: seed ^ 0x5EED_5EED)
        var parts = [[Int]](repeating: [], count: nodes)
        switch self {
        case .iid:
            var idx = Array(0..<data.count)
            idx.shuffle(using: &rng)
            for (k, i) in idx.enumerated() { parts[k % nodes].append(i) }
        case .dirichlet(let alpha):
            for c in 0..<data.classes {
                var idx = (0..<data.count).filter { data.labels[$0] == c }
                idx.shuffle(using: &rng)
                let p = Sampling.dirichlet(alpha: alpha, count: nodes, rng: &rng)
                var start = 0
                var acc = 0.0
                for k in 0..<nodes {
                    acc += p[k]
                    let end = k == nodes - 1 ? idx.count : min(idx.count, Int((acc * Double(idx.count)).rounded()))
                    if end > start { parts[k] += idx[start..<end] }
                    start = max(start, end)
                }
            }
        case .classesPerNode(let per):
            for c in 0..<data.classes {
                var idx = (0..<data.count).filter { data.labels[$0] == c }
                idx.shuffle(using: &rng)
                let holders = (0..<nodes).filter { k in (0..<per).contains { (k + $0) % data.classes == c } }
                guard !holders.isEmpty else { continue }
                for (j, i) in idx.enumerated() { parts[holders[j % holders.count]].append(i) }
            }
        }
        // A node left empty by the draw takes one row from the largest part.
        for k in 0..<nodes where parts[k].isEmpty {
            let big = parts.indices.max { parts[$0].count < parts[$1].count }!
            parts[k].append(parts[big].removeLast())
        }
        for k in 0..<nodes { parts[k].shuffle(using: &rng) }
        return parts
    }
}

public enum Sampling {
    /// Gamma(shape, 1) by Marsaglia & Tsang (2000), with the shape < 1 boost.
    public static func gamma(shape: Double, rng: inout SeededRandom) -> Double {
        if shape < 1 {
            let u = max(rng.nextDouble(), .leastNormalMagnitude)
            return gamma(shape: shape + 1, rng: &rng) * Double.pow(u, 1 / shape)
        }
        let d = shape - 1.0 / 3.0, c = 1 / (9 * d).squareRoot()
        while true {
            var x = 0.0, v = 0.0
            repeat { x = rng.nextGaussian(); v = 1 + c * x } while v <= 0
            v = v * v * v
            let u = rng.nextDouble()
            if u < 1 - 0.0331 * x * x * x * x { return d * v }
            if Double.log(max(u, .leastNormalMagnitude)) < 0.5 * x * x + d * (1 - v + Double.log(v)) { return d * v }
        }
    }

    /// One draw from a symmetric Dirichlet(alpha) over `count` categories.
    public static func dirichlet(alpha: Double, count: Int, rng: inout SeededRandom) -> [Double] {
        let g = (0..<count).map { _ in gamma(shape: alpha, rng: &rng) }
        let s = g.reduce(0, +)
        return s > 0 ? g.map { $0 / s } : [Double](repeating: 1 / Double(count), count: count)
    }
}
