import Testing
@testable import LatticaCore

@Suite struct ProtobufTests {
    @Test func writer_producesProtobufEncodingGuideBytes() {
        // protobuf.dev encoding guide: Test1{a=150} -> 08 96 01; Test2{b="testing"} -> 12 07 74 65 73 74 69 6e 67;
        // Test3{c=Test1{a=150}} -> 1a 03 08 96 01.
        var t1 = ProtobufWriter(); t1.uint64(1, 150)
        #expect(t1.bytes == hex("089601"))
        var t2 = ProtobufWriter(); t2.string(2, "testing")
        #expect(t2.bytes == hex("120774657374696e67"))
        var t3 = ProtobufWriter(); t3.message(3, t1)
        #expect(t3.bytes == hex("1a03089601"))
        var f = ProtobufWriter(); f.fixed64(1, 0x0102030405060708); f.fixed32(2, 0x0A0B0C0D); f.bool(3, true)
        #expect(f.bytes == hex("090807060504030201" + "150d0c0b0a" + "1801"))
    }

    @Test func reader_roundTripsEveryWireType_inOrder() throws {
        var w = ProtobufWriter()
        w.uint64(1, .max); w.bytes(2, [1, 2, 3]); w.fixed64(3, 42); w.fixed32(4, 7); w.string(536_870_911, "x")
        var r = ProtobufReader(w.bytes[...])
        #expect(try r.next() == .varint(field: 1, value: .max))
        #expect(try r.next() == .bytes(field: 2, value: [1, 2, 3]))
        #expect(try r.next() == .fixed64(field: 3, value: 42))
        #expect(try r.next() == .fixed32(field: 4, value: 7))
        #expect(try r.next()?.field == 536_870_911)
        #expect(try r.next() == nil)
        #expect(r.isAtEnd)
    }

    @Test func reader_acceptsTenByteVarints_forNegativeInt64() throws {
        var r = ProtobufReader(hex("08ffffffffffffffffff01")[...])
        #expect(try r.next() == .varint(field: 1, value: .max))
    }

    @Test func reader_rejectsGroupsFieldZeroAndTruncation() {
        var g = ProtobufReader(hex("0b")[...])  // field 1, wire type 3
        #expect(throws: ProtobufError.badWireType(3)) { try g.next() }
        var e = ProtobufReader(hex("0c")[...])
        #expect(throws: ProtobufError.badWireType(4)) { try e.next() }
        var z = ProtobufReader(hex("0001")[...])
        #expect(throws: ProtobufError.badFieldNumber) { try z.next() }
        var big = ProtobufReader(hex("80808080100801")[...])  // field 2^29 (tag 2^32)
        #expect(throws: ProtobufError.badFieldNumber) { try big.next() }
        var t = ProtobufReader(hex("0a05010203")[...])
        #expect(throws: ProtobufError.truncated) { try t.next() }
        var huge = ProtobufReader(hex("0affffffffffffffff7f")[...])
        #expect(throws: ProtobufError.truncated) { try huge.next() }
        var f = ProtobufReader(hex("0901020304")[...])
        #expect(throws: ProtobufError.truncated) { try f.next() }
        var o = ProtobufReader(hex("08ffffffffffffffffff02")[...])
        #expect(throws: ProtobufError.varint(.overflow)) { try o.next() }
    }

    @Test func reader_slicesKeepOriginalIndices() throws {
        let buffer = hex("ffff" + "0a020102")[...]
        var r = ProtobufReader(buffer.dropFirst(2))
        guard case .bytes(_, let v)? = try r.next() else { Issue.record("expected bytes"); return }
        #expect(Array(v) == [1, 2])
        #expect(v.startIndex == 4)
    }

    @Test func fuzz_readerNeverTraps_andBoundsEveryValueByTheInput() {
        var rng = SeededRandom(seed: 0xBEEF)
        var w = ProtobufWriter()
        w.uint64(1, 300); w.bytes(2, rng.bytes(40)); w.fixed32(3, 9); w.fixed64(4, 9); w.string(5, "hello")
        let valid = w.bytes
        var fieldsSeen = 0
        for i in 0..<40_000 {
            let input: [UInt8]
            switch i % 3 {
            case 0: input = rng.bytes(Int(rng.next() % 64))
            case 1: input = rng.mutate(valid)
            default: input = rng.truncate(valid)
            }
            var r = ProtobufReader(input[...])
            var steps = 0
            while steps <= input.count, let field = try? r.next() {
                steps += 1
                fieldsSeen += 1
                if case .bytes(_, let v) = field { #expect(v.count <= input.count) }
            }
            #expect(steps <= input.count)
        }
        #expect(fieldsSeen > 10_000)
    }
}

@Suite struct ProtobufFieldAccessorTests {
    @Test func accessors_returnValuesOnlyForTheMatchingWireType() throws {
        var w = ProtobufWriter()
        w.uint64(1, 7); w.string(2, "héllo"); w.bytes(3, [0xff])
        var r = ProtobufReader(w.bytes)
        let a = try #require(try r.next()), b = try #require(try r.next()), c = try #require(try r.next())
        #expect(a.varintValue == 7 && a.bytesValue == nil && a.stringValue == nil)
        #expect(b.stringValue == "héllo" && b.varintValue == nil)
        #expect(c.bytesValue == [0xff] && c.stringValue == nil)
    }
}
