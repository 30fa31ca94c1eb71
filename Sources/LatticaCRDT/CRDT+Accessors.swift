public import LatticaCore

extension CRDT {
    /// A run id: the creator's peer id, optionally `.name` (Docs/CRDT.md §3).
    public struct RunID: Hashable, Sendable, CustomStringConvertible {
        public let description: String

        public init(creator: PeerId, name: String? = nil) {
            description = creator.description + (name.map { "." + $0 } ?? "")
        }

        /// Parses and checks a run id (its creator part must be a peer id).
        public init?(_ s: String) {
            guard Namespace.creator(ofRun: s) != nil else { return nil }
            description = s
        }

        public var creator: PeerId? { Namespace.creator(ofRun: description).flatMap { try? PeerId(string: String($0)) } }

        public var config: String { "run/\(description)/config" }
        public var members: String { "run/\(description)/members" }
        /// The shared checkpoint map of the format before per-node checkpoints (read, never written).
        public var checkpoints: String { "run/\(description)/checkpoints" }
        public func checkpoints(_ peer: PeerId) -> String { "run/\(description)/checkpoints/\(peer)" }
        public func progress(_ peer: PeerId) -> String { "run/\(description)/progress/\(peer)" }
        public func reports(_ reporter: PeerId) -> String { "run/\(description)/reports/\(reporter)" }
    }
}

extension CRDT.Write {
    /// `run/<id>/config` entry (the creator only: model, dataset, aggregator, hyper-parameters).
    public static func config(_ run: CRDT.RunID, _ key: String, _ value: CRDT.Value) -> Self { .mapSet(run.config, key: key, value) }
    public static func join(_ run: CRDT.RunID, as peer: PeerId) -> Self { .add(run.members, .string(peer.description)) }
    public static func leave(_ run: CRDT.RunID, as peer: PeerId) -> Self { .remove(run.members, .string(peer.description)) }
    /// `peer`'s checkpoint record: its latest (overwriting the one before), or with `merged` the
    /// model of its final merge. Its version is the record's step (`merged`: step + 1).
    public static func checkpoint(_ run: CRDT.RunID, of peer: PeerId, merged: Bool = false, _ c: CRDT.Checkpoint) -> Self {
        .mapSet(run.checkpoints(peer), key: merged ? CRDT.Checkpoint.mergedKey : CRDT.Checkpoint.latestKey, c.value)
    }
    public static func progress(_ run: CRDT.RunID, of peer: PeerId, _ p: CRDT.Progress) -> Self { .set(run.progress(peer), p.value) }
    public static func report(_ run: CRDT.RunID, by reporter: PeerId, against accused: PeerId, _ r: CRDT.Report) -> Self {
        .mapSet(run.reports(reporter), key: accused.description, r.value)
    }
    public static func withdrawReport(_ run: CRDT.RunID, by reporter: PeerId, against accused: PeerId) -> Self {
        .mapRemove(run.reports(reporter), key: accused.description)
    }
}

extension CRDT {
    /// What `lattica meta get --json` prints for one path.
    public enum Reading: Hashable, Sendable {
        /// An LWW register's value (nil: never written) with the winning stamp.
        case register(Value?, Stamp?)
        /// Live map entries by key, each with its stamp.
        case map([String: Value], stamps: [String: Stamp])
        /// OR-set elements in canonical order.
        case set([Value])
        case counter(Int64)
        /// Every concurrent value with the dot that wrote it (more than one: a conflict).
        case multiValue([(dot: Dot, value: Value)])

        public static func == (a: Reading, b: Reading) -> Bool {
            switch (a, b) {
            case let (.register(x, s), .register(y, t)): x == y && s == t
            case let (.map(x, s), .map(y, t)): x == y && s == t
            case let (.set(x), .set(y)): x == y
            case let (.counter(x), .counter(y)): x == y
            case let (.multiValue(x), .multiValue(y)): x.map(\.dot) == y.map(\.dot) && x.map(\.value) == y.map(\.value)
            default: false
            }
        }

