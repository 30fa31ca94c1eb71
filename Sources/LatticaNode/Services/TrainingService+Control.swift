import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import LatticaAPI
import LatticaCore
import LatticaCRDT
import LatticaAveraging

extension TrainingService {
    /// `train.start`, `train.join`, `train.status`, `train.stop`; the trainer API `trainer.attach`,
    /// `trainer.outer_step`, `trainer.done` (Docs/TRAINER-API.md).
    func registerMethods(_ ctx: ServiceContext) {
        ctx.method(Methods.TrainStart.self) { [self] p in try await ctx.onLoop { try self.start(p) } }
        ctx.method(Methods.TrainJoin.self) { [self] p in try await ctx.onLoop { try self.join(p.run, shard: p.shard, spawn: p.spawn ?? true) } }
        ctx.method(Methods.TrainStatus.self) { [self] _ in try await ctx.onLoop { self.status() } }
        ctx.method(Methods.TrainStop.self) { [self] p in
            try await ctx.onLoop { () throws -> TrainStatusResult in
                guard let r = self.run, r.id == p.run else { throw ControlErrorBody(code: "not_found", message: "not training in run '\(p.run.prefix(128))'") }
                self.stopTrainer()
                self.run?.dadao?.timer?.cancel()
                unlink(self.runDir(r.id) + "/joined")
                if let crdt = self.crdt, let id = CRDT.RunID(r.id) {
                    do { _ = try crdt.write([.leave(id, as: self.swarm.localPeer)]) } catch {
                        self.logger.warning("left the run, but the members set could not be updated", metadata: ["run": "\(r.id)", "error": "\(error)"])
                    }
                }
                let s = self.status()
                self.run = nil
                return s
            }
        }
        ctx.method(Methods.TrainerAttach.self) { [self] p in
            guard p.apiVersion == TrainerAPI.version else {
                throw ControlErrorBody(code: "unsupported_version", message: "trainer API version \(p.apiVersion) is not supported (this daemon speaks \(TrainerAPI.version))")
            }
            try await ctx.onLoop { self.writeOwedCheckpoint(force: true) }
            self.checkpointQueue.sync {}  // the last checkpoint is on disk before it is offered to resume from
            return try await ctx.onLoop { () throws -> TrainerAttachResult in
                guard let r = self.run, r.id == p.run else {
                    throw ControlErrorBody(code: "not_found", message: "this daemon is not in run '\(p.run.prefix(128))' (lattica train join first)")
                }
                if let other = r.trainerPid, let pid = p.pid, Int(other) != pid, kill(other, 0) == 0, r.trainerState == "attached" {
                    throw ControlErrorBody(code: "busy", message: "the run's trainer slot is taken by pid \(other)")
                }
                if let pid = p.pid, self.run?.trainerPid != pid_t(pid) {
                    // Another process takes the slot (the last one is gone): what it left pending fails.
                    if self.run?.pending != nil || self.run?.merge != nil { self.failPending("the trainer was replaced") }
                    self.run?.trainerIsChild = self.spawnedPids.contains(pid_t(pid))
                    self.run?.trainerPid = pid_t(pid)
                }
                self.ensureReaper()
                self.run?.trainerState = "attached"
                let saved = self.savedCheckpoint(r.id)
                return TrainerAttachResult(run: r.id, config: r.config, shard: r.shard.description,
                                           step: saved?.step ?? 0, checkpoint: saved?.path, attack: self.settings.attack.rawValue,
                                           slowdown: self.settings.slowdown)
            }
        }
        ctx.method(Methods.TrainerOuterStep.self) { [self] p in
            // The count is checked against the run's model before anything is allocated.
            // With the count: the buffer of the θ before last, to read this one into (warm memory).
            let (expected, spare): (Int?, [Float]) = try await ctx.onLoop { () throws -> (Int?, [Float]) in
                guard let r = self.run, r.id == p.run else { throw ControlErrorBody.badRequest("not attached to run '\(p.run.prefix(128))'") }
                try self.checkMemfdOwner(p.shm)
                let spare = self.thetaSpare
                self.thetaSpare = []
                return (r.avg?.slow.count, p.initial == true ? [] : spare)
            }
            if p.initial != true, let expected, expected != p.count {
                throw ControlErrorBody.badRequest("θ has \(p.count) parameters; the run's model has \(expected)")
            }
            var buffer = spare
            let readMode = try SharedTheta.read(p.shm, count: p.count, into: &buffer)
            let theta = consume buffer
            let outcome: Result<([Float], OuterStepResult), ControlErrorBody> = try await ctx.onLoop { (done: @escaping (Result<Result<([Float], OuterStepResult), ControlErrorBody>, SwarmError>) -> Void) in
                // No copy of `run` held here: the step below updates the averaging core's vectors
                // in place only while nothing else references them.
                guard self.run?.id == p.run else { done(.success(.failure(ControlErrorBody.badRequest("not attached to run '\(p.run.prefix(128))'")))); return }
                if let l = p.loss { self.run?.loss = l }
                if let a = p.accuracy {
                    self.run?.accuracy = a
                    if (self.run?.accuracyPerStep.count ?? 0) < 100_000 { self.run?.accuracyPerStep.append(a) }
                }
                if p.initial == true {
                    do throws(ControlErrorBody) { try self.setStart(step: p.step, phi: theta) } catch { done(.success(.failure(error))); return }
                    done(.success(.success((theta, OuterStepResult(step: p.step, partners: [], rejected: 0, bytesIn: 0, bytesOut: 0, ms: 0)))))
                    return
                }
                self.outerStep(step: p.step, theta: theta) { done(.success($0)) }
            }
            var (phi, result) = try outcome.get()
            if p.initial != true {
                let writeMode = try SharedTheta.write(p.shm, phi)
                result.sharedMemory = readMode == .mapped && writeMode == .mapped ? "mapped" : "read"
            }
            return result
        }
        ctx.method(Methods.TrainerFinalMerge.self) { [self] p in
            let expected: Int = try await ctx.onLoop { () throws -> Int in
                // A `dadao` run has no averaging core until its merge: its size is the DADAO state's.
                guard let r = self.run, r.id == p.run, let n = r.avg?.slow.count ?? r.dadao?.instance.dimension else {
                    throw ControlErrorBody.badRequest("not attached to run '\(p.run.prefix(128))'")
                }
                try self.checkMemfdOwner(p.shm)
                return n
            }
            guard expected == p.count else { throw ControlErrorBody.badRequest("θ has \(p.count) parameters; the run's model has \(expected)") }
            var buffer: [Float] = []
            _ = try SharedTheta.read(p.shm, count: p.count, into: &buffer)
            let theta = consume buffer
            let outcome: Result<([Float], OuterStepResult), ControlErrorBody> = try await ctx.onLoop { (done: @escaping (Result<Result<([Float], OuterStepResult), ControlErrorBody>, SwarmError>) -> Void) in
                guard self.run?.id == p.run else { done(.success(.failure(ControlErrorBody.badRequest("not attached to run '\(p.run.prefix(128))'")))); return }
                self.finalMergeAnyMethod(theta: theta) { done(.success($0)) }
            }
            let (phi, result) = try outcome.get()
            _ = try SharedTheta.write(p.shm, phi)
            try await ctx.onLoop { self.checkpoint(step: result.step - 1, phi: phi, version: result.step + 1) }
            return result
        }
        ctx.method(Methods.TrainerDone.self) { [self] p in
            // The merged model's hash is computed on the checkpoint queue; its result reaches the
            // loop before the job below.
            self.checkpointQueue.sync {}
            return try await ctx.onLoop { () throws -> TrainStatusResult in
                guard self.run?.id == p.run else { throw ControlErrorBody(code: "not_found", message: "not attached to run '\(p.run.prefix(128))'") }
                if let a = p.accuracy { self.run?.accuracy = a }
                if let b = p.accuracyBeforeMerge { self.run?.accuracyBeforeMerge = b }
                self.run?.trainerState = "finished"
                if let r = self.run, r.merged, let hash = r.mergedHash, let a = p.accuracy, let crdt = self.crdt, let id = CRDT.RunID(r.id) {
                    // The merged model's record, with the accuracy before and after the merge.
                    var metrics = ["accuracy": a]
                    if let b = p.accuracyBeforeMerge { metrics["accuracy_before_merge"] = b }
                    let c = CRDT.Checkpoint(contentHash: hash, step: UInt64(r.config.rounds), metrics: metrics)
                    do { _ = try crdt.write([.checkpoint(id, of: self.swarm.localPeer, merged: true, c)]) } catch {
                        self.logger.debug("merged checkpoint not written to the store", metadata: ["error": "\(error)"])
                    }
                }
                return self.status()
            }
        }
    }

