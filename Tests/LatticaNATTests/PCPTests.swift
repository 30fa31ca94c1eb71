import LatticaCore
import LatticaNAT
import Testing

@Suite struct PCPTests {
    static let nonce: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    static let lan: [UInt8] = [192, 168, 1, 11]
    static let wan: [UInt8] = [11, 200, 0, 11]
    static let v4prefix: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]

    func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xff)] }
    func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
    func at(_ s: Double) -> Instant { Instant(nanoseconds: Int64(s * 1e9)) }

    /// A MAP response as RFC 6887 §7.2 + §11.1 draw it (what miniupnpd sends).
    func answer(code: UInt8 = 0, life: UInt32 = 120, nonce: [UInt8] = nonce, proto: UInt8 = 6, inPort: UInt16 = 4001,
                ext: UInt16 = 4001, ip: [UInt8] = wan, options: [UInt8] = []) -> [UInt8] {
        [2, 0x81, 0, code] + be32(life) + be32(77) + [UInt8](repeating: 0, count: 12)
            + nonce + [proto, 0, 0, 0] + be16(inPort) + be16(ext) + Self.v4prefix + ip + options
    }

    @Test func mapRequest_isTheRFC6887Layout() {
        let b = PCP.mapRequest(nonce: Self.nonce, clientIP: Self.lan, internalPort: 4001, suggestedPort: 4001, lifetime: 7200)
        #expect(b.count == 60)
        #expect(Array(b[0..<4]) == [2, 1, 0, 0], "version 2, R=0, opcode MAP, reserved")
        #expect(Array(b[4..<8]) == [0, 0, 0x1c, 0x20], "lifetime 7200")
        #expect(Array(b[8..<24]) == Self.v4prefix + Self.lan, "client address ::ffff:192.168.1.11")
        #expect(Array(b[24..<36]) == Self.nonce)
        #expect(Array(b[36..<40]) == [6, 0, 0, 0], "TCP")
        #expect(Array(b[40..<44]) == [0x0f, 0xa1, 0x0f, 0xa1])
        #expect(Array(b[44..<60]) == Self.v4prefix + [0, 0, 0, 0], "no preferred external address")
    }

    @Test func decode_acceptsTheAnswer_andChecksEveryField() {
        let ok = PCP.MapAnswer(resultCode: 0, lifetime: 120, epoch: 77, externalPort: 4001, externalIP: Self.wan)
        #expect(PCP.decode(answer(), nonce: Self.nonce, internalPort: 4001) == .success(.map(ok)))
        #expect(PCP.decode(answer(options: [0x80, 0, 0, 4, 1, 2, 3, 4]), nonce: Self.nonce, internalPort: 4001) == .success(.map(ok)), "an option")
        #expect(PCP.decode(answer(options: [0x80, 0, 0, 8, 1, 2, 3, 4]), nonce: Self.nonce, internalPort: 4001) == .failure(.badOption))
        #expect(PCP.decode(answer(nonce: [UInt8](repeating: 9, count: 12)), nonce: Self.nonce, internalPort: 4001) == .failure(.nonceMismatch))
        #expect(PCP.decode(answer(proto: 17), nonce: Self.nonce, internalPort: 4001) == .failure(.wrongProtocol(17)))
        #expect(PCP.decode(answer(inPort: 5), nonce: Self.nonce, internalPort: 4001) == .failure(.wrongInternalPort(5)))
        var req = answer(); req[1] = 0x01
        #expect(PCP.decode(req, nonce: Self.nonce, internalPort: 4001) == .failure(.notAResponse))
        var peer = answer(); peer[1] = 0x82
        #expect(PCP.decode(peer, nonce: Self.nonce, internalPort: 4001) == .failure(.wrongOpcode(2)))
        #expect(PCP.decode(Array(answer().prefix(59)), nonce: Self.nonce, internalPort: 4001) == .failure(.notMultipleOf4(59)))
        #expect(PCP.decode(Array(answer().prefix(56)), nonce: Self.nonce, internalPort: 4001) == .failure(.tooShort(56)), "success needs the MAP data")
        #expect(PCP.decode(answer() + [UInt8](repeating: 0, count: 1044), nonce: Self.nonce, internalPort: 4001) == .failure(.tooLong(1104)))
        // an error answer with the header only: its code
        let err = [2, 0x81, 0, 2] + be32(30) + be32(1) + [UInt8](repeating: 0, count: 12)
        #expect(PCP.decode(err, nonce: Self.nonce, internalPort: 4001)
                == .success(.map(.init(resultCode: 2, lifetime: 30, epoch: 1, externalPort: 0, externalIP: []))))
    }

    @Test func decode_recognisesANATPMPServer_andOtherVersions() {
        // RFC 6887 §9: a NAT-PMP server answers version 0, op 128 + ours, result 1
        #expect(PCP.decode([0, 129, 0, 1] + be32(100), nonce: Self.nonce, internalPort: 4001) == .success(.unsupportedVersion(serverVersion: 0)))
        #expect(PCP.decode([0, 128, 0, 0] + be32(100) + Self.wan, nonce: Self.nonce, internalPort: 4001) == .failure(.badVersion(0)))
        var v1 = answer(code: 1); v1[0] = 1
        #expect(PCP.decode(v1, nonce: Self.nonce, internalPort: 4001) == .success(.unsupportedVersion(serverVersion: 1)))
        var v3 = answer(); v3[0] = 3
        #expect(PCP.decode(v3, nonce: Self.nonce, internalPort: 4001) == .failure(.badVersion(3)))
    }

    @Test func client_mapsRenewsAtHalfTheGrantedLifetime_andDeletesWithTheSameNonce() {
        var c = PCP.Client(internalPort: 4001, clientIP: Self.lan, nonce: Self.nonce, settings: .init(lifetime: 7200))
        let req = PCP.mapRequest(nonce: Self.nonce, clientIP: Self.lan, internalPort: 4001, suggestedPort: 4001, lifetime: 7200)
        #expect(c.start(now: at(0)) == [.send(req), .scheduleTimer(at: at(0.25))])
        #expect(c.onDatagram(answer(life: 120), now: at(0.01)) == [.mapped(externalIP: Self.wan, externalPort: 4001, lifetime: 120), .scheduleTimer(at: at(60.01))])
        #expect(c.onTimer(now: at(30)) == [.scheduleTimer(at: at(60.01))])
        let renew = PCP.mapRequest(nonce: Self.nonce, clientIP: Self.lan, internalPort: 4001, suggestedPort: 4001, suggestedIP: Self.wan, lifetime: 7200)
        #expect(c.onTimer(now: at(60.01)).first == .send(renew))
        #expect(c.onDatagram(answer(life: 120), now: at(60.02)).first == .mapped(externalIP: Self.wan, externalPort: 4001, lifetime: 120))
        let del = PCP.mapRequest(nonce: Self.nonce, clientIP: Self.lan, internalPort: 4001, suggestedPort: 4001, suggestedIP: Self.wan, lifetime: 0)
        #expect(c.stop(now: at(61)) == [.send(del), .unmapped])
        #expect(c.stop(now: at(62)).isEmpty)
    }

    @Test func client_fallsBack_onANATPMPAnswer_aRefusal_orSilence() {
        var a = PCP.Client(internalPort: 4001, clientIP: Self.lan, nonce: Self.nonce)
        _ = a.start(now: at(0))
        #expect(a.onDatagram([0, 129, 0, 1] + be32(5), now: at(0.01)) == [.gaveUp(.unsupportedVersion(0))])
        var b = PCP.Client(internalPort: 4001, clientIP: Self.lan, nonce: Self.nonce)
        _ = b.start(now: at(0))
        #expect(b.onDatagram(answer(nonce: [UInt8](repeating: 0, count: 12)), now: at(0.01)) == [.rejected(.nonceMismatch)])
        #expect(b.onDatagram(answer(code: 2, life: 0), now: at(0.02)) == [.gaveUp(.refused(2))])
        var c = PCP.Client(internalPort: 4001, clientIP: Self.lan, nonce: Self.nonce)
        var now = at(0), out = c.start(now: now), sends = 1
        while case .scheduleTimer(let t)? = out.last {
            now = t
            out = c.onTimer(now: now)
            sends += out.filter { if case .send = $0 { true } else { false } }.count
        }
        #expect(out == [.gaveUp(.noAnswer)])
        #expect(sends == 4 && now.seconds <= 3.76, "\(sends) sends, gave up at \(now)")
    }

    @Test func client_keepsTheMappingUntilExpiry_whenRenewalsFail() {
        var c = PCP.Client(internalPort: 4001, clientIP: Self.lan, nonce: Self.nonce)
        _ = c.start(now: at(0))
        _ = c.onDatagram(answer(life: 10), now: at(0))
        _ = c.onTimer(now: at(5))
        #expect(c.onDatagram(answer(code: 8, life: 0), now: at(5.1)) == [.scheduleTimer(at: at(10))], "NO_RESOURCES on renewal")
        #expect(c.isMapped)
        #expect(c.onTimer(now: at(10)) == [.unmapped])
    }

    /// Random and mutated datagrams in every phase: no trap; a mapping has a port and a lifetime.
    @Test func fuzz_decodeAndClient_neverTrap() {
        let seed = envSeed() ?? 0x5043_5032
        print("PCP fuzz seed \(seed) (LATTICA_TEST_SEED to replay)")
        var rng = SeededRandom(seed: seed)
        let seeds = [answer(), answer(code: 1), answer(options: [1, 0, 0, 4, 0, 0, 0, 0]), [0, 129, 0, 1] + be32(0),
                     [2, 0x81, 0, 3] + [UInt8](repeating: 0, count: 20)]
        for i in 0..<20_000 {
            var b: [UInt8]
            if i % 3 == 0 {
                b = (0..<Int.random(in: 0...80, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            } else {
                b = seeds[i % seeds.count]
                for _ in 0..<(1 + i % 5) where !b.isEmpty { b[Int.random(in: 0..<b.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
                if i % 7 == 0 { b = Array(b.prefix(Int.random(in: 0...b.count, using: &rng))) }
                if i % 11 == 0 { b += (0..<Int.random(in: 0...1200, using: &rng)).map { UInt8(truncatingIfNeeded: $0) } }
            }
            if case .success(.map(let m)) = PCP.decode(b, nonce: Self.nonce, internalPort: 4001), m.resultCode == 0 {
                #expect(b.count >= 60 && b.count <= 1100, "seed \(seed), input \(b)")
            }
            var c = PCP.Client(internalPort: 4001, clientIP: Self.lan, nonce: Self.nonce)
            _ = c.start(now: at(0))
            if i % 4 == 0 { _ = c.onDatagram(answer(life: 100), now: at(0)); _ = c.onTimer(now: at(50)) }
            let out = c.onDatagram(b, now: at(50.1)) + c.onTimer(now: at(Double(i % 120)))
            #expect(out.count <= 4, "seed \(seed), input \(b)")
            for d in out {
                if case .mapped(let ip, let port, let life) = d { #expect(ip.count == 4 && port != 0 && life > 0, "seed \(seed), input \(b)") }
                if case .send(let bytes) = d { #expect(bytes.count == 60, "seed \(seed)") }
            }
        }
    }
}
