import LatticaCore
import LatticaCrypto
import Testing
@testable import LatticaWire

/// Two connections back to back over an in-memory byte pipe.
struct ConnectionPair {
    var a: Connection.Instance   // dialer
    var b: Connection.Instance   // listener
    var toA: [[UInt8]] = []
    var toB: [[UInt8]] = []
    var eventsA: [Connection.Directive] = []
    var eventsB: [Connection.Directive] = []
    var dataA: [Connection.StreamID: [UInt8]] = [:]
    var dataB: [Connection.StreamID: [UInt8]] = [:]
    var now = Instant.zero
    /// If set, bytes are re-chunked into pieces of at most this size.
    var chunk = Int.max

    static let keyA = try! Ed25519PrivateKey(seed: [UInt8](repeating: 0xA, count: 32))
    static let keyB = try! Ed25519PrivateKey(seed: [UInt8](repeating: 0xB, count: 32))

    init(protocols: [String] = ["/echo/1.0.0", "/sink/1.0.0"], expected: PeerId? = PeerId(ed25519PublicKey: keyB.publicKey.bytes),
         settings: Connection.Settings? = nil) {
        let s = settings ?? Connection.Settings(protocols: protocols)
        a = Connection.Instance(role: .dialer(expectedPeer: expected), identity: Self.keyA, settings: s, rng: SeededRandom(seed: 1), noiseKeys: testKeys(1))
        b = Connection.Instance(role: .listener, identity: Self.keyB, settings: s, rng: SeededRandom(seed: 2), noiseKeys: testKeys(2))
    }

    mutating func fromA(_ ds: [Connection.Directive]) {
        for d in ds {
            switch d {
            case .send(let bytes): toB.append(bytes)
            case .data(let id, let s):
                dataA[id, default: []] += s
                fromA(a.consumed(stream: id, count: s.count, now: now))
                eventsA.append(d)
            default: eventsA.append(d)
            }
        }
    }

    mutating func fromB(_ ds: [Connection.Directive]) {
        for d in ds {
            switch d {
            case .send(let bytes): toA.append(bytes)
            case .data(let id, let s):
                dataB[id, default: []] += s
                fromB(b.consumed(stream: id, count: s.count, now: now))
                eventsB.append(d)
            default: eventsB.append(d)
            }
        }
    }

    mutating func start() {
        fromA(a.start(now: now))
        fromB(b.start(now: now))
        pump()
    }

    mutating func pump(step: Duration = .microseconds(50), maxRounds: Int = 1_000_000) {
        var rounds = 0
        while (!toA.isEmpty || !toB.isEmpty) && rounds < maxRounds {
            rounds += 1
            now = now + step
            if !toB.isEmpty {
                var m = toB.removeFirst()
                if m.count > chunk { toB.insert(Array(m[chunk...]), at: 0); m = Array(m[..<chunk]) }
                fromB(b.onBytes(m, now: now))
            }
            if !toA.isEmpty {
                var m = toA.removeFirst()
                if m.count > chunk { toA.insert(Array(m[chunk...]), at: 0); m = Array(m[..<chunk]) }
                fromA(a.onBytes(m, now: now))
            }
        }
    }
}

@Suite struct ConnectionTests {
    @Test func twoConnections_negotiateNoiseAndYamux_andAuthenticateEachOther() {
        var p = ConnectionPair()
        p.start()
        #expect(p.eventsA.contains(.established(remotePeer: PeerId(ed25519PublicKey: ConnectionPair.keyB.publicKey.bytes))))
        #expect(p.eventsB.contains(.established(remotePeer: PeerId(ed25519PublicKey: ConnectionPair.keyA.publicKey.bytes))))
        #expect(p.a.isEstablished && p.b.isEstablished)
    }

    @Test func firstBytesOnTheWire_areTheMultistreamHeaderAndNoiseProposal() {
        var p = ConnectionPair()
        let d = p.a.start(now: .zero)
        #expect(d == [.send([0x13] + Array("/multistream/1.0.0\n".utf8) + [0x07] + Array("/noise\n".utf8))])
    }

