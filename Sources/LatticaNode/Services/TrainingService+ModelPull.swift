import Dispatch
import LatticaAveraging
import LatticaCore
import LatticaModel
import Metrics

/// Averaging pulls over `/lattica/model/1.0.0` (Docs/WIRE.md, "averaging", status 03; Docs/MODEL.md,
/// "Models in memory"). The responder publishes θ of its step as an in-memory `LMF2` model
/// (hashed once, off the loop) and answers a version-2 pull with the model's id; the puller
/// fetches the manifest (checked against the id, and its size against the run's model) and then
/// the chunks straight into its pull buffer, each hashed as it arrives and turned into θ − φ (or
/// checked as θ) in place once it matched. A cut stream is resumed from the first chunk not yet
/// verified, from the same peer, while the round lasts; past the deadline the pull counts as
/// unreachable and the averaging core's fallback takes over.
struct RefState {
    struct Key: Equatable { var step: Int; var base: UInt; var count: Int }
    /// The published θ whose model id is known, and the one being hashed.
    var published: (key: Key, id: ModelID)?
    var hashing: Key?
    /// Pulls waiting for the hash of the published θ.
    var waiters: [([UInt8]?) -> Void] = []
    /// Peers that answered a version-2 pull in version 1 (daemons from before model-refs).
    var legacy: Set<PeerId> = []
    /// The last (step, id) each peer referred to: the same id for another step is refused.
    var seen: [PeerId: (step: Int, id: [UInt8])] = [:]
    /// What model-ref pulls did (tests and `lattica-bench train`).
    var resumes = 0, chunksFetched = 0, bytesFetched = 0, chunksResumedFrom = 0
    /// Chunks of the models this node publishes (1 MiB; tests use smaller ones).
    var chunkShift = Model.defaultChunkShift
    /// Test hook: after each verified chunk of a model-ref pull (peer, chunk index).
    var onChunk: ((PeerId, Int) -> Void)?
}

/// One model-ref pull. Loop thread only, except the chunk checks (`chunkArrived`), which hash
/// and convert disjoint chunks of `buffer` on worker threads through `base`.
final class RefPull {
    let peer: PeerId, index: Int, step: Int, replyStep: Int, id: ModelID, count: Int, t0: Instant
    let kind: Averaging.Wire.ReplyReceiver.Kind
    var bytes: Int
    /// The pull buffer (a spare of the averaging core when there is one), made when the manifest
    /// is known; written only through `base` from then on, so its storage never moves.
    var buffer: [Float] = []
    var base: UnsafeMutablePointer<Float>?
    var manifest: Model.Manifest?
    /// Chunks that arrived whole (from `0`), checks still running on workers, and whether every
    /// chunk has arrived.
    var next = 0
    var inFlight = 0
    var arrivedAll = false
    var finite = true, sumSquares = 0.0
    var resumes = 0
    var stream: SwarmStream?
    var over = false

    init(peer: PeerId, index: Int, step: Int, reply: Averaging.Wire.ReplyReceiver.Received, id: ModelID, count: Int, t0: Instant, bytes: Int) {
        self.peer = peer; self.index = index; self.step = step; replyStep = reply.step; self.id = id; self.count = count
        self.t0 = t0; self.bytes = bytes; kind = reply.kind
    }

    /// Takes `b` (uniquely referenced: no copy) as the buffer and fixes its address.
    func adopt(_ b: [Float]) {
        buffer = b.count == count ? b : [Float](unsafeUninitializedCapacity: count) { _, n in n = count }
        base = buffer.withUnsafeMutableBufferPointer { $0.baseAddress! }
    }
}

/// The chunks of one model-ref pull on one stream, into the pull's buffer (`Model.MemoryDownload`).
final class MemoryDownloadHandler: DeadlineHandler {
    var download: Model.MemoryDownload
    let pull: RefPull
    let roundDeadline: Instant
    var deadline: Instant?
    let onEvents: (SwarmStream, [Model.MemoryDownload.Event]) -> Void
    let onLost: (String) -> Void

