#if canImport(Glibc)
import Glibc
#endif
import LatticaCore
import LatticaModel
import Metrics

/// Why a pull step failed: `code` is the control error code (`not_found` when the peer does not
/// have the model, `failed` otherwise).
struct PullFailure: Error, Sendable, CustomStringConvertible {
    var code = "failed"
    var message: String
    var description: String { message }
}

/// A pull in progress. Loop thread only.
final class PullState {
    let id: ModelID
    var manifest: Model.Manifest?
    var have: [Bool] = []
    var fd: Int32 = -1
    var fetched = 0
    var bytes: UInt64 = 0
    var stream: SwarmStream?
    var completion: ((Result<Void, PullFailure>) -> Void)?
    /// Tells the pull's final check (`BlobCheck`, in its task) which chunk is on disk now.
    var written: AsyncStream<Int>.Continuation?

    init(id: ModelID) { self.id = id }

    var missing: Int { have.lazy.filter { !$0 }.count }

    func finish(_ r: Result<Void, PullFailure>) {
        let c = completion
        completion = nil
        c?(r)
    }

    func fail(_ e: SwarmError) {
        stream?.reset()
        stream = nil
        finish(.failure(PullFailure(message: e.message)))
    }

    func closeFile() {
        if fd >= 0 { close(fd); fd = -1 }
        written?.finish()
        written = nil
    }
}

/// The downloader's side of one stream: `Model.Download` fed by the stream, events handed to the
/// service. The swarm's once-a-second sweep enforces the instance's chunk deadline.
final class DownloadHandler: DeadlineHandler {
    var download: Model.Download
    var deadline: Instant?
    let onEvent: (SwarmStream, Model.Download.Event) -> Void
    /// The stream ended before the instance finished (reset, connection cut).
    let onLost: (String) -> Void

    init(_ d: Model.Download, onEvent: @escaping (SwarmStream, Model.Download.Event) -> Void, onLost: @escaping (String) -> Void) {
        download = d
        deadline = d.deadline
        self.onEvent = onEvent
        self.onLost = onLost
    }

    func onData(_ s: SwarmStream, _ bytes: ArraySlice<UInt8>) {
        let now = s.swarm?.loop.now ?? .zero
        deliver(s, download.onData(bytes, now: now))
    }

    func onFinished(_ s: SwarmStream) { deliver(s, download.onFinished(now: s.swarm?.loop.now ?? .zero)) }

    func onClosed(_ s: SwarmStream, error: String?) {
        guard !download.isFinished else { return }
        _ = download.onFinished(now: s.swarm?.loop.now ?? .zero)  // ends the instance; a cut is not the peer's misbehaviour
        deadline = nil
        onLost(error ?? "stream closed")
    }

    func timedOut(_ s: SwarmStream) {
        deliver(s, download.onTimeout(now: download.deadline))
    }

    private func deliver(_ s: SwarmStream, _ events: [Model.Download.Event]) {
        deadline = download.isFinished ? nil : download.deadline
        for e in events { onEvent(s, e) }
    }
}

extension ModelService {
    enum BeginPull: Sendable {
        case stored(Model.Manifest)
        /// A new pull; the manifest when a previous one kept it.
        case started(Model.Manifest?)
    }

    /// Loop thread: registers a pull of `id` (one at a time per model).
    func beginPull(_ id: ModelID) -> Result<BeginPull, PullFailure> {
        if let m = models[id] { return .success(.stored(m)) }
        guard pulls[id] == nil else { return .failure(PullFailure(message: "model \(id.hex) is being pulled already")) }
        pulls[id] = PullState(id: id)
        return .success(.started(store.readManifest(store.partialManifestPath(id), id: id, settings: settings.transfer)))
    }

    /// Loop thread.
    func endPull(_ id: ModelID) {
        guard let p = pulls.removeValue(forKey: id) else { return }
        p.stream?.reset()
        p.closeFile()
    }

    /// Loop thread: fetches and verifies the manifest of `id` from `peer`.
    func fetchManifest(_ id: ModelID, from peer: PeerId, _ done: @escaping (Result<Model.Manifest, PullFailure>) -> Void) {
        guard let p = pulls[id] else { done(.failure(PullFailure(message: "the pull was cancelled"))); return }
        var result: Model.Manifest?
        p.completion = { r in done(r.flatMap { result.map { .success($0) } ?? .failure(PullFailure(message: "no manifest")) }) }
        let d = Model.Download(mode: .manifest(id), settings: settings.transfer, now: loop.now)
        open(p, d, peer) { event in
            if case .manifest(let m) = event { result = m }
        }
    }

