import LatticaCore
import LatticaLearning
import Testing

@Suite struct AveragingWireTests {
    init() { _ = BLASSetup.installed }
    @Test func pullAndReply_roundTrip_byteForByte() throws {
        let p = Averaging.Wire.Pull(run: "12D3KooWabc.digits", step: 300)
        let b = Averaging.Wire.encode(p)
        #expect(b.prefix(2) == [1, 18] && b.suffix(2) == [0xac, 0x02])  // version, run length … uvarint(300)
        #expect(try Averaging.Wire.decodePull(b) == p)
        let r = Averaging.Wire.Reply(status: .model, step: 7, parameters: [1, -2.5, .pi])
        let rb = Averaging.Wire.encode(r)
        #expect(rb.prefix(4) == [1, 0, 7, 3] && rb.count == 4 + 12)
        #expect(try Averaging.Wire.decodeReply(rb, expectedCount: 3) == r)
        let none = Averaging.Wire.encode(Averaging.Wire.Reply(status: .noModel, step: 0, parameters: []))
        #expect(try Averaging.Wire.decodeReply(none, expectedCount: 3).status == .noModel)
    }

    @Test func replies_ofAnotherShape_areRefused_beforeAnyAllocation() {
        let rb = Averaging.Wire.encode(Averaging.Wire.Reply(status: .model, step: 1, parameters: [Float](repeating: 1, count: 10)))
        #expect(throws: Averaging.Wire.DecodeError.wrongCount(got: 10, expected: 11)) { try Averaging.Wire.decodeReply(rb, expectedCount: 11) }
        // A count that claims 2^62 floats: refused on the count, not by trying to read them.
        var huge: [UInt8] = [1, 0, 1]
        huge += Varint.encoded(UInt64(1) << 62)
        #expect(throws: Averaging.Wire.DecodeError.self) { try Averaging.Wire.decodeReply(huge, expectedCount: 10) }
    }

    /// Every decoder of network bytes is fuzzed: random and mutated inputs never trap, and what
    /// decodes re-encodes to the same bytes.
    @Test func decoders_neverTrap_onHostileBytes_andRoundTripWhatTheyAccept() {
        let seed: UInt64 = 0xA76_F022
        var rng = SeededRandom(seed: seed)
        var accepted = 0
        for i in 0..<20_000 {
            var b: [UInt8]
            if i % 2 == 0 {
                b = Averaging.Wire.encode(Averaging.Wire.Reply(status: .model, step: Int(rng.next() % 100), parameters: [1, 2, 3, 4]))
            } else {
                b = Averaging.Wire.encode(Averaging.Wire.Pull(run: String(repeating: "r", count: Int(rng.next() % 300)), step: Int(rng.next() % 1000)))
            }
            switch rng.next() % 4 {
            case 0: b = (0..<Int(rng.next() % 24)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            case 1: if !b.isEmpty { b[Int(rng.next() % UInt64(b.count))] ^= UInt8(truncatingIfNeeded: rng.next() | 1) }
            case 2: b = Array(b.prefix(Int(rng.next() % UInt64(b.count + 1))))
            default: b += [UInt8(truncatingIfNeeded: rng.next())]
            }
            if let r = try? Averaging.Wire.decodeReply(b, expectedCount: 4) {
                accepted += 1
                #expect(Averaging.Wire.encode(r) == b, "seed \(seed), case \(i)")
            }
            if let p = try? Averaging.Wire.decodePull(b) {
                accepted += 1
                #expect(Averaging.Wire.encode(p) == b, "seed \(seed), case \(i)")
            }
        }
        #expect(accepted > 0, "seed \(seed)")
    }
}