    init(_ d: Model.MemoryDownload, pull: RefPull, roundDeadline: Instant, onEvents: @escaping (SwarmStream, [Model.MemoryDownload.Event]) -> Void,
         onLost: @escaping (String) -> Void) {
        download = d; self.pull = pull; self.roundDeadline = roundDeadline; self.onEvents = onEvents; self.onLost = onLost
        deadline = min(d.deadline, roundDeadline)
    }

    func onData(_ s: SwarmStream, _ bytes: ArraySlice<UInt8>) {
        guard !download.isFinished else { return }
        pull.bytes += bytes.count
        let now = s.swarm?.loop.now ?? .zero
        let dst = UnsafeMutableRawBufferPointer(start: pull.base, count: 4 * pull.count)
        let events = bytes.withUnsafeBytes { raw in download.onData(raw, into: dst, now: now) }
        deliver(s, events)
    }

    func onFinished(_ s: SwarmStream) { deliver(s, download.onFinished(now: s.swarm?.loop.now ?? .zero)) }

    func onClosed(_ s: SwarmStream, error: String?) {
        guard !download.isFinished else { return }
        _ = download.onFinished(now: .zero)
        deadline = nil
        onLost(error ?? "stream closed")
    }

    func timedOut(_ s: SwarmStream) {
        // The chunk deadline, or the round's: a peer that streams slowly forever ends here.
        _ = download.onFinished(now: .zero)
        deliver(s, [.rejected(.timeout, "no whole chunk before the deadline")])
    }

    private func deliver(_ s: SwarmStream, _ events: [Model.MemoryDownload.Event]) {
        deadline = download.isFinished ? nil : min(download.deadline, roundDeadline)
        if !events.isEmpty { onEvents(s, events) }
    }
}

extension TrainingService {
    var models: ModelService? { ctx.service(ModelService.self) }

    /// The version of pull to send `peer`: 2 (a model-ref is welcome) unless it is a daemon
    /// from before model-refs, this node attacks (it keeps models whole), or pulls are inline.
    func pullVersion(_ peer: PeerId) -> UInt8 {
        modelPulls && settings.attack == .none && models != nil && !refs.legacy.contains(peer)
            ? Averaging.Wire.versionModelRef : Averaging.Wire.version
    }

    // MARK: responder

    func refKey(step: Int, _ theta: [Float]) -> RefState.Key {
        RefState.Key(step: step, base: theta.withUnsafeBytes { UInt(bitPattern: $0.baseAddress) }, count: theta.count)
    }

    /// A version-2 pull of an honest node: the id of the published θ, once it is hashed.
    func answerWithRef(step: Int, theta: [Float], respond: @escaping ([UInt8]?) -> Void) {
        if let p = refs.published, p.key == refKey(step: step, theta) {
            let reply = Averaging.Wire.encode(Averaging.Wire.Reply(ref: p.id.bytes, step: step, count: theta.count))
            run?.bytesOut += reply.count
            Counter(label: "lattica_train_pulls_served_total").increment()
            respond(reply)
            return
        }
        refs.waiters.append(respond)
        publishRef()
    }

    /// Starts hashing the published θ (at most one hash in flight; none when it is known).
    func publishRef() {
        guard settings.attack == .none, let models, let r = run, let (step, theta) = r.published else { return }
        let key = refKey(step: step, theta)
        guard refs.published?.key != key, refs.hashing == nil else { return }
        refs.hashing = key
        models.publishMemory(slot: "run/\(r.id)", theta, chunkShift: refs.chunkShift) { [weak self] m in
            guard let self else { return }
            self.refs.hashing = nil
            self.refs.published = (key, m.id)
            guard let r = self.run, let (step, theta) = r.published else {
                let ws = self.refs.waiters
                self.refs.waiters = []
                for w in ws { w(Averaging.Wire.encode(Averaging.Wire.Reply(status: .unknownRun, step: 0, parameters: [], version: Averaging.Wire.versionModelRef))) }
                return
            }
            guard self.refKey(step: step, theta) == key else { self.publishRef(); return }  // a newer θ: the waiters get its id
            let ws = self.refs.waiters
            self.refs.waiters = []
            for w in ws { self.answerWithRef(step: step, theta: theta, respond: w) }
        }
    }

