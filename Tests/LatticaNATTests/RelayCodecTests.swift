import Foundation
import LatticaCore
import LatticaCrypto
@testable import LatticaNAT
import Testing

/// The seed of a fuzz test: `$LATTICA_TEST_SEED` when set (to replay a failure), else `fallback`.
func testSeed(_ fallback: UInt64) -> UInt64 {
    ProcessInfo.processInfo.environment["LATTICA_TEST_SEED"].flatMap { UInt64($0) } ?? fallback
}

extension SeededRandom {
    mutating func bytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8(truncatingIfNeeded: next()) } }

    /// Flips, inserts, deletes or overwrites a few bytes.
    mutating func mutate(_ input: [UInt8]) -> [UInt8] {
        var b = input
        for _ in 0..<Int(next() % 4 + 1) {
            let i = b.isEmpty ? 0 : Int(next() % UInt64(b.count))
            switch next() % 4 {
            case 0 where !b.isEmpty: b[i] ^= UInt8(truncatingIfNeeded: 1 << (next() % 8))
            case 1: b.insert(UInt8(truncatingIfNeeded: next()), at: min(i, b.count))
            case 2 where !b.isEmpty: b.remove(at: i)
            default: if !b.isEmpty { b[i] = UInt8(truncatingIfNeeded: next()) }
            }
        }
        return b
    }
}

@Suite struct RelayCodecTests {
    static let relay = try! Ed25519PrivateKey(seed: [UInt8](repeating: 1, count: 32))
    static let peer = try! Ed25519PrivateKey(seed: [UInt8](repeating: 2, count: 32))
    static let addr = try! Multiaddr("/ip4/203.0.113.7/tcp/4001/p2p/\(relay.publicKey.peerId)")

    static var samples: [[UInt8]] {
        let p = Relay.Peer(id: peer.publicKey.peerId, addrs: [addr])
        return [
            Relay.HopMessage(kind: .reserve).encoded(),
            Relay.HopMessage(kind: .connect, peer: p).encoded(),
            Relay.HopMessage(kind: .status, reservation: Relay.Reservation(expire: 1_800_000_000, addrs: [addr], voucher: [1, 2, 3]),
                             limit: Relay.Limit(duration: 3600, data: 4 << 30), status: .ok).encoded(),
            Relay.StopMessage(kind: .connect, peer: p, limit: Relay.Limit(duration: 60)).encoded(),
            Relay.StopMessage(kind: .status, status: .connectionFailed).encoded(),
        ]
    }

    @Test func hopMessages_roundTrip_withTheSpecsFieldNumbers() throws {
        let m = Relay.HopMessage(kind: .status, reservation: Relay.Reservation(expire: 42, addrs: [Self.addr]),
                                 limit: Relay.Limit(duration: 120, data: 131_072), status: .ok)
        let bytes = m.encoded()
        #expect(try Relay.HopMessage(decoding: bytes) == m)
        // type = 1 (varint 2: STATUS) first; status = 5 (varint 100) last.
        #expect(Array(bytes.prefix(2)) == [0x08, 0x02])
        #expect(Array(bytes.suffix(2)) == [0x28, 0x64])
        // RESERVE is type 0, which proto3 writers may omit: a message with only that field still parses.
        #expect(try Relay.HopMessage(decoding: [0x08, 0x00]).kind == .reserve)
        #expect(throws: Relay.DecodeError.missingType) { try Relay.HopMessage(decoding: []) }
        #expect(throws: Relay.DecodeError.unknownType(9)) { try Relay.HopMessage(decoding: [0x08, 0x09]) }
        #expect(throws: Relay.DecodeError.unknownStatus(7)) { try Relay.HopMessage(decoding: [0x08, 0x02, 0x28, 0x07]) }
    }

    @Test func stopMessages_roundTrip() throws {
        let m = Relay.StopMessage(kind: .connect, peer: Relay.Peer(id: Self.peer.publicKey.peerId), limit: Relay.Limit(duration: 1, data: 2))
        #expect(try Relay.StopMessage(decoding: m.encoded()) == m)
    }

