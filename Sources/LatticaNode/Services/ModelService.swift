#if canImport(Glibc)
import Glibc
#endif
import LatticaAPI
import LatticaCore
import LatticaModel
import LatticaUV
import Logging
import Metrics

/// Model transfer (`/lattica/model/1.0.0`, ours; Docs/MODEL.md): the shell around
/// `Model.Download`. It serves stored models chunk by chunk (read from the file as the stream's
/// window opens, one chunk in memory per upload), fetches models into `models/partial/` (each
/// chunk verified before it is written), and keeps the index of stored models (the directory
/// listing, `ModelStore`). Control methods: `model.ls`, `model.pull`, `model.push`,
/// `model.export` (ModelService+Control.swift); models are announced in the DHT under
/// `/lattica/model/<hex id>`.
///
/// Config `[model]`: `chunk_timeout_s` (default 30: each chunk must arrive within it),
/// `max_model_mib` (default 65,536), `max_uploads` (streams served at once, default 16),
/// `idle_timeout_s` (an upload whose reader takes nothing for this long is reset, default 60),
/// `reprovide_interval_s` (default 3600). Loop thread only, except what the control methods
/// run in their own tasks (whole-file passes through `ModelStore`).
final class ModelService: NodeService, @unchecked Sendable {
    static let name = "model"

    struct Settings {
        var transfer = Model.Settings()
        var maxUploads = 16
        var idleTimeout: Duration = .seconds(60)
        var reprovideInterval: Duration = .seconds(3600)
    }

    let swarm: Swarm
    let loop: EventLoop
    let logger: Logger
    let settings: Settings
    let store: ModelStore
    /// The control methods registered before this service (the DHT's among them): the DHT is
    /// reached through its typed methods, so this service needs no reference to it.
    let dispatcher: ControlDispatcher
    /// Stored models by id (loop thread).
    private(set) var models: [ModelID: Model.Manifest] = [:]
    /// Pulls in progress (one per model at a time).
    var pulls: [ModelID: PullState] = [:]
    private(set) var activeUploads = 0
    /// Models published from memory (`ModelService+Memory.swift`) by id, and each slot's latest.
    var memory: [ModelID: MemoryModel] = [:]
    var memorySlots: [String: ModelID] = [:]
    /// Test hook: called on the loop after each chunk is written by a pull.
    var onChunkStored: ((ModelID, Int) -> Void)?

    static func validate(section: TableReader) throws(ConfigError) { _ = try settings(section) }

    static func settings(_ section: TableReader) throws(ConfigError) -> Settings {
        var r = section, s = Settings()
        if let v = try r.double("chunk_timeout_s", range: 0.1...3600) { s.transfer.chunkTimeout = .milliseconds(Int64(v * 1000)) }
        if let v = try r.int("max_model_mib", range: 1...(1 << 24)) { s.transfer.maxModelBytes = UInt64(v) << 20 }
        if let v = try r.int("max_uploads", range: 1...1024) { s.maxUploads = v }
        if let v = try r.double("idle_timeout_s", range: 0.1...3600) { s.idleTimeout = .milliseconds(Int64(v * 1000)) }
        if let v = try r.double("reprovide_interval_s", range: 1...86_400) { s.reprovideInterval = .milliseconds(Int64(v * 1000)) }
        try r.finish()
        return s
    }

    init(context: ServiceContext) throws(DaemonError) {
        swarm = context.swarm
        loop = context.loop
        logger = context.logger
        dispatcher = context.dispatcher
        do { settings = try Self.settings(context.section) } catch { throw DaemonError(error.description) }
        do { store = try ModelStore(dataDir: context.config.dataDir) } catch { throw DaemonError(error.description) }
        let removed = store.removeTemporaries()
        if removed > 0 { logger.info("removed temporary model files left by a crash", metadata: ["count": "\(removed)"]) }
        let (loaded, skipped) = store.load(settings: settings.transfer)
        models = loaded
        if skipped > 0 { logger.warning("model files skipped at start (manifest unreadable or blob missing)", metadata: ["count": "\(skipped)"]) }
        Gauge(label: "lattica_model_stored").record(models.count)
        swarm.handle(Model.protocolID) { [weak self] s in
            guard let self else { return nil }
            let h = UploadHandler(service: self)
            h.deadline = self.loop.now + self.settings.idleTimeout  // the request too: no stream idles forever
            self.swarm.ensureDeadlineSweep()
            return h
        }
        registerMethods(context)
        let interval = settings.reprovideInterval
        context.timer(after: min(interval, .seconds(30)), repeating: interval) { [weak self] _ in self?.reprovideAll() }
    }

