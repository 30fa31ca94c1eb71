/// A fast, seedable, reproducible random number generator (xoshiro256**, seeded by SplitMix64).
///
/// Every protocol instance and every simulation owns one of these instead of calling
/// `Int.random`, so a run replays bit for bit from its seed (STYLE.md §1, §4).
public struct SeededRandom: RandomNumberGenerator, Sendable, Hashable {
    @usableFromInline var s0, s1, s2, s3: UInt64

    public init(seed: UInt64) {
        var sm = seed
        func splitmix(_ x: inout UInt64) -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s0 = splitmix(&sm); s1 = splitmix(&sm); s2 = splitmix(&sm); s3 = splitmix(&sm)
        if s0 | s1 | s2 | s3 == 0 { s0 = 1 }
    }

    @inlinable public mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = (s3 << 45) | (s3 >> 19)
        return result
    }

    /// A child generator with an independent stream, derived deterministically (e.g. one per node).
    public mutating func fork() -> SeededRandom { SeededRandom(seed: next()) }

    /// Uniform in [0, 1).
    @inlinable public mutating func nextDouble() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// Standard normal (Box–Muller; pure, no libm needed beyond what the stdlib offers).
    public mutating func nextGaussian() -> Double {
        var u1 = nextDouble()
        while u1 <= .leastNonzeroMagnitude { u1 = nextDouble() }
        let u2 = nextDouble()
        return (-2 * Self.ln(u1)).squareRoot() * Self.cos(2 * .pi * u2)
    }

    // Minimal ln/cos so LatticaCore needs no Foundation/Glibc (sans-I/O rule).
    @usableFromInline static func ln(_ x: Double) -> Double {
        // x = m * 2^e with m in [1,2); ln x = e ln2 + ln m, ln m by atanh series.
        let e = x.exponent
        let m = x.significand
        let y = (m - 1) / (m + 1)
        let y2 = y * y
        var term = y, sum = 0.0, k = 1.0
        for _ in 0..<30 { sum += term / k; term *= y2; k += 2 }
        return Double(e) * 0.693_147_180_559_945_3 + 2 * sum
    }

    @usableFromInline static func cos(_ x: Double) -> Double {
        var r = x.truncatingRemainder(dividingBy: 2 * .pi)
        if r > .pi { r -= 2 * .pi } else if r < -.pi { r += 2 * .pi }
        let r2 = r * r
        var term = 1.0, sum = 1.0
        for i in 1...20 { term *= -r2 / Double((2 * i - 1) * (2 * i)); sum += term }
        return sum
    }
}