    @Test func theVoucher_isASignedEnvelopeTheRelaysKeyVerifies() throws {
        let v = Relay.Voucher(relay: Self.relay.publicKey.peerId, peer: Self.peer.publicKey.peerId, expiration: 99)
        let payload = v.payload()
        let signed = Relay.Voucher.signedBytes(payload: payload)
        let sig = Self.relay.sign(signed)
        #expect(Self.relay.publicKey.isValidSignature(sig, for: signed))
        // Domain, then payload type 0x0302 (the raw bytes 03 02, as go-libp2p and py-libp2p write it), then the payload, each length-prefixed.
        #expect(Array(signed.prefix(18)) == [17] + Array("libp2p-relay-rsvp".utf8))
        #expect(Array(signed[18..<21]) == [2, 0x03, 0x02])
        let env = Relay.Voucher.envelope(publicKey: Self.relay.publicKey.protobuf.encoded(), payload: payload, signature: sig)
        var r = ProtobufReader(env)
        var fields: [Int] = []
        while let f = try r.next() { fields.append(f.field) }
        #expect(fields == [1, 2, 3, 5])
    }

    @Test func framedReader_handsBackWhatFollowsTheMessage() throws {
        let msg = Relay.HopMessage(kind: .status, status: .ok).framed()
        let inner: [UInt8] = Array("/multistream/1.0.0\n".utf8)
        var r = FramedReader(maxMessageLength: Relay.maxMessageLength)
        // Split anywhere: the message comes out once, then the rest unchanged.
        for cut in 0...(msg.count + inner.count) {
            var rr = r
            let all = msg + inner
            var got: [UInt8]?
            if let m = try rr.next(all[..<cut]) { got = m }
            if got == nil { got = try rr.next(all[cut...]) } else { _ = try rr.next(all[cut...]) }
            #expect(got == Array(msg.dropFirst(1)), "cut \(cut)")
            #expect(rr.takeRest() == inner, "cut \(cut)")
        }
        #expect(throws: FramedReader.Failure.tooLong(5000)) { try r.next(Varint.encoded(5000)) }
        r = FramedReader(maxMessageLength: 10)
        #expect(throws: FramedReader.Failure.malformedLength) { try r.next([UInt8](repeating: 0xFF, count: 11)) }
    }

    /// Random and mutated input never crashes a decoder; what decodes re-encodes to an equal message.
    @Test func fuzz_relayAndDCUtRDecoders() throws {
        let seed = testSeed(0x5EED_0013)
        var rng = SeededRandom(seed: seed)
        let samples = Self.samples + [DCUtR.Message(kind: .connect, addrs: [Self.addr]).encoded(), DCUtR.Message(kind: .sync).encoded()]
        var decoded = 0
        for i in 0..<20_000 {
            let input = i % 3 == 0 ? rng.bytes(Int(rng.next() % 64)) : rng.mutate(samples[Int(rng.next() % UInt64(samples.count))])
            if let m = try? Relay.HopMessage(decoding: input) {
                decoded += 1
                #expect(try Relay.HopMessage(decoding: m.encoded()) == m, "seed \(seed) input \(input)")
            }
            if let m = try? Relay.StopMessage(decoding: input) {
                #expect(try Relay.StopMessage(decoding: m.encoded()) == m, "seed \(seed) input \(input)")
            }
            if let m = try? DCUtR.Message(decoding: input) {
                #expect(try DCUtR.Message(decoding: m.encoded()) == m, "seed \(seed) input \(input)")
            }
            var r = FramedReader(maxMessageLength: 64)
            _ = try? r.next(input)
        }
        #expect(decoded > 100, "seed \(seed): the mutations should leave many messages valid")
    }