    // MARK: puller

    /// A model-ref answer within the staleness bound (or far ahead: a catch-up candidate): fetch
    /// the model into a pull buffer, then hand it to `pulled` as if it had come inline.
    func fetchRef(_ peer: PeerId, index: Int, step: Int, startedAt t0: Instant, bytes: Int, _ reply: Averaging.Wire.ReplyReceiver.Received) {
        guard let id = ModelID(bytes: reply.ref), let count = run?.avg?.slow.count else {
            pulled(peer, index: index, step: step, startedAt: t0, bytes: bytes, .failure(.transport("no run")))
            return
        }
        if let seen = refs.seen[peer], seen.id == reply.ref, seen.step != reply.step {
            // The model it gave for another step: not θ of this one.
            refuseRef(peer, index: index, step: step, reason: "model_step_mismatch", why: "the model of step \(seen.step) again for step \(reply.step)")
            run?.avg?.recycle(reply.values)
            pulled(peer, index: index, step: step, startedAt: t0, bytes: bytes, .failure(.transport("refused")))
            return
        }
        refs.seen[peer] = (reply.step, reply.ref)
        run?.avg?.recycle(reply.values)  // taken back, uniquely referenced, once the manifest is in
        let p = RefPull(peer: peer, index: index, step: step, reply: reply, id: id, count: count, t0: t0, bytes: 0)  // the reply was counted
        fetchManifest(p)
    }

    func stillWanted(_ p: RefPull) -> Bool { !p.over && run?.pending?.step == p.step }

    func fetchManifest(_ p: RefPull) {
        guard let models, let d = run?.pending?.deadline else { return endRef(p, .failure("the step ended")) }
        var settings = models.settings.transfer
        settings.chunkTimeout = min(settings.chunkTimeout, max(.milliseconds(100), d - loop.now))
        let download = Model.Download(mode: .manifest(p.id), settings: settings, now: loop.now)
        let h = DownloadHandler(download, onEvent: { [weak self] s, event in
            guard let self, self.stillWanted(p) else { s.reset(); return }
            switch event {
            case .manifest(let m):
                guard m.size == UInt64(4 * p.count) else {
                    s.reset()
                    return self.rejectRef(p, reason: "model_shape", why: "a model of \(m.size) bytes; the run's has \(4 * p.count)")
                }
                p.manifest = m
            case .done:
                p.stream = nil
                if p.manifest != nil { self.fetchChunks(p) }
            case .chunk:
                break
            case .rejected(let r, let why): self.rejected(p, s, r, why)
            case .peerError(let code, let why): self.peerError(p, code, why)
            }
        }, onLost: { [weak self] why in self?.lost(p, why) })
        open(p, h, request: download.request.encoded)
    }

    func fetchChunks(_ p: RefPull) {
        guard let m = p.manifest, let d = run?.pending?.deadline else { return endRef(p, .failure("the step ended")) }
        if p.base == nil { p.adopt(run?.avg?.spareBuffer() ?? []) }
        let timeout = models?.settings.transfer.chunkTimeout ?? .seconds(30)
        // Hashes are checked by `chunkArrived` on worker threads, not on the loop.
        let download = Model.MemoryDownload(manifest: m, first: p.next, count: m.chunkCount - p.next, chunkTimeout: timeout,
                                            verifiesHashes: false, now: loop.now)
        let h = MemoryDownloadHandler(download, pull: p, roundDeadline: d, onEvents: { [weak self] s, events in
            guard let self, self.stillWanted(p) else { s.reset(); return }
            for e in events {
                switch e {
                case .chunk(let i):
                    self.chunkArrived(p, i, m)
                    if p.over { s.reset(); return }
                case .done:
                    p.stream = nil
                    p.arrivedAll = true
                    self.finishIfChecked(p)
                case .rejected(let r, let why): self.rejected(p, s, r, why)
                case .peerError(let code, let why): self.peerError(p, code, why)
                }
            }
        }, onLost: { [weak self] why in self?.lost(p, why) })
        open(p, h, request: download.request.encoded)
    }

