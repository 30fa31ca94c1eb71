import Testing
@testable import LatticaCore

@Suite struct VarintTests {
    // Vectors from the multiformats unsigned-varint README.
    static let vectors: [(UInt64, String)] = [
        (1, "01"), (127, "7f"), (128, "8001"), (255, "ff01"), (300, "ac02"), (16384, "808001"),
        (0, "00"), ((1 << 63) - 1, "ffffffffffffffff7f"),
    ]

    @Test func encode_matchesSpecVectors() {
        for (value, h) in Self.vectors {
            #expect(Varint.encoded(value) == hex(h))
            #expect(Varint.encodedLength(value) == hex(h).count)
        }
    }

    @Test func decode_matchesSpecVectors_andReportsLength() throws {
        for (value, h) in Self.vectors {
            let r = try #require(try Varint.decode(ArraySlice(hex(h) + [0xAA])))
            #expect(r.value == value)
            #expect(r.length == hex(h).count)
        }
    }

    @Test func decode_rejectsNonMinimalEncodings() {
        for h in ["8000", "ff00", "818000", "808080808080808000"] {
            #expect(throws: VarintError.nonMinimal) { try Varint.decode(ArraySlice(hex(h))) }
        }
    }

    @Test func decode_rejectsTenByteVarints_asOverflow() {
        #expect(throws: VarintError.overflow) { try Varint.decode(ArraySlice(hex("ffffffffffffffffff01"))) }
        #expect(throws: VarintError.overflow) { try Varint.decode(ArraySlice(hex("808080808080808080"))) }
    }

    @Test func decode_returnsNil_whenInputEndsInsideVarint() throws {
        #expect(try Varint.decode([]) == nil)
        #expect(try Varint.decode(ArraySlice(hex("80"))) == nil)
        #expect(try Varint.decode(ArraySlice(hex("ffffffff"))) == nil)
    }

    @Test func decode_worksOnSlicesWithNonZeroStartIndex() throws {
        let buffer = hex("00112233ac02")
        let r = try #require(try Varint.decode(buffer[4...]))
        #expect(r.value == 300 && r.length == 2)
    }

    @Test func roundTrip_holdsForRandomValuesOfEveryBitLength() throws {
        var rng = SeededRandom(seed: 1)
        for bits in 0..<63 {
            for _ in 0..<50 {
                let v = bits == 0 ? 0 : (rng.next() >> UInt64(64 - bits)) | (1 << UInt64(bits - 1))
                let enc = Varint.encoded(v)
                #expect(enc.count == max(1, (bits + 6) / 7))
                let r = try #require(try Varint.decode(ArraySlice(enc)))
                #expect(r.value == v && r.length == enc.count)
            }
        }
    }

    @Test func fuzz_decodeNeverTraps_andOnlyAcceptsCanonicalEncodings() {
        var rng = SeededRandom(seed: 0xF00D)
        var accepted = 0
        for _ in 0..<50_000 {
            let len = Int(rng.next() % 12)
            var bytes = rng.bytes(len)
            if rng.next() % 2 == 0 { for i in bytes.indices where i < len - 1 { bytes[i] |= 0x80 } }
            if let r = try? Varint.decode(ArraySlice(bytes)) {
                accepted += 1
                #expect(r.length <= 9)
                #expect(Varint.encoded(r.value) == Array(bytes.prefix(r.length)))
            }
        }
        #expect(accepted > 1_000)
    }
}

