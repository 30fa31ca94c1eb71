import LatticaAPI
import LatticaCore
import LatticaCRDT

extension CRDTService {
    /// `meta.set`, `meta.add`, `meta.remove`, `meta.incr`, `meta.get`, `meta.list`, `meta.log`, `sync`.
    func registerMethods(_ ctx: ServiceContext) {
        ctx.method(Methods.MetaSet.self) { [self] p in
            let v = try Self.value(p.value, type: p.type, field: "value")
            return try await self.write(ctx, p.multiValue == true ? .multiValue(p.path, v) : .set(p.path, v))
        }
        ctx.method(Methods.MetaAdd.self) { [self] p in
            try await self.write(ctx, .add(p.path, try Self.value(p.element, type: p.type, field: "element")))
        }
        ctx.method(Methods.MetaRemove.self) { [self] p in
            try await self.write(ctx, .remove(p.path, try Self.value(p.element, type: p.type, field: "element")))
        }
        ctx.method(Methods.MetaIncrement.self) { [self] p in
            try await self.write(ctx, .increment(p.path, by: Int64(p.by ?? 1)))
        }
        ctx.method(Methods.MetaGet.self) { [self] p in
            try await ctx.onLoop { done in done(.success(self.get(p.path))) }
        }
        ctx.method(Methods.MetaList.self) { [self] p in
            try await ctx.onLoop { done in done(.success(MetaListResult(paths: self.crdt.state.paths(prefix: p.prefix ?? "")))) }
        }
        ctx.method(Methods.MetaLog.self) { [self] p in
            try await ctx.onLoop { done in
                let n = p.limit ?? 20
                done(.success(MetaLogResult(entries: Array(self.recent.suffix(n).reversed()))))
            }
        }
        ctx.method(Methods.Sync.self) { [self] p in
            try await ctx.onLoop { done in
                if p.now == true { self.apply(self.crdt.syncNow(now: self.loop.now)) }
                done(.success(self.syncStatus()))
            }
        }
    }

    /// One write through the instance on the loop thread; acknowledged once persisted.
    func write(_ ctx: ServiceContext, _ w: CRDT.Write) async throws -> MetaWriteResult {
        let r: Result<MetaWriteResult, ControlErrorBody> = try await ctx.onLoop { done in
            do throws(CRDT.WriteError) {
                let (seq, failed) = try self.write([w])
                if failed {
                    done(.success(.failure(ControlErrorBody(code: "failed", message: "the store cannot commit (\(self.degraded ?? "see the daemon log")); it takes no writes until latticad restarts"))))
                    return
                }
                let clock = self.crdt.batches(of: self.crdt.localPeer).last?.deltas.last.map { "\($0.time)" } ?? ""
                done(.success(.success(MetaWriteResult(path: w.path, author: self.crdt.localPeer.description, seq: seq, clock: clock,
                                                       stateHash: Hex.encode(self.crdt.state.stateHash)))))
            } catch let e {
                done(.success(.failure(Self.describe(e))))
            }
        }
        return try r.get()
    }

    static func describe(_ e: CRDT.WriteError) -> ControlErrorBody {
        switch e {
        case .rejected(let why, let path):
            let rule = switch why {
            case .notAuthorised: "this node may not write it (Docs/CRDT.md: run config by its creator, members/progress/reports by their peer)"
            case .unknownNamespace: "its namespace is unknown (kv/…, run/<id>/config, members, checkpoints, progress/<peer>, reports/<peer>)"
            case .badPath: "the path is malformed"
            case .valueTooLarge: "the value is too large"
            case .wrongType: "the value has the wrong type for this path"
            default: "\(why.rawValue)"
            }
            return .badRequest("cannot write '\(path.prefix(256))': \(rule)")
        case .typeMismatch(let path, let holds, let write):
            return .badRequest("'\(path.prefix(256))' holds a \(holds) (typed by its first write); this is a \(write) write")
        case .noWrites:
            return .badRequest("nothing to write")
        }
    }

    /// A value from its text, as `type` says.
    static func value(_ text: String, type: String?, field: String) throws -> CRDT.Value {
        switch type ?? "string" {
        case "int":
            guard let i = Int64(text) else { throw ControlErrorBody.badRequest("'\(field)' is not a 64-bit integer") }
            return .int(i)
        case "bool":
            guard let b = Bool(text) else { throw ControlErrorBody.badRequest("'\(field)' is not true or false") }
            return .bool(b)
        case "hex":
            guard let b = Hex.decode(text) else { throw ControlErrorBody.badRequest("'\(field)' is not hex") }
            return .bytes(b)
        default:
            return .string(text)
        }
    }

    /// Loop thread.
    func get(_ path: String) -> MetaGetResult {
        guard let entry = crdt.state.entries[path] else {
            return MetaGetResult(path: path, kind: "none", value: nil, elements: [], author: nil, clock: nil, conflicts: [])
        }
        // A kv/ path written concurrently as two kinds keeps both; the first is visible.
        let others = entry.variants.dropFirst().map { "\($0.object.kind): \(Self.summary($0.object))" }
        switch entry.visible {
        case .register(let r):
            return MetaGetResult(path: path, kind: "register", value: r.value.map(Self.render), elements: [],
                                 author: r.stamp?.author.description, clock: r.stamp.map { "\($0.time)" }, conflicts: others)
        case .map(let m):
            return MetaGetResult(path: path, kind: "map", value: nil, elements: m.live.map { "\($0.key)=\(Self.render($0.value))" },
                                 author: nil, clock: nil, conflicts: others)
        case .set(let s):
            return MetaGetResult(path: path, kind: "set", value: nil, elements: s.elements.map(Self.render), author: nil, clock: nil, conflicts: others)
        case .counter(let c):
            return MetaGetResult(path: path, kind: "counter", value: String(c.value), elements: [], author: nil, clock: nil, conflicts: others)
        case .multiValue(let m):
            let vs = m.values
            return MetaGetResult(path: path, kind: "multi_value", value: vs.first.map { Self.render($0.value) },
                                 elements: vs.map { Self.render($0.value) }, author: vs.first?.dot.author.description, clock: nil,
                                 conflicts: vs.dropFirst().map { "\(Self.render($0.value)) (by \($0.dot.author))" } + others)
        }
    }

    static func summary(_ o: CRDT.Object) -> String {
        switch o {
        case .register(let r): r.value.map(render) ?? "(empty)"
        case .map(let m): m.live.map { "\($0.key)=\(render($0.value))" }.joined(separator: ",")
        case .set(let s): s.elements.map(render).joined(separator: ",")
        case .counter(let c): String(c.value)
        case .multiValue(let m): m.values.map { render($0.value) }.joined(separator: ",")
        }
    }

    /// Loop thread.
    func syncStatus() -> SyncResult {
        let now = loop.now
        let peers = crdt.syncStatus().map { s in
            SyncResult.Peer(peerId: s.peer.description, lag: s.lag, theyLack: s.theyLack, weLack: s.weLack,
                            lastSyncSeconds: s.lastSync.map { (now - $0).secondsDouble })
        }
        return SyncResult(stateHash: Hex.encode(crdt.state.stateHash), deltas: crdt.versions.total,
                          authors: crdt.versions.authors, paths: crdt.state.entries.count, peers: peers,
                          logBytes: crdt.logBytes, logDeltas: crdt.logDeltas, compactions: crdt.metrics.compactions)
    }
}
