import LatticaCore
import LatticaData
import LatticaLearning
import Testing

/// `/lattica/dadao/1.0.0` (Docs/WIRE.md) and the exchange half of `DADAO.Instance`.
@Suite struct DADAOWireTests {
    @Test func requestAndAnswer_roundTrip_byteForByte() throws {
        let r = DADAO.Wire.Request(run: "12D3KooWabc.dadao", payload: [1, -2.5])
        let b = DADAO.Wire.encode(r)
        // version, run length, run, count, 2 × f64 LE (1.0 = 00 … f0 3f)
        #expect(b.prefix(2) == [1, 17] && b[19] == 2 && b.count == 20 + 16)
        #expect(Array(b[20..<28]) == [0, 0, 0, 0, 0, 0, 0xf0, 0x3f])
        #expect(try DADAO.Wire.decodeRequest(b) == r)
        let a = DADAO.Wire.Answer(status: .payload, payload: [.pi, 0, -1e300])
        let ab = DADAO.Wire.encode(a)
        #expect(ab.prefix(3) == [1, 0, 3] && ab.count == 3 + 24)
        #expect(try DADAO.Wire.decodeAnswer(ab, expectedCount: 3) == a)
        let busy = DADAO.Wire.encode(DADAO.Wire.Answer(status: .notReady))
        #expect(busy == [1, 2, 0])
        #expect(try DADAO.Wire.decodeAnswer(busy, expectedCount: 3).status == .notReady)
    }

    @Test func answers_ofAnotherDimension_andHugeCounts_areRefused_beforeAllocation() {
        let ab = DADAO.Wire.encode(DADAO.Wire.Answer(status: .payload, payload: [1, 2]))
        #expect(throws: DADAO.Wire.DecodeError.wrongCount(got: 2, expected: 3)) { try DADAO.Wire.decodeAnswer(ab, expectedCount: 3) }
        var huge: [UInt8] = [1, 0]
        huge += Varint.encoded(UInt64(1) << 60)
        #expect(throws: DADAO.Wire.DecodeError.tooLong("payload")) { try DADAO.Wire.decodeAnswer(huge, expectedCount: 3) }
        var req: [UInt8] = [1, 1, 0x61]
        req += Varint.encoded(UInt64(1) << 40)
        #expect(throws: DADAO.Wire.DecodeError.tooLong("payload")) { try DADAO.Wire.decodeRequest(req) }
    }

