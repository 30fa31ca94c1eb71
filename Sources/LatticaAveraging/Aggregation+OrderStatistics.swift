extension Aggregation {
    /// Coordinate-wise median (mean of the two middle values for even k).
    public static func median(_ inputs: [UnsafeBufferPointer<Float>]) -> [Float] {
        let k = inputs.count
        if k == 8 { return median8(inputs) }
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

    /// k = 8: Batcher's 19-comparator network on SIMD lanes, unrolled in registers.
    static func median8(_ inputs: [UnsafeBufferPointer<Float>]) -> [Float] {
        let n = check(inputs)
        let p0 = inputs[0].baseAddress!, p1 = inputs[1].baseAddress!, p2 = inputs[2].baseAddress!, p3 = inputs[3].baseAddress!
        let p4 = inputs[4].baseAddress!, p5 = inputs[5].baseAddress!, p6 = inputs[6].baseAddress!, p7 = inputs[7].baseAddress!
        @inline(__always) func ld(_ p: UnsafePointer<Float>, _ t: Int) -> SIMD8<Float> { UnsafeRawPointer(p + t).loadUnaligned(as: SIMD8<Float>.self) }
        @inline(__always) func cx(_ a: inout SIMD8<Float>, _ b: inout SIMD8<Float>) {
            let lo = a.replacing(with: b, where: b .< a)
            let hi = b.replacing(with: a, where: b .< a)
            a = lo; b = hi
        }
        return [Float](unsafeUninitializedCapacity: n) { out, initialized in
            let o = out.baseAddress!
            var t = 0
            while t + 8 <= n {
                var a0 = ld(p0, t), a1 = ld(p1, t), a2 = ld(p2, t), a3 = ld(p3, t)
                var a4 = ld(p4, t), a5 = ld(p5, t), a6 = ld(p6, t), a7 = ld(p7, t)
                cx(&a0, &a2); cx(&a1, &a3); cx(&a4, &a6); cx(&a5, &a7)
                cx(&a0, &a4); cx(&a1, &a5); cx(&a2, &a6); cx(&a3, &a7)
                cx(&a0, &a1); cx(&a2, &a3); cx(&a4, &a5); cx(&a6, &a7)
                cx(&a2, &a4); cx(&a3, &a5)
                cx(&a1, &a4); cx(&a3, &a6)
                cx(&a1, &a2); cx(&a3, &a4); cx(&a5, &a6)
                UnsafeMutableRawPointer(o + t).storeBytes(of: (a3 + a4) * 0.5, as: SIMD8<Float>.self)
                t += 8
            }
            for c in t..<n {
                var v = [p0[c], p1[c], p2[c], p3[c], p4[c], p5[c], p6[c], p7[c]]
                v.sort()
                o[c] = (v[3] + v[4]) * 0.5
            }
            initialized = n
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
                    let m = b .< a; lanes[i] = a.replacing(with: b, where: m); lanes[j] = b.replacing(with: a, where: m)
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
                        let m = b .< a; lanes[i] = a.replacing(with: b, where: m); lanes[i + 1] = b.replacing(with: a, where: m)
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
        let acc = UnsafeMutablePointer<SIMD8<Float>>.allocate(capacity: k)
        let coef = UnsafeMutablePointer<Float>.allocate(capacity: k)
        let xs = UnsafeMutablePointer<UnsafePointer<Float>>.allocate(capacity: k)
        defer { acc.deallocate(); coef.deallocate(); xs.deallocate() }
        for i in 0..<k { xs[i] = ptrs[i] }
        for _ in 0..<iterations {
            for i in 0..<k { coef[i] = Float(dist[i] > tauValue ? tauValue / dist[i] : 1) / Float(k) }
            var newD = [Double](repeating: 0, count: k)
            var stepSq = 0.0
            v.withUnsafeMutableBufferPointer { vb in
                let vp = vb.baseAddress!
                let block = 4096
                var start = 0
                while start < n {
                    let end = min(n, start + block)
                    for i in 0..<k { acc[i] = SIMD8<Float>() }
                    var stepAcc = SIMD8<Float>()
                    var t = start
                    // One fused pass: v += Σ c_i (x_i − v), then accumulate ‖x_i − v_new‖².
                    while t + 8 <= end {
                        let vt = UnsafeRawPointer(vp + t).loadUnaligned(as: SIMD8<Float>.self)
                        var s = SIMD8<Float>()
                        for i in 0..<k { s += coef[i] * (UnsafeRawPointer(xs[i] + t).loadUnaligned(as: SIMD8<Float>.self) - vt) }
                        let nv = vt + s
                        UnsafeMutableRawPointer(vp + t).storeBytes(of: nv, as: SIMD8<Float>.self)
                        stepAcc += s * s
                        for i in 0..<k {
                            let e = UnsafeRawPointer(xs[i] + t).loadUnaligned(as: SIMD8<Float>.self) - nv
                            acc[i] += e * e
                        }
                        t += 8
                    }
                    var tail: Float = 0
                    while t < end {
                        let vt = vp[t]
                        var s: Float = 0
                        for i in 0..<k { s += coef[i] * (xs[i][t] - vt) }
                        vp[t] = vt + s
                        tail += s * s
                        for i in 0..<k { let e = xs[i][t] - vp[t]; acc[i][0] += e * e }
                        t += 1
                    }
                    stepSq += Double(stepAcc.sum() + tail)
                    for i in 0..<k { newD[i] += Double(acc[i].sum()) }
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
