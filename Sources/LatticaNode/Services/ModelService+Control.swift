import FoundationEssentials
import LatticaAPI
import LatticaCore
import LatticaModel

extension ModelService {
    /// `model.ls`, `model.pull`, `model.push`, `model.export`. Whole-file passes (import,
    /// resume scan, final check, export) run here, in the method's task, never on the loop.
    func registerMethods(_ ctx: ServiceContext) {
        let store = self.store, limits = settings.transfer
        ctx.method(Methods.ModelList.self) { [self] _ in
            let (models, active): ([Model.Manifest], Set<ModelID>) = try await ctx.onLoop { done in
                done(.success((self.models.values.sorted { $0.id < $1.id }, Set(self.pulls.keys))))
            }
            var partial: [ModelListResult.Partial] = []
            for name in ((try? FileManager.default.contentsOfDirectory(atPath: store.partialDir)) ?? []).sorted() {
                guard let id = ModelID(hex: name) else { continue }
                let m = store.readManifest(store.partialManifestPath(id), id: id, settings: limits)
                partial.append(.init(hash: id.hex, size: m?.size, bytesOnDisk: store.fileSize(store.partialPath(id)) ?? 0, active: active.contains(id)))
            }
            return ModelListResult(models: models.map { .init(hash: $0.id.hex, size: $0.size, chunks: $0.chunkCount, chunkSize: $0.chunkSize) },
                                   partial: partial)
        }
        ctx.method(Methods.ModelPush.self) { [self] p in
            let m: Model.Manifest
            do { m = try store.importFile(p.path, chunkShift: UInt8(p.chunkShift ?? Int(Model.defaultChunkShift)), settings: limits) } catch {
                throw ControlErrorBody(code: "failed", message: "\(error)")
            }
            try await ctx.onLoop { done in self.added(m); done(.success(())) }
            let told = await self.announce(m.id)
            return ModelPushResult(hash: m.id.hex, size: m.size, chunks: m.chunkCount, announced: told)
        }
        ctx.method(Methods.ModelExport.self) { [self] p in
            let id = ModelID(hex: p.hash)!
            let m: Model.Manifest? = try await ctx.onLoop { done in done(.success(self.models[id])) }
            guard let m else { throw ControlErrorBody(code: "not_found", message: "model \(id.hex) is not stored here") }
            do { try store.export(id, size: m.size, to: p.path) } catch { throw ControlErrorBody(code: "failed", message: "\(error)") }
            return ModelExportResult(hash: id.hex, path: p.path, size: m.size)
        }
        ctx.method(Methods.ModelPull.self) { [self] p in
            let id = ModelID(hex: p.hash)!
            var explicit: PeerId?
            if let s = p.peer {
                do { explicit = try PeerId(string: s) } catch { throw ControlErrorBody.badRequest("'peer' is not a peer id") }
            }
            return try await self.pull(ctx, id, from: explicit)
        }
    }

