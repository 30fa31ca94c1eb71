import Testing
@testable import LatticaCore

@Suite struct MultiaddrTests {
    static let qm = "QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNKC"
    static let qmBytes = "a503221220d52ebb89d85b02a284948203a62ff28389c57c9f42beec4ec20db76a68911c0b"

    // Binary vectors from multiformats/rust-multiaddr tests/lib.rs and go-multiaddr multiaddr_test.go.
    static let vectors: [(String, String)] = [
        ("/ip4/1.2.3.4", "0401020304"),
        ("/ip4/0.0.0.0", "0400000000"),
        ("/ip6/::1", "2900000000000000000000000000000001"),
        ("/ip6/2601:9:4f81:9700:803e:ca65:66e8:c21", "29260100094f819700803eca6566e80c21"),
        ("/udp/0", "91020000"),
        ("/tcp/0", "060000"),
        ("/udp/1234", "910204d2"),
        ("/tcp/65535", "06ffff"),
        ("/p2p/\(qm)", qmBytes),
        ("/p2p/\(qm)/tcp/1234", qmBytes + "0604d2"),
        ("/ip4/127.0.0.1/udp/1234", "047f000001910204d2"),
        ("/ip4/127.0.0.1/tcp/4321", "047f0000010610e1"),
        ("/ip4/127.0.0.1/udp/1234/ip4/127.0.0.1/tcp/4321", "047f000001910204d2047f0000010610e1"),
        ("/ip4/127.0.0.1/p2p/\(qm)/tcp/1234", "047f000001" + qmBytes + "0604d2"),
        ("/ip6/2001:8a0:7ac5:4201:3ac9:86ff:fe31:7095/tcp/8000/ws/p2p/\(qm)",
         "29200108a07ac542013ac986fffe317095061f40dd03" + qmBytes),
        ("/ip6/2001:8a0:7ac5:4201:3ac9:86ff:fe31:7095/tcp/8000/wss/p2p/\(qm)",
         "29200108a07ac542013ac986fffe317095061f40de03" + qmBytes),
        ("/ip4/127.0.0.1/tcp/9090/p2p-circuit/p2p/\(qm)", "047f000001062382a202" + qmBytes),
        ("/ip4/127.0.0.1/tcp/127/tls/ws", "047f00000106007fc003dd03"),
        ("/ip4/127.0.0.1/tcp/127/noise", "047f00000106007fc603"),
        ("/ip4/127.0.0.1/udp/1234/webtransport/certhash/uEiDDq4_xNyDorZBH3TlGazyJdOWSwvo4PUo5YHFMrvDE8g",
         "047f000001910204d2d103d203221220c3ab8ff13720e8ad9047dd39466b3c8974e592c2fa383d4a3960714caef0c4f2"),
        ("/dns/sjc-1.bootstrap.libp2p.io/tcp/1234/p2p/QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN",
         "3519736a632d312e626f6f7473747261702e6c69627032702e696f0604d2"
            + "a50322122006b3608aa000274049eb28ad8e793a26ff6fab281a7d3bd77cd18eb745dfaabb"),
    ]

    @Test func textAndBinary_matchReferenceVectors_bothWays() throws {
        for (text, h) in Self.vectors {
            let fromText = try Multiaddr(text)
            #expect(toHex(fromText.bytes) == h, "\(text)")
            let fromBytes = try Multiaddr(bytes: hex(h))
            #expect(fromBytes == fromText)
            #expect(fromBytes.description == text)
        }
    }

    @Test func quicV1AndDnsVariants_useTheMulticodecTableCodes() throws {
        // quic-v1 is 0x01cd in table.csv (0x01cc is the older draft "quic").
        let a = try Multiaddr("/dns4/example.com/udp/443/quic-v1")
        #expect(toHex(a.bytes) == "360b" + toHex(Array("example.com".utf8)) + "910201bb" + "cd03")
        #expect(toHex(try Multiaddr("/dns6/a").bytes) == "370161")
        #expect(throws: MultiaddrError.unknownProtocol("0x1cc")) { try Multiaddr(bytes: hex("cc03")) }
    }

    @Test func ipfsPrefix_isAcceptedAsP2pAlias_andPrintedAsP2p() throws {
        let a = try Multiaddr("/ip4/1.2.3.4/tcp/80/ipfs/\(Self.qm)")
        #expect(a.description == "/ip4/1.2.3.4/tcp/80/p2p/\(Self.qm)")
        #expect(a.peerId == (try PeerId(string: Self.qm)))
        #expect(a.withoutPeerId.description == "/ip4/1.2.3.4/tcp/80")
        #expect(a.withoutPeerId.appending(.p2p(a.peerId!)) == a)
        let cid = try PeerId(string: Self.qm).cidString
        #expect(try Multiaddr("/p2p/\(cid)") == Multiaddr("/p2p/\(Self.qm)"))
    }

    @Test func relayAddress_peerIdIsTheLastP2pComponent() throws {
        let relay = PeerId(ed25519PublicKey: [UInt8](repeating: 1, count: 32))
        let target = PeerId(ed25519PublicKey: [UInt8](repeating: 2, count: 32))
        let a = Multiaddr([.ip4([10, 0, 0, 1]), .tcp(4001), .p2p(relay), .p2pCircuit, .p2p(target)])
        #expect(a.peerId == target)
        #expect(a.withoutPeerId.peerId == relay)
        #expect(try Multiaddr(a.description) == a)
        #expect(try Multiaddr(bytes: a.bytes) == a)
    }

