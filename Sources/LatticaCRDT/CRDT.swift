public import LatticaCore

/// The replicated state store for model metadata (issue 10): delta-state CRDTs on hybrid logical
/// clocks, signed by their authors in batches, checked against namespace write rules, replicated
/// by eager push and version-vector anti-entropy over `/lattica/crdt/1.0.0`. Sans-I/O:
/// `CRDT.Instance` takes events with `now` (and the wall clock) passed in and returns
/// `CRDT.Directive`s for a shell to carry out. See Docs/CRDT.md.
public enum CRDT {
    /// The stream protocol id of the sync protocol (Docs/CRDT.md §5).
    public static let protocolID = "/lattica/crdt/1.0.0"

    /// Wall-clock time in milliseconds since the Unix epoch, read by the shell and passed in.
    /// Hybrid logical clocks need real time (monotonic `Instant`s have per-node epochs).
    public struct WallTime: Hashable, Comparable, Sendable {
        public var milliseconds: UInt64
        public init(milliseconds: UInt64) { self.milliseconds = milliseconds }
        public static func < (a: Self, b: Self) -> Bool { a.milliseconds < b.milliseconds }
    }

    /// A dot: the identity of one delta, (author, per-author sequence number). OR-set adds and
    /// multi-value register writes are tagged with the dot of the delta that made them.
    public struct Dot: Hashable, Comparable, Sendable, CustomStringConvertible {
        public var author: PeerId
        public var seq: UInt64
        public init(author: PeerId, seq: UInt64) { self.author = author; self.seq = seq }
        public static func < (a: Dot, b: Dot) -> Bool { a.author == b.author ? a.seq < b.seq : a.author < b.author }
        public var description: String { "\(a: author)#\(seq)" }
    }

    /// Why a batch (or a delta in it) was rejected. Nothing of a rejected batch is applied.
    public enum RejectReason: String, Error, Hashable, Sendable, CaseIterable {
        /// The signature does not verify under the batch's signer key.
        case badSignature = "bad_signature"
        /// The signer key is not the key of the batch's author peer id (or the author is not Ed25519).
        case forgedAuthor = "forged_author"
        /// Every sequence number of the batch is already applied.
        case replayed
        /// The batch starts after a gap in the author's sequence and no hold slot was free.
        case gapped
        /// A delta's hybrid-logical-clock time is further ahead of our wall clock than allowed.
        case futureClock = "future_clock"
        /// The path is not in a known namespace.
        case unknownNamespace = "unknown_namespace"
        /// The path is malformed (empty segment, non-printable or non-ASCII byte) or too long.
        case badPath = "bad_path"
        /// The namespace's write rule forbids this author (config, members, progress, reports).
        case notAuthorised = "not_authorised"
        /// The operation is of another CRDT type than the namespace holds, or the value is not
        /// of the namespace's record type.
        case wrongType = "wrong_type"
        /// A value (or map key) over the size limit.
        case valueTooLarge = "value_too_large"
        /// A new author beyond `Settings.limits.maxAuthors`.
        case tooManyAuthors = "too_many_authors"
        /// A compacted batch that contradicts the author's batches we hold: a delta we hold
        /// differently (or dropped before), an OR-set or multi-value delta left out (those are never
        /// compacted), or a range that cuts across one of our batches (Docs/CRDT.md §6.1).
        case conflicting
    }

    /// A peer that sent us something no honest peer sends (each is also counted in `Metrics`).
    public enum Misbehavior: Hashable, Sendable {
        /// The message did not decode (or broke a decoding bound).
        case malformedMessage(DecodeError)
        /// A batch that no honest forwarder would pass on (honest peers verify before forwarding).
        case invalidBatch(RejectReason)
        /// More duplicate batches in one anti-entropy interval than `Settings.maxDuplicatesPerInterval`.
        case excessiveDuplicates(Int)
        /// Two different batches from one author for the same sequence numbers.
        case equivocation(author: PeerId, seq: UInt64)
    }

    /// Timers the instance asks for; stale ones are harmless.
    public enum TimerID: Hashable, Sendable {
        /// One anti-entropy exchange with a random connected peer, then re-armed.
        case antiEntropy
        /// Check whether our own log is worth compacting (and do it), then re-armed.
        case compaction
    }
}

extension DefaultStringInterpolation {
    /// A peer id shortened for messages: the last 6 characters of its base58 text.
    mutating func appendInterpolation(a peer: PeerId) {
        appendLiteral(String(peer.description.suffix(6)))
    }
}
