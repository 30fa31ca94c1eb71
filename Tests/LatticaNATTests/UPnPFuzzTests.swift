import LatticaCore
import LatticaNAT
import Testing

/// Every UPnP decoder on random and mutated input: no trap, outputs inside their bounds.
@Suite struct UPnPFuzzTests {
    typealias F = UPnPFixtures

    /// A fixture with a few bytes replaced, a slice cut out or random bytes spliced in.
    static func mutate(_ seed: [UInt8], _ i: Int, _ rng: inout SeededRandom) -> [UInt8] {
        if i % 5 == 0 { return (0..<Int.random(in: 0...300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) } }
        var b = seed
        let alphabet = Array("<>/&;#:\r\n \"=?!-[]0123456789abcxX".utf8)
        for _ in 0..<(1 + i % 6) where !b.isEmpty {
            let k = Int.random(in: 0..<b.count, using: &rng)
            b[k] = i % 2 == 0 ? alphabet[Int.random(in: 0..<alphabet.count, using: &rng)] : UInt8.random(in: 0...255, using: &rng)
        }
        if i % 7 == 0, !b.isEmpty {
            let lo = Int.random(in: 0..<b.count, using: &rng), hi = Int.random(in: lo...b.count, using: &rng)
            b.removeSubrange(lo..<hi)
        }
        if i % 9 == 0 { b = Array(b.prefix(Int.random(in: 0...b.count, using: &rng))) }
        return b
    }

    static func seed(_ salt: UInt64) -> UInt64 {
        let s = envSeed() ?? salt
        print("UPnP fuzz seed \(s) (LATTICA_TEST_SEED to replay)")
        return s
    }

    @Test func fuzz_ssdpAndHTTPHead_neverTrap() {
        let seed = Self.seed(0x5353_4450)
        var rng = SeededRandom(seed: seed)
        let corpus = [F.ssdp, F.http("200 OK", F.description), F.http("200 OK", F.description, chunked: true),
                      Array("HTTP/1.1 301 Moved\r\nLocation: http://1.2.3.4/\r\n\r\n".utf8)]
        for i in 0..<20_000 {
            let b = Self.mutate(corpus[i % corpus.count], i, &rng)
            if case .success(let a) = UPnP.parseSSDP(b) {
                #expect(a.location.host.count == 4 && a.location.port != 0 && a.location.path.hasPrefix("/"), "seed \(seed), input \(b)")
            }
            for eof in [false, true] {
                if case .complete(let r) = UPnP.parseHTTP(b, eof: eof) {
                    #expect((100...599).contains(r.status) && !(300..<400).contains(r.status) && r.body.count <= b.count, "seed \(seed), input \(b)")
                }
            }
        }
    }

    @Test func fuzz_descriptionScanner_neverTraps_andOnlyYieldsOnHostControlURLs() {
        let seed = Self.seed(0x4445_5343)
        var rng = SeededRandom(seed: seed)
        let corpus = [Array(F.description.utf8), Array(F.description.replacingOccurrences("/ctl/IPConn", "http://192.168.1.1:40000/c?a=1&amp;b").utf8),
                      Array("<root><URLBase>http://192.168.1.1:1/</URLBase><device><serviceList><service><serviceType>urn:schemas-upnp-org:service:WANPPPConnection:1</serviceType><controlURL>x</controlURL></service></serviceList></device></root>".utf8)]
        for i in 0..<20_000 {
            let b = Self.mutate(corpus[i % corpus.count], i, &rng)
            if case .success(let s) = UPnP.parseDescription(b, location: F.location) {
                #expect(s.controlURL.host == F.gw, "seed \(seed), input \(String(decoding: b, as: UTF8.self))")
                #expect(UPnP.serviceTypes.contains(s.serviceType), "seed \(seed)")
            }
            if case .success(let t) = UPnP.scan(b) { #expect(t.count <= b.count, "seed \(seed)") }
        }
    }

    @Test func fuzz_soapAnswersAndFaults_neverTrap_andTheClientStaysBounded() {
        let seed = Self.seed(0x534F_4150)
        var rng = SeededRandom(seed: seed)
        let corpus = [Array(F.soapOK("GetExternalIPAddress", "<NewExternalIPAddress>11.200.0.11</NewExternalIPAddress>").utf8),
                      Array(F.fault(725, "OnlyPermanentLeasesSupported").utf8), Array(F.soapOK("AddPortMapping", "").utf8)]
        for i in 0..<20_000 {
            let b = Self.mutate(corpus[i % corpus.count], i, &rng)
            for status in [200, 500] {
                if case .success(.fault(let code, let d)) = UPnP.parseSOAP(.init(status: status, body: b), action: "AddPortMapping") {
                    #expect(status == 500 && d.count <= 200 && code == code, "seed \(seed)")
                }
            }
            // the client at each HTTP step, fed the mutated body
            var c = UPnP.Client(internalPort: 4001, settings: .init(localIP: [192, 168, 1, 11], lan: [F.lan]))
            _ = c.start(now: .zero)
            var out = c.onDatagram(i % 3 == 0 ? Self.mutate(F.ssdp, i, &rng) : F.ssdp, from: F.gw, now: .zero)
            for step in 0..<4 {
                guard case .http(let id, _, _)? = out.first else { break }
                let body: [UInt8] = step == i % 4 ? b : (step == 0 ? Array(F.description.utf8) : corpus[step == 1 ? 0 : 2])
                out = c.onHTTP(id: id, result: .success(.init(status: i % 2 == 0 ? 200 : 500, body: body)), now: .zero)
                #expect(out.count <= 2, "seed \(seed), step \(step)")
                for d in out {
                    if case .mapped(let ip, let port, _) = d { #expect(ip.count == 4 && port == 4001, "seed \(seed)") }
                }
            }
        }
    }
}
