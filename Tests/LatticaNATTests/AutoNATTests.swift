import LatticaCore
import Testing
@testable import LatticaNAT

@Suite struct AutoNATCodecTests {
    @Test func everyMessage_roundTrips() {
        let msgs: [AutoNAT.Message] = [
            .dialRequest(.init(addrs: [ma("/ip4/1.2.3.4/tcp/4001"), ma("/ip6/::1/tcp/1")], nonce: 0xDEAD_BEEF_0102_0304)),
            .dialResponse(.init(status: .ok, addrIdx: 1, dialStatus: .ok)),
            .dialResponse(.init(status: .dialRefused, addrIdx: 0, dialStatus: .unused)),
            .dialDataRequest(addrIdx: 2, numBytes: 50_000),
            .dialDataResponse(dataLength: 4096),
        ]
        for m in msgs { #expect(AutoNAT.decode(AutoNAT.encode(m)[...]) == .success(m)) }
        #expect(AutoNAT.decodeDialBack(AutoNAT.encodeDialBack(nonce: 42)[...]) == 42)
    }

    @Test func theNonceIsFixed64_onTheWire() {
        // Message{dialRequest(1): DialRequest{nonce(2, fixed64)}} = 0a 09 11 <8 bytes LE>
        let b = AutoNAT.encode(.dialRequest(.init(addrs: [[UInt8]](), nonce: 1)))
        #expect(b == [0x0A, 0x09, 0x11, 1, 0, 0, 0, 0, 0, 0, 0])
    }

    @Test func unknownStatuses_decodeAsNil_soTheyAreDiscarded() {
        var inner = ProtobufWriter()
        inner.uint64(1, 777)
        var outer = ProtobufWriter()
        outer.message(2, inner)
        guard case .success(.dialResponse(let r)) = AutoNAT.decode(outer.bytes[...]) else { Issue.record("no"); return }
        #expect(r.status == nil)
    }

    @Test func oversizedData_andTooManyAddrs_areRefused() {
        var inner = ProtobufWriter()
        inner.bytes(1, [UInt8](repeating: 0, count: 5000))
        var outer = ProtobufWriter()
        outer.message(4, inner)
        #expect(AutoNAT.decode(outer.bytes[...]) == .failure(.dataTooLong))
        let many = AutoNAT.encode(.dialRequest(.init(addrs: Array(repeating: [4, 1, 2, 3, 4], count: 65), nonce: 1)))
        #expect(AutoNAT.decode(many[...]) == .failure(.tooManyAddrs))
    }

    @Test func frameReader_splitsFrames_andRefusesOversizedLengths() {
        var r = AutoNAT.FrameReader(maxLength: 100)
        let a = AutoNAT.framed([1, 2, 3]), b = AutoNAT.framed([4])
        let all = a + b
        #expect(r.push(all.prefix(2)) == [])
        #expect(r.push(all.dropFirst(2)) == [.frame([1, 2, 3]), .frame([4])])
        #expect(r.push(Varint.encoded(101)) == [.tooLong])
    }

    @Test func decoders_surviveSeededRandomAndMutatedInput() {
        let seed: UInt64 = 0xA070_0002
        var rng = SeededRandom(seed: seed)
        let valid = [AutoNAT.encode(.dialRequest(.init(addrs: [ma("/ip4/1.2.3.4/tcp/4001")], nonce: 9))),
                     AutoNAT.encode(.dialResponse(.init(status: .ok, addrIdx: 0, dialStatus: .ok))),
                     AutoNAT.encode(.dialDataRequest(addrIdx: 0, numBytes: 30_000)), AutoNAT.encodeDialBack(nonce: 5)]
        var frames = AutoNAT.FrameReader()
        for round in 0..<20_000 {
            var input: [UInt8]
            if round % 2 == 0 {
                input = (0..<Int(rng.next() % 64)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            } else {
                input = valid[Int(rng.next() % UInt64(valid.count))]
                for _ in 0...(rng.next() % 3) { input[Int(rng.next() % UInt64(input.count))] ^= UInt8(truncatingIfNeeded: 1 | rng.next()) }
            }
            _ = AutoNAT.decode(input[...])
            _ = AutoNAT.decodeDialBack(input[...])
            _ = frames.push(input)
            if case .dialRequest(let r)? = try? AutoNAT.decode(input[...]).get() {
                _ = AutoNAT.ServerSession.select(r.addrs, settings: .init())
            }
        }
        #expect(Bool(true), "seed \(seed)")  // reaching here without a trap is the assertion
    }
}

@Suite struct AutoNATServerTests {
    let requester = NAT.Endpoint(ip: [8, 8, 8, 8], port: 50000)

    func session(allowPrivate: Bool = false) -> AutoNAT.ServerSession {
        var s = AutoNAT.ServerSettings()
        s.allowPrivateAddrs = allowPrivate
        return AutoNAT.ServerSession(settings: s, observed: requester)
    }

    @Test func theRequestersOwnIP_isDialledAtOnce() {
        var s = session()
        var rng = SeededRandom(seed: 1)
        let a = s.onMessage(.dialRequest(.init(addrs: [ma("/ip4/8.8.8.8/tcp/4001")], nonce: 7)), rng: &rng)
        #expect(a == .dial(NAT.Endpoint(ip: [8, 8, 8, 8], port: 4001), nonce: 7, addrIdx: 0))
        #expect(s.onDialed(.ok) == .init(status: .ok, addrIdx: 0, dialStatus: .ok))
    }

    @Test func aThirdPartyIP_isNeverDialled_unlessTheRequesterPays() {
        var s = session()
        var rng = SeededRandom(seed: 2)
        let a = s.onMessage(.dialRequest(.init(addrs: [ma("/ip4/1.1.1.1/tcp/80")], nonce: 7)), rng: &rng)
        guard case .requestData(.dialDataRequest(let idx, let need)) = a else { Issue.record("expected a data request, got \(a)"); return }
        #expect(idx == 0 && need >= 30_000 && need <= 100_000)
        // Paying less than asked: still no dial.
        var paid: UInt64 = 0
        while paid + 4096 < need {
            #expect(s.onMessage(.dialDataResponse(dataLength: 4096), rng: &rng) == AutoNAT.ServerSession.Action.none)
            paid += 4096
        }
        // Walking away: never dialled, counted as unpaid.
        var walkAway = s
        #expect(walkAway.onEnd() == .unpaid)
        #expect(walkAway.onMessage(.dialDataResponse(dataLength: 4096), rng: &rng) == .none)
        // Paying the rest (the last message may be larger than needed): the dial happens.
        #expect(s.onMessage(.dialDataResponse(dataLength: 4096), rng: &rng) == .dial(NAT.Endpoint(ip: [1, 1, 1, 1], port: 80), nonce: 7, addrIdx: 0))
    }

    @Test func privateAndUnsupportedAddrs_areSkipped_andAllUndialableIsRefused() {
        var s = session()
        var rng = SeededRandom(seed: 3)
        let addrs = [ma("/ip4/10.0.0.1/tcp/1"), ma("/ip4/127.0.0.1/tcp/1"), ma("/ip4/8.8.8.8/udp/1/quic-v1"),
                     ma("/ip4/8.8.8.8/tcp/1/p2p/\(testPeer(1))/p2p-circuit"), ma("/ip4/8.8.8.8/tcp/9")]
        #expect(s.onMessage(.dialRequest(.init(addrs: addrs, nonce: 1)), rng: &rng) == .dial(NAT.Endpoint(ip: [8, 8, 8, 8], port: 9), nonce: 1, addrIdx: 4))
        var t = session()
        guard case .respond(let r, let why) = t.onMessage(.dialRequest(AutoNAT.DialRequest(addrs: addrs.prefix(4).map(\.bytes) + [[0xFF, 0xFF]], nonce: 1)), rng: &rng) else {
            Issue.record("expected a refusal"); return
        }
        #expect(r.status == .dialRefused && why == .noDialableAddr)
        var loop = session(allowPrivate: true)
        // Private addresses allowed (test nets): 10.0.0.1 is still not the requester's IP, so it costs data.
        let priv = loop.onMessage(.dialRequest(.init(addrs: [ma("/ip4/10.0.0.1/tcp/1")], nonce: 1)), rng: &rng)
        guard case .requestData(.dialDataRequest(0, _)) = priv else { Issue.record("expected a data request, got \(priv)"); return }
    }

    @Test func aRelayedRequester_isRejected() {
        var s = AutoNAT.ServerSession(settings: .init(), observed: nil)
        var rng = SeededRandom(seed: 4)
        guard case .respond(let r, let why) = s.onMessage(.dialRequest(.init(addrs: [ma("/ip4/8.8.8.8/tcp/1")], nonce: 1)), rng: &rng) else {
            Issue.record("expected a refusal"); return
        }
        #expect(r.status == .requestRejected && why == .relayed)
    }

    @Test func limiter_boundsPerPeerAndInTotal() {
        var l = AutoNAT.Limiter(maxPerPeer: 2, maxTotal: 3)
        #expect(l.acquire(testPeer(1)) == nil)
        #expect(l.acquire(testPeer(1)) == nil)
        #expect(l.acquire(testPeer(1)) == .perPeerLimit)
        #expect(l.acquire(testPeer(2)) == nil)
        #expect(l.acquire(testPeer(3)) == .totalLimit)
        l.release(testPeer(1))
        #expect(l.acquire(testPeer(3)) == nil)
        l.release(testPeer(9))  // unknown: no effect
        #expect(l.total == 3)
    }
}

@Suite struct AutoNATTallyTests {
    @Test func public_afterThreeServersReachUs_private_afterThreeCannot() {
        var t = AutoNAT.Tally(minConfirmations: 3)
        let a = ma("/ip4/1.2.3.4/tcp/4001")
        for i in 0..<2 { t.record(a, server: testPeer(i), .reachable, now: .zero) }
        #expect(t.reachability == .unknown)
        t.record(a, server: testPeer(1), .reachable, now: .zero)  // the same server again: no new confirmation
        #expect(t.reachability == .unknown)
        t.record(a, server: testPeer(2), .reachable, now: .zero)
        #expect(t.reachability == .public && t.reachableAddrs == [a])

        var u = AutoNAT.Tally(minConfirmations: 3)
        for i in 0..<3 { u.record(a, server: testPeer(i), .unreachable, now: .zero) }
        #expect(u.reachability == .private)
        u.expire(now: .zero + u.window + .seconds(1))
        #expect(u.reachability == .unknown)
    }
}