    func stop() {
        for p in pulls.values { p.fail(SwarmError("daemon is stopping")) }
        pulls.removeAll()
    }

    static func rejected(_ r: Model.Rejection) {
        Counter(label: "lattica_model_rejected_total", dimensions: [("reason", r.rawValue)]).increment()
    }

    func added(_ m: Model.Manifest) {
        models[m.id] = m
        Gauge(label: "lattica_model_stored").record(models.count)
    }

    // MARK: serving

    /// One inbound stream: reads the request, then writes the manifest, the chunks asked for
    /// (read from the blob as the window opens: at most one chunk in memory), or an ERROR frame.
    final class UploadHandler: DeadlineHandler {
        weak var service: ModelService?
        var request: [UInt8] = []
        var started = false
        var counted = false
        var fd: Int32 = -1
        var manifest: Model.Manifest?
        /// A model served from memory: its buffer (a reference, not a copy), read in place.
        var theta: [Float]?
        var next = 0, end = 0
        /// The unsent body of the current chunk of a model in memory, as byte offsets into θ.
        var bodyAt = 0, bodyEnd = 0
        /// The frame being written (header ‖ chunk) and how much of it went out.
        var pending: [UInt8] = []
        var written = 0
        var deadline: Instant?

        init(service: ModelService) { self.service = service }

        func onData(_ s: SwarmStream, _ bytes: ArraySlice<UInt8>) {
            guard !started else { return }  // bytes after the request are ignored (it ended with FIN)
            guard request.count + bytes.count <= Model.Request.maxLength else { refuse(s); return }
            request += bytes
            decode(s, finished: false)
        }

        func onFinished(_ s: SwarmStream) { if !started { decode(s, finished: true) } }

        func onClosed(_ s: SwarmStream, error: String?) {
            if fd >= 0 { close(fd); fd = -1 }
            if counted { service?.activeUploads -= 1; counted = false }
            pending = []
            theta = nil
        }

        func onWritable(_ s: SwarmStream) { pump(s) }

        func timedOut(_ s: SwarmStream) {
            service?.logger.info("model upload reset: the reader took nothing", metadata: ["peer": "\(s.peer)"])
        }

        private func refuse(_ s: SwarmStream) {
            started = true
            ModelService.rejected(.malformedRequest)
            s.send(Model.Frame.error(.malformedRequest, "malformed request"), close: true)
        }

        private func decode(_ s: SwarmStream, finished: Bool) {
            switch Model.Request.decode(request[...], finished: finished) {
            case .incomplete: return
            case .malformed: refuse(s)
            case .request(let r): start(s, r)
            }
        }

        private func start(_ s: SwarmStream, _ r: Model.Request) {
            started = true
            guard let service else { s.reset(); return }
            let mem = service.models[r.id] == nil ? service.memory[r.id] : nil
            let m = service.models[r.id] ?? mem?.manifest
            switch Model.plan(r, manifest: m) {
            case .error(let code, let why):
                Counter(label: "lattica_model_requests_total", dimensions: [("result", code == .notFound ? "not_found" : "bad_range")]).increment()
                s.send(Model.Frame.error(code, why), close: true)
            case .manifest:
                Counter(label: "lattica_model_requests_total", dimensions: [("result", "manifest")]).increment()
                let e = m!.encoded
                s.send(Model.Frame.manifestHeader(length: e.count) + e, close: true)
            case .chunks(let first, let count):
                guard service.activeUploads < service.settings.maxUploads else {
                    Counter(label: "lattica_model_requests_total", dimensions: [("result", "busy")]).increment()
                    s.send(Model.Frame.error(.busy, "serving \(service.activeUploads) streams already; try later"), close: true)
                    return
                }
                if let mem { theta = mem.theta } else { fd = open(service.store.blobPath(r.id), O_RDONLY | O_CLOEXEC) }
                guard fd >= 0 || theta != nil else {
                    service.logger.error("cannot open a stored model", metadata: ["id": "\(r.id.hex)", "error": "\(ModelStore.errnoString())"])
                    s.send(Model.Frame.error(.notFound, "model \(r.id.hex) cannot be read here"), close: true)
                    return
                }
                Counter(label: "lattica_model_requests_total", dimensions: [("result", "chunks")]).increment()
                service.activeUploads += 1
                counted = true
                manifest = m
                next = first
                end = first + count
                service.swarm.ensureDeadlineSweep()
                pump(s)
            }
        }

