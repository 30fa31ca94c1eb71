import RealModule

/// Hidden-layer non-linearity.
public enum Activation: String, Sendable, Hashable, CaseIterable { case relu, tanh }

/// A multi-layer perceptron whose parameters live in one flat float32 vector, so that averaging and
/// robust aggregation work on a single contiguous buffer. `sizes = [64, 10]` is softmax regression
/// (logistic regression for two classes); `[64, 32, 10]` one hidden layer.
///
/// Layer l has a weight matrix W_l of shape [sizes[l], sizes[l+1]] (row-major) followed by its bias
/// b_l [sizes[l+1]]. Forward: Z = X·W + b (`Kernels.gemm`), hidden activation, softmax cross-entropy.
public struct MLPArchitecture: Hashable, Sendable {
    public var sizes: [Int]
    public var activation: Activation

    public init(sizes: [Int], activation: Activation = .relu) {
        precondition(sizes.count >= 2 && sizes.allSatisfy { $0 > 0 })
        self.sizes = sizes
        self.activation = activation
    }

    public var layerCount: Int { sizes.count - 1 }
    public var inputs: Int { sizes[0] }
    public var classes: Int { sizes[sizes.count - 1] }

    /// Offset of W_l and b_l in the flat vector.
    public func weightOffset(_ l: Int) -> Int {
        var o = 0
        for i in 0..<l { o += sizes[i] * sizes[i + 1] + sizes[i + 1] }
        return o
    }
    public func biasOffset(_ l: Int) -> Int { weightOffset(l) + sizes[l] * sizes[l + 1] }

    public var parameterCount: Int { weightOffset(layerCount) }

    /// Shapes of the tensors in file order: W0, b0, W1, b1, ...
    public var tensorShapes: [[Int]] {
        (0..<layerCount).flatMap { [[sizes[$0], sizes[$0 + 1]], [sizes[$0 + 1]]] }
    }

    /// Glorot-uniform weights, zero biases.
    public func initialParameters(rng: inout some RandomNumberGenerator) -> [Float] {
        var p = [Float](repeating: 0, count: parameterCount)
        for l in 0..<layerCount {
            let w = Tensor(glorot: [sizes[l], sizes[l + 1]], rng: &rng)
            let o = weightOffset(l)
            for i in 0..<w.count { p[o + i] = w.scalars[i] }
        }
        return p
    }

    /// Splits a flat vector into named tensors for the model file.
    public func tensors(_ parameters: [Float]) -> [(name: String, tensor: Tensor)] {
        precondition(parameters.count == parameterCount)
        var out: [(String, Tensor)] = []
        for l in 0..<layerCount {
            let wo = weightOffset(l), bo = biasOffset(l), n = sizes[l + 1]
            out.append(("W\(l)", Tensor(shape: [sizes[l], n], scalars: Array(parameters[wo..<bo]))))
            out.append(("b\(l)", Tensor(shape: [n], scalars: Array(parameters[bo..<(bo + n)]))))
        }
        return out
    }
}

/// Scratch buffers for forward/backward passes of one architecture at a maximum batch size.
/// Reused across steps so training allocates nothing per step.
public struct MLPWorkspace: Sendable {
    public let architecture: MLPArchitecture
    public let maxBatch: Int
    /// Outputs of layers 1...L, each [maxBatch, sizes[l]], one after the other.
    var activations: [Float]
    /// Gradient w.r.t. the same outputs (pre-activation), same layout.
    var deltas: [Float]
    /// Offset of layer l's output (l >= 1) in `activations`/`deltas`.
    let offsets: [Int]

    public init(_ architecture: MLPArchitecture, maxBatch: Int) {
        self.architecture = architecture
        self.maxBatch = maxBatch
        var offs = [0, 0]
        for l in 1..<architecture.sizes.count { offs.append(offs[l] + architecture.sizes[l] * maxBatch) }
        offsets = offs
        activations = [Float](repeating: 0, count: offs.last!)
        deltas = [Float](repeating: 0, count: offs.last!)
    }
}

public enum Loss {
    /// In-place numerically stable softmax.
    public static func softmaxInPlace(_ row: UnsafeMutableBufferPointer<Float>) {
        var mx = -Float.infinity
        for v in row { mx = max(mx, v) }
        var s: Float = 0
        for i in row.indices { let e = Float.exp(row[i] - mx); row[i] = e; s += e }
        let inv = 1 / s
        for i in row.indices { row[i] *= inv }
    }
}

