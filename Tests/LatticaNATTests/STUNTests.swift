import LatticaCore
import Testing
@testable import LatticaNAT

func ep(_ s: String) -> NAT.Endpoint { NAT.Endpoint(parsing: s)! }

/// An RFC 5780 STUN server on two IPs × two ports, behind which sits a simulated NAT in front of
/// the probe: RFC 4787 mapping and filtering presets.
struct FakeNATNet {
    enum Behaviour { case independent, addressDependent, addressAndPortDependent }
    var mapping: Behaviour
    var filtering: Behaviour
    var noNAT = false
    var honourChangeRequest = true
    var offerOtherAddress = true
    let local = ep("192.168.1.2:5000")
    let primary = ep("1.1.1.1:3478")
    let alternate = ep("2.2.2.2:3479")
    var mappings: [String: NAT.Endpoint] = [:]
    var sentTo: [NAT.Endpoint] = []
    var nextPort: UInt16 = 40000
    var dropped = 0

    mutating func mapped(for dest: NAT.Endpoint) -> NAT.Endpoint {
        if noNAT { return local }
        let key: String = switch mapping {
        case .independent: "*"
        case .addressDependent: dest.ip.description
        case .addressAndPortDependent: dest.description
        }
        if let m = mappings[key] { return m }
        nextPort += 1
        let m = NAT.Endpoint(ip: [9, 9, 9, 9], port: nextPort)
        mappings[key] = m
        return m
    }

    func passesFilter(from: NAT.Endpoint) -> Bool {
        if noNAT { return true }
        switch filtering {
        case .independent: return true
        case .addressDependent: return sentTo.contains { $0.ip == from.ip }
        case .addressAndPortDependent: return sentTo.contains(from)
        }
    }

    /// The server's answer to `request` sent to `dest`, after the NAT: (bytes, from) or nil.
    mutating func deliver(_ request: [UInt8], to dest: NAT.Endpoint) -> ([UInt8], NAT.Endpoint)? {
        sentTo.append(dest)
        let src = mapped(for: dest)
        guard case .success(let m) = STUN.decode(request), m.type == .bindingRequest else { return nil }
        var from = dest
        if let c = m.changeRequest, honourChangeRequest {
            let otherIP = dest.ip == primary.ip ? alternate.ip : primary.ip
            let otherPort = dest.port == primary.port ? alternate.port : primary.port
            from = NAT.Endpoint(ip: c.changeIP ? otherIP : dest.ip, port: c.changePort ? otherPort : dest.port)
        }
        let other = offerOtherAddress ? (dest.ip == primary.ip ? alternate : primary) : nil
        let reply = STUN.bindingSuccess(m.transactionID, mapped: src, otherAddress: other, responseOrigin: from)
        guard passesFilter(from: from) else { dropped += 1; return nil }
        return (reply, from)
    }
}

/// Runs a probe against the fake net on a virtual clock; returns the result and the elapsed time.
func runProbe(_ net: inout FakeNATNet, settings: STUN.Probe.Settings = .init(), seed: UInt64 = 7) -> (STUN.Probe.Result, Duration, STUN.Probe) {
    var probe = STUN.Probe(servers: [net.primary], localEndpoints: [net.local], settings: settings, seed: seed)
    var now = Instant.zero
    var queue = probe.start(now: now)
    var wake: Instant?
    for _ in 0..<10_000 {
        guard !queue.isEmpty else {
            guard let w = wake else { break }
            now = w
            wake = nil
            queue = probe.onTimer(now: now)
            continue
        }
        let d = queue.removeFirst()
        switch d {
        case .finished(let r): return (r, now - .zero, probe)
        case .wake(let at): wake = at
        case .send(let bytes, let to):
            if let (reply, from) = net.deliver(bytes, to: to) { queue += probe.onDatagram(reply, from: from, now: now) }
        }
    }
    Issue.record("the probe never finished")
    return (probe.result, now - .zero, probe)
}

