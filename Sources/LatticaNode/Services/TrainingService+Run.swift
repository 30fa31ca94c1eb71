import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import LatticaAPI
import LatticaCore
import LatticaCRDT
import LatticaCrypto
import LatticaAveraging
import LatticaUV
import Metrics

/// The daemon's state of the run its trainer takes part in. Loop thread only.
struct RunState {
    let id: String
    let config: RunConfig
    let shard: Shard
    /// The averaging core; made when the trainer hands over the starting point φ.
    var avg: Averaging.Instance?
    /// A `dadao` run's state and gossip clock (TrainingService+DADAO.swift); made at
    /// `trainer.dadao_start`.
    var dadao: DADAORun?
    /// The next outer step, and the θ we answer pulls with (our latest, or φ after a step).
    var step = 0
    var published: (step: Int, theta: [Float])?
    var pending: Pending?
    var deadline: LoopTimer?
    /// Averaging keys peers by small integers: ours, stable for the run (0 is us).
    var indices: [PeerId: Int] = [:]
    var peers: [Int: PeerId] = [:]
    var lastPulled: [Int: [Float]] = [:]
    /// The step of each model taken in this step (for the trainer's staleness figures).
    var pulledSteps: [Int: Int] = [:]
    /// Peers found more than `staleness` steps ahead in this step, with their models.
    var ahead: [Int: (step: Int, theta: [Float])] = [:]
    /// Models pulled in the last step (an attacker's estimate of the honest models, for ALIE).
    var lastHonest: [[Float]] = []
    var partners: [String] = []
    var lastOuterStep: Instant?
    var bytesIn = 0, bytesOut = 0, rejected = 0
    var rejectedBy: [PeerId: Int] = [:]
    /// Consecutive steps a peer's contribution was far from the aggregate; last step reported.
    var farCount: [Int: Int] = [:]
    var lastReport: [Int: Int] = [:]
    var loss: Double?
    var accuracy: Double?
    var accuracyPerStep: [Double] = []
    var pullTimes: [Duration] = []
    var stepTimes: [Duration] = []
    /// The first outer step of this trainer (0, or where it resumed) and how long it may wait
    /// for the run's members to connect.
    var firstStep = 0
    var gatherDeadline: Instant?
    var trainerPid: pid_t?
    /// The trainer is our child (`spawnTrainer`): only then may we signal and reap it. An external
    /// trainer (the user's own process) is watched with kill(pid, 0).
    var trainerIsChild = false
    /// When progress last went to the store (at most every 5 s, and at every checkpoint record:
    /// every record is a signed batch the store keeps).
    var lastProgressWrite: Instant?
    var trainerState = "not started"
    /// The final global merge in progress (`trainer.final_merge`), and its outcome.
    var merge: Merge?
    var merged = false
    var accuracyBeforeMerge: Double?
    var mergedHash: [UInt8]?

    struct Merge {
        var startedAt: Instant
        var deadline: Instant
        var waiting: Set<Int> = []
        var models: [Int: [Float]] = [:]
        var bytesIn = 0
        var timer: LoopTimer?
        var done: (Result<([Float], OuterStepResult), ControlErrorBody>) -> Void
    }

    struct Pending {
        var step: Int
        var startedAt: Instant
        var deadline: Instant
        var bytesIn: Int
        var done: (Result<([Float], OuterStepResult), ControlErrorBody>) -> Void
    }

    init(id: String, config: RunConfig, shard: Shard) { self.id = id; self.config = config; self.shard = shard }

    mutating func index(of p: PeerId) -> Int {
        if let i = indices[p] { return i }
        let i = indices.count + 1
        indices[p] = i
        peers[i] = p
        return i
    }

    func peer(at i: Int) -> PeerId? { peers[i] }

    mutating func notePullTime(_ d: Duration) {
        pullTimes.append(d)
        if pullTimes.count > 64 { pullTimes.removeFirst(pullTimes.count - 64) }
    }

    mutating func noteStepTime(_ d: Duration) {
        stepTimes.append(d)
        if stepTimes.count > 16 { stepTimes.removeFirst(stepTimes.count - 16) }
    }

