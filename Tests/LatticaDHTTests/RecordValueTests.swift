import LatticaCore
import LatticaCrypto
import Testing
@testable import LatticaDHT

@Suite struct RecordValueTests {
    // MARK: Lattica value wrapping

    @Test func pickle_matchesCPythonProtocol4_forShortLongAndHugeBytes() {
        // python3 -c 'import pickle;print(pickle.dumps(b"hi", protocol=4))'
        //   b'\x80\x04\x95\x06\x00\x00\x00\x00\x00\x00\x00C\x02hi\x94.'
        #expect(DHT.LatticaValue.pickleBytes(Array("hi".utf8)) ==
                [0x80, 0x04, 0x95, 0x06, 0, 0, 0, 0, 0, 0, 0, 0x43, 0x02, 0x68, 0x69, 0x94, 0x2E])
        // pickle.dumps(b"", protocol=4) == b'\x80\x04\x95\x04\x00\x00\x00\x00\x00\x00\x00C\x00\x94.'
        #expect(DHT.LatticaValue.pickleBytes([]) == [0x80, 0x04, 0x95, 0x04, 0, 0, 0, 0, 0, 0, 0, 0x43, 0x00, 0x94, 0x2E])
        // pickle.dumps(b"x"*300, protocol=4)[:16] == b'\x80\x04\x953\x01\x00\x00\x00\x00\x00\x00B,\x01\x00\x00'
        let p300 = DHT.LatticaValue.pickleBytes(Array(repeating: 0x78, count: 300))
        #expect(Array(p300.prefix(16)) == [0x80, 0x04, 0x95, 0x33, 0x01, 0, 0, 0, 0, 0, 0, 0x42, 0x2C, 0x01, 0, 0])
        #expect(p300.count == 300 + 18)
        // 65535 bytes is still framed; 65536 is not: b'\x80\x04B\x00\x00\x01\x00xxx...'
        let p65535 = DHT.LatticaValue.pickleBytes(Array(repeating: 0x78, count: 65535))
        #expect(Array(p65535.prefix(12)) == [0x80, 0x04, 0x95, 0x06, 0x00, 0x01, 0, 0, 0, 0, 0, 0x42])
        let p65536 = DHT.LatticaValue.pickleBytes(Array(repeating: 0x78, count: 65536))
        #expect(Array(p65536.prefix(7)) == [0x80, 0x04, 0x42, 0x00, 0x00, 0x01, 0x00])
        #expect(Array(p65536.suffix(2)) == [0x94, 0x2E])
        for n in [0, 1, 255, 256, 65535, 65536] {
            let data = (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            #expect(DHT.LatticaValue.unpickleBytes(DHT.LatticaValue.pickleBytes(data)) == data)
        }
    }

    @Test func valueWithTime_isBincode2VarintLengthBytesThenF64LittleEndian() {
        let v = DHT.LatticaValue.encode(value: [0xAB], expirationTime: 1.5)
        let pickle = DHT.LatticaValue.pickleBytes([0xAB])
        #expect(v.first == UInt8(pickle.count))
        #expect(Array(v[1..<(1 + pickle.count)]) == pickle)
        #expect(Array(v.suffix(8)) == [0, 0, 0, 0, 0, 0, 0xF8, 0x3F])  // 1.5 as f64 LE
        let d = DHT.LatticaValue.decode(v)
        #expect(d?.payload == .bytes([0xAB]))
        #expect(d?.expirationTime == 1.5)
        // Long values: fb + u16 length.
        let long = DHT.LatticaValue.encode(value: Array(repeating: 1, count: 300), expirationTime: 0)
        #expect(long[0] == 0xFB && Int(long[1]) | Int(long[2]) << 8 == long.count - 11)
        #expect(DHT.LatticaValue.decode(long)?.payload == .bytes(Array(repeating: 1, count: 300)))
    }

    @Test func decode_readsTheBytesARealLatticaStored() {
        // Dumped from Lattica 1.0.21: store("…", "hello", expiration 1800000000.5), fetched raw (Docs/INTEROP.md).
        let real: [UInt8] = [0x14, 0x80, 0x04, 0x95, 0x09, 0, 0, 0, 0, 0, 0, 0, 0x8C, 0x05, 0x68, 0x65, 0x6C, 0x6C, 0x6F, 0x94, 0x2E,
                             0x00, 0x00, 0x20, 0x80, 0x74, 0xD2, 0xDA, 0x41]
        let d = DHT.LatticaValue.decode(real)
        #expect(d?.payload == .text(Array("hello".utf8)))
        #expect(d?.expirationTime == 1_800_000_000.5)
        #expect(DHT.LatticaValue.decode(Array(real.dropLast())) == nil)
        #expect(DHT.LatticaValue.decode([0xFB, 0x05, 0x00] + Array(real.dropFirst())) == nil, "non-minimal varint")
    }