    /// Every decoder of network bytes is fuzzed: random, mutated, truncated and extended inputs
    /// never trap, and what decodes re-encodes to the same bytes.
    @Test func decoders_neverTrap_onHostileBytes_andRoundTripWhatTheyAccept() {
        let seed: UInt64 = 0xDADA_0F22
        print("DADAO wire fuzz seed \(seed)")
        var rng = SeededRandom(seed: seed)
        var accepted = 0
        for i in 0..<20_000 {
            let n = Int(rng.next() % 5)
            let values = (0..<n).map { _ in Double(bitPattern: rng.next()) }
            var b = i % 2 == 0
                ? DADAO.Wire.encode(DADAO.Wire.Answer(status: DADAO.Wire.Status(rawValue: UInt8(rng.next() % 4)) ?? .payload, payload: values))
                : DADAO.Wire.encode(DADAO.Wire.Request(run: String(repeating: "r", count: Int(rng.next() % 140)), payload: values))
            switch rng.next() % 4 {
            case 0: b = (0..<Int(rng.next() % 40)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            case 1: if !b.isEmpty { b[Int(rng.next() % UInt64(b.count))] ^= UInt8(truncatingIfNeeded: rng.next() | 1) }
            case 2: b = Array(b.prefix(Int(rng.next() % UInt64(b.count + 1))))
            default: b += [UInt8(truncatingIfNeeded: rng.next())]
            }
            for dim in 0...4 {
                if let a = try? DADAO.Wire.decodeAnswer(b, expectedCount: dim) {
                    accepted += 1
                    #expect(DADAO.Wire.encode(a) == b, "seed \(seed), case \(i)")
                }
            }
            if let r = try? DADAO.Wire.decodeRequest(b) {
                accepted += 1
                #expect(DADAO.Wire.encode(r) == b, "seed \(seed), case \(i)")
            }
        }
        #expect(accepted > 100, "seed \(seed)")
    }

    func instances() -> (DADAO.Instance, DADAO.Instance) {
        let k = DADAO.Constants(L: 10, mu: 0.1, chi1: 1, lambdaMix: 1.41)
        var a = DADAO.Instance(initial: [1, 2, 3], constants: k), b = DADAO.Instance(initial: [-1, 0, 5], constants: k)
        a.onGradientEvent(now: Instant(nanoseconds: 300_000_000), gradient: [0.5, -1, 2])
        b.onGradientEvent(now: Instant(nanoseconds: 700_000_000), gradient: [1, 1, -3])
        return (a, b)
    }

    /// Σ_i (α̃·Z_i + α·Z̃_i) is what the ODE conserves; an exchange whose two ends are applied at
    /// different times (the answerer at once, the initiator when the answer arrives) conserves it
    /// too, and so do two exchanges between the same pair in flight at once.
    @Test func exchanges_appliedOnBothEnds_conserveWhatTheODEConserves() {
        var (a, b) = instances()
        let k = a.constants
        let alpha = (k.nu / k.L).squareRoot() / 4, alphaTilde = alpha / 2
        func invariant(_ xs: [DADAO.Instance], at t: Instant) -> [Double] {
            var out = [Double](repeating: 0, count: 3)
            for var x in xs { x.catchUp(to: t); for c in 0..<3 { out[c] += alphaTilde * x.state[4][c] + alpha * x.state[5][c] } }
            return out
        }
        let t = { (s: Double) in Instant(nanoseconds: Int64(s * 1e9)) }
        let before = invariant([a, b], at: t(1))
        let ownA = a.beginExchange(now: t(1))
        let ownB2 = b.beginExchange(now: t(1.1))               // b starts its own exchange with a meanwhile
        let ansB = b.answerExchange(peer: ownA, now: t(1.2))!
        let ansA2 = a.answerExchange(peer: ownB2, now: t(1.3))!
        let okA = a.completeExchange(own: ownA, peer: ansB, now: t(1.5))
        let okB = b.completeExchange(own: ownB2, peer: ansA2, now: t(1.6))
        #expect(okA && okB)
        let after = invariant([a, b], at: t(2))
        for c in 0..<3 { #expect(abs(before[c] - after[c]) < 1e-12 * max(1, abs(before[c])), "\(before) \(after)") }
        // A payload of the wrong dimension or with NaN is refused by both sides' calls.
        let short = b.answerExchange(peer: [1, 2], now: t(3))
        let nan = a.completeExchange(own: ownA, peer: [1, .nan, 3], now: t(3))
        #expect(short == nil && !nan)
    }

    /// The X the daemon hands the trainer for its next event is X after catching up to it.
    @Test func predictedX_isExact_forTheNextGradientEvent() {
        var (a, _) = instances()
        let t = Instant(nanoseconds: 5_250_000_000)
        let p = a.predictedX(at: t)
        _ = a.beginExchange(now: Instant(nanoseconds: 2_000_000_000))  // an exchange in between does not move X's prediction
        #expect(zip(a.predictedX(at: t), p).allSatisfy { abs($0 - $1) < 1e-12 })
        a.catchUp(to: t)
        #expect(zip(a.x, p).allSatisfy { abs($0 - $1) < 1e-12 }, "\(a.x) vs \(p)")
    }

    /// The ridge problem the network trainer builds is the simulator's: the same x*, L, μ.
    @Test func ridgeProblem_hasTheTrackCondition_andItsMinimiserHasZeroGradient() throws {
        let p = DADAO.RidgeProblem(data: try DataFiles.fixture("breast_cancer"), nodes: 8, conditionNumber: 1709)
        #expect(abs(p.L / p.mu - 1709) < 1e-6 * 1709)
        var g = [Double](repeating: 0, count: p.dimension)
        for k in 0..<8 { for (i, v) in p.gradient(node: k, at: p.xStar).enumerated() { g[i] += v } }
        #expect(g.map { abs($0) }.max()! < 1e-9)
    }
}
