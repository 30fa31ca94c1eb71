import Testing
@testable import LatticaCore

@Suite struct PeerIdTests {
    // libp2p/specs peer-ids.md, "Test vectors": Ed25519 and secp256k1 public keys as PublicKey protobufs.
    static let ed25519Proto = "080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e"
    static let secp256k1Proto = "08021221037777e994e452c21604f91de093ce415f5432f701dd8cd1a7a6fea0e630bfca99"

    @Test func ed25519SpecKey_decodesAndReencodesByteForByte() throws {
        let key = try PublicKeyProto(decoding: hex(Self.ed25519Proto)[...])
        #expect(key.type == .ed25519)
        #expect(key.data == hex("1ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e"))
        #expect(key.encoded() == hex(Self.ed25519Proto))
    }

    @Test func ed25519PeerId_isIdentityMultihashOfTheProtobuf() throws {
        let key = try PublicKeyProto(decoding: hex(Self.ed25519Proto)[...])
        let id = PeerId(publicKey: key)
        #expect(id.multihash == hex("0024" + Self.ed25519Proto))
        #expect(id == PeerId(ed25519PublicKey: key.data))
        #expect(id.publicKey == key)
        // Same key/id pair as the rust-libp2p and other implementations' tests.
        #expect(id.description == "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq")
        #expect(try PeerId(string: id.description) == id)
        #expect(try PeerId(string: id.cidString) == id)
        // CIDv1 cross-checked with Python's independent RFC 4648 base32 encoder.
        #expect(id.cidString == "bafzaajaiaejcahwr5d5ofrfbis4l5d6uwr57hu5tjodrypfm6yaq6dsc2r2pzyt6")
    }

    @Test func secp256k1PeerId_isIdentityBecauseItIs37Bytes() throws {
        let key = try PublicKeyProto(decoding: hex(Self.secp256k1Proto)[...])
        let id = PeerId(publicKey: key)
        #expect(id.multihash == hex("0025" + Self.secp256k1Proto))
        #expect(id.description.hasPrefix("16Uiu2HAm"))
        #expect(id.publicKey == key)
    }

    @Test func longKey_isHashedWithSha256() throws {
        let key = PublicKeyProto(type: .rsa, data: [UInt8](repeating: 7, count: 39))  // encodes to 43 bytes
        #expect(key.encoded().count == 43)
        let id = PeerId(publicKey: key)
        #expect(id.multihash == [0x12, 0x20] + PureSHA256.hash(key.encoded()))
        #expect(id.publicKey == nil)
        #expect(id.description.hasPrefix("Qm"))
        let short = PublicKeyProto(type: .rsa, data: [UInt8](repeating: 7, count: 38))  // 42 bytes: identity
        #expect(PeerId(publicKey: short).multihash.first == 0x00)
    }

    @Test func specStringExamples_base58AndCIDv1_nameTheSamePeer() throws {
        // peer-ids.md "String representation".
        let a = try PeerId(string: "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N")
        let b = try PeerId(string: "bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe")
        #expect(a == b)
        #expect(a.cidString == "bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe")
        #expect(b.description == "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N")
        let c = try PeerId(string: "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA")
        #expect(c.publicKey?.type == .ed25519)
    }

    @Test func parsing_rejectsMalformedIds() {
        #expect(throws: PeerIdError.badBase58) { try PeerId(string: "") }
        #expect(throws: PeerIdError.badBase58) { try PeerId(string: "Qm0OIl") }
        #expect(throws: PeerIdError.badMultihash) { try PeerId(string: "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5") }
        #expect(throws: PeerIdError.badCID) { try PeerId(string: "zQmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N") }
        // CIDv1 with dag-pb codec (0x70) instead of libp2p-key.
        let dagPb = "b" + Base32.encode([0x01, 0x70, 0x12, 0x20] + [UInt8](repeating: 1, count: 32))
        #expect(throws: PeerIdError.badCID) { try PeerId(string: dagPb) }
        #expect(throws: PeerIdError.badMultihash) { try PeerId(multihash: [0x11, 0x14] + [UInt8](repeating: 0, count: 20)) }
        #expect(throws: PeerIdError.badMultihash) { try PeerId(multihash: [0x12, 0x1f] + [UInt8](repeating: 0, count: 31)) }
        #expect(throws: PeerIdError.badPublicKey) { try PeerId(multihash: [0x00, 0x03, 0x08, 0x01, 0x12]) }
        #expect(throws: PeerIdError.unsupportedKeyType) { try PeerId(multihash: [0x00, 0x04, 0x08, 0x09, 0x12, 0x00]) }
        #expect(throws: PeerIdError.badPublicKey) { try PublicKeyProto(decoding: hex("08011201aa")[...]) }
    }

    @Test func ordering_isLexicographicOnMultihash() {
        let a = PeerId(ed25519PublicKey: [UInt8](repeating: 1, count: 32))
        let b = PeerId(ed25519PublicKey: [UInt8](repeating: 2, count: 32))
        #expect(a < b && !(b < a))
    }

    @Test func fuzz_peerIdDecodersNeverTrap() throws {
        var rng = SeededRandom(seed: 0x1D)
        let valid = try PeerId(string: "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA")
        let hashed = try PeerId(string: "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N")
        var accepted = 0
        for i in 0..<30_000 {
            let seed = i % 2 == 0 ? valid.multihash : hashed.multihash
            let input: [UInt8] = switch i % 3 {
            case 0: rng.bytes(Int(rng.next() % 48))
            case 1: rng.mutate(seed)
            default: rng.truncate(seed)
            }
            if let id = try? PeerId(multihash: input) {
                accepted += 1
                #expect(try PeerId(string: id.description) == id)
                #expect(try PeerId(string: id.cidString) == id)
            }
            let text = i % 2 == 0 ? valid.description : hashed.cidString
            let mutated = String(decoding: i % 3 == 0 ? rng.mutate(Array(text.utf8)) : rng.truncate(Array(text.utf8)), as: UTF8.self)
            if let id = try? PeerId(string: mutated) { #expect(id.description == mutated || id.cidString == mutated) }
        }
        #expect(accepted > 0)
    }
}