    /// The whole pull: manifest, resume scan, missing chunks from the first provider that has
    /// them, the final check of the blob, then the store and an announcement.
    func pull(_ ctx: ServiceContext, _ id: ModelID, from explicit: PeerId?) async throws -> ModelPullResult {
        let t0 = ContinuousClock.now
        let store = self.store
        func ms() -> Double { (ContinuousClock.now - t0).secondsDouble * 1000 }
        func onLoop<T: Sendable>(_ body: @escaping @Sendable (@escaping (Result<T, PullFailure>) -> Void) -> Void) async throws -> T {
            let r: Result<T, PullFailure> = try await ctx.onLoop { done in body { done(.success($0)) } }
            switch r {
            case .success(let v): return v
            case .failure(let e): throw ControlErrorBody(code: e.code, message: e.message)
            }
        }
        let begin: BeginPull = try await onLoop { done in done(self.beginPull(id)) }
        var known: Model.Manifest?
        switch begin {
        case .stored(let m):
            return ModelPullResult(hash: id.hex, size: m.size, chunks: m.chunkCount, chunksFetched: 0, chunksResumed: 0, bytesFetched: 0,
                                   peer: nil, alreadyStored: true, ms: ms())
        case .started(let m): known = m
        }
        do {
            let candidates: [(PeerId, [Multiaddr])]
            if let explicit { candidates = [(explicit, [])] } else { candidates = try await providers(id, ctx) }
            guard !candidates.isEmpty else { throw ControlErrorBody(code: "not_found", message: "no provider of model \(id.hex) found in the DHT") }
            var errors: [ControlErrorBody] = []
            var resumed: Int?
            var source: PeerId?
            var check: Task<Bool?, Never>?
            defer { check?.cancel() }
            for (peer, addrs) in candidates {
                do {
                    try await connect(ctx, peer, addrs)
                    let manifest: Model.Manifest
                    if let known { manifest = known } else {
                        manifest = try await onLoop { done in self.fetchManifest(id, from: peer) { done($0) } }
                        known = manifest
                        do { try store.writeFile(store.partialManifestPath(id), manifest.encoded) } catch {
                            throw ControlErrorBody(code: "failed", message: "\(error)")
                        }
                    }
                    if resumed == nil {
                        let have = store.scanPartial(id, manifest)
                        resumed = have.lazy.filter { $0 }.count
                        let m = manifest
                        let (written, cont) = AsyncStream<Int>.makeStream()
                        try await ctx.onLoop { done in self.setManifest(id, m, have: have, written: cont); done(.success(())) }
                        // The final read-back check trails the transfer, in this task's own task.
                        check = Task.detached {
                            var c = BlobCheck(store: store, id: id, manifest: m, have: have)
                            do {
                                try c.advance()
                                for await i in written { try c.written(i) }
                            } catch { return nil }
                            return c.verdict
                        }
                    }
                    try await onLoop { done in self.fetchMissing(id, from: peer) { done($0) } }
                    source = peer
                    break
                } catch let e as ControlErrorBody {
                    errors.append(e)
                }
            }
            guard let source, let manifest = known else {
                let kept: (Int, Int) = try await ctx.onLoop { done in
                    let p = self.pulls[id]
                    done(.success((p.map { $0.have.count - $0.missing } ?? 0, p?.have.count ?? 0)))
                }
                let why = errors.map(\.message).joined(separator: "; ")
                let code = errors.allSatisfy { $0.code == "not_found" } ? "not_found" : "failed"
                let resume = kept.1 > 0 ? " (\(kept.0) of \(kept.1) chunks kept; pull again to resume)" : ""
                throw ControlErrorBody(code: code, message: String((why + resume).prefix(2000)))
            }
            let (fetched, bytes): (Int, UInt64) = try await ctx.onLoop { done in
                let p = self.pulls[id]
                p?.closeFile()
                done(.success((p?.fetched ?? 0, p?.bytes ?? 0)))
            }
            // closeFile ended the stream of written chunks: the check has read all it will.
            let verdict = await check?.value
            do throws(ModelStoreError) {
                switch verdict {
                case true?: try store.commit(id, manifest)
                case false?:
                    store.discardPartial(id)
                    throw ModelStoreError.blobMismatch(id)
                case nil: try store.complete(id, manifest)  // the check could not cover it all: read it again
                }
            } catch {
                if error.isBlobMismatch { Self.rejected(.blobMismatch) }
                throw ControlErrorBody(code: "failed", message: "\(error)")
            }
            let m = manifest
            try await ctx.onLoop { done in self.added(m); self.endPull(id); done(.success(())) }
            Task { _ = await self.announce(id) }
            return ModelPullResult(hash: id.hex, size: m.size, chunks: m.chunkCount, chunksFetched: fetched, chunksResumed: resumed ?? 0,
                                   bytesFetched: bytes, peer: source.description, alreadyStored: false, ms: ms())
        } catch {
            _ = try? await ctx.onLoop { done in self.endPull(id); done(.success(())) }
            throw error
        }
    }

