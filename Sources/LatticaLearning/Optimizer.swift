import RealModule

/// Inner optimizers over flat parameter vectors. State is per node and never averaged (NoLoCo §3).
public enum Optimizer: Sendable, Hashable {
    case adam(Adam)
    case sgd(SGDMomentum)

    public mutating func step(parameters: inout [Float], gradient: [Float]) {
        switch self {
        case .adam(var a): a.step(parameters: &parameters, gradient: gradient); self = .adam(a)
        case .sgd(var s): s.step(parameters: &parameters, gradient: gradient); self = .sgd(s)
        }
    }
}

/// Adam (Kingma & Ba 2015), no weight decay.
public struct Adam: Sendable, Hashable {
    public var learningRate: Float
    public var beta1: Float = 0.9
    public var beta2: Float = 0.999
    public var epsilon: Float = 1e-8
    public private(set) var m: [Float]
    public private(set) var v: [Float]
    public private(set) var t: Int = 0

    public init(parameterCount: Int, learningRate: Float = 1e-3) {
        self.learningRate = learningRate
        m = [Float](repeating: 0, count: parameterCount)
        v = m
    }

    /// Restores a checkpointed state.
    public init(learningRate: Float, m: [Float], v: [Float], t: Int) {
        precondition(m.count == v.count)
        self.learningRate = learningRate; self.m = m; self.v = v; self.t = t
    }

    public mutating func step(parameters: inout [Float], gradient: [Float]) {
        precondition(parameters.count == m.count && gradient.count == m.count)
        t += 1
        let b1 = beta1, b2 = beta2, eps = epsilon
        let c1 = 1 - Float.pow(b1, t), c2 = 1 - Float.pow(b2, t)
        let stepSize = learningRate * c2.squareRoot() / c1
        let epsHat = eps * c2.squareRoot()
        m.withUnsafeMutableBufferPointer { m in
            v.withUnsafeMutableBufferPointer { v in
                parameters.withUnsafeMutableBufferPointer { p in
                    gradient.withUnsafeBufferPointer { g in
                        Kernels.blas.adam(n: g.count, p: p.baseAddress!, g: g.baseAddress!, m: m.baseAddress!, v: v.baseAddress!,
                                          beta1: b1, beta2: b2, step: stepSize, epsilon: epsHat)
                    }
                }
            }
        }
    }
}

/// SGD with (heavy-ball) momentum: v ← μ·v + g; θ ← θ − lr·v.
public struct SGDMomentum: Sendable, Hashable {
    public var learningRate: Float
    public var momentum: Float
    public private(set) var velocity: [Float]

    public init(parameterCount: Int, learningRate: Float = 0.01, momentum: Float = 0.9) {
        self.learningRate = learningRate
        self.momentum = momentum
        velocity = [Float](repeating: 0, count: parameterCount)
    }

    public mutating func step(parameters: inout [Float], gradient: [Float]) {
        precondition(parameters.count == velocity.count && gradient.count == velocity.count)
        let mu = momentum, lr = learningRate
        velocity.withUnsafeMutableBufferPointer { v in
            parameters.withUnsafeMutableBufferPointer { p in
                gradient.withUnsafeBufferPointer { g in
                    for i in 0..<g.count { v[i] = mu * v[i] + g[i]; p[i] -= lr * v[i] }
                }
            }
        }
    }
}

public enum GradientClipping {
    /// Scales `gradient` so its L2 norm is at most `maxNorm`; returns the norm before clipping.
    @discardableResult
    public static func clipNorm(_ gradient: inout [Float], maxNorm: Float) -> Float {
        let n = Float(gradient.l2Norm)
        if n > maxNorm && n > 0 {
            let s = maxNorm / n
            gradient.withUnsafeMutableBufferPointer { g in for i in 0..<g.count { g[i] *= s } }
        }
        return n
    }
}