    /// The round deadline: the larger of 4 × the median pull time + 100 ms and half the median
    /// time of our own outer-step cycle (peers with the same inner loop publish within it), in
    /// 0.3 … 30 s (5 s until measured). A node 3× slower than the others misses their deadline
    /// and is left out of that round instead of holding it up; its own pulls get their latest θ
    /// within the staleness bound.
    var deadlineEstimate: Duration {
        // Until measured: 5 s, plus the time k − 1 models take at 100 MB/s (large models).
        let transfer = Duration.milliseconds(Int64(Double(max(0, config.k - 1)) * Double(4 * (avg?.slow.count ?? 0)) / 100e6 * 1000))
        guard !pullTimes.isEmpty || !stepTimes.isEmpty else { return .seconds(5) + transfer }
        let pull = pullTimes.isEmpty ? Duration.zero : pullTimes.sorted()[pullTimes.count / 2] * 4 + .milliseconds(100)
        let cycle = stepTimes.isEmpty ? Duration.zero : stepTimes.sorted()[stepTimes.count / 2] / 2
        return min(.seconds(30) + transfer, max(.milliseconds(300), max(pull, cycle)))
    }
}

extension TrainingService {
    var runsDir: String { dataDir + "/runs" }
    func runDir(_ id: String) -> String { runsDir + "/" + id }

    /// The averaging settings of a run's config.
    static func averagingSettings(_ c: RunConfig, members: Int) -> Averaging.Settings {
        let method: Averaging.Method = switch c.method {
        case "noloco": .noloco
        case "diloco": .diloco
        default: .robust(k: max(2, c.k), rule: Aggregation.Rule(named: c.aggregator, k: c.k))
        }
        var s = Averaging.Settings(method: method, alpha: Float(c.alpha), beta: Float(c.beta))
        s.useReputation = c.reputation
        s.normBound = c.normBound > 0 ? c.normBound : nil
        // The final merge is robust whatever the method: the run's aggregator.
        s.mergeRule = Aggregation.Rule(named: c.aggregator, k: c.k)
        // NoLoCo's pairing is derived from it on every node (see `nolocoPartner`).
        s.networkSeed = UInt64(c.seed)
        return s
    }

    /// NoLoCo's partner for `step`: the pairing of `Averaging.Instance.nolocoPartner` over the
    /// members' peer ids in sorted order, so that every node with the same view of the members
    /// computes the same pairs without negotiating (local indices differ from node to node).
    static func nolocoPartner(me: PeerId, members: [PeerId], step: Int, seed: UInt64) -> PeerId? {
        let sorted = Array(Set((members + [me]).map(\.description))).sorted()
        guard let mine = sorted.firstIndex(of: me.description),
              let j = Averaging.Instance.nolocoPartner(of: mine, members: Array(sorted.indices), step: step, networkSeed: seed) else { return nil }
        return try? PeerId(string: sorted[j])
    }

    /// The trainer handed over the starting point (θ0, or a checkpoint): averaging begins there.
    func setStart(step: Int, phi: [Float]) throws(ControlErrorBody) {
        // A step left pending by an earlier trainer of this slot can never finish now: fail it.
        if run?.pending != nil || run?.merge != nil { failPending("the trainer started over") }
        guard var r = run else { throw .badRequest("no run attached") }
        _ = DynamicOpenBLAS.installOnce  // aggregation at BLAS speed from now on; an idle daemon never maps it
        r.avg = Averaging.Instance(me: 0, initial: phi, settings: Self.averagingSettings(r.config, members: r.config.nodes), seed: rng.next())
        r.step = step
        r.firstStep = step
        r.published = nil  // nothing to serve until the trainer's first θ: pulls get `noModel` and retry
        run = r
    }