    /// Loop thread.
    func start(_ p: Methods.TrainStart.Params) throws(ControlErrorBody) -> TrainJoinResult {
        guard let crdt else { throw ControlErrorBody(code: "failed", message: "the CRDT store is not running") }
        let id = CRDT.RunID(creator: swarm.localPeer, name: p.name)
        let c = p.config
        let fields: [(String, CRDT.Value)] = [
            ("dataset", .string(c.dataset)), ("model", .string(c.model)), ("aggregator", .string(c.aggregator)),
            ("inner_steps", .int(Int64(c.innerSteps))), ("alpha", .string(String(c.alpha))), ("beta", .string(String(c.beta))),
            ("k", .int(Int64(c.k))), ("rounds", .int(Int64(c.rounds))), ("seed", .int(Int64(c.seed))), ("split", .string(c.split)),
            ("nodes", .int(Int64(c.nodes))), ("reputation", .bool(c.reputation)), ("staleness", .int(Int64(c.staleness))),
            ("method", .string(c.method)), ("final_merge", .bool(c.finalMerge)), ("norm_bound", .string(String(c.normBound))),
            ("time_unit_ms", .int(Int64(c.timeUnitMs))),
        ]
        do { _ = try crdt.write(fields.map { .config(id, $0.0, $0.1) }) } catch { throw CRDTService.describe(error) }
        return try join(id.description, shard: p.shard, spawn: p.spawn ?? true)
    }

