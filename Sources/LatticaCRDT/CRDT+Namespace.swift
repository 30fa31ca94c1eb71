public import LatticaCore

extension CRDT {
    /// Where a path lives and so which rule its writes obey (Docs/CRDT.md §3).
    ///
    /// Paths are printable ASCII (0x21…0x7E) segments joined by `/`, none empty: byte equality is
    /// then string equality (no Unicode normalisation can make two nodes disagree about a key).
    /// A run id is `<creator peer id>` or `<creator peer id>.<name>` (name: `[A-Za-z0-9_-]+`):
    /// the creator is encoded in the id, so "only the creator writes the config" is checked from
    /// the delta alone, in the same way on every node, whatever arrived first.
    public enum Namespace: Hashable, Sendable {
        /// `kv/<key…>`: open; the CRDT kind is fixed by the first write (see `State`).
        case kv
        /// `run/<id>/config`: LWW map, written by the run's creator only.
        case runConfig(run: String)
        /// `run/<id>/members`: OR-set of peer ids (as strings); a peer adds or removes only itself.
        case runMembers(run: String)
        /// `run/<id>/checkpoints`: LWW map, key = version (decimal), value = `Checkpoint` record.
        /// The format before per-node checkpoints: still accepted (logs persisted by older
        /// nodes), never written. Every version was a new key, so it grew with a run's length.
        case runCheckpoints(run: String)
        /// `run/<id>/checkpoints/<peer>`: LWW map written by `<peer>` only, with at most two keys:
        /// `latest` (the node's newest checkpoint record) and `merged` (its final merge's model).
        /// Overwritten in place, so its size does not grow with the run.
        case runNodeCheckpoints(run: String, peer: String)
        /// `run/<id>/progress/<peer>`: LWW register with a `Progress` record, written by `<peer>` only.
        case runProgress(run: String, peer: String)
        /// `run/<id>/reports/<peer>`: LWW map, key = accused peer id, value = `Report` record;
        /// written by `<peer>` (the accuser) only.
        case runReports(run: String, peer: String)

        /// The kind the namespace holds; `nil` for `kv` (any kind, fixed by first use).
        public var kind: Kind? {
            switch self {
            case .kv: nil
            case .runConfig, .runCheckpoints, .runNodeCheckpoints, .runReports: .map
            case .runMembers: .set
            case .runProgress: .register
            }
        }

        public static func parse(_ path: String, limits: Limits = .init()) -> Result<Namespace, RejectReason> {
            let utf8 = path.utf8
            let slash = UInt8(ascii: "/")
            // One pass over the bytes: printable ASCII, no empty segment (no leading, trailing or double slash).
            var previous = slash
            for b in utf8 {
                guard b >= 0x21 && b <= 0x7E, !(b == slash && previous == slash) else { return .failure(.badPath) }
                previous = b
            }
            guard !utf8.isEmpty, utf8.count <= limits.maxPathLength, previous != slash else { return .failure(.badPath) }
            // `kv/…` is the hot path: no segments to cut out.
            if utf8.starts(with: "kv/".utf8) { return .success(.kv) }
            let segments = utf8.split(separator: slash).map { String(decoding: $0, as: UTF8.self) }
            guard segments.count >= 3, segments[0] == "run" else { return .failure(.unknownNamespace) }
            let run = segments[1]
            guard creator(ofRun: run) != nil else { return .failure(.badPath) }
            switch (segments[2], segments.count) {
            case ("config", 3): return .success(.runConfig(run: run))
            case ("members", 3): return .success(.runMembers(run: run))
            case ("checkpoints", 3): return .success(.runCheckpoints(run: run))
            case ("checkpoints", 4): return .success(.runNodeCheckpoints(run: run, peer: segments[3]))
            case ("progress", 4): return .success(.runProgress(run: run, peer: segments[3]))
            case ("reports", 4): return .success(.runReports(run: run, peer: segments[3]))
            default: return .failure(.unknownNamespace)
            }
        }

        /// The creator's peer id text of a run id, or `nil` if the id is malformed.
        public static func creator(ofRun run: String) -> Substring? {
            let parts = run.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
            guard let peer = parts.first, (try? PeerId(string: String(peer))) != nil else { return nil }
            if parts.count == 2 {
                let nameOK = !parts[1].isEmpty && parts[1].utf8.allSatisfy {
                    ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D || $0 == 0x5F
                }
                guard nameOK else { return nil }
            }
            return peer
        }

        /// Checks one delta against its namespace's rule. `author` is the batch author's peer id
        /// text. Stateless: every node reaches the same verdict for the same delta.
        public static func check(_ delta: Delta, author: PeerId, authorText: @autoclosure () -> String,
                                 limits: Limits) -> RejectReason? {
            let ns: Namespace
            switch parse(delta.path, limits: limits) {
            case .success(let n): ns = n
            case .failure(let r): return r
            }
            let op = delta.op
            if let kind = ns.kind, kind != op.kind { return .wrongType }
            if let v = op.value, v.contentLength > limits.maxValueLength { return .valueTooLarge }
            if let k = op.mapKey {
                guard !k.utf8.isEmpty, k.utf8.allSatisfy({ $0 >= 0x20 && $0 <= 0x7E }) else { return .badPath }
                guard k.utf8.count <= limits.maxKeyLength else { return .valueTooLarge }
            }
            if op.observed.count > limits.maxObservedDots { return .valueTooLarge }
            switch ns {
            case .kv:
                return nil
            case .runConfig(let run):
                return creator(ofRun: run).map(String.init) == authorText() ? nil : .notAuthorised
            case .runMembers:
                let me = authorText()
                guard op.value == .string(me), op.observed.allSatisfy({ $0.author == author }) else { return .notAuthorised }
                return nil
            case .runCheckpoints:
                guard case .mapSet(let key, let value) = op else { return .wrongType }
                guard let version = UInt64(key), String(version) == key else { return .wrongType }
                return Checkpoint(value: value) == nil ? .wrongType : nil
            case .runNodeCheckpoints(_, let peer):
                guard peer == authorText() else { return .notAuthorised }
                guard case .mapSet(let key, let value) = op, Checkpoint.nodeKeys.contains(key) else { return .wrongType }
                return Checkpoint(value: value) == nil ? .wrongType : nil
            case .runProgress(_, let peer):
                guard peer == authorText() else { return .notAuthorised }
                return op.value.flatMap(Progress.init(value:)) == nil ? .wrongType : nil
            case .runReports(_, let peer):
                guard peer == authorText() else { return .notAuthorised }
                guard let accused = op.mapKey, (try? PeerId(string: accused)) != nil else { return .wrongType }
                if case .mapSet(_, let value) = op, Report(value: value) == nil { return .wrongType }
                return nil
            }
        }
    }
}
