import LatticaCore
@testable import LatticaNAT
import Testing

/// The birthday punch's codec (`/lattica/punch/1.0.0`), its plan and its odds.
@Suite struct SprayTests {
    static let offer = Spray.Offer(mapping: .endpointIndependent, filtering: .addressAndPortDependent,
                                   endpoints: [NAT.Endpoint(ip: [198, 51, 100, 7], port: 4001), NAT.Endpoint(ip: [10, 0, 0, 2], port: 4001)])

    @Test func offerAndGo_bytes() throws {
        let m = Spray.Message.offer(Self.offer)
        // version 1, OFFER, mapping 2 (endpoint-independent), filtering 4, 2 endpoints
        #expect(m.encoded() == [1, 1, 2, 4, 2, 198, 51, 100, 7, 0x0F, 0xA1, 10, 0, 0, 2, 0x0F, 0xA1])
        #expect(try Spray.Message(decoding: m.encoded()) == m)
        #expect(Spray.Message.go.encoded() == [1, 2])
        #expect(try Spray.Message(decoding: [1, 2]) == .go)
        // IPv6 endpoints are not sent (the spray is IPv4: NAT66 is rare, and v6 needs no punch)
        let v6 = Spray.Offer(mapping: .none, filtering: .none, endpoints: [NAT.Endpoint(ip: [UInt8](repeating: 0x20, count: 16), port: 1)])
        #expect(Spray.Message.offer(v6).encoded() == [1, 1, 1, 1, 0])
    }

    @Test func malformed_isRefused() {
        #expect(throws: Spray.DecodeError.truncated) { try Spray.Message(decoding: [1]) }
        #expect(throws: Spray.DecodeError.version(2)) { try Spray.Message(decoding: [2, 2]) }
        #expect(throws: Spray.DecodeError.type(9)) { try Spray.Message(decoding: [1, 9]) }
        #expect(throws: Spray.DecodeError.length) { try Spray.Message(decoding: [1, 2, 0]) }
        #expect(throws: Spray.DecodeError.truncated) { try Spray.Message(decoding: [1, 1, 2, 4]) }
        #expect(throws: Spray.DecodeError.behaviour) { try Spray.Message(decoding: [1, 1, 5, 4, 0]) }
        #expect(throws: Spray.DecodeError.tooManyAddresses) { try Spray.Message(decoding: [1, 1, 2, 4, 9]) }
        #expect(throws: Spray.DecodeError.length) { try Spray.Message(decoding: [1, 1, 2, 4, 1, 1, 2, 3, 4, 0]) }
        #expect(throws: Spray.DecodeError.port) { try Spray.Message(decoding: [1, 1, 2, 4, 1, 1, 2, 3, 4, 0, 0]) }
    }

    /// Random and mutated input never crashes the decoder, and the format is canonical: whatever
    /// decodes re-encodes to exactly the input.
    @Test func fuzz_decoder() throws {
        let seed = testSeed(0x5EED_0051)
        var rng = SeededRandom(seed: seed)
        let samples = [Spray.Message.offer(Self.offer).encoded(), Spray.Message.go.encoded()]
        var decoded = 0
        for i in 0..<20_000 {
            let input = i % 3 == 0 ? rng.bytes(Int(rng.next() % 64)) : rng.mutate(samples[Int(rng.next() % 2)])
            do {
                let m = try Spray.Message(decoding: input)
                decoded += 1
                #expect(m.encoded() == input, "seed \(seed) input \(input)")
            } catch {
                continue
            }
        }
        #expect(decoded > 100, "seed \(seed): the mutations should leave many messages valid")
    }

    static func offer(_ m: NAT.Behaviour, _ f: NAT.Behaviour) -> Spray.Offer { Spray.Offer(mapping: m, filtering: f, endpoints: []) }

    @Test func plan_coversExactlyTheRestrictedSymmetricPairs() {
        let restricted = Self.offer(.endpointIndependent, .addressAndPortDependent)
        let fullCone = Self.offer(.endpointIndependent, .endpointIndependent)
        let symmetric = Self.offer(.addressAndPortDependent, .addressAndPortDependent)
        let addressMapping = Self.offer(.addressDependent, .addressDependent)
        let unknown = Self.offer(.unknown, .unknown)
        let eimUnknownFilter = Self.offer(.endpointIndependent, .unknown)
        let public_ = Self.offer(.none, .none)
        #expect(Spray.plan(mine: restricted, theirs: symmetric) == .holes)
        #expect(Spray.plan(mine: symmetric, theirs: restricted) == .probes)
        #expect(Spray.plan(mine: eimUnknownFilter, theirs: addressMapping) == .holes)
        // DCUtR's cases, and the impossible one
        #expect(Spray.plan(mine: fullCone, theirs: symmetric) == nil)
        #expect(Spray.plan(mine: restricted, theirs: restricted) == nil)
        #expect(Spray.plan(mine: symmetric, theirs: symmetric) == nil)
        #expect(Spray.plan(mine: public_, theirs: symmetric) == nil)
        #expect(Spray.plan(mine: unknown, theirs: symmetric) == nil)
        #expect(Spray.plan(mine: restricted, theirs: unknown) == nil)
        // the two sides always agree: one opens holes exactly when the other probes
        let all = NAT.Behaviour.allCases
        for m1 in all { for f1 in all { for m2 in all { for f2 in all {
            let a = Self.offer(m1, f1), b = Self.offer(m2, f2)
            let pa = Spray.plan(mine: a, theirs: b), pb = Spray.plan(mine: b, theirs: a)
            #expect((pa == .holes) == (pb == .probes) && (pa == .probes) == (pb == .holes), "\(a) \(b)")
        } } } }
    }

    @Test func holePorts_distinctAndInRange() {
        var rng = SeededRandom(seed: testSeed(7))
        let ports = Spray.holePorts(1024, using: &rng)
        #expect(ports.count == 1024)
        #expect(Set(ports).count == 1024)
        #expect(ports.allSatisfy { Spray.portRange.contains($0) })
        #expect(Spray.holePorts(100_000, using: &rng).count == 64_512)
    }

    /// The odds the design rests on: a NAT drawing `probes` ports uniformly from the range hits
    /// one of `holes` sprayed ports with 1 − (1 − h/r)^m. Simulated against the formula.
    @Test func successProbability_matchesASimulatedNAT() {
        let seed = testSeed(0x5EED_0052)
        var rng = SeededRandom(seed: seed)
        var s = Spray.Settings()
        #expect(abs(s.successProbability - 0.9826) < 0.001, "\(s.successProbability)")
        s.holes = 256
        s.probes = 128  // ≈ 40%: far from 0 and 1, so the simulation can tell a wrong formula
        let trials = 2000
        var hits = 0
        for _ in 0..<trials {
            let holes = Set(Spray.holePorts(s.holes, using: &rng))
            if (0..<s.probes).contains(where: { _ in holes.contains(UInt16.random(in: Spray.portRange, using: &rng)) }) { hits += 1 }
        }
        let p = s.successProbability, sd = (p * (1 - p) / Double(trials)).squareRoot()
        #expect(abs(Double(hits) / Double(trials) - p) < 4 * sd, "seed \(seed): \(hits)/\(trials) against \(p)")
        #expect(Spray.Settings().sprayMs == 7 * 25)
    }
}
