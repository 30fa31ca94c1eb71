extension Aggregation {
    /// Coordinate-wise median (mean of the two middle values for even k).
    public static func median(_ inputs: [UnsafeBufferPointer<Float>]) -> [Float] {
        let k = inputs.count
        return orderStatistic(inputs) { sorted in
            k % 2 == 1 ? sorted[k / 2] : (sorted[k / 2 - 1] + sorted[k / 2]) * 0.5
        }
    }

    /// Coordinate-wise trimmed mean: drops the `trim` smallest and largest values of each coordinate.
    public static func trimmedMean(_ inputs: [UnsafeBufferPointer<Float>], trim: Int) -> [Float] {
        let k = inputs.count
        let b = max(0, min(trim, (k - 1) / 2))
        let inv = SIMD8<Float>(repeating: 1 / Float(k - 2 * b))
        return orderStatistic(inputs) { sorted in
            var s = SIMD8<Float>()
            for i in b..<(k - b) { s += sorted[i] }
            return s * inv
        }
    }

    /// Sorts every coordinate's k values, eight coordinates at a time in SIMD lanes (odd-even
    /// transposition network: k rounds of lane-wise min/max), and reduces them with `reduce`.
    static func orderStatistic(
        _ inputs: [UnsafeBufferPointer<Float>], _ reduce: (UnsafeMutablePointer<SIMD8<Float>>) -> SIMD8<Float>
    ) -> [Float] {
        let n = check(inputs), k = inputs.count
        let ptrs = inputs.map { $0.baseAddress! }
        let lanes = UnsafeMutablePointer<SIMD8<Float>>.allocate(capacity: k)
        defer { lanes.deallocate() }
        func sortAndReduce() -> SIMD8<Float> {
            if k == 8 {
                // Batcher's optimal 19-comparator network for 8 inputs.
                @inline(__always) func cx(_ i: Int, _ j: Int) {
                    let a = lanes[i], b = lanes[j]
                    lanes[i] = pointwiseMin(a, b); lanes[j] = pointwiseMax(a, b)
                }
                cx(0, 2); cx(1, 3); cx(4, 6); cx(5, 7)
                cx(0, 4); cx(1, 5); cx(2, 6); cx(3, 7)
                cx(0, 1); cx(2, 3); cx(4, 5); cx(6, 7)
                cx(2, 4); cx(3, 5)
                cx(1, 4); cx(3, 6)
                cx(1, 2); cx(3, 4); cx(5, 6)
            } else {
                for round in 0..<k {
                    var i = round % 2
                    while i + 1 < k {
                        let a = lanes[i], b = lanes[i + 1]
                        lanes[i] = pointwiseMin(a, b); lanes[i + 1] = pointwiseMax(a, b)
                        i += 2
                    }
                }
            }
            return reduce(lanes)
        }
        return [Float](unsafeUninitializedCapacity: n) { out, initialized in
            let o = out.baseAddress!
            var t = 0
            while t + 8 <= n {
                for i in 0..<k { lanes[i] = UnsafeRawPointer(ptrs[i] + t).loadUnaligned(as: SIMD8<Float>.self) }
                UnsafeMutableRawPointer(o + t).storeBytes(of: sortAndReduce(), as: SIMD8<Float>.self)
                t += 8
            }
            if t < n {
                let rest = n - t
                for i in 0..<k {
                    var v = SIMD8<Float>()
                    for l in 0..<rest { v[l] = ptrs[i][t + l] }
                    lanes[i] = v
                }
                let r = sortAndReduce()
                for l in 0..<rest { o[t + l] = r[l] }
            }
            initialized = n
        }
    }

    // MARK: CenteredClip

    /// CenteredClip: v₀ = coordinate-wise median; v ← v + mean_i min(1, τ/‖x_i − v‖)(x_i − v) for up
    /// to `iterations` steps, stopping when the step norm is ≤ 1e-6. τ defaults to the median
    /// distance of the inputs to the median. Each iteration is one fused pass (update + the next
    /// distances).
    public static func centeredClip(_ inputs: [UnsafeBufferPointer<Float>], tau: Double? = nil, iterations: Int = 20) -> [Float] {
        let n = check(inputs), k = inputs.count
        var v = median(inputs)
        let ptrs = inputs.map { $0.baseAddress! }
        var dist = distances(ptrs, to: v, n: n)
        let sortedD = dist.sorted()
        let tauValue = tau ?? (k % 2 == 1 ? sortedD[k / 2] : 0.5 * (sortedD[k / 2 - 1] + sortedD[k / 2]))
        guard tauValue > 0 else { return v }
        for _ in 0..<iterations {
            let c = dist.map { Float($0 > tauValue ? tauValue / $0 : 1) / Float(k) }
            var newD = [Double](repeating: 0, count: k)
            var stepSq = 0.0
            v.withUnsafeMutableBufferPointer { vb in
                let vp = vb.baseAddress!
                let block = 4096
                var start = 0
                while start < n {
                    let end = min(n, start + block)
                    var stepAcc: Float = 0
                    for t in start..<end {
                        let vt = vp[t]
                        var s: Float = 0
                        for i in 0..<k { s += c[i] * (ptrs[i][t] - vt) }
                        vp[t] = vt + s
                        stepAcc += s * s
                    }
                    stepSq += Double(stepAcc)
                    for i in 0..<k {
                        let xi = ptrs[i]
                        var dacc: Float = 0
                        for t in start..<end { let e = xi[t] - vp[t]; dacc += e * e }
                        newD[i] += Double(dacc)
                    }
                    start = end
                }
            }
            dist = newD.map { $0.squareRoot() }
            if stepSq.squareRoot() <= 1e-6 { break }
        }
        return v
    }

    static func distances(_ ptrs: [UnsafePointer<Float>], to v: [Float], n: Int) -> [Double] {
        v.withUnsafeBufferPointer { vb in
            ptrs.map { xi in
                var s = 0.0
                var start = 0
                while start < n {
                    let end = min(n, start + 4096)
                    var acc: Float = 0
                    for t in start..<end { let e = xi[t] - vb[t]; acc += e * e }
                    s += Double(acc)
                    start = end
                }
                return s.squareRoot()
            }
        }
    }
}
