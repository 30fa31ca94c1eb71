import LatticaCore

/// Trains one node's copy of a model on its own data: minibatches drawn by epoch-wise seeded
/// shuffles, softmax cross-entropy, gradient-norm clipping, then the inner optimizer. Owns its
/// buffers, so a step allocates nothing.
public struct LocalTrainer: Sendable {
    public struct Settings: Hashable, Sendable {
        public var batchSize: Int = 16
        public var learningRate: Float = 3e-3
        /// Clip the gradient to this L2 norm before the optimizer step (NoLoCo reference: 1.0).
        public var clipNorm: Float? = 1.0
        public var useAdam: Bool = true
        public var momentum: Float = 0.9
        public init() {}
    }

    public let architecture: MLPArchitecture
    public private(set) var data: Dataset
    public var settings: Settings
    public var optimizer: Optimizer
    public private(set) var steps = 0
    var rng: SeededRandom
    var order: [Int] = []
    var cursor = 0
    var workspace: MLPWorkspace
    var gradient: [Float]
    var batchX: [Float]
    var batchY: [Int32]

    public init(architecture: MLPArchitecture, data: Dataset, settings: Settings = Settings(), seed: UInt64) {
        precondition(data.featureCount == architecture.inputs && data.classes <= architecture.classes)
        self.architecture = architecture
        self.data = data
        self.settings = settings
        optimizer = settings.useAdam
            ? .adam(Adam(parameterCount: architecture.parameterCount, learningRate: settings.learningRate))
            : .sgd(SGDMomentum(parameterCount: architecture.parameterCount, learningRate: settings.learningRate, momentum: settings.momentum))
        rng = SeededRandom(seed: seed)
        let b = max(1, min(settings.batchSize, data.count))
        workspace = MLPWorkspace(architecture, maxBatch: b)
        gradient = [Float](repeating: 0, count: architecture.parameterCount)
        batchX = [Float](repeating: 0, count: b * architecture.inputs)
        batchY = [Int32](repeating: 0, count: b)
    }

    /// Replaces the training data (e.g. the label-flip attacker's flipped copy).
    public mutating func replaceData(_ newData: Dataset) {
        precondition(newData.featureCount == data.featureCount)
        data = newData
        order = []
        cursor = 0
    }

    mutating func nextBatch() -> Int {
        let b = batchY.count
        let d = data.featureCount
        for r in 0..<b {
            if cursor >= order.count {
                order = Array(0..<data.count)
                order.shuffle(using: &rng)
                cursor = 0
            }
            let i = order[cursor]
            cursor += 1
            batchY[r] = data.labels[i]
            batchX.withUnsafeMutableBufferPointer { bx in
                data.features.withUnsafeBufferPointer { f in (bx.baseAddress! + r * d).update(from: f.baseAddress! + i * d, count: d) }
            }
        }
        return b
    }

    /// Runs `count` optimizer steps on `parameters`; returns the mean training loss.
    @discardableResult
    public mutating func train(_ parameters: inout [Float], steps count: Int) -> Float {
        precondition(parameters.count == architecture.parameterCount)
        var total: Float = 0
        for _ in 0..<count {
            let b = nextBatch()
            let loss = parameters.withUnsafeBufferPointer { p in
                batchX.withUnsafeBufferPointer { x in
                    batchY.withUnsafeBufferPointer { y in
                        gradient.withUnsafeMutableBufferPointer { g in
                            architecture.lossAndGradient(parameters: p, x: x.baseAddress!, labels: y.baseAddress!, batch: b,
                                                         gradient: g, workspace: &workspace)
                        }
                    }
                }
            }
            if let c = settings.clipNorm { GradientClipping.clipNorm(&gradient, maxNorm: c) }
            optimizer.step(parameters: &parameters, gradient: gradient)
            total += loss
            steps += 1
        }
        return count > 0 ? total / Float(count) : 0
    }
}