        /// Writes while the stream takes bytes; loads the next chunk from the file when the
        /// current frame is out. Back-pressure: never more than `writableBytes` per write.
        private func pump(_ s: SwarmStream) {
            guard let service, let m = manifest, s.isOpen else { return }
            if let t = theta { return pumpMemory(s, m, t) }
            while true {
                if written == pending.count {
                    if next == end {
                        pending = []
                        deadline = nil
                        s.closeWrite()
                        manifest = nil
                        return
                    }
                    let n = m.chunkLength(next)
                    let header = Model.Frame.chunkHeader(index: next, length: n)
                    if pending.count != header.count + n { pending = [UInt8](repeating: 0, count: header.count + n) }
                    pending.replaceSubrange(0..<header.count, with: header)
                    let fd = self.fd, at = off_t(m.chunkOffset(next)), skip = header.count
                    let got = pending.withUnsafeMutableBytes { p -> Int in
                        var done = 0
                        while done < n {
                            let r = pread(fd, p.baseAddress! + skip + done, n - done, at + off_t(done))
                            if r < 0 { if errno == EINTR { continue }; return -1 }
                            if r == 0 { break }
                            done += r
                        }
                        return done
                    }
                    guard got == n else {
                        service.logger.error("cannot read a stored model", metadata: ["path": "\(service.store.blobPath(m.id))"])
                        Counter(label: "lattica_persist_failures_total", dimensions: [("store", "model"), ("op", "read")]).increment()
                        s.reset()
                        return
                    }
                    written = 0
                    next += 1
                    Counter(label: "lattica_model_chunks_served_total").increment()
                }
                let room = s.writableBytes
                guard room > 0 else { break }
                let w = s.write(pending[written..<min(pending.count, written + room)])
                written += w
                guard w > 0 else { break }
            }
            deadline = s.isOpen ? service.loop.now + service.settings.idleTimeout : nil
        }

        /// A model in memory: each chunk's header, then its bytes written straight from θ's buffer
        /// (no chunk-sized copy), never more than `writableBytes` at a time.
        private func pumpMemory(_ s: SwarmStream, _ m: Model.Manifest, _ t: [Float]) {
            guard let service else { return }
            t.withUnsafeBytes { raw in
                while true {
                    if written == pending.count, bodyAt == bodyEnd {
                        if next == end {
                            pending = []
                            deadline = nil
                            s.closeWrite()
                            manifest = nil
                            theta = nil
                            return
                        }
                        let n = m.chunkLength(next)
                        pending = Model.Frame.chunkHeader(index: next, length: n)
                        written = 0
                        bodyAt = Int(m.chunkOffset(next))
                        bodyEnd = bodyAt + n
                        next += 1
                        Counter(label: "lattica_model_chunks_served_total").increment()
                    }
                    let room = s.writableBytes
                    guard room > 0 else { break }
                    let w: Int
                    if written < pending.count {
                        w = s.write(pending[written..<min(pending.count, written + room)])
                        written += w
                    } else {
                        w = s.write(UnsafeRawBufferPointer(rebasing: raw[bodyAt..<min(bodyEnd, bodyAt + room)]))
                        bodyAt += w
                    }
                    guard w > 0 else { break }
                }
            }
            deadline = s.isOpen ? service.loop.now + service.settings.idleTimeout : nil
        }
    }
}
