import LatticaCore
import LatticaNAT
import Testing

/// The reservation voucher envelope as other implementations check it (Docs/INTEROP.md, relay).
@Suite struct RelayVoucherTests {
    @Test func payloadType_isTheTwoBytesGoAndPyLibp2pUse() {
        // go-libp2p circuitv2/proto/voucher.go `RecordCodec = []byte{0x03, 0x02}`; py-libp2p 0.8.1
        // relay/circuit_v2/resources.py `VOUCHER_PAYLOAD_TYPE = bytes([0x03, 0x02])`, compared byte
        // for byte. The uvarint of 0x0302 (82 06) made py-libp2p reject our vouchers.
        #expect(Relay.Voucher.payloadType == [0x03, 0x02])
        let signed = Relay.Voucher.signedBytes(payload: [0xAA])
        #expect(signed == [17] + Array("libp2p-relay-rsvp".utf8) + [2, 0x03, 0x02] + [1, 0xAA])
        let env = Relay.Voucher.envelope(publicKey: [1], payload: [0xAA], signature: [2])
        #expect(env == [0x0A, 1, 1, 0x12, 2, 0x03, 0x02, 0x1A, 1, 0xAA, 0x2A, 1, 2])
    }
}
