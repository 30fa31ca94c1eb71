public import LatticaCore

extension CRDT {
    /// What the shell must do, in order. `.persist` comes before any `.send` of the same batch:
    /// the shell must commit it first (a local batch sent but not persisted could be signed
    /// again with other content after a crash: equivocation).
    public enum Directive: Hashable, Sendable {
        /// Send one framed message on a `/lattica/crdt/1.0.0` stream to `peer`.
        case send(Message, to: PeerId)
        /// Write the batch and the touched materialised entries in one SQLite transaction (first
        /// deleting the author's rows inside `replaces`, when set: a compacted batch took their place).
        case persist(Persist)
        case scheduleTimer(TimerID, at: Instant)
        case peerMisbehaved(PeerId, Misbehavior)
        /// Deltas became visible (for `lattica meta log`, watchers and tests).
        case applied(Applied)
    }

    /// One applied batch and the entries it changed.
    public struct Persist: Hashable, Sendable {
        /// `batch.encoded` is the row to store; `init(restoring:)` takes these back.
        public var batch: SignedBatch
        /// path → `State.encodedEntry(path)` after the batch (empty unless
        /// `Settings.persistMaterialised`).
        public var entries: [Entry]
        /// Set for a compacted batch (Docs/CRDT.md §6.1): delete the rows of `batch.author` whose
        /// seqs lie inside this range, in the same transaction, before writing `batch`.
        public var replaces: ClosedRange<UInt64>?
        public init(batch: SignedBatch, entries: [Entry], replaces: ClosedRange<UInt64>? = nil) {
            self.batch = batch; self.entries = entries; self.replaces = replaces
        }
        public struct Entry: Hashable, Sendable {
            public var path: String
            public var encoded: [UInt8]
        }
    }

    public struct Applied: Hashable, Sendable {
        public var author: PeerId
        /// The batch's seqs (some may have been applied before, see `deltas`).
        public var seqs: ClosedRange<UInt64>
        public var paths: [String]
        /// The deltas this batch newly applied, in seq order (for `lattica meta log`).
        public var deltas: ArraySlice<Delta>
        /// Written here (`onLocalWrite`) rather than received.
        public var local: Bool
    }

    /// A local write, before it becomes a delta (the instance adds the observed dots, the
    /// counter totals, the clock and the sequence number).
    public enum Write: Hashable, Sendable {
        /// LWW register.
        case set(String, Value)
        /// LWW map entry.
        case mapSet(String, key: String, Value)
        case mapRemove(String, key: String)
        /// OR-set element.
        case add(String, Value)
        case remove(String, Value)
        /// PN-counter.
        case increment(String, by: Int64)
        /// Multi-value register.
        case multiValue(String, Value)

        public var path: String {
            switch self {
            case .set(let p, _), .mapSet(let p, _, _), .mapRemove(let p, _), .add(let p, _), .remove(let p, _),
                 .increment(let p, _), .multiValue(let p, _): p
            }
        }

        public var kind: Kind {
            switch self {
            case .set: .register
            case .mapSet, .mapRemove: .map
            case .add, .remove: .set
            case .increment: .counter
            case .multiValue: .multiValue
            }
        }
    }

    /// A local write refused before anything was signed or applied.
    public enum WriteError: Error, Hashable, Sendable {
        case rejected(RejectReason, path: String)
        /// `kv/…` path already holds another kind (typed by first use).
        case typeMismatch(path: String, holds: Kind, write: Kind)
        case noWrites
    }

    /// Replication state with one peer (`lattica sync`).
    public struct PeerStatus: Hashable, Sendable {
        public var peer: PeerId
        /// When its version vector last arrived (nil: never).
        public var lastSync: Instant?
        /// Deltas we have that it lacked / it had that we lack, as of its last version vector.
        public var theyLack: UInt64
        public var weLack: UInt64
        /// `theyLack + weLack`: zero when in sync.
        public var lag: UInt64 { theyLack + weLack }
    }

    /// Counters, named after the Prometheus series the node exports (`lattica_crdt_…`).
    public struct Metrics: Hashable, Sendable {
        public var localBatches = 0                   // lattica_crdt_local_batches_total
        public var localDeltas = 0                    // lattica_crdt_local_deltas_total
        public var batchesApplied = 0                 // lattica_crdt_applied_batches_total (remote)
        public var deltasApplied = 0                  // lattica_crdt_applied_deltas_total (remote)
        public var restoredBatches = 0                // lattica_crdt_restored_batches_total
        public var rejected: [RejectReason: Int] = [:]  // lattica_crdt_rejected_batches_total{reason}
        public var batchesHeld = 0                    // lattica_crdt_held_batches_total
        public var batchesReleased = 0                // lattica_crdt_released_batches_total
        public var typeConflicts = 0                  // lattica_crdt_type_conflicts_total
        public var malformedMessages = 0              // lattica_crdt_malformed_messages_total
        public var misbehaviors = 0                   // lattica_crdt_peer_misbehaviors_total
        public var equivocations = 0                  // lattica_crdt_equivocations_total
        public var messagesReceived = 0               // lattica_crdt_messages_received_total
        public var messagesSent = 0                   // lattica_crdt_messages_sent_total
        public var antiEntropyExchanges = 0           // lattica_crdt_anti_entropy_total
        public var batchesPushed = 0                  // lattica_crdt_batches_sent_total{how="push"}
        public var batchesSynced = 0                  // lattica_crdt_batches_sent_total{how="sync"}
        public var compactions = 0                    // lattica_crdt_compactions_total{who="own"}
        public var compactionsAdopted = 0             // lattica_crdt_compactions_total{who="peer"}: a peer's compacted batch replaced our copy
        public init() {}

        public func rejected(_ r: RejectReason) -> Int { rejected[r] ?? 0 }
    }
}