    /// Loop thread: the manifest and which chunks the partial file has.
    func setManifest(_ id: ModelID, _ m: Model.Manifest, have: [Bool], written: AsyncStream<Int>.Continuation) {
        guard let p = pulls[id] else { written.finish(); return }
        p.manifest = m
        p.have = have
        p.written = written
    }

    /// Loop thread: fetches every chunk still missing from `peer`, one run of consecutive chunks
    /// per stream, writing each verified chunk at its offset in `models/partial/<id>`.
    func fetchMissing(_ id: ModelID, from peer: PeerId, _ done: @escaping (Result<Void, PullFailure>) -> Void) {
        guard let p = pulls[id], let m = p.manifest else { done(.failure(PullFailure(message: "the pull was cancelled"))); return }
        if p.fd < 0 {
            p.fd = Glibc.open(store.partialPath(id), O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
            guard p.fd >= 0 else {
                Counter(label: "lattica_persist_failures_total", dimensions: [("store", "model"), ("op", "open")]).increment()
                done(.failure(PullFailure(message: "cannot open \(store.partialPath(id)): \(ModelStore.errnoString())")))
                return
            }
        }
        let runs = Model.missingRuns(have: p.have, maxRun: 4096)
        func next(_ k: Int) {
            guard k < runs.count else { done(.success(())); return }
            guard let p = pulls[id] else { done(.failure(PullFailure(message: "the pull was cancelled"))); return }
            p.completion = { r in
                switch r {
                case .success: next(k + 1)
                case .failure(let e): done(.failure(e))
                }
            }
            let d = Model.Download(mode: .chunks(m, first: runs[k].first, count: runs[k].count), settings: settings.transfer, now: loop.now)
            open(p, d, peer) { _ in }
        }
        next(0)
    }

    /// Opens one download stream for `p`; its events write chunks and finish `p.completion`.
    private func open(_ p: PullState, _ d: Model.Download, _ peer: PeerId, observe: @escaping (Model.Download.Event) -> Void) {
        let request = d.request.encoded
        let h = DownloadHandler(d, onEvent: { [weak self, weak p] s, event in
            guard let self, let p else { s.reset(); return }
            observe(event)
            self.handle(event, p, s)
        }, onLost: { [weak p] why in
            p?.stream = nil
            p?.finish(.failure(PullFailure(message: "the stream to \(peer) was lost (\(why))")))
        })
        swarm.openStreamQueued(peer, Model.protocolID, handler: h) { [weak self, weak p] s in
            guard let self, let p else { s?.reset(); return }
            guard let s else { p.finish(.failure(PullFailure(message: "not connected to \(peer)"))); return }
            p.stream = s
            self.swarm.ensureDeadlineSweep()
            s.send(request, close: true)
        }
    }

    private func handle(_ event: Model.Download.Event, _ p: PullState, _ s: SwarmStream) {
        switch event {
        case .manifest:
            break
        case .chunk(let i, let bytes):
            guard p.completion != nil, let m = p.manifest else { return }  // the pull gave up on this stream
            do { try ModelStore.writeAll(p.fd, bytes, at: m.chunkOffset(i), path: store.partialPath(p.id)) } catch {
                Counter(label: "lattica_persist_failures_total", dimensions: [("store", "model"), ("op", "write")]).increment()
                logger.error("model chunk not written", metadata: ["id": "\(p.id.hex)", "chunk": "\(i)", "error": "\(error)"])
                p.fail(SwarmError("cannot write chunk \(i): \(error)"))
                return
            }
            p.have[i] = true
            p.fetched += 1
            p.bytes += UInt64(bytes.count)
            Counter(label: "lattica_model_chunks_fetched_total").increment()
            Counter(label: "lattica_model_bytes_fetched_total").increment(by: bytes.count)
            p.written?.yield(i)
            onChunkStored?(p.id, i)
        case .done:
            p.stream = nil
            p.finish(.success(()))
        case .rejected(let r, let why):
            Self.rejected(r)
            logger.info("model transfer rejected", metadata: ["peer": "\(s.peer)", "reason": "\(r.rawValue)", "detail": "\(why)"])
            p.stream = nil
            s.reset()
            p.finish(.failure(PullFailure(message: "\(s.peer) sent bad data (\(r.rawValue)): \(why)")))
        case .peerError(let code, let why):
            p.stream = nil
            p.finish(.failure(PullFailure(code: code == .notFound ? "not_found" : "failed", message: "\(s.peer) answered: \(why)")))
        }
    }
}
