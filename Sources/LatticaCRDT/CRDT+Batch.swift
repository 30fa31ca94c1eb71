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

    /// Deltas of one author under one Ed25519 signature (Docs/CRDT.md §5.3). Version 1: consecutive
    /// deltas (`firstSeq`, `firstSeq + 1`, …). Version 2, a **compacted** batch (§6.1): it covers
    /// the seqs `firstSeq…lastSeq` and carries only the deltas of that range still live when its
    /// author compacted, each with its seq; the seqs it leaves out were overwritten (their effect
    /// on the state is dominated by deltas that are still in some author's log). The signed bytes
    /// are kept as received, so forwarding and persisting never re-encode.
    public struct SignedBatch: Hashable, Sendable {
        /// Signatures are over this prefix followed by the body (domain separation).
        public static let domain = Array("lattica-crdt-batch-v1".utf8) + [0]
        public static let compactedDomain = Array("lattica-crdt-batch-v2".utf8) + [0]
        public static let version: UInt8 = 1
        public static let compactedVersion: UInt8 = 2

        public let author: PeerId
        public let signerKey: [UInt8]
        public let firstSeq: UInt64
        public let lastSeq: UInt64
        /// In seq order; version 1: every seq of the range, version 2: the live ones (maybe none).
        public let deltas: [Delta]
        /// The signed bytes: version ‖ author ‖ signer key ‖ first seq ‖ (v2: last seq) ‖ count ‖ deltas.
        public let body: [UInt8]
        public let signature: [UInt8]

        public var isCompacted: Bool { body.first == Self.compactedVersion }
        public var seqs: ClosedRange<UInt64> { firstSeq...lastSeq }
        /// body ‖ signature: what the wire carries and the shell persists.
        public var encoded: [UInt8] { body + signature }
        /// Bytes of `encoded` (what the log holds of it on the wire and on disk).
        public var byteCount: Int { body.count + signature.count }

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
            self.lastSeq = firstSeq + UInt64(deltas.count) - 1
            self.deltas = deltas
            self.body = w.bytes
            self.signature = signer.signature(Self.domain + w.bytes)
        }

        /// A compacted batch (version 2): covers `seqs` and carries `live`, the deltas of that
        /// range still live (seqs strictly increasing, inside the range; maybe none).
        public init(author: PeerId, compacting seqs: ClosedRange<UInt64>, live: [Delta], signer: Signer) {
            precondition(seqs.lowerBound > 0 && seqs.upperBound < UInt64(Int64.max), "seqs from 1, below 2^63")
            var w = ByteWriter(reserving: 80 + live.count * 48)
            w.u8(Self.compactedVersion)
            w.peer(author)
            w.raw(signer.publicKey)
            w.uvarint(seqs.lowerBound)
            w.uvarint(seqs.upperBound)
            w.count(live.count)
            var next = seqs.lowerBound
            for d in live {
                precondition(d.seq >= next && d.seq <= seqs.upperBound, "live seqs increase inside the range")
                w.uvarint(d.seq - next)
                d.encode(into: &w)
                next = d.seq + 1
            }
            self.author = author
            self.signerKey = signer.publicKey
            self.firstSeq = seqs.lowerBound
            self.lastSeq = seqs.upperBound
            self.deltas = live
            self.body = w.bytes
            self.signature = signer.signature(Self.compactedDomain + w.bytes)
        }

        /// Decodes body ‖ signature (either version). Does not verify (see `verify()`).
        public init(decoding bytes: ArraySlice<UInt8>, limits: Limits = .init()) throws(DecodeError) {
            var r = ByteReader(bytes)
            let version = try r.u8()
            guard version == Self.version || version == Self.compactedVersion else { throw .badValue("batch version \(version)") }
            author = try r.peer()
            signerKey = Array(try r.raw(Ed25519PublicKey.length))
            firstSeq = try r.uvarint()
            guard firstSeq > 0 else { throw .badValue("first seq 0") }
            var deltas: [Delta] = []
            if version == Self.version {
                let n = try r.count(max: limits.maxDeltasPerBatch, minElementBytes: 5, "deltas")
                guard n > 0 else { throw .badValue("empty batch") }
                guard firstSeq <= UInt64(Int64.max) - UInt64(n) else { throw .badValue("seq overflow") }
                deltas.reserveCapacity(n)
                for i in 0..<n { deltas.append(try Delta(from: &r, seq: firstSeq + UInt64(i), limits: limits)) }
                lastSeq = firstSeq + UInt64(n) - 1
            } else {
                lastSeq = try r.uvarint()
                guard lastSeq >= firstSeq, lastSeq < UInt64(Int64.max) else { throw .badValue("compacted range") }
                let n = try r.count(max: limits.maxDeltasPerBatch, minElementBytes: 6, "live deltas")
                guard UInt64(n) <= lastSeq - firstSeq + 1 else { throw .badValue("more live deltas than seqs") }
                deltas.reserveCapacity(n)
                var next = firstSeq
                for _ in 0..<n {
                    let gap = try r.uvarint()
                    guard next <= lastSeq, gap <= lastSeq - next else { throw .badValue("live seq outside the range") }
                    deltas.append(try Delta(from: &r, seq: next + gap, limits: limits))
                    next += gap + 1
                }
            }
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
            return key.isValidSignature(signature, for: (isCompacted ? Self.compactedDomain : Self.domain) + body) ? nil : .badSignature
        }

        /// The delta with seq `seq`, if the batch carries it (binary search).
        public func delta(at seq: UInt64) -> Delta? {
            guard seqs.contains(seq) else { return nil }
            if !isCompacted { return deltas[Int(seq - firstSeq)] }
            let i = deltas.partitioningIndex { $0.seq >= seq }
            return i < deltas.count && deltas[i].seq == seq ? deltas[i] : nil
        }

        /// The deltas with a seq above `have` (what applying the batch on top of `have` adds).
        public func deltas(after have: UInt64) -> ArraySlice<Delta> {
            deltas[deltas.partitioningIndex { $0.seq > have }...]
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