    @Test func ip6_parsesEveryTextForm_andPrintsRFC5952() throws {
        let cases: [(String, String)] = [
            ("::", "::"), ("::1", "::1"), ("1::", "1::"), ("0:0:0:0:0:0:0:0", "::"),
            ("2001:DB8:0:0:8:800:200C:417A", "2001:db8::8:800:200c:417a"),
            ("2001:0db8:0000:0000:0000:ff00:0042:8329", "2001:db8::ff00:42:8329"),
            ("1:0:0:2:0:0:0:3", "1:0:0:2::3"), ("1:0:0:2:0:0:3:4", "1::2:0:0:3:4"),
            ("1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"), ("::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8"),
            ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"), ("fe80::1:0:0:1", "fe80::1:0:0:1"),
            ("::ffff:127.0.0.1", "::ffff:127.0.0.1"), ("::FFFF:7f00:1", "::ffff:127.0.0.1"),
            ("64:ff9b::192.0.2.33", "64:ff9b::c000:221"), ("1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304"),
        ]
        for (input, printed) in cases {
            let a = try Multiaddr("/ip6/" + input)
            #expect(a.description == "/ip6/" + printed, "\(input)")
            #expect(try Multiaddr(a.description) == a)
        }
        for badInput in [":", ":::", "1::2::3", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "12345::", "g::",
                         ":1::", "1::2:", "1.2.3.4::", "::1.2.3", "1:2:3:4:5:6:7:1.2.3.4", "::01.2.3.4", ""] {
            #expect(throws: MultiaddrError.self, "\(badInput)") { try Multiaddr("/ip6/" + badInput) }
        }
    }

    @Test func textParsing_rejectsMalformedAddresses() {
        // Mostly from rust-multiaddr's invalid list.
        for bad in ["", "/", "ip4/1.2.3.4", "/ip4", "/ip4/::1", "/ip4/fdpsofodsajfdoisa", "/ip4/1.2.3.04",
                    "/ip4/256.1.1.1", "/ip4/1.2.3", "/ip6", "/udp", "/tcp", "/udp/65536", "/tcp/65536", "/tcp/-1",
                    "/tcp/+1", "/ip4/127.0.0.1/udp/jfodsajfidosajfoidsa", "/ip4/127.0.0.1/tcp", "/ip4/127.0.0.1/p2p",
                    "/ip4/127.0.0.1/p2p/tcp", "/p2p-circuit/50", "/dns4", "/ip4/1.2.3.4//tcp/1", "/quic",
                    "/certhash/uEiDD", "/certhash/xEiDDq4"] {
            #expect(throws: MultiaddrError.self, "\(bad)") { try Multiaddr(bad) }
        }
        #expect(throws: MultiaddrError.unknownProtocol("onion")) { try Multiaddr("/onion/aaimaq4ygg2iegci:80") }
        #expect((try? Multiaddr("/ip4/1.2.3.4/tcp/1/")) == (try? Multiaddr("/ip4/1.2.3.4/tcp/1")))
    }

    @Test func binaryParsing_rejectsTruncatedUnknownAndBadValues() throws {
        #expect(throws: MultiaddrError.truncated) { try Multiaddr(bytes: hex("047f0000")) }
        #expect(throws: MultiaddrError.truncated) { try Multiaddr(bytes: hex("0604")) }
        #expect(throws: MultiaddrError.truncated) { try Multiaddr(bytes: hex("a503")) }
        #expect(throws: MultiaddrError.truncated) { try Multiaddr(bytes: hex("a5")) }
        #expect(throws: MultiaddrError.truncated) { try Multiaddr(bytes: hex("a503ff")) }
        #expect(throws: MultiaddrError.unknownProtocol("0x5")) { try Multiaddr(bytes: hex("05")) }
        #expect(throws: MultiaddrError.badValue("bad varint")) { try Multiaddr(bytes: hex("8000")) }
        #expect(throws: MultiaddrError.self) { try Multiaddr(bytes: hex("a50300")) }
        #expect(throws: MultiaddrError.self) { try Multiaddr(bytes: hex("3501ff")) }     // not UTF-8
        #expect(throws: MultiaddrError.self) { try Multiaddr(bytes: hex("35012f")) }     // "/"
        #expect(throws: MultiaddrError.self) { try Multiaddr(bytes: hex("3500")) }       // empty name
        #expect(throws: MultiaddrError.self) { try Multiaddr(bytes: hex("d2030212")) }   // certhash not a multihash
        #expect(try Multiaddr(bytes: [UInt8]()).components.isEmpty)
    }

    @Test func fuzz_binaryAndTextDecodersNeverTrap_andRoundTripWhatTheyAccept() throws {
        var rng = SeededRandom(seed: 0xADD7)
        let seeds = try Self.vectors.map { try Multiaddr($0.0) }
        var accepted = 0
        for i in 0..<30_000 {
            let seed = seeds[i % seeds.count]
            let input: [UInt8] = switch i % 3 {
            case 0: rng.bytes(Int(rng.next() % 48))
            case 1: rng.mutate(seed.bytes)
            default: rng.truncate(seed.bytes)
            }
            if let a = try? Multiaddr(bytes: input) {
                accepted += 1
                #expect(a.bytes == input)
                if !a.components.isEmpty { #expect(try Multiaddr(a.description) == a) }
            }
            let textBytes = i % 2 == 0 ? rng.mutate(Array(seed.description.utf8)) : rng.truncate(Array(seed.description.utf8))
            let text = String(decoding: textBytes, as: UTF8.self)
            if let a = try? Multiaddr(text), !a.components.isEmpty {
                #expect(try Multiaddr(bytes: a.bytes) == a)
                #expect(try Multiaddr(a.description) == a)
            }
        }
        #expect(accepted > 1_000)
    }
}