    private func open(_ p: RefPull, _ h: any DeadlineHandler, request: [UInt8]) {
        swarm.openStreamQueued(p.peer, Model.protocolID, handler: h) { [weak self] s in
            guard let self else { s?.reset(); return }
            guard let s else { self.lost(p, "not connected"); return }
            guard self.stillWanted(p) else { s.reset(); return }
            p.stream = s
            self.swarm.ensureDeadlineSweep()
            s.send(request, close: true)
        }
    }

    /// A whole chunk is in the buffer: checked on a worker thread (SHA-256 against the manifest,
    /// then θ − φ with the finiteness check and the squared norm, or θ checked, in place), so the
    /// loop thread only decrypts and copies. Chunks are disjoint; φ is not changed while the step
    /// waits for this pull (a step that ends without it leaves the workers a reference, not a copy).
    func chunkArrived(_ p: RefPull, _ i: Int, _ m: Model.Manifest) {
        guard let base = p.base else { return }
        p.next = i + 1
        let phi: [Float]? = p.kind == .delta ? run?.avg?.slow : nil
        guard p.kind == .theta || phi?.count == p.count else { return endRef(p, .failure("no model to take the delta from")) }
        p.inFlight += 1
        let off = Int(m.chunkOffset(i)) / 4, n = m.chunkLength(i) / 4, want = m.chunkHashes[i]
        nonisolated(unsafe) let (pull, dst) = (p, base + off)
        DispatchQueue.global().async { [self] in
            let ok = Model.sha256(UnsafeRawBufferPointer(start: dst, count: 4 * n)) == want
            var finite = true, sum = 0.0
            if ok, let phi {
                phi.withUnsafeBufferPointer { f in (finite, sum) = Kernels.subtractChecked(UnsafeRawPointer(dst), f.baseAddress! + off, dst, count: n) }
            } else if ok {
                finite = Kernels.copyChecked(UnsafeRawPointer(dst), dst, count: n)
            }
            let (fin, squares) = (finite, sum)
            _ = loop.execute { [self] in chunkChecked(pull, i, ok: ok, finite: fin, sumSquares: squares, bytes: 4 * n) }
        }
        refs.onChunk?(p.peer, i)
    }

    func chunkChecked(_ p: RefPull, _ i: Int, ok: Bool, finite: Bool, sumSquares: Double, bytes: Int) {
        p.inFlight -= 1
        if p.over {
            // Given up while the checks ran: the buffer is free once the last one is done.
            if p.inFlight == 0, !p.buffer.isEmpty { run?.avg?.recycle(p.buffer); p.buffer = []; p.base = nil }
            return
        }
        guard ok else {
            ModelService.rejected(.hashMismatch)
            return rejectRef(p, reason: "model_" + Model.Rejection.hashMismatch.rawValue, why: "chunk \(i) does not match its hash")
        }
        p.finite = p.finite && finite
        p.sumSquares += sumSquares
        refs.chunksFetched += 1
        refs.bytesFetched += bytes
        Counter(label: "lattica_train_ref_chunks_total").increment()
        finishIfChecked(p)
    }

    func finishIfChecked(_ p: RefPull) {
        if p.arrivedAll, p.inFlight == 0 { endRef(p, .success(())) }
    }