    /// After each outer step: the slow weights to disk (atomically: the trainer resumes from them
    /// after a crash), progress and (every 10 steps) a checkpoint record in the store. The files
    /// are written (and a large model hashed) on the checkpoint queue, never on the loop thread:
    /// 100 MB with fsync would stall every connection for a while.
    ///
    /// φ is copied into the writer's own buffer (one warm copy; the averaging core's φ is never
    /// held by a write, so the next step updates it in place). One write at a time, and after a
    /// write that took d the next file waits until 4·d later: a step that ends meanwhile is owed,
    /// and the φ current then is written (steps faster than that skip files; records, every 10
    /// steps, and the merged model are always written, in order).
    func checkpoint(step: Int, phi: [Float], metrics extra: [String: Double] = [:], version: Int? = nil, force: Bool = false) {
        guard let r = run else { return }
        let record = version == nil && ((step + 1) % 10 == 0 || step + 1 == r.config.rounds)
        if !record && version == nil && !force && (checkpointBusy || loop.now < checkpointNotBefore) {
            checkpointOwed = step
            if !checkpointBusy { scheduleOwedCheckpoint() }
            return
        }
        let dir = runDir(r.id), id = r.id, loss = r.loss ?? .nan, accuracy = r.accuracy
        // `version`: the merged model after the final merge (its record is written by trainer.done,
        // with the accuracy before and after); otherwise a record every 10 steps and at the end.
        let progress = record || version != nil || r.lastProgressWrite.map { loop.now - $0 >= .seconds(5) } ?? true
        if progress { run?.lastProgressWrite = loop.now }
        let metrics = (r.accuracy.map { ["accuracy": $0] } ?? [:]).merging(extra) { $1 }
        checkpointOwed = nil
        // The writer's buffer when it is free (uniquely referenced: a warm copy), else its own copy.
        var copy = checkpointBusy ? [] : checkpointBuffer
        checkpointBuffer = []
        copy.removeAll(keepingCapacity: true)
        copy.append(contentsOf: phi)
        checkpointBusy = true
        let started = loop.now
        checkpointQueue.async { [self, copy] in
            let written: Result<Void, SwarmError> = copy.withUnsafeBytes { bytes in
                Result { () throws(SwarmError) in
                    try DataDirectory.writeAtomically(bytes, to: dir + "/slow.f32")
                    try DataDirectory.writeAtomically(Array("\(version ?? step + 1)\n".utf8), to: dir + "/step")
                }
            }
            if case .failure(let error) = written {
                Counter(label: "lattica_persist_failures_total", dimensions: [("store", "train"), ("op", "checkpoint")]).increment()
                logger.warning("cannot write the run's checkpoint", metadata: ["run": "\(id)", "error": "\(error)"])
            }
            let hash = record || version != nil ? copy.withUnsafeBytes { SHA256.hash($0) } : nil
            _ = loop.execute { [self] in
                checkpointBusy = false
                // The writer is busy at most a fifth of the time: a 100 MB file with fsync every
                // outer step would take the cores from the steps themselves.
                checkpointNotBefore = loop.now + (loop.now - started) * 4
                if checkpointBuffer.isEmpty { checkpointBuffer = copy }
                if version != nil { run?.mergedHash = hash }
                if let crdt, let runID = CRDT.RunID(id) {
                    var writes: [CRDT.Write] = progress ? [.progress(runID, of: swarm.localPeer, CRDT.Progress(step: UInt64(step + 1), loss: loss, accuracy: accuracy))] : []
                    if record, let hash {
                        writes.append(.checkpoint(runID, of: swarm.localPeer, merged: version != nil, CRDT.Checkpoint(contentHash: hash, step: UInt64(step + 1), metrics: metrics)))
                    }
                    if !writes.isEmpty {
                        do { _ = try crdt.write(writes) } catch {
                            logger.debug("progress not written to the store", metadata: ["error": "\(error)"])
                        }
                    }
                }
                if checkpointOwed != nil { scheduleOwedCheckpoint() }
            }
        }
    }

    /// The owed checkpoint, once the writer may start again.
    func scheduleOwedCheckpoint() {
        guard checkpointTimer == nil else { return }
        checkpointTimer = loop.scheduleTimer(after: max(.zero, checkpointNotBefore - loop.now)) { [weak self] _ in
            self?.checkpointTimer = nil
            self?.writeOwedCheckpoint()
        }
    }

    /// The step owed by `checkpoint` (if any), with the φ of now (the latest: a later step's φ
    /// replaces an owed one; the step file says which step it is).
    /// `force`: now, even while a write is in flight (before the daemon stops or a trainer
    /// attaches: the last step's φ must be on disk; the queue keeps the order).
    func writeOwedCheckpoint(force: Bool = false) {
        guard let owed = checkpointOwed, force || (!checkpointBusy && loop.now >= checkpointNotBefore), let phi = run?.avg?.slow else { return }
        // φ now is the result of the last finished step (`run.step` − 1).
        let step = max(owed, (run?.step ?? owed + 1) - 1)
        checkpointOwed = nil
        checkpoint(step: step, phi: phi, force: true)
    }