extension MLPArchitecture {
    /// Forward pass for `batch` rows of `x` ([batch, inputs]); leaves softmax probabilities
    /// ([batch, classes]) in the workspace and calls `body` with them.
    public func forward<R>(
        parameters: UnsafeBufferPointer<Float>, x: UnsafePointer<Float>, batch: Int,
        workspace ws: inout MLPWorkspace, _ body: (UnsafeBufferPointer<Float>) -> R
    ) -> R {
        precondition(batch <= ws.maxBatch && parameters.count == parameterCount)
        let p = parameters.baseAddress!
        let offsets = ws.offsets
        return ws.activations.withUnsafeMutableBufferPointer { a in
            let base = a.baseAddress!
            for l in 0..<layerCount {
                let fanIn = sizes[l], fanOut = sizes[l + 1]
                let input: UnsafePointer<Float> = l == 0 ? x : UnsafePointer(base + offsets[l])
                let o = base + offsets[l + 1]
                let b = p + biasOffset(l)
                for r in 0..<batch { (o + r * fanOut).update(from: b, count: fanOut) }
                Kernels.gemm(m: batch, n: fanOut, k: fanIn, a: input, b: p + weightOffset(l), beta: 1, c: o)
                if l == layerCount - 1 {
                    for r in 0..<batch { Loss.softmaxInPlace(UnsafeMutableBufferPointer(start: o + r * fanOut, count: fanOut)) }
                } else {
                    switch activation {
                    case .relu: for i in 0..<(batch * fanOut) where o[i] < 0 { o[i] = 0 }
                    case .tanh: for i in 0..<(batch * fanOut) { o[i] = Float.tanh(o[i]) }
                    }
                }
            }
            return body(UnsafeBufferPointer(start: base + offsets[layerCount], count: batch * classes))
        }
    }

    /// Mean softmax cross-entropy over the batch and its gradient (written into `gradient`, which
    /// must hold `parameterCount` floats; it is overwritten, not accumulated).
    @discardableResult
    public func lossAndGradient(
        parameters: UnsafeBufferPointer<Float>, x: UnsafePointer<Float>, labels: UnsafePointer<Int32>, batch: Int,
        gradient: UnsafeMutableBufferPointer<Float>, workspace ws: inout MLPWorkspace
    ) -> Float {
        precondition(gradient.count == parameterCount)
        forward(parameters: parameters, x: x, batch: batch, workspace: &ws) { _ in () }
        let p = parameters.baseAddress!, g = gradient.baseAddress!
        let offsets = ws.offsets
        let C = classes
        let invB = 1 / Float(batch)
        var loss: Float = 0
        ws.activations.withUnsafeBufferPointer { a in
            ws.deltas.withUnsafeMutableBufferPointer { d in
                let abase = a.baseAddress!, dbase = d.baseAddress!
                // dL/dz at the output: (softmax − onehot) / B.
                let probs = abase + offsets[layerCount], dOut = dbase + offsets[layerCount]
                for r in 0..<batch {
                    let y = Int(labels[r])
                    loss -= Float.log(max(probs[r * C + y], 1e-12))
                    for c in 0..<C { dOut[r * C + c] = probs[r * C + c] * invB }
                    dOut[r * C + y] -= invB
                }
                var l = layerCount - 1
                while l >= 0 {
                    let fanIn = sizes[l], fanOut = sizes[l + 1]
                    let input: UnsafePointer<Float> = l == 0 ? x : abase + offsets[l]
                    let dz = dbase + offsets[l + 1]
                    // dW = inputᵀ · dz ; db = Σ_rows dz
                    Kernels.gemm(transA: true, m: fanIn, n: fanOut, k: batch, a: input, b: dz, c: g + weightOffset(l))
                    let gb = g + biasOffset(l)
                    gb.update(repeating: 0, count: fanOut)
                    for r in 0..<batch { for c in 0..<fanOut { gb[c] += dz[r * fanOut + c] } }
                    if l > 0 {
                        // d(input) = dz · Wᵀ, then through the activation of layer l's output.
                        let dIn = dbase + offsets[l]
                        Kernels.gemm(transB: true, m: batch, n: fanIn, k: fanOut, a: dz, b: p + weightOffset(l), c: dIn)
                        let act = abase + offsets[l]
                        switch activation {
                        case .relu: for i in 0..<(batch * fanIn) where act[i] <= 0 { dIn[i] = 0 }
                        case .tanh: for i in 0..<(batch * fanIn) { dIn[i] *= 1 - act[i] * act[i] }
                        }
                    }
                    l -= 1
                }
            }
        }
        return loss * invB
    }

    /// Predicted classes for `count` rows of `x`, in chunks of the workspace's batch size.
    public func predict(parameters: [Float], x: [Float], count: Int, workspace ws: inout MLPWorkspace) -> [Int] {
        var out = [Int](repeating: 0, count: count)
        let C = classes, d = inputs
        parameters.withUnsafeBufferPointer { p in
            x.withUnsafeBufferPointer { xb in
                var start = 0
                while start < count {
                    let b = min(ws.maxBatch, count - start)
                    forward(parameters: p, x: xb.baseAddress! + start * d, batch: b, workspace: &ws) { probs in
                        for r in 0..<b {
                            var best = 0
                            for c in 1..<C where probs[r * C + c] > probs[r * C + best] { best = c }
                            out[start + r] = best
                        }
                    }
                    start += b
                }
            }
        }
        return out
    }

    /// Fraction of rows of `data` classified correctly.
    public func accuracy(parameters: [Float], on data: Dataset, workspace ws: inout MLPWorkspace) -> Double {
        guard data.count > 0 else { return 0 }
        let pred = predict(parameters: parameters, x: data.features, count: data.count, workspace: &ws)
        var correct = 0
        for i in 0..<data.count where pred[i] == Int(data.labels[i]) { correct += 1 }
        return Double(correct) / Double(data.count)
    }
}
