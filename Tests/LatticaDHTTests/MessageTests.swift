import LatticaCore
import Testing
@testable import LatticaDHT

@Suite struct MessageTests {
    let peer: PeerId = { var r = SeededRandom(seed: 21); return KadSim.makePeer(&r) }()
    // /ip4/127.0.0.1/tcp/4001
    let addr: [UInt8] = [0x04, 127, 0, 0, 1, 0x06, 0x0F, 0xA1]

    @Test func findNodeResponse_encodesByteForByteAsTheSpecProtobuf() throws {
        let m = DHT.Message(type: .findNode, key: [0x01, 0x02], closerPeers: [DHT.Peer(id: peer, addrs: [addr], connection: .connected)])
        let id = peer.multihash
        #expect(id.count == 38)
        let peerBody: [UInt8] = [0x0A, UInt8(id.count)] + id + [0x12, UInt8(addr.count)] + addr + [0x18, 0x01]
        let expected: [UInt8] = [0x08, 0x04, 0x12, 0x02, 0x01, 0x02, 0x42, UInt8(peerBody.count)] + peerBody
        #expect(m.encoded() == expected)
        #expect(m.framed() == [UInt8(expected.count)] + expected)
        #expect(try DHT.Message.decode(expected[...]).message == m)
    }

    @Test func putValue_omitsTheDefaultType_andNestsTheRecord() {
        let m = DHT.Message(type: .putValue, key: [0xAA], record: DHT.Record(key: [0xAA], value: [1, 2, 3]))
        let rec: [UInt8] = [0x0A, 0x01, 0xAA, 0x12, 0x03, 1, 2, 3]
        #expect(m.encoded() == [0x12, 0x01, 0xAA, 0x1A, UInt8(rec.count)] + rec)
    }

    @Test func decode_acceptsRustExtensionsUnknownFieldsAndNegativeClusterLevel() throws {
        // GET_VALUE response with record{key, value, timeReceived, publisher=666, ttl=777},
        // an unknown field 99 (varint), and clusterLevelRaw = -1 (10-byte varint).
        let rec: [UInt8] = [0x0A, 0x01, 0x6B, 0x12, 0x01, 0x76, 0x2A, 0x01, 0x54, 0xD2, 0x29, 0x01, 0x50, 0xC8, 0x30, 0x3C]
        var bytes: [UInt8] = [0x08, 0x01, 0x1A, UInt8(rec.count)] + rec
        bytes += [0x98, 0x06, 0x07]  // field 99, varint 7
        bytes += [0x50, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]
        let m = try DHT.Message.decode(bytes[...]).message
        #expect(m.type == .getValue)
        #expect(m.record == DHT.Record(key: [0x6B], value: [0x76], timeReceived: "T", publisher: [0x50], ttl: 60))
    }

    @Test func decode_rejectsOversizedMessages_andTooManyPeers_andUnknownTypes() {
        var limits = DHT.DecodeLimits()
        limits.maxMessageBytes = 100
        #expect(throws: DHT.DecodeError.tooLarge(101)) { try DHT.Message.decode([UInt8](repeating: 0, count: 101)[...], limits: limits) }
        let many = DHT.Message(type: .findNode, closerPeers: Array(repeating: DHT.Peer(id: peer), count: 41))
        #expect(throws: DHT.DecodeError.tooManyPeers(41)) { try DHT.Message.decode(many.encoded()[...]) }
        #expect(throws: DHT.DecodeError.unknownMessageType(6)) { try DHT.Message.decode([0x08, 0x06][...]) }
    }

    @Test func decode_dropsPeersWithInvalidIds_andCountsThem() throws {
        var w = ProtobufWriter()
        w.uint64(1, 4)
        var bad = ProtobufWriter(); bad.bytes(1, [0x99, 0x01, 0x00])
        w.message(8, bad)
        var good = ProtobufWriter(); good.bytes(1, peer.multihash)
        w.message(8, good)
        let d = try DHT.Message.decode(w.bytes[...])
        #expect(d.droppedPeers == 1)
        #expect(d.message.closerPeers.map(\.id) == [peer])
    }

    @Test func decoder_neverTraps_onRandomMutatedAndTruncatedInput() {
        var rng = SeededRandom(seed: 22)
        let samples: [DHT.Message] = [
            DHT.Message(type: .findNode, key: peer.multihash, closerPeers: [DHT.Peer(id: peer, addrs: [addr])]),
            DHT.Message(type: .getValue, key: [1, 2, 3], record: DHT.Record(key: [1, 2, 3], value: Array(repeating: 7, count: 40), ttl: 5)),
            DHT.Message(type: .getProviders, key: [5], closerPeers: [DHT.Peer(id: peer)], providerPeers: [DHT.Peer(id: peer, addrs: [addr, addr])]),
        ]
        var decodedOK = 0
        for i in 0..<6000 {
            var bytes: [UInt8]
            switch i % 3 {
            case 0:
                bytes = (0..<Int(rng.next() % 300)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            case 1:
                bytes = samples[i % samples.count].encoded()
                for _ in 0..<(1 + Int(rng.next() % 4)) where !bytes.isEmpty {
                    bytes[Int(rng.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: rng.next())
                }
            default:
                let full = samples[i % samples.count].encoded()
                bytes = Array(full.prefix(Int(rng.next() % UInt64(full.count))))
            }
            if let d = try? DHT.Message.decode(bytes[...]) {
                decodedOK += 1
                // Whatever decodes re-encodes to something that decodes to the same message.
                #expect((try? DHT.Message.decode(d.message.encoded()[...]))?.message == d.message)
                #expect(d.message.closerPeers.count + d.message.providerPeers.count <= 40)
            }
        }
        #expect(decodedOK > 0)
    }

    @Test func frameDecoder_splitsFramesFedInPieces_andRefusesOversizedPrefixes() {
        let a = DHT.Message(type: .ping).framed()
        let b = DHT.Message(type: .findNode, key: peer.multihash).framed()
        var rng = SeededRandom(seed: 23)
        for _ in 0..<200 {
            var dec = DHT.FrameDecoder(maxFrameBytes: 1024)
            let stream = a + b + a
            var frames: [[UInt8]] = []
            var i = 0
            while i < stream.count {
                let n = 1 + Int(rng.next() % 7)
                dec.append(stream[i..<min(stream.count, i + n)])
                i += n
                while case .frame(let f) = dec.next() { frames.append(f) }
            }
            #expect(frames == [Array(a.dropFirst()), Array(b.dropFirst()), Array(a.dropFirst())])
        }
        var dec = DHT.FrameDecoder(maxFrameBytes: 16 * 1024)
        dec.append(Varint.encoded(16 * 1024 + 1))
        #expect(dec.next() == .tooLarge(16 * 1024 + 1))
        var bad = DHT.FrameDecoder()
        bad.append([0x80, 0x00])  // non-minimal varint
        #expect(bad.next() == .badLengthPrefix)
    }
}