    /// The checkpoint of `run` in our data dir: (next step, slow-weights file), if one exists.
    func savedCheckpoint(_ id: String) -> (step: Int, path: String)? {
        let dir = runDir(id)
        guard let s = try? String(contentsOfFile: dir + "/step", encoding: .utf8), let step = Int(s.filter { $0.isNumber }),
              FileManager.default.fileExists(atPath: dir + "/slow.f32") else { return nil }
        return (step, dir + "/slow.f32")
    }

    // MARK: the trainer process

    /// Starts `lattica-train` for the run (its output goes to <data-dir>/runs/<id>/trainer.log).
    func spawnTrainer(_ id: String) -> pid_t? {
        let exe = settings.trainerPath ?? ((try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            .map { String($0[..<($0.lastIndex(of: "/") ?? $0.startIndex)]) + "/lattica-train" } ?? "lattica-train")
        let log = runDir(id) + "/trainer.log"
        try? FileManager.default.createDirectory(atPath: runDir(id), withIntermediateDirectories: true)
        let args = [exe, "--socket", ctx.config.controlSocketPath, "--run", id]
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        var pid: pid_t = 0
        let cargs = args.map { strdup($0) } + [nil]
        defer { for a in cargs { free(a) } }
        let rc = posix_spawn(&pid, exe, &actions, nil, cargs, environ)
        guard rc == 0 else {
            logger.error("cannot start the trainer", metadata: ["path": "\(exe)", "error": "\(String(cString: strerror(rc)))"])
            return nil
        }
        logger.info("trainer started", metadata: ["pid": "\(pid)", "run": "\(id)", "log": "\(log)"])
        ensureReaper()
        return pid
    }

    /// Notices a trainer that exited (crashed, or finished) without blocking: our child through
    /// waitpid, an external one when its pid is gone. An outer step it left pending fails, so that
    /// the next trainer can attach and start over.
    func reap() {
        guard let r = run, let pid = r.trainerPid else { return }
        if r.trainerIsChild {
            var status: Int32 = 0
            guard waitpid(pid, &status, WNOHANG) == pid else { return }
            let code = (status >> 8) & 0xff, signal = status & 0x7f
            run?.trainerState = signal != 0 ? "killed by signal \(signal)" : code == 0 ? "finished" : "exited with \(code)"
            if signal != 0 || code != 0 {
                logger.warning("trainer exited", metadata: ["run": "\(r.id)", "state": "\(run?.trainerState ?? "")"])
            }
        } else {
            guard kill(pid, 0) != 0, errno == ESRCH else { return }
            if r.trainerState != "finished" {
                run?.trainerState = "gone (pid \(pid))"
                logger.warning("the external trainer is gone", metadata: ["run": "\(r.id)", "pid": "\(pid)"])
            }
        }
        run?.trainerPid = nil
        failPending("the trainer exited")
    }

    /// Fails an outer step or merge in progress (its trainer is gone or replaced).
    func failPending(_ why: String) {
        run?.deadline?.cancel()
        run?.pending?.done(.failure(ControlErrorBody(code: "failed", message: why)))
        run?.pending = nil
        run?.merge?.timer?.cancel()
        run?.merge?.done(.failure(ControlErrorBody(code: "failed", message: why)))
        run?.merge = nil
    }

    func ensureReaper() {
        guard reaper == nil else { return }
        reaper = ctx.timer(after: .seconds(1), repeating: .seconds(1)) { [weak self] _ in self?.reap() }
    }

    /// Stops the trainer we started (SIGTERM, SIGKILL after 1 s). A trainer we did not start (the
    /// user's own process) is never signalled: it gets `not_found` at its next call.
    func stopTrainer() {
        guard let r = run, let pid = r.trainerPid else { return }
        run?.trainerPid = nil
        run?.trainerState = "stopped"
        guard r.trainerIsChild else { return }
        kill(pid, SIGTERM)
        var status: Int32 = 0
        for _ in 0..<50 where waitpid(pid, &status, WNOHANG) != pid { usleep(20_000) }
        if waitpid(pid, &status, WNOHANG) == 0 { kill(pid, SIGKILL); waitpid(pid, &status, 0) }
    }
}
