import LatticaCore

extension CRDT {
    /// A typed record as a `.bytes` value holding protobuf fields written by `build`.
    static func record(_ build: (inout ProtobufWriter) -> Void) -> Value {
        var w = ProtobufWriter()
        build(&w)
        return .bytes(w.bytes)
    }

    /// Visits the protobuf fields of a `.bytes` value; true only if it is `.bytes`, every field
    /// was accepted by `visit` and the bytes decoded to the end.
    static func fields(of value: Value, _ visit: (ProtobufField) -> Bool) -> Bool {
        guard case .bytes(let b) = value else { return false }
        var r = ProtobufReader(b)
        while let f = try? r.next() {
            guard visit(f) else { return false }
        }
        return r.isAtEnd
    }

    /// `run/<id>/checkpoints` entry: a model version's content hash, training step and metrics.
    /// The author is the entry's stamp author. Encoded as protobuf (fields in number order) in a
    /// `.bytes` value: `1: bytes content_hash (32)`, `2: uint64 step`,
    /// `3: repeated Metric {1: string name, 2: fixed64 value (IEEE 754 bits)}` (≤ 64 metrics).
    public struct Checkpoint: Hashable, Sendable {
        public var contentHash: [UInt8]
        public var step: UInt64
        public var metrics: [String: Double]

        public init(contentHash: [UInt8], step: UInt64, metrics: [String: Double] = [:]) {
            self.contentHash = contentHash; self.step = step; self.metrics = metrics
        }

        public static let maxMetrics = 64
        /// The keys of a node's checkpoint map (`run/<id>/checkpoints/<peer>`).
        public static let latestKey = "latest", mergedKey = "merged"
        public static let nodeKeys: Set<String> = [latestKey, mergedKey]

        public var value: Value {
            CRDT.record { w in
                w.bytes(1, contentHash)
                w.uint64(2, step)
                for (name, v) in metrics.sorted(by: { $0.key < $1.key }) {
                    var m = ProtobufWriter()
                    m.string(1, name)
                    m.fixed64(2, v.bitPattern)
                    w.message(3, m)
                }
            }
        }

        public init?(value: Value) {
            var hash: [UInt8]?, step: UInt64 = 0, metrics: [String: Double] = [:]
            let ok = CRDT.fields(of: value) { f in
                switch f {
                case .bytes(1, let h) where h.count == 32: hash = Array(h)
                case .varint(2, let s): step = s
                case .bytes(3, let m) where metrics.count < Self.maxMetrics:
                    var name: String?, v: Double?
                    let metricOK = CRDT.fields(of: .bytes(Array(m))) { g in
                        switch g {
                        case .bytes(1, _): name = g.stringValue; return name != nil
                        case .fixed64(2, let bits): v = Double(bitPattern: bits); return true
                        default: return false
                        }
                    }
                    guard metricOK, let name, let v else { return false }
                    metrics[name] = v
                default: return false
                }
                return true
            }
            guard ok, let hash else { return nil }
            self.init(contentHash: hash, step: step, metrics: metrics)
        }
    }

    /// `run/<id>/progress/<peer>`: `1: uint64 step`, `2: fixed64 loss`, `3: uint64 samples`,
    /// `4: fixed64 accuracy` (held-out accuracy in 0…1, IEEE 754 bits; written only when known, so a
    /// record without it has the bytes of the three-field record and older records decode as before).
    public struct Progress: Hashable, Sendable {
        public var step: UInt64
        public var loss: Double
        public var samples: UInt64
        public var accuracy: Double?

        public init(step: UInt64, loss: Double, samples: UInt64 = 0, accuracy: Double? = nil) {
            self.step = step; self.loss = loss; self.samples = samples; self.accuracy = accuracy
        }

        public var value: Value {
            CRDT.record { w in
                w.uint64(1, step)
                w.fixed64(2, loss.bitPattern)
                w.uint64(3, samples)
                if let accuracy { w.fixed64(4, accuracy.bitPattern) }
            }
        }

        public init?(value: Value) {
            var p = Progress(step: 0, loss: 0)
            let ok = CRDT.fields(of: value) { f in
                switch f {
                case .varint(1, let s): p.step = s
                case .fixed64(2, let bits): p.loss = Double(bitPattern: bits)
                case .varint(3, let s): p.samples = s
                case .fixed64(4, let bits): p.accuracy = Double(bitPattern: bits)
                default: return false
                }
                return true
            }
            guard ok else { return nil }
            self = p
        }
    }

    /// `run/<id>/reports/<accuser>` entry, keyed by the accused peer id: an accusation with
    /// the hashes of its evidence. `1: string reason`, `2: uint64 step`,
    /// `3: repeated bytes evidence (32 bytes each, 1…32 of them)`.
    public struct Report: Hashable, Sendable {
        public var reason: String
        public var step: UInt64
        public var evidence: [[UInt8]]

        public init(reason: String, step: UInt64, evidence: [[UInt8]]) { self.reason = reason; self.step = step; self.evidence = evidence }

        public static let maxEvidence = 32

        public var value: Value {
            CRDT.record { w in
                w.string(1, reason)
                w.uint64(2, step)
                for e in evidence { w.bytes(3, e) }
            }
        }

        public init?(value: Value) {
            var reason = "", step: UInt64 = 0, evidence: [[UInt8]] = []
            let ok = CRDT.fields(of: value) { f in
                switch f {
                case .bytes(1, _): guard let s = f.stringValue else { return false }; reason = s
                case .varint(2, let s): step = s
                case .bytes(3, let e) where e.count == 32 && evidence.count < Self.maxEvidence: evidence.append(Array(e))
                default: return false
                }
                return true
            }
            guard ok, !evidence.isEmpty else { return nil }
            self.init(reason: reason, step: step, evidence: evidence)
        }
    }
}