    @Test func decode_returnsOtherPicklesRaw_neverInterpretingThem() {
        // pickle.dumps({"a": 1}, protocol=4): a dict, not our shape.
        let dict: [UInt8] = [0x80, 0x04, 0x95, 0x0A, 0, 0, 0, 0, 0, 0, 0, 0x7D, 0x94, 0x8C, 0x01, 0x61, 0x94, 0x4B, 0x01, 0x73, 0x2E]
        let wrapped = DHT.LatticaValue.wrap(inner: dict, expirationTime: 2)
        #expect(DHT.LatticaValue.decode(wrapped)?.payload == .raw(dict))
        // os.system-style payload (GLOBAL + REDUCE) stays raw bytes.
        let evil: [UInt8] = [0x80, 0x04] + Array("cos\nsystem\n(S'true'\ntR.".utf8)
        #expect(DHT.LatticaValue.decode(DHT.LatticaValue.wrap(inner: evil, expirationTime: 0))?.payload == .raw(evil))
        // Bad outer wrapping: nil.
        #expect(DHT.LatticaValue.decode([1, 2, 3]) == nil)
        #expect(DHT.LatticaValue.decode(wrapped + [0]) == nil)
    }

    @Test func latticaDecoder_neverTraps_onRandomAndMutatedInput() {
        var rng = SeededRandom(seed: 31)
        let base = DHT.LatticaValue.encode(value: Array(repeating: 9, count: 40), expirationTime: 3)
        for i in 0..<5000 {
            var b: [UInt8] = i % 2 == 0 ? (0..<Int(rng.next() % 80)).map { _ in UInt8(truncatingIfNeeded: rng.next()) } : base
            if i % 2 == 1 { b[Int(rng.next() % UInt64(b.count))] = UInt8(truncatingIfNeeded: rng.next()) }
            if let d = DHT.LatticaValue.decode(b), case .bytes(let x) = d.payload {
                #expect(DHT.LatticaValue.encode(value: x, expirationTime: d.expirationTime) == b)
            }
            _ = DHT.LatticaValue.unpickleBytes(b)
        }
    }

    // MARK: Validators

    static let verify: DHT.VerifyEd25519 = { pk, msg, sig in
        guard let key = try? Ed25519PublicKey(bytes: pk) else { return false }
        return key.isValidSignature(sig, for: msg)
    }

    @Test func signedLatticaRecord_verifies_andNewerSeqWins_andBadSignaturesAreRejected() throws {
        let sk = try Ed25519PrivateKey(seed: Array(repeating: 7, count: 32))
        let key = Array("/lattica/model/abc".utf8)
        let v = DHT.Validator(verify: Self.verify)
        let s1 = DHT.SignedValue.make(key: key, payload: [1], seq: 1, author: sk.publicKey.bytes, sign: { sk.sign($0) })
        let s2 = DHT.SignedValue.make(key: key, payload: [2], seq: 2, author: sk.publicKey.bytes, sign: { sk.sign($0) })
        #expect(v.validate(key: key, value: s1.encoded()) == nil)
        #expect(v.mayReplace(key: key, old: s1.encoded(), new: s2.encoded()) == nil)
        #expect(v.mayReplace(key: key, old: s2.encoded(), new: s1.encoded()) == .notNewer)
        #expect(v.select(key: key, values: [s1.encoded(), s2.encoded()]) == 1)
        #expect(v.select(key: key, values: [s2.encoded(), s1.encoded()]) == 0)
        var forged = s2; forged.payload = [3]
        #expect(v.validate(key: key, value: forged.encoded()) == .invalid("bad signature"))
        // Replayed under another key: the key is signed, so it fails.
        #expect(v.validate(key: Array("/lattica/other".utf8), value: s1.encoded()) == .invalid("bad signature"))
        // Another author cannot take over a stored key even with a higher seq.
        let mallory = try Ed25519PrivateKey(seed: Array(repeating: 8, count: 32))
        let s9 = DHT.SignedValue.make(key: key, payload: [9], seq: 9, author: mallory.publicKey.bytes, sign: { mallory.sign($0) })
        #expect(v.validate(key: key, value: s9.encoded()) == nil)
        #expect(v.mayReplace(key: key, old: s1.encoded(), new: s9.encoded()) != nil)
        // The signed bytes are domain separated and length prefixed.
        let sb = DHT.SignedValue.signingBytes(key: [0xAA], seq: 2, payload: [0xBB])
        #expect(sb == Array("lattica-dht-record:v1".utf8) + [0, 0, 0, 0, 0, 0, 0, 0, 1, 0xAA, 0, 0, 0, 0, 0, 0, 0, 2,
                                                                0, 0, 0, 0, 0, 0, 0, 1, 0xBB])
    }

    @Test func publicKeyRecord_mustHashToTheKeysPeerId() throws {
        let sk = try Ed25519PrivateKey(seed: Array(repeating: 3, count: 32))
        let pk = PublicKeyProto(type: .ed25519, data: sk.publicKey.bytes)
        let peer = PeerId(publicKey: pk)
        let v = DHT.Validator(verify: nil)
        #expect(v.validate(key: Array("/pk/".utf8) + peer.multihash, value: pk.encoded()) == nil)
        let other = PublicKeyProto(type: .ed25519, data: Array(repeating: 1, count: 32))
        #expect(v.validate(key: Array("/pk/".utf8) + peer.multihash, value: other.encoded()) == .keyMismatch)
        #expect(v.validate(key: Array("/pk/".utf8) + peer.multihash, value: [0xFF]) != nil)
    }
}
