import Testing
@testable import LatticaCore

@Suite struct SeededRandomTests {
    @Test func sameSeed_givesSameStream() {
        var a = SeededRandom(seed: 42), b = SeededRandom(seed: 42), c = SeededRandom(seed: 43)
        let xa = (0..<100).map { _ in a.next() }
        #expect(xa == (0..<100).map { _ in b.next() })
        #expect(xa != (0..<100).map { _ in c.next() })
    }

    @Test func gaussian_hasUnitMomentsWithinTolerance() {
        var r = SeededRandom(seed: 7)
        let n = 200_000
        var s = 0.0, s2 = 0.0
        for _ in 0..<n { let g = r.nextGaussian(); s += g; s2 += g * g }
        let mean = s / Double(n), variance = s2 / Double(n) - mean * mean
        #expect(abs(mean) < 0.01)
        #expect(abs(variance - 1) < 0.02)
    }

    @Test func instant_arithmeticRoundTrips() {
        let t = Instant(nanoseconds: 5_000)
        #expect((t + .microseconds(3)) - t == .microseconds(3))
        #expect((t + .seconds(2)).seconds == 2.000005)
    }
}