    @Test func manyConcurrentStreams_exchangeDataInBothDirections_withSmallChunks() throws {
        for chunk in [Int.max, 1000, 7] {
            var p = ConnectionPair()
            p.chunk = chunk
            p.start()
            var rng = SeededRandom(seed: UInt64(chunk % 1000))
            var sent: [Connection.StreamID: [UInt8]] = [:]
            let count = chunk == 7 ? 20 : 200
            for _ in 0..<count {
                let opened = p.a.openStream(protocols: ["/sink/1.0.0"], now: p.now)
                let (id, d) = try #require(opened)
                p.fromA(d)
                let payload = (0..<Int(rng.next() % 3000)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                let w = p.a.write(stream: id, bytes: payload, now: p.now)
                #expect(w.accepted == payload.count)
                p.fromA(w.directives)
                p.fromA(p.a.closeWrite(stream: id, now: p.now))
                sent[id] = payload
            }
            p.pump()
            let opened = p.eventsB.filter { if case .streamOpened(_, "/sink/1.0.0", true) = $0 { true } else { false } }
            #expect(opened.count == count)
            for (id, payload) in sent {
                #expect(p.dataB[id, default: []] == payload, "stream \(id), chunk \(chunk)")
                #expect(p.eventsB.contains(.finished(id)))
                // Answer and close: both sides see the stream closed.
                p.fromB(p.b.write(stream: id, bytes: payload.reversed(), now: p.now).directives)
                p.fromB(p.b.closeWrite(stream: id, now: p.now))
            }
            p.pump()
            for (id, payload) in sent {
                #expect(p.dataA[id, default: []] == payload.reversed())
                #expect(p.eventsA.contains(.streamClosed(id)) && p.eventsB.contains(.streamClosed(id)))
            }
            #expect(p.a.streamCount == 0 && p.b.streamCount == 0)
        }
    }

    @Test func outboundStream_fails_whenThePeerSupportsNoneOfItsProtocols() throws {
        var p = ConnectionPair()
        p.start()
        let opened = p.a.openStream(protocols: ["/nope/1", "/nope/2"], now: p.now)
        let (id, d) = try #require(opened)
        p.fromA(d)
        let early = p.a.write(stream: id, bytes: [1], now: p.now)
        #expect(early.accepted == 0)   // several proposals: no optimistic writes
        p.pump()
        #expect(p.eventsA.contains(.streamFailed(id, .negotiation(.noCommonProtocol(["/nope/1", "/nope/2"])))))
        #expect(p.a.streamCount == 0)
    }

    @Test func inboundPings_areAnsweredInsideTheConnection() throws {
        var p = ConnectionPair()
        p.start()
        let opened = p.a.openStream(protocols: [Ping.protocolID], now: p.now)
        let (id, d) = try #require(opened)
        p.fromA(d)
        var ping = Ping.Instance(rng: SeededRandom(seed: 5))
        let pp = ping.ping(now: p.now)
        let payload = try #require(pp)
        p.fromA(p.a.write(stream: id, bytes: payload, now: p.now).directives)
        p.pump()
        #expect(p.dataA[id] == payload)
        #expect(p.eventsA.contains(.streamOpened(id, protocol: Ping.protocolID, inbound: false)))
        #expect(!p.eventsB.contains { if case .streamOpened = $0 { true } else { false } })
    }

    @Test func dialer_closes_whenTheListenerIsNotTheExpectedPeer() {
        var p = ConnectionPair(expected: PeerId(ed25519PublicKey: Ed25519PrivateKey.generate().publicKey.bytes))
        p.start()
        #expect(p.eventsA.contains { if case .closed(.handshakeFailed(.peerMismatch)) = $0 { true } else { false } })
        #expect(!p.b.isEstablished)
    }

    @Test func listener_fedBytesBeforeStart_stillSendsItsHeader() {
        var p = ConnectionPair()
        var first = Multistream.encoded(Multistream.protocolID)
        first += Multistream.encoded(Noise.protocolID)
        let d = p.b.onBytes(first, now: .zero)
        guard case .send(let out)? = d.first else { Issue.record("nothing sent: \(d)"); return }
        #expect(out == Multistream.encoded(Multistream.protocolID) + Multistream.encoded(Noise.protocolID))
    }

    @Test func garbage_andSilence_closeTheConnection_withAReason() {
        var p = ConnectionPair()
        let d = p.b.onBytes([0x05, 0x68, 0x65, 0x6C, 0x6C, 0x6F], now: .zero)   // "hello" without newline
        #expect(d.contains(.closed(.securityNegotiationFailed(.malformedMessage))))
        let t = p.a.start(now: .zero)
        #expect(!t.isEmpty && p.a.nextDeadline == .zero + .seconds(10))
        let timed = p.a.onTimer(now: .zero + .seconds(10))
        #expect(timed == [.closed(.handshakeTimeout)])
    }

    @Test func rawBytesFuzz_neverCrashes_andEveryConnectionEndsClosedOrWaiting() throws {
        var rng = SeededRandom(seed: 0xC0FFEE)
        // A genuine dialer transcript, to mutate.
        var p = ConnectionPair()
        var transcript: [UInt8] = []
        p.fromA(p.a.start(now: p.now)); p.fromB(p.b.start(now: p.now))
        for _ in 0..<20 { for m in p.toB { transcript += m }; p.pump(maxRounds: 1) }
        var closed = 0
        for round in 0..<1500 {
            var input = transcript
            if round % 2 == 0 {
                for _ in 0..<(1 + Int(rng.next() % 3)) { input[Int(rng.next() % UInt64(input.count))] ^= UInt8.random(in: 1...255, using: &rng) }
            } else {
                input = (0..<Int(rng.next() % 500)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            }
            var b = Connection.Instance(role: .listener, identity: ConnectionPair.keyB, settings: .init(protocols: ["/x"]), rng: SeededRandom(seed: UInt64(round)), noiseKeys: testKeys(UInt64(round)))
            _ = b.start(now: .zero)
            for c in input.chunked(by: 1 + Int(rng.next() % 200)) { _ = b.onBytes(Array(c), now: .zero) }
            if b.isClosed { closed += 1 }
        }
        #expect(closed > 700)
    }
}
