extension CRDT {
    /// Bounds on everything a peer can make us decode or hold (Docs/CRDT.md §6).
    public struct Limits: Hashable, Sendable {
        /// Authors in a version vector, and distinct authors the store accepts.
        public var maxAuthors = 4096
        public var maxBatchesPerMessage = 256
        public var maxDeltasPerBatch = 1000
        /// Bytes of an encoded message (the shell's frame limit).
        public var maxMessageBytes = 4 << 20
        /// Bytes of a path (ASCII).
        public var maxPathLength = 256
        /// Bytes of a map key (ASCII).
        public var maxKeyLength = 256
        /// Bytes of a value's content.
        public var maxValueLength = 4096
        /// Dots an OR-set or multi-value operation may name as observed.
        public var maxObservedDots = 256
        public init() {}
    }

    public struct Settings: Hashable, Sendable {
        public var limits = Limits()
        /// How far ahead of our wall clock a delta's HLC time may be (CockroachDB's max offset is
        /// 500 ms; we allow more for nodes without NTP discipline).
        public var maxClockSkewMilliseconds: UInt64 = 60_000
        /// Period of anti-entropy exchanges.
        public var antiEntropyInterval: Duration = .seconds(2)
        /// Random connected peers asked per anti-entropy period.
        public var antiEntropyFanout = 1
        /// Connected peers a newly applied remote batch is forwarded to (epidemic push); local
        /// batches go to every connected peer up to `maxPushPeers`.
        public var forwardFanout = 2
        public var maxPushPeers = 64
        /// Connected peers tracked (others are ignored until one leaves).
        public var maxPeers = 1024
        /// Deltas per locally signed batch (one signature each), and its size bound in bytes
        /// (well under `limits.maxMessageBytes`, so any batch fits in a message).
        public var localBatchSize = 500
        public var localBatchBytes = 1 << 20
        /// Verified batches waiting for an earlier sequence number of their author: in total and
        /// per author. When full, a gapped batch is rejected (`gapped`) and anti-entropy brings it later.
        public var maxHeldBatches = 1024
        public var maxHeldBatchesPerAuthor = 64
        /// Duplicate batches one peer may send per anti-entropy interval before it is reported.
        public var maxDuplicatesPerInterval = 4096
        /// Put the materialised entries of the touched paths into each `.persist` (the shell writes
        /// them in the same transaction as the batch).
        public var persistMaterialised = true
        /// Compaction of our own log (Docs/CRDT.md §6.1), checked every `compactionInterval`: it
        /// runs when our log holds at least `compactionMinBatches` batches and fewer than
        /// `compactionMaxLiveFraction` of its deltas are still live. 0 batches: never.
        public var compactionInterval: Duration = .seconds(30)
        public var compactionMinBatches = 32
        public var compactionMaxLiveFraction = 0.5
        public init() {}
    }
}