@Suite struct STUNCodecTests {
    @Test func crc32_matchesTheCheckValue() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
    }

    @Test func bindingRequest_hasTheHeaderAndFingerprint_andDecodes() {
        let id = STUN.TransactionID(bytes: Array(1...12))
        let req = STUN.bindingRequest(id, change: .init(changeIP: true, changePort: false))
        #expect(Array(req[0..<2]) == [0x00, 0x01])
        #expect(Array(req[4..<8]) == [0x21, 0x12, 0xA4, 0x42])
        #expect(Int(req[2]) << 8 | Int(req[3]) == req.count - 20)
        guard case .success(let m) = STUN.decode(req) else { Issue.record("did not decode"); return }
        #expect(m.type == .bindingRequest && m.transactionID == id && m.hadFingerprint)
        #expect(m.changeRequest == .init(changeIP: true, changePort: false))
    }

    @Test func xorMappedAddress_roundTrips_forIPv4AndIPv6() {
        let id = STUN.TransactionID(bytes: Array(20...31))
        for mapped in [ep("192.0.2.1:32853"), ep("[2001:db8:1234:5678:11:2233:4455:6677]:32853")] {
            let r = STUN.bindingSuccess(id, mapped: mapped, otherAddress: ep("2.2.2.2:3479"), legacyMapped: true)
            guard case .success(let m) = STUN.decode(r) else { Issue.record("did not decode"); return }
            #expect(m.xorMappedAddress == mapped && m.mappedAddress == mapped && m.otherAddress == ep("2.2.2.2:3479"))
        }
        // The XOR really is applied on the wire (RFC 8489 §14.2: port XOR 0x2112).
        let r = STUN.bindingSuccess(id, mapped: ep("192.0.2.1:32853"))
        #expect(Array(r[24..<28]) == [0x00, 0x01, UInt8((32853 ^ 0x2112) >> 8), UInt8((32853 ^ 0x2112) & 0xFF)])
    }

    @Test func errorCode_decodes() {
        let id = STUN.TransactionID(bytes: Array(repeating: 5, count: 12))
        guard case .success(let m) = STUN.decode(STUN.bindingError(id, code: 420, reason: "Unknown Attribute")) else { Issue.record("no"); return }
        #expect(m.type == .bindingError && m.errorCode == .init(code: 420, reason: "Unknown Attribute"))
    }

    @Test func aFlippedBit_failsTheFingerprint_andOtherDamageIsRefused() {
        let id = STUN.TransactionID(bytes: Array(1...12))
        var r = STUN.bindingSuccess(id, mapped: ep("192.0.2.1:32853"))
        r[26] ^= 1
        #expect(STUN.decode(r) == .failure(.badFingerprint))
        #expect(STUN.decode([UInt8](repeating: 0, count: 10)) == .failure(.tooShort))
        var bad = STUN.bindingRequest(id)
        bad[4] = 0
        #expect(STUN.decode(bad) == .failure(.notSTUN))
        #expect(STUN.decode(Array(STUN.bindingRequest(id).dropLast(4))) == .failure(.badLength))
    }

    @Test func decoder_survivesSeededRandomAndMutatedInput() {
        let seed: UInt64 = 0x57A4_0001
        var rng = SeededRandom(seed: seed)
        let id = STUN.TransactionID(using: &rng)
        let valid = [STUN.bindingRequest(id, change: .init(changeIP: true, changePort: true)),
                     STUN.bindingSuccess(id, mapped: ep("9.9.9.9:1"), otherAddress: ep("2.2.2.2:2"), responseOrigin: ep("1.1.1.1:1")),
                     STUN.bindingError(id, code: 400, reason: "Bad Request")]
        var decoded = 0
        for round in 0..<20_000 {
            var input: [UInt8]
            switch round % 4 {
            case 0: input = (0..<Int(rng.next() % 120)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            case 1:  // a valid header, random attributes, a consistent length
                input = Array(valid[1].prefix(20)) + (0..<Int(rng.next() % 25) * 4).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                input[2] = UInt8((input.count - 20) >> 8); input[3] = UInt8((input.count - 20) & 0xFF)
            case 2: input = Array(valid[Int(rng.next() % 3)].prefix(Int(rng.next() % 90)))
            default:
                input = valid[Int(rng.next() % 3)]
                for _ in 0...(rng.next() % 3) { input[Int(rng.next() % UInt64(input.count))] ^= UInt8(truncatingIfNeeded: 1 | rng.next()) }
            }
            // Random bytes never pass the cookie and length checks; a damaged message never passes
            // its fingerprint (it may decode once the damage hit the FINGERPRINT type itself,
            // which then is an unknown attribute: then it has no fingerprint).
            if case .success(let m) = STUN.decode(input) {
                if round % 4 == 0 { decoded += 1 }
                if round % 4 == 3, m.hadFingerprint, !valid.contains(input) { decoded += 1 }
            }
        }
        #expect(decoded == 0, "seed \(seed): \(decoded) random or damaged inputs decoded")
    }
}

@Suite struct STUNProbeTests {
    func classify(_ m: FakeNATNet.Behaviour, _ f: FakeNATNet.Behaviour) -> STUN.Probe.Result {
        var net = FakeNATNet(mapping: m, filtering: f)
        return runProbe(&net).0
    }

    @Test func classifiesEveryMappingAndFilteringPreset() {
        let words: [FakeNATNet.Behaviour: NAT.Behaviour] = [.independent: .endpointIndependent, .addressDependent: .addressDependent,
                                                             .addressAndPortDependent: .addressAndPortDependent]
        for m in [FakeNATNet.Behaviour.independent, .addressDependent, .addressAndPortDependent] {
            for f in [FakeNATNet.Behaviour.independent, .addressDependent, .addressAndPortDependent] {
                let r = classify(m, f)
                #expect(r.mapping == words[m], "mapping \(m) filtering \(f): got \(r.mapping)")
                #expect(r.filtering == words[f], "mapping \(m) filtering \(f): got \(r.filtering)")
                #expect(r.mapped?.ip == [9, 9, 9, 9])
            }
        }
    }