    /// Loop thread.
    func join(_ id: String, shard: String?, spawn: Bool) throws(ControlErrorBody) -> TrainJoinResult {
        guard let crdt else { throw ControlErrorBody(code: "failed", message: "the CRDT store is not running") }
        guard let runID = CRDT.RunID(id) else { throw .badRequest("'\(id.prefix(128))' is not a run id (<creator peer id>.<name>)") }
        if let r = run, r.id != id { throw ControlErrorBody(code: "busy", message: "already training in run '\(r.id)' (lattica train stop it first)") }
        let config = try readConfig(runID)
        let s = try Shard(shard ?? "0/1")
        do { _ = try crdt.write([.join(runID, as: swarm.localPeer)]) } catch { throw CRDTService.describe(error) }
        if run == nil { run = RunState(id: id, config: config, shard: s) }
        // Remembered across restarts: after a crash the daemon rejoins and its trainer resumes
        // from the last checkpoint (see `start()`).
        do { try DataDirectory.writeAtomically(Array(s.description.utf8), to: runDir(id) + "/joined") } catch {
            logger.warning("cannot record the run as joined", metadata: ["run": "\(id)", "error": "\(error)"])
        }
        if spawn, settings.spawnTrainer, !config.isExternalModel, run?.trainerPid == nil {  // an external model brings its own trainer
            let pid = spawnTrainer(id)
            run?.trainerPid = pid
            run?.trainerIsChild = pid != nil
            if let pid { spawnedPids.insert(pid) }
            run?.trainerState = pid == nil ? "could not start" : "starting"
        }
        return TrainJoinResult(run: id, shard: s.description, trainerPid: run?.trainerPid.map(Int.init))
    }

    /// The run's config as its creator wrote it; an error when it has not reached us yet.
    func readConfig(_ id: CRDT.RunID) throws(ControlErrorBody) -> RunConfig {
        guard let crdt, case .map(let m)? = crdt.crdt.state.object(at: id.config) else {
            throw ControlErrorBody(code: "not_found", message: "run '\(id)' has no config here yet (is its creator connected? lattica sync shows replication)")
        }
        func str(_ k: String) -> String? { if case .string(let s)? = m[k] { s } else { nil } }
        func int(_ k: String) -> Int? { if case .int(let i)? = m[k] { Int(i) } else { nil } }
        var c = RunConfig()
        c.dataset = str("dataset") ?? c.dataset
        c.model = str("model") ?? c.model
        c.aggregator = str("aggregator") ?? c.aggregator
        c.innerSteps = int("inner_steps") ?? c.innerSteps
        c.alpha = str("alpha").flatMap(Double.init) ?? c.alpha
        c.beta = str("beta").flatMap(Double.init) ?? c.beta
        c.k = int("k") ?? c.k
        c.rounds = int("rounds") ?? c.rounds
        c.seed = int("seed") ?? c.seed
        c.split = str("split") ?? c.split
        c.nodes = int("nodes") ?? c.nodes
        if case .bool(let b)? = m["reputation"] { c.reputation = b }
        c.staleness = int("staleness") ?? c.staleness
        c.method = str("method") ?? c.method
        if case .bool(let b)? = m["final_merge"] { c.finalMerge = b }
        c.normBound = str("norm_bound").flatMap(Double.init) ?? c.normBound
        c.timeUnitMs = int("time_unit_ms") ?? c.timeUnitMs
        try c.validate()  // written by its creator, but read from the network: checked again
        return c
    }

    /// Loop thread.
    func status() -> TrainStatusResult {
        guard let r = run else { return TrainStatusResult(runs: []) }
        let members: Int
        if let crdt, case .set(let s)? = crdt.crdt.state.object(at: "run/\(r.id)/members") { members = s.elements.count } else { members = 0 }
        let peers = r.indices.sorted { $0.value < $1.value }.map { p, i in
            TrainStatusResult.Peer(peerId: p.description, reputation: r.avg?.reputation.score(i) ?? 1, rejected: r.rejectedBy[p] ?? 0)
        }
        var run = TrainStatusResult.Run(
            run: r.id, shard: r.shard.description, step: r.step, rounds: r.config.rounds, loss: r.loss, accuracy: r.accuracy,
            accuracyPerStep: r.accuracyPerStep, partners: r.partners, lastOuterStepSeconds: r.lastOuterStep.map { (loop.now - $0).secondsDouble },
            bytesIn: r.bytesIn, bytesOut: r.bytesOut, rejected: r.rejected, members: members, trainer: r.trainerState,
            attack: settings.attack.rawValue, peers: peers)
        run.method = r.config.method
        run.merged = r.merged
        run.accuracyBeforeMerge = r.accuracyBeforeMerge
        return TrainStatusResult(runs: [run])
    }
}
