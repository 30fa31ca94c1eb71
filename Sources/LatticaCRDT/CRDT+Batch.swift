public import LatticaCore
public import LatticaCrypto

extension CRDT {
    /// Signs batches with the local identity key. A closure, so the shell may keep the key
    /// wherever it likes (the instance never sees the secret).
    public struct Signer: Sendable {
        /// The raw 32-byte Ed25519 public key.
        public let publicKey: [UInt8]
        let signature: @Sendable ([UInt8]) -> [UInt8]

        public init(publicKey: [UInt8], sign: @escaping @Sendable ([UInt8]) -> [UInt8]) {
            self.publicKey = publicKey
            self.signature = sign
        }

        public init(key: Ed25519PrivateKey) {
            self.init(publicKey: key.publicKey.bytes) { key.sign($0) }
        }

        public var peerId: PeerId { PeerId(ed25519PublicKey: publicKey) }
    }

    /// Consecutive deltas of one author under one Ed25519 signature (Docs/CRDT.md §5.2). The
    /// signed bytes are kept as received, so forwarding and persisting never re-encode.
    public struct SignedBatch: Hashable, Sendable {
        /// Signatures are over this prefix followed by the body (domain separation).
        public static let domain = Array("lattica-crdt-batch-v1".utf8) + [0]
        public static let version: UInt8 = 1

        public let author: PeerId
        public let signerKey: [UInt8]
        public let firstSeq: UInt64
        public let deltas: [Delta]
        /// The signed bytes: version ‖ author ‖ signer key ‖ first seq ‖ count ‖ deltas.
        public let body: [UInt8]
        public let signature: [UInt8]

        public var lastSeq: UInt64 { firstSeq + UInt64(deltas.count) - 1 }
        public var seqs: ClosedRange<UInt64> { firstSeq...lastSeq }
        /// body ‖ signature: what the wire carries and the shell persists.
        public var encoded: [UInt8] { body + signature }

        /// Encodes and signs `deltas` (seqs `firstSeq`, `firstSeq + 1`, … in order).
        public init(author: PeerId, firstSeq: UInt64, deltas: [Delta], signer: Signer) {
            precondition(!deltas.isEmpty && firstSeq > 0, "a batch holds at least one delta, seqs from 1")
            var w = ByteWriter(reserving: 64 + deltas.count * 48)
            w.u8(Self.version)
            w.peer(author)
            w.raw(signer.publicKey)
            w.uvarint(firstSeq)
            w.count(deltas.count)
            for (i, d) in deltas.enumerated() {
                precondition(d.seq == firstSeq + UInt64(i), "batch seqs must be consecutive")
                d.encode(into: &w)
            }
            self.author = author
            self.signerKey = signer.publicKey
            self.firstSeq = firstSeq
            self.deltas = deltas
            self.body = w.bytes
            self.signature = signer.signature(Self.domain + w.bytes)
        }

        /// Decodes body ‖ signature. Does not verify (see `verify()`).
        public init(decoding bytes: ArraySlice<UInt8>, limits: Limits = .init()) throws(DecodeError) {
            var r = ByteReader(bytes)
            let version = try r.u8()
            guard version == Self.version else { throw .badValue("batch version \(version)") }
            author = try r.peer()
            signerKey = Array(try r.raw(Ed25519PublicKey.length))
            firstSeq = try r.uvarint()
            guard firstSeq > 0 else { throw .badValue("first seq 0") }
            let n = try r.count(max: limits.maxDeltasPerBatch, minElementBytes: 5, "deltas")
            guard n > 0 else { throw .badValue("empty batch") }
            guard firstSeq <= UInt64(Int64.max) - UInt64(n) else { throw .badValue("seq overflow") }
            var deltas: [Delta] = []
            deltas.reserveCapacity(n)
            for i in 0..<n { deltas.append(try Delta(from: &r, seq: firstSeq + UInt64(i), limits: limits)) }
            self.deltas = deltas
            let bodyEnd = r.position
            signature = Array(try r.raw(Ed25519PrivateKey.signatureLength))
            try r.expectEnd()
            body = Array(bytes[bytes.startIndex..<bodyEnd])
        }

        /// `forgedAuthor` unless the signer key is the author's key (the peer id is derived from
        /// it), `badSignature` unless the signature verifies; `nil` when both hold.
        public func verify() -> RejectReason? {
            guard let key = try? Ed25519PublicKey(bytes: signerKey), key.peerId == author else { return .forgedAuthor }
            return key.isValidSignature(signature, for: Self.domain + body) ? nil : .badSignature
        }
    }

    /// One message of `/lattica/crdt/1.0.0` (one length-prefixed frame; Docs/CRDT.md §5.3).
    public enum Message: Hashable, Sendable {
        /// New batches, pushed eagerly.
        case push([SignedBatch])
        /// What the sender has: per author, its highest contiguous seq. `wantsReply`: send yours
        /// back too (the first half of an anti-entropy exchange).
        case versions(VersionVector, wantsReply: Bool)
        /// What the receiver lacked, in answer to `versions`; `more`: there is more, ask again.
        case missing([SignedBatch], more: Bool)
        /// SHA-256 of the sender's encoded version vector: the cheap opening of an anti-entropy
        /// exchange. Equal to the receiver's: in sync (answered with a summary if `wantsReply`);
        /// different: the receiver answers with its `versions(wantsReply: true)`.
        case summary(digest: [UInt8], wantsReply: Bool)
    }
}