    /// The stream was cut (connection lost, reset): resume from the first chunk not verified,
    /// from the same peer, once it is connected again, until the round's deadline.
    func lost(_ p: RefPull, _ why: String) {
        p.stream = nil
        guard stillWanted(p) else { return endRef(p, .failure("the step ended")) }
        guard let d = run?.pending?.deadline, loop.now + .milliseconds(50) < d, p.resumes < 50 else {
            return endRef(p, .failure("the stream to \(p.peer) was lost (\(why)) and not resumed before the deadline"))
        }
        _ = loop.scheduleTimer(after: .milliseconds(50)) { [weak self] _ in
            guard let self, self.stillWanted(p) else { return }
            guard self.swarm.connection(to: p.peer) != nil else { return self.lost(p, why) }
            p.resumes += 1
            self.refs.resumes += 1
            Counter(label: "lattica_train_ref_resumes_total").increment()
            if p.manifest == nil { self.fetchManifest(p) } else { self.refs.chunksResumedFrom = p.next; self.fetchChunks(p) }
        }
    }

    func peerError(_ p: RefPull, _ code: Model.ErrorCode, _ why: String) {
        p.stream = nil
        if code == .notFound, !p.over, let d = run?.pending?.deadline, loop.now + .milliseconds(30) < d {
            // It published a newer θ meanwhile: ask it again for its current one.
            p.over = true
            if p.inFlight == 0, !p.buffer.isEmpty { run?.avg?.recycle(p.buffer); p.buffer = [] }
            pull(p.peer, index: p.index, step: p.step)
            return
        }
        endRef(p, .failure("\(p.peer) answered: \(why)"))
    }

    /// A frame `Model.Download` / `MemoryDownload` refused: counted in both services' metrics.
    func rejected(_ p: RefPull, _ s: SwarmStream, _ r: Model.Rejection, _ why: String) {
        ModelService.rejected(r)
        s.reset()
        rejectRef(p, reason: "model_" + r.rawValue, why: why)
    }

    /// Bad bytes from the peer: counted, reported as evidence, and the pull given up.
    func rejectRef(_ p: RefPull, reason: String, why: String) {
        guard !p.over else { return }
        refuseRef(p.peer, index: p.index, step: p.step, reason: reason, why: why)
        endRef(p, .failure("refused"))
    }

    func refuseRef(_ peer: PeerId, index: Int, step: Int, reason: String, why: String) {
        Counter(label: "lattica_train_rejected_total", dimensions: [("reason", reason)]).increment()
        logger.info("model-ref pull refused", metadata: ["peer": "\(peer)", "reason": "\(reason)", "detail": "\(why)"])
        run?.rejected += 1
        run?.rejectedBy[peer, default: 0] += 1
        report(index, step: step, reason: reason)
    }

    func endRef(_ p: RefPull, _ r: Result<Void, RefFailure>) {
        guard !p.over else { return }
        p.over = true
        p.stream?.reset()
        p.stream = nil
        switch r {
        case .success:
            Counter(label: "lattica_train_ref_pulls_total", dimensions: [("result", "ok")]).increment()
            var received = Averaging.Wire.ReplyReceiver.Received(status: .model, step: p.replyStep, kind: p.kind, values: p.buffer,
                                                                  finite: p.finite, norm: p.kind == .delta ? p.sumSquares.squareRoot() : 0)
            received.version = Averaging.Wire.versionModelRef
            p.buffer = []
            p.base = nil
            pulled(p.peer, index: p.index, step: p.step, startedAt: p.t0, bytes: p.bytes, .success(received))
        case .failure(let e):
            Counter(label: "lattica_train_ref_pulls_total", dimensions: [("result", "failed")]).increment()
            // The buffer goes back once no check is running on it (`chunkChecked`).
            if p.inFlight == 0, !p.buffer.isEmpty { run?.avg?.recycle(p.buffer); p.buffer = []; p.base = nil }
            pulled(p.peer, index: p.index, step: p.step, startedAt: p.t0, bytes: p.bytes, .failure(.transport(e.message)))
        }
    }
}

struct RefFailure: Error, ExpressibleByStringInterpolation {
    var message: String
    init(_ m: String) { message = m }
    init(stringLiteral m: String) { message = m }
}
