import LatticaCore
import Testing
@testable import LatticaCrypto

/// libp2p peer-id spec test vectors (specs/peer-ids/peer-ids.md, "Test vectors").
@Suite struct Libp2pKeyTests {
    static let privateProtobuf = hex(
        "080112407e0830617c4a7de83925dfb2694556b12936c477a0e1feb2e148ec9da60fee7d1ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e")
    static let publicProtobuf = hex("080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e")
    static let secp256k1Private = hex("0802122053DADF1D5A164D6B4ACDB15E24AA4C5B1D3461BDBD42ABEDB0A4404D56CED8FB")

    @Test func keyFileDecoder_readsTheSpecPrivateKey_andReencodesItByteForByte() throws {
        let key = try KeyFile.decode(Self.privateProtobuf, path: "spec")
        #expect(key.publicKey.protobuf.encoded() == Self.publicProtobuf)
        #expect(KeyFile.encode(key) == Self.privateProtobuf)
        #expect(throws: KeyFileError(.wrongKeyType(2), path: "spec")) { try KeyFile.decode(Self.secp256k1Private, path: "spec") }
    }

    @Test func peerId_isTheIdentityMultihashOfTheProtobufPublicKey() throws {
        let key = try KeyFile.decode(Self.privateProtobuf, path: "spec").publicKey
        #expect(key.peerId.multihash == [0x00, 0x24] + Self.publicProtobuf)
        #expect(key.peerId.description.hasPrefix("12D3KooW"))
        #expect(key.peerId.publicKey == key.protobuf)
        #expect(try PeerId(string: key.peerId.description) == key.peerId)
    }

    @Test func publicKey_decodesFromProtobuf_andRejectsOtherTypesAndGarbage() throws {
        let key = try Ed25519PublicKey(protobufEncoded: Self.publicProtobuf)
        #expect(key.bytes == Array(Self.publicProtobuf.suffix(32)))
        #expect(throws: CryptoError.unsupportedKeyType) {
            try Ed25519PublicKey(protobufEncoded: hex("08021221037777e994e452c21604f91de093ce415f5432f701dd8cd1a7a6fea0e630bfca99"))
        }
        #expect(throws: CryptoError.badPublicKey) { try Ed25519PublicKey(protobufEncoded: Self.publicProtobuf.dropLast()) }
        #expect(throws: CryptoError.badPublicKey) { try Ed25519PublicKey(protobufEncoded: [0xff, 0xff]) }
    }
}