    /// Dials `peer` unless connected: through the addresses given (DHT provider records), else
    /// the ones identify reported.
    func connect(_ ctx: ServiceContext, _ peer: PeerId, _ addrs: [Multiaddr]) async throws {
        let known: (Bool, [Multiaddr]) = try await ctx.onLoop { done in
            done(.success((self.swarm.connection(to: peer) != nil, self.swarm.peerInfo[peer]?.addrs ?? [])))
        }
        if known.0 { return }
        var last = "no address known for \(peer); connect to it first"
        for a in addrs + known.1 {
            let full = a.withoutPeerId.appending(.p2p(peer))
            do {
                let _: PeerId = try await ctx.onLoop { done in self.swarm.dial(full) { done($0) } }
                return
            } catch let e as ControlErrorBody { last = e.message }
        }
        throw ControlErrorBody(code: "failed", message: last)
    }

    static func providerKey(_ id: ModelID) -> String { "/lattica/model/" + id.hex }

    /// The DHT's providers of `id` (not us), through the DHT's own control method.
    func providers(_ id: ModelID, _ ctx: ServiceContext) async throws -> [(PeerId, [Multiaddr])] {
        let r: DHTProvidersResult
        do { r = try await dispatcher.callInProcess(Methods.DHTProviders.self, DHTKeyParams(key: Self.providerKey(id))) } catch {
            throw ControlErrorBody(code: error.code == "unknown_method" ? "failed" : error.code,
                                   message: error.code == "unknown_method" ? "no DHT in this daemon to find providers; give a peer" : "DHT lookup failed: \(error.message)")
        }
        return r.providers.compactMap { p in
            guard let peer = try? PeerId(string: p.peerId), peer != ctx.localPeer else { return nil }
            return (peer, p.addrs.compactMap { try? Multiaddr($0) })
        }
    }

    /// Announces that this node provides `id`; returns the number of DHT peers told (0 on failure).
    func announce(_ id: ModelID) async -> Int {
        do { return try await dispatcher.callInProcess(Methods.DHTProvide.self, DHTKeyParams(key: Self.providerKey(id))).told } catch {
            logger.info("model not announced in the DHT (announced again later)", metadata: ["id": "\(id.hex)", "error": "\(error.message)"])
            return 0
        }
    }

    /// Loop thread: announces every stored model again (provider records expire).
    func reprovideAll() {
        let ids = Array(models.keys)
        guard !ids.isEmpty else { return }
        Task { for id in ids { _ = await self.announce(id) } }
    }
}

/// A request line for `ControlDispatcher.callInProcess`.
private struct InProcessRequest<P: Encodable>: Encodable {
    var v: Int
    var id: UInt64
    var method: String
    var params: P
}

extension ControlDispatcher {
    /// Calls one of this dispatcher's typed methods in process, through the same strict decoding
    /// as the socket (the model service reaches the DHT this way).
    func callInProcess<M: ControlMethod>(_ m: M.Type, _ params: M.Params) async throws(ControlErrorBody) -> M.Result {
        guard let line = try? JSONEncoder.controlAPI.encode(InProcessRequest(v: ControlAPI.version, id: 1, method: M.name, params: params)) else {
            throw ControlErrorBody(code: "failed", message: "cannot encode \(M.name)")
        }
        let out = await handle(line: Array(line))
        guard let r = try? JSONDecoder().decode(ControlResponse<M.Result>.self, from: Data(out)) else {
            throw ControlErrorBody(code: "failed", message: "unreadable answer from \(M.name)")
        }
        if let e = r.error { throw e }
        guard let v = r.result else { throw ControlErrorBody(code: "failed", message: "empty answer from \(M.name)") }
        return v
    }
}
