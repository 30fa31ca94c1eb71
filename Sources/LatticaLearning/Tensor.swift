
/// A dense float32 tensor, row-major. The model file format (ModelFile) stores a list of these.
public struct Tensor: Hashable, Sendable, CustomStringConvertible {
    public var shape: [Int]
    public var scalars: [Float]

    public init(shape: [Int], scalars: [Float]) {
        precondition(shape.reduce(1, *) == scalars.count, "shape \(shape) does not hold \(scalars.count) scalars")
        self.shape = shape
        self.scalars = scalars
    }

    public init(zeros shape: [Int]) { self.init(shape: shape, scalars: [Float](repeating: 0, count: shape.reduce(1, *))) }

    /// Glorot-uniform initialisation for a weight matrix of shape [fanIn, fanOut], from a seeded generator.
    public init(glorot shape: [Int], rng: inout some RandomNumberGenerator) {
        precondition(shape.count == 2)
        let limit = (6.0 / Double(shape[0] + shape[1])).squareRoot()
        let values = (0..<(shape[0] * shape[1])).map { _ in Float(Double.random(in: -limit..<limit, using: &rng)) }
        self.init(shape: shape, scalars: values)
    }

    public var count: Int { scalars.count }
    public var rank: Int { shape.count }
    public var description: String { "Tensor\(shape)" }

    public subscript(row: Int, column: Int) -> Float {
        get { scalars[row * shape[1] + column] }
        set { scalars[row * shape[1] + column] = newValue }
    }

    /// Matrix product (BLAS sgemm): [m,k] × [k,n] → [m,n].
    public func matmul(_ other: Tensor, transposeSelf: Bool = false, transposeOther: Bool = false) -> Tensor {
        precondition(rank == 2 && other.rank == 2)
        let m = transposeSelf ? shape[1] : shape[0], k = transposeSelf ? shape[0] : shape[1]
        let k2 = transposeOther ? other.shape[1] : other.shape[0], n = transposeOther ? other.shape[0] : other.shape[1]
        precondition(k == k2, "inner dimensions differ: \(shape) × \(other.shape)")
        var out = Tensor(zeros: [m, n])
        scalars.withUnsafeBufferPointer { a in
            other.scalars.withUnsafeBufferPointer { b in
                out.scalars.withUnsafeMutableBufferPointer { c in
                    Kernels.gemm(transA: transposeSelf, transB: transposeOther, m: m, n: n, k: k,
                                 a: a.baseAddress!, b: b.baseAddress!, c: c.baseAddress!)
                }
            }
        }
        return out
    }

    public static func + (a: Tensor, b: Tensor) -> Tensor {
        precondition(a.shape == b.shape); return Tensor(shape: a.shape, scalars: a.scalars + b.scalars)
    }

    public static func - (a: Tensor, b: Tensor) -> Tensor {
        precondition(a.shape == b.shape); return Tensor(shape: a.shape, scalars: a.scalars - b.scalars)
    }

    /// Adds a row vector [n] to every row of a [m,n] matrix.
    public func addingRow(_ bias: Tensor) -> Tensor {
        precondition(rank == 2 && bias.count == shape[1])
        var out = self
        let n = shape[1]
        for r in 0..<shape[0] { for c in 0..<n { out.scalars[r * n + c] += bias.scalars[c] } }
        return out
    }

    public func relu() -> Tensor { Tensor(shape: shape, scalars: scalars.map { max(0, $0) }) }

    /// Row-wise softmax of a [m,n] matrix.
    public func softmaxRows() -> Tensor {
        precondition(rank == 2)
        var out = self
        out.scalars.withUnsafeMutableBufferPointer { p in
            for r in 0..<shape[0] { Loss.softmaxInPlace(UnsafeMutableBufferPointer(rebasing: p[(r * shape[1])..<((r + 1) * shape[1])])) }
        }
        return out
    }

    public var allFinite: Bool { scalars.allFinite }
}
