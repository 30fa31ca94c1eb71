import LatticaCore
import LatticaCrypto
import Testing
@testable import LatticaWire

@Suite struct IdentifyPingTests {
    static let key = try! Ed25519PrivateKey(seed: [UInt8](repeating: 5, count: 32))

    static func sample() throws -> Identify.Message {
        Identify.Message(
            protocolVersion: "ipfs/0.1.0", agentVersion: "lattica-swift/0.1",
            publicKey: PublicKeyProto(type: .ed25519, data: key.publicKey.bytes).encoded(),
            listenAddrs: [try Multiaddr("/ip4/10.0.0.1/tcp/4001"), try Multiaddr("/ip6/::1/tcp/4001")],
            observedAddr: try Multiaddr("/ip4/1.2.3.4/tcp/5555"),
            protocols: [Identify.protocolID, Ping.protocolID, "/ipfs/kad/1.0.0"])
    }

    @Test func identify_roundTrips_andIsUvarintLengthPrefixed() throws {
        let m = try Self.sample()
        let framed = m.framed()
        let body = m.encoded()
        #expect(Array(framed.prefix(Varint.encodedLength(UInt64(body.count)))) == Varint.encoded(UInt64(body.count)))
        #expect(framed.count < Identify.interoperableMessageLength)
        // Field 1 first: tag 0x0A, then the 36-byte PublicKey protobuf.
        #expect(body.prefix(2) == [0x0A, 36])
        var reader = Identify.Reader()
        var result: Result<Identify.Message, Identify.DecodeError>?
        for b in framed { if let r = reader.onBytes([b]) { result = r } }
        let decoded = try #require(try result?.get())
        #expect(decoded == m)
        #expect(decoded.peerId == PeerId(ed25519PublicKey: Self.key.publicKey.bytes))
    }

    @Test func identify_skipsUnparsableAddresses_andEnforcesLimits() throws {
        var w = ProtobufWriter()
        w.bytes(2, [0xFF, 0xFF, 0xFF])
        w.bytes(2, try Multiaddr("/ip4/1.1.1.1/tcp/1").bytes)
        let m = try Identify.Message(decoding: w.bytes[...])
        #expect(m.listenAddrs.count == 1 && m.skippedAddresses == 1)
        var limits = Identify.Limits()
        limits.maxProtocols = 2
        var w2 = ProtobufWriter()
        for i in 0..<3 { w2.string(3, "/p/\(i)") }
        #expect(throws: Identify.DecodeError.tooManyProtocols) { try Identify.Message(decoding: w2.bytes[...], limits: limits) }
        var reader = Identify.Reader()
        let r1 = reader.onBytes(Varint.encoded(1 << 20))
        #expect(r1 == .failure(.tooLong(1 << 20)))
        var r2 = Identify.Reader()
        let r3 = r2.onBytes([5, 1])
        #expect(r3 == nil)
        let r4 = r2.onFinished()
        #expect(r4 == .failure(.truncated))
    }

    @Test func identifyDecoder_neverCrashes_onRandomMutatedAndTruncatedInput() throws {
        var rng = SeededRandom(seed: 77)
        let valid = try Self.sample().framed()
        var outcomes = (ok: 0, err: 0, pending: 0)
        for round in 0..<3000 {
            var input: [UInt8]
            switch round % 3 {
            case 0: input = (0..<Int(rng.next() % 200)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            case 1:
                input = valid
                for _ in 0..<(1 + Int(rng.next() % 5)) { input[Int(rng.next() % UInt64(input.count))] = UInt8.random(in: 0...255, using: &rng) }
            default: input = Array(valid.prefix(Int(rng.next() % UInt64(valid.count))))
            }
            var reader = Identify.Reader()
            var result: Result<Identify.Message, Identify.DecodeError>?
            for chunk in input.chunked(by: 1 + Int(rng.next() % 50)) {
                if let r = reader.onBytes(chunk) { result = r }
                #expect(reader.buffer.count <= input.count)
            }
            if result == nil { result = reader.onFinished() }
            switch result {
            case .success(let m)?: outcomes.ok += 1; #expect(m.listenAddrs.count <= 100 && m.protocols.count <= 200)
            case .failure?: outcomes.err += 1
            case nil: outcomes.pending += 1
            }
        }
        #expect(outcomes.pending == 0)
        #expect(outcomes.err > 1000)
    }

    @Test func ping_echo_measuresRtt_andDetectsMismatch() throws {
        var dialer = Ping.Instance(rng: SeededRandom(seed: 8))
        var responder = Ping.Responder()
        let p0 = dialer.ping(now: .zero)
        let payload = try #require(p0)
        #expect(payload.count == 32)
        let p1 = dialer.ping(now: .zero)
        #expect(p1 == nil)
        let echo = responder.onBytes(payload.prefix(10)) + responder.onBytes(payload.dropFirst(10))
        #expect(echo == payload)
        let ev = dialer.onBytes(echo, now: Instant(nanoseconds: 1_500_000))
        #expect(ev == [.rtt(.microseconds(1500))])
        let p2 = dialer.ping(now: .zero)
        var bad = try #require(p2)
        #expect(bad != payload)
        bad[0] ^= 1
        let ev2 = dialer.onBytes(bad, now: .zero)
        #expect(ev2 == [.mismatch])
    }
}