    @Test func noNAT_isReportedAsNone() {
        var net = FakeNATNet(mapping: .independent, filtering: .independent)
        net.noNAT = true
        let r = runProbe(&net).0
        #expect(r.mapping == .none && r.filtering == .endpointIndependent && r.mapped == net.local)
    }

    @Test func withoutOtherAddress_onlyTheMappedAddressIsKnown() {
        var net = FakeNATNet(mapping: .addressAndPortDependent, filtering: .addressAndPortDependent)
        net.offerOtherAddress = false
        let (r, _, probe) = runProbe(&net)
        #expect(r.mapped != nil && r.mapping == .unknown && r.filtering == .unknown)
        #expect(probe.metrics.transactions == 1)
    }

    @Test func aServerIgnoringChangeRequest_leavesFilteringUnknown() {
        var net = FakeNATNet(mapping: .independent, filtering: .independent)
        net.honourChangeRequest = false
        let (r, _, probe) = runProbe(&net)
        #expect(r.filtering == .unknown && r.mapping == .endpointIndependent)
        #expect(probe.metrics.rejected["change_ignored"] == 1)
    }

    @Test func retransmissions_doubleTheRTO_andGiveUpAfterRcRequestsAndRmTimesRTO() {
        var probe = STUN.Probe(servers: [ep("1.1.1.1:3478")], localEndpoints: [], seed: 1)
        var sends: [Instant] = []
        var now = Instant.zero
        var ds = probe.start(now: now)
        var finished = false
        while !finished {
            var wake: Instant?
            for d in ds {
                switch d {
                case .send: sends.append(now)
                case .wake(let at): wake = at
                case .finished: finished = true
                }
            }
            guard let w = wake else { break }
            now = w
            ds = probe.onTimer(now: now)
        }
        #expect(finished)
        #expect(sends.map { $0.nanoseconds / 1_000_000 } == [0, 500, 1500, 3500, 7500, 15500, 31500])
        #expect(now.nanoseconds / 1_000_000 == 39500)  // RFC 8489 §6.2.1's example
        #expect(probe.metrics.timeouts == 1)
    }

    @Test func spoofedResponses_fromTheWrongSource_orWithAnotherTransaction_areRejected() {
        var probe = STUN.Probe(servers: [ep("1.1.1.1:3478")], localEndpoints: [], seed: 3)
        let ds = probe.start(now: .zero)
        guard case .send(let req, _) = ds.first, case .success(let m) = STUN.decode(req) else { Issue.record("no request"); return }
        let forged = STUN.bindingSuccess(m.transactionID, mapped: ep("6.6.6.6:666"))
        #expect(probe.onDatagram(forged, from: ep("6.6.6.6:3478"), now: .zero).isEmpty)
        let otherTx = STUN.bindingSuccess(STUN.TransactionID(bytes: Array(repeating: 1, count: 12)), mapped: ep("6.6.6.6:666"))
        #expect(probe.onDatagram(otherTx, from: ep("1.1.1.1:3478"), now: .zero).isEmpty)
        #expect(probe.onDatagram([1, 2, 3], from: ep("1.1.1.1:3478"), now: .zero).isEmpty)
        #expect(probe.metrics.rejected == ["source_mismatch": 1, "unknown_transaction": 1, "too_short": 1])
        #expect(probe.result.mapped == nil)
        let real = STUN.bindingSuccess(m.transactionID, mapped: ep("9.9.9.9:4000"))
        #expect(probe.onDatagram(real, from: ep("1.1.1.1:3478"), now: .zero).contains(where: { if case .finished = $0 { true } else { false } }))
        #expect(probe.result.mapped == ep("9.9.9.9:4000"))
    }

    @Test func aSilentServer_fallsThroughToTheNext() {
        var probe = STUN.Probe(servers: [ep("1.1.1.1:3478"), ep("3.3.3.3:3478")], localEndpoints: [], seed: 4)
        var ds = probe.start(now: .zero)
        var now = Instant.zero
        var target: NAT.Endpoint?
        for _ in 0..<20 {
            for d in ds { if case .send(_, let to) = d { target = to } }
            if target == ep("3.3.3.3:3478") { break }
            guard case .wake(let at)? = ds.last else { break }
            now = at
            ds = probe.onTimer(now: now)
        }
        #expect(target == ep("3.3.3.3:3478"))
    }

    @Test func endpointParsing() {
        #expect(NAT.Endpoint(parsing: "1.2.3.4:3478") == NAT.Endpoint(ip: [1, 2, 3, 4], port: 3478))
        #expect(NAT.Endpoint(parsing: "[::1]:3478")?.isLoopback == true)
        for bad in ["1.2.3:1", "1.2.3.4", "1.2.3.4:99999", "a.b.c.d:1", "[::1]", "1.2.3.4.5:1", ""] {
            #expect(NAT.Endpoint(parsing: bad) == nil, "\(bad)")
        }
    }
}
