#if canImport(Glibc)
import Glibc
#endif
import LatticaCore
import LatticaNAT
import Testing

@Suite struct NATPMPTests {
    static let wan: [UInt8] = [11, 200, 0, 14]

    func addressAnswer(epoch: UInt32 = 5) -> [UInt8] { [0, 128, 0, 0] + be32(epoch) + Self.wan }
    func mapAnswer(inPort: UInt16 = 4001, external: UInt16 = 4001, life: UInt32 = 60, op: UInt8 = 130) -> [UInt8] {
        [0, op, 0, 0] + be32(7) + be16(inPort) + be16(external) + be32(life)
    }
    func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xff)] }
    func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
    func at(_ s: Double) -> Instant { Instant(nanoseconds: Int64(s * 1e9)) }

    @Test func codec_encodesRequestsAsRFC6886Draws_andDecodesAnswers() {
        #expect(NATPMP.externalAddressRequest() == [0, 0])
        #expect(NATPMP.mappingRequest(.tcp, internalPort: 4001, externalPort: 4002, lifetime: 7200)
                == [0, 2, 0, 0, 0x0f, 0xa1, 0x0f, 0xa2, 0, 0, 0x1c, 0x20])
        #expect(NATPMP.decode(addressAnswer()) == .externalAddress(epoch: 5, ip: Self.wan))
        #expect(NATPMP.decode(mapAnswer(external: 5000)) == .mapping(proto: .tcp, epoch: 7, internalPort: 4001, externalPort: 5000, lifetime: 60))
        #expect(NATPMP.decode([0, 130, 0, 2] + be32(1)) == .failure(op: 2, code: 2))
        #expect(NATPMP.decode([0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]) == nil, "a request is not an answer")
        #expect(NATPMP.decode(Array(addressAnswer().prefix(11))) == nil, "truncated")
        #expect(NATPMP.decode([1] + addressAnswer().dropFirst()) == nil, "version 1 (PCP)")
    }

    @Test func client_mapsThenRenewsAtHalfTheLifetime_andDeletesOnStop() {
        var c = NATPMP.Client(internalPort: 4001, settings: .init(lifetime: 60))
        #expect(c.start(now: at(0)) == [.send([0, 0]), .scheduleTimer(at: at(0.25))])
        let d = c.onDatagram(addressAnswer(), now: at(0.01))
        #expect(d.first == .send(NATPMP.mappingRequest(.tcp, internalPort: 4001, externalPort: 4001, lifetime: 60)))
        #expect(c.onDatagram(mapAnswer(life: 60), now: at(0.02)) == [.mapped(externalIP: Self.wan, externalPort: 4001, lifetime: 60), .scheduleTimer(at: at(30.02))])
        #expect(c.isMapped)
        #expect(c.onTimer(now: at(10)) == [.scheduleTimer(at: at(30.02))], "an early timer only re-arms")
        let renew = c.onTimer(now: at(30.02))
        #expect(renew.first == .send(NATPMP.mappingRequest(.tcp, internalPort: 4001, externalPort: 4001, lifetime: 60)))
        #expect(c.onDatagram(mapAnswer(life: 60), now: at(30.03)).first == .mapped(externalIP: Self.wan, externalPort: 4001, lifetime: 60))
        #expect(c.stop(now: at(31)) == [.send(NATPMP.mappingRequest(.tcp, internalPort: 4001, externalPort: 0, lifetime: 0)), .unmapped])
        #expect(c.stop(now: at(32)).isEmpty, "stopping twice sends nothing")
    }

    @Test func client_givesUpWithinFourSeconds_whenNoRouterAnswers() {
        var c = NATPMP.Client(internalPort: 4001)
        var now = at(0), out = c.start(now: now), sends = 1
        while true {
            guard case .scheduleTimer(let t)? = out.last else { break }
            now = t
            out = c.onTimer(now: now)
            sends += out.filter { if case .send = $0 { true } else { false } }.count
        }
        #expect(out == [.gaveUp(.noAnswer)])
        #expect(sends == 4)
        #expect(now.seconds <= 3.76, "gave up at \(now)")
    }

    @Test func client_givesUpOnARefusal_andIgnoresAnswersToOtherRequests() {
        var c = NATPMP.Client(internalPort: 4001)
        _ = c.start(now: at(0))
        #expect(c.onDatagram(mapAnswer(), now: at(0.01)).isEmpty, "a mapping answer while asking the address")
        _ = c.onDatagram(addressAnswer(), now: at(0.02))
        #expect(c.onDatagram(mapAnswer(inPort: 9999), now: at(0.03)).isEmpty, "someone else's port")
        #expect(c.onDatagram(mapAnswer(op: 129), now: at(0.03)).isEmpty, "UDP, not TCP")
        #expect(c.ignored == 3)
        #expect(c.onDatagram([0, 130, 0, 2] + be32(1), now: at(0.04)) == [.gaveUp(.refused(2))])
        #expect(!c.isMapped)
    }

    @Test func client_losesTheMapping_whenRenewalsGoUnanswered() {
        var c = NATPMP.Client(internalPort: 4001, settings: .init(lifetime: 10))
        _ = c.start(now: at(0))
        _ = c.onDatagram(addressAnswer(), now: at(0))
        _ = c.onDatagram(mapAnswer(life: 10), now: at(0))
        var now = at(5), out = c.onTimer(now: now)
        while case .scheduleTimer(let t)? = out.last { now = t; out = c.onTimer(now: now) }
        #expect(out == [.unmapped])
        #expect(now == at(10))
    }

    /// Random and mutated datagrams in every phase: no trap, and the client stays bounded.
    @Test func fuzz_decodeAndClient_neverTrap() {
        let seed = UInt64(envSeed() ?? 0x4E50_4D50)
        print("NAT-PMP fuzz seed \(seed) (LATTICA_TEST_SEED to replay)")
        var rng = SeededRandom(seed: seed)
        let seeds = [addressAnswer(), mapAnswer(), [0, 130, 0, 3] + be32(0), [0, 0]]
        for i in 0..<20_000 {
            var b: [UInt8]
            if i % 2 == 0 {
                b = (0..<Int.random(in: 0...24, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            } else {
                b = seeds[i % seeds.count]
                for _ in 0..<(1 + i % 4) where !b.isEmpty { b[Int.random(in: 0..<b.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
                if i % 7 == 0 { b = Array(b.prefix(Int.random(in: 0...b.count, using: &rng))) }
            }
            _ = NATPMP.decode(b)
            var c = NATPMP.Client(internalPort: 4001, settings: .init(lifetime: UInt32.random(in: 0...100, using: &rng)))
            _ = c.start(now: at(0))
            if i % 3 == 0 { _ = c.onDatagram(addressAnswer(), now: at(0)) }
            let out = c.onDatagram(b, now: at(0.1)) + c.onTimer(now: at(Double(i % 50)))
            // an answer yields at most mapped + timer, a timer at most send + timer
            #expect(out.count <= 4, "seed \(seed), input \(b)")
            for d in out {
                if case .mapped(_, let port, let life) = d { #expect(port != 0 && life > 0, "seed \(seed), input \(b)") }
                if case .send(let bytes) = d { #expect(bytes.count == 2 || bytes.count == 12, "seed \(seed)") }
            }
        }
    }
}

/// `LATTICA_TEST_SEED` without Foundation (the pure test target stays free of it).
func envSeed() -> UInt64? {
    guard let p = getenv("LATTICA_TEST_SEED") else { return nil }
    return UInt64(String(cString: p))
}