        public func hash(into h: inout Hasher) {
            switch self {
            case .register(let v, let s): h.combine(0); h.combine(v); h.combine(s)
            case .map(let m, _): h.combine(1); h.combine(m)
            case .set(let s): h.combine(2); h.combine(s)
            case .counter(let c): h.combine(3); h.combine(c)
            case .multiValue(let m): h.combine(4); h.combine(m.map(\.dot))
            }
        }
    }
}

extension CRDT.State {
    /// The visible object at `path`, read out.
    public func read(_ path: String) -> CRDT.Reading? {
        switch object(at: path) {
        case nil: return nil
        case .register(let r)?: return .register(r.value, r.stamp)
        case .map(let m)?:
            let live = m.live
            return .map(Dictionary(uniqueKeysWithValues: live.map { ($0.key, $0.value) }),
                        stamps: Dictionary(uniqueKeysWithValues: live.map { ($0.key, $0.stamp) }))
        case .set(let s)?: return .set(s.elements)
        case .counter(let c)?: return .counter(c.value)
        case .multiValue(let m)?: return .multiValue(m.values)
        }
    }

    func map(_ path: String) -> CRDT.LWWMap? {
        if case .map(let m)? = object(at: path) { return m }
        return nil
    }

    public func config(of run: CRDT.RunID) -> [String: CRDT.Value] {
        (map(run.config)?.live ?? []).reduce(into: [:]) { $0[$1.key] = $1.value }
    }

    /// Members in canonical order (peer ids that do not parse are left out).
    public func members(of run: CRDT.RunID) -> [PeerId] {
        guard case .set(let s)? = object(at: run.members) else { return [] }
        return s.elements.compactMap { v in
            if case .string(let t) = v { return try? PeerId(string: t) }
            return nil
        }.sorted()
    }

    /// Every node's checkpoint records (its latest and its merged model), and any of the shared
    /// map older nodes wrote, by version (then author). A node's version is the record's step;
    /// a merged model's, step + 1.
    public func checkpoints(of run: CRDT.RunID) -> [(version: UInt64, checkpoint: CRDT.Checkpoint, author: PeerId)] {
        var out: [(version: UInt64, checkpoint: CRDT.Checkpoint, author: PeerId)] = (map(run.checkpoints)?.live ?? []).compactMap { e in
            guard let v = UInt64(e.key), let c = CRDT.Checkpoint(value: e.value) else { return nil }
            return (v, c, e.stamp.author)
        }
        let prefix = run.checkpoints + "/"
        for path in paths(prefix: prefix) {
            let author: PeerId
            do { author = try PeerId(string: String(path.dropFirst(prefix.count))) } catch { continue }
            for e in map(path)?.live ?? [] {
                guard let c = CRDT.Checkpoint(value: e.value) else { continue }
                out.append((e.key == CRDT.Checkpoint.mergedKey ? c.step &+ 1 : c.step, c, author))
            }
        }
        return out.sorted { ($0.version, $0.author) < ($1.version, $1.author) }
    }

    public func progress(of run: CRDT.RunID, peer: PeerId) -> CRDT.Progress? {
        guard case .register(let r)? = object(at: run.progress(peer)), let v = r.value else { return nil }
        return CRDT.Progress(value: v)
    }

    /// The accusations `reporter` made, by accused peer.
    public func reports(in run: CRDT.RunID, by reporter: PeerId) -> [(accused: PeerId, report: CRDT.Report)] {
        (map(run.reports(reporter))?.live ?? []).compactMap { e in
            guard let p = try? PeerId(string: e.key), let r = CRDT.Report(value: e.value) else { return nil }
            return (p, r)
        }
    }

    /// Every accusation against `accused` in the run, by reporter.
    public func reports(in run: CRDT.RunID, against accused: PeerId) -> [(reporter: PeerId, report: CRDT.Report)] {
        let prefix = "run/\(run)/reports/"
        return paths(prefix: prefix).compactMap { path in
            guard let reporter = try? PeerId(string: String(path.dropFirst(prefix.count))),
                  let v = map(path)?[accused.description], let r = CRDT.Report(value: v) else { return nil }
            return (reporter, r)
        }
    }
}
