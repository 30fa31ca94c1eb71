#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import LatticaAPI
import LatticaAveraging
import LatticaCore
import Metrics

/// A `dadao` run's state on disk (`<data-dir>/runs/<run>/dadao.state`, `DADAO.StateFile`,
/// Docs/WIRE.md): saved at most every 0.25 time units while the state changes, as a temporary
/// file renamed over the last one, so that a daemon killed with `kill -9` and restarted resumes
/// at the run clock from a state at most 0.25 units (plus one write) old instead of at x0 and
/// t = 0. No fsync: what a crashed process wrote is in the page cache and survives it; after a
/// power loss the file may be empty or old, which the decoder refuses (and the node starts fresh).
enum DADAOStateIO {
    static let queue = DispatchQueue(label: "lattica.train.dadao-state")

    static func errors(_ reason: String) {
        Counter(label: "lattica_train_dadao_state_errors_total", dimensions: [("reason", reason)]).increment()
    }

    /// Writes `bytes` to `path + ".tmp"` and renames it over `path`.
    static func write(_ bytes: [UInt8], to path: String) -> String? {
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { return "cannot create \(tmp): \(String(cString: strerror(errno)))" }
        var off = 0
        let ok = bytes.withUnsafeBytes { b -> Bool in
            while off < b.count {
                let n = Glibc.write(fd, b.baseAddress! + off, b.count - off)
                if n <= 0 { return false }
                off += n
            }
            return true
        }
        close(fd)
        guard ok, rename(tmp, path) == 0 else {
            let e = String(cString: strerror(errno))
            unlink(tmp)
            return "cannot write \(path): \(e)"
        }
        return nil
    }

    /// The file's bytes, nil when there is none; at most `limit` bytes (larger: refused).
    static func read(_ path: String, limit: Int) -> Result<[UInt8], DADAO.StateFile.DecodeError>? {
        let fd = open(path, O_RDONLY | O_NOFOLLOW)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out = [UInt8](repeating: 0, count: limit + 1)
        var got = 0
        while got < out.count {
            let n = out.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + got, $0.count - got, off_t(got)) }
            if n <= 0 { break }
            got += n
        }
        guard got <= limit else { return .failure(.wrongSize(got: got, expected: limit)) }
        return .success(Array(out[0..<got]))
    }
}

extension TrainingService {
    func dadaoStatePath(_ id: String) -> String { runDir(id) + "/dadao.state" }

    /// Off the loop thread, at `trainer.dadao_start`: the saved state of this run, if there is one
    /// of this dimension, L and μ. A file we cannot use (truncated, corrupt, another dimension or
    /// config) is logged, counted (`lattica_train_dadao_state_errors_total{reason}`) and set
    /// aside as `dadao.state.bad`; the node then starts fresh from x0.
    func loadDADAOState(run id: String, dimension: Int, L: Double, mu: Double) -> DADAO.Snapshot? {
        let path = dadaoStatePath(id)
        guard let read = DADAOStateIO.read(path, limit: DADAO.StateFile.size(dimension: DADAO.Wire.maxDimension)) else { return nil }
        let problem: String
        do throws(DADAO.StateFile.DecodeError) {
            let s = try DADAO.StateFile.decode(try read.get(), expectedDimension: dimension)
            if s.L == L && s.mu == mu { return s }
            DADAOStateIO.errors("config")
            problem = "saved with L \(s.L), μ \(s.mu); the trainer's are L \(L), μ \(mu)"
        } catch {
            DADAOStateIO.errors(error.reason)
            problem = error.description
        }
        logger.error("the DADAO state file cannot be resumed: starting fresh from x0", metadata: ["path": "\(path)", "error": "\(problem)"])
        rename(path, path + ".bad")
        return nil
    }

    /// Loop thread: the save timer, every 0.25 time units of the run.
    func scheduleDADAOSave() {
        guard let d = run?.dadao else { return }
        let period = Duration.nanoseconds(max(1_000_000, Int64(0.25 * d.unitSeconds * 1e9)))
        let generation = d.startedAt
        run?.dadao?.saveTimer = loop.scheduleTimer(after: period) { [weak self] _ in
            guard let self, self.run?.dadao?.startedAt == generation else { return }
            self.saveDADAOState()
            self.scheduleDADAOSave()
        }
    }

    /// Loop thread: the state of the last event (exact until the next one), encoded here and
    /// written on the state queue; skipped while a write is in flight or when nothing changed.
    func saveDADAOState() {
        guard let r = run, let d = r.dadao, !d.saveBusy else { return }
        let time = d.instance.lastEvent.seconds
        if let s = d.saved, s.time == time, s.gossips == d.gossips { return }
        var snapshot = d.instance.snapshot(wallStartNanoseconds: d.wallStart)
        snapshot.gradients = d.gradients; snapshot.gossips = d.gossips; snapshot.failures = d.failures; snapshot.rejected = d.rejected
        let bytes = DADAO.StateFile.encode(snapshot), path = dadaoStatePath(r.id), generation = d.startedAt, gossips = d.gossips
        run?.dadao?.saveBusy = true
        DADAOStateIO.queue.async { [self] in
            let failure = DADAOStateIO.write(bytes, to: path)
            _ = loop.execute { [self] in
                guard run?.dadao?.startedAt == generation else { return }
                run?.dadao?.saveBusy = false
                if let failure {
                    Counter(label: "lattica_persist_failures_total", dimensions: [("store", "train"), ("op", "dadao_state")]).increment()
                    logger.warning("cannot save the DADAO state", metadata: ["error": "\(failure)"])
                } else {
                    run?.dadao?.saved = (time, gossips)
                    Counter(label: "lattica_train_dadao_state_saves_total").increment()
                }
            }
        }
    }
}