    @Test func dcutr_messagesAndPunchableAddresses() throws {
        let a = try Multiaddr("/ip4/198.51.100.2/tcp/4001")
        let m = DCUtR.Message(kind: .connect, addrs: [a])
        #expect(try DCUtR.Message(decoding: m.encoded()) == m)
        #expect(Array(m.encoded().prefix(2)) == [0x08, 0x64])
        let many = [UInt8](repeating: 0, count: 0) + (0..<33).flatMap { _ in [0x12, UInt8(a.bytes.count)] + a.bytes }
        #expect(throws: DCUtR.DecodeError.tooManyAddresses) { try DCUtR.Message(decoding: [0x08, 0x64] + many) }
        let addrs = try ["/ip4/127.0.0.1/tcp/1", "/ip4/0.0.0.0/tcp/2", "/ip4/10.0.0.1/tcp/3", "/ip4/198.51.100.2/tcp/4001/p2p/\(Self.peer.publicKey.peerId)",
                         "/ip4/198.51.100.2/tcp/0", "/ip4/1.2.3.4/tcp/5/p2p/\(Self.relay.publicKey.peerId)/p2p-circuit"].map { try Multiaddr($0) }
        #expect(DCUtR.punchable(addrs).map(\.description) == ["/ip4/10.0.0.1/tcp/3", "/ip4/198.51.100.2/tcp/4001"])
    }
}

@Suite struct HopStateTests {
    static func peer(_ i: UInt8) -> PeerId { try! Ed25519PrivateKey(seed: [UInt8](repeating: i, count: 32)).publicKey.peerId }

    @Test func reservationsAndCircuits_areBoundedPerIPPeerAndInTotal() {
        var s = Relay.HopSettings()
        s.maxReservations = 3
        s.maxReservationsPerIP = 2
        s.maxCircuits = 2
        s.maxCircuitsPerPeer = 1
        var st = Relay.HopState(settings: s)
        let t0 = Instant.zero + .seconds(100)
        #expect(throws: Never.self) { try st.reserve(Self.peer(1), ip: [10, 0, 0, 1], now: t0).get() }
        #expect(throws: Never.self) { try st.reserve(Self.peer(2), ip: [10, 0, 0, 1], now: t0).get() }
        #expect(st.reserve(Self.peer(3), ip: [10, 0, 0, 1], now: t0) == .failure(.tooManyFromIP))
        #expect(throws: Never.self) { try st.reserve(Self.peer(3), ip: [10, 0, 0, 2], now: t0).get() }
        #expect(st.reserve(Self.peer(4), ip: [10, 0, 0, 3], now: t0) == .failure(.tooManyReservations))
        #expect(st.reserve(Self.peer(1), ip: [10, 0, 0, 1], now: t0 + .seconds(1)) == .failure(.refreshTooSoon))
        #expect(st.reserve(Self.peer(5), ip: nil, now: t0) == .failure(.relayedConnection))
        // Circuits: only to reserved peers, bounded per peer and in total, never over a relayed hop.
        #expect(st.openCircuit(from: Self.peer(9), to: Self.peer(8), relayed: false, now: t0) == .failure(.noReservation))
        #expect(st.openCircuit(from: Self.peer(9), to: Self.peer(1), relayed: true, now: t0) == .failure(.relayedConnection))
        let c1 = try? st.openCircuit(from: Self.peer(9), to: Self.peer(1), relayed: false, now: t0).get()
        #expect(c1 != nil)
        #expect(st.openCircuit(from: Self.peer(9), to: Self.peer(2), relayed: false, now: t0) == .failure(.tooManyCircuitsForPeer))
        #expect(throws: Never.self) { try st.openCircuit(from: Self.peer(7), to: Self.peer(2), relayed: false, now: t0).get() }
        #expect(st.openCircuit(from: Self.peer(6), to: Self.peer(3), relayed: false, now: t0) == .failure(.tooManyCircuits))
        st.closeCircuit(c1!)
        #expect(throws: Never.self) { try st.openCircuit(from: Self.peer(6), to: Self.peer(3), relayed: false, now: t0).get() }
        // Reservations expire, and end with the peer's connection.
        st.disconnected(Self.peer(3))
        #expect(!st.hasReservation(Self.peer(3), now: t0))
        #expect(!st.hasReservation(Self.peer(1), now: t0 + s.reservationTTL))
    }
}
