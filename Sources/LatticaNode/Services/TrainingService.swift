import Dispatch
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
import Logging
import Metrics

/// Decentralised training over the network (Docs/TRAINER-API.md): the daemon side of a run.
///
/// The trainer (`lattica-train`, a separate process, never the loop thread) runs the inner steps
/// and hands θ over through shared memory at each outer step. This service then pulls θ from up
/// to k − 1 run members over `/lattica/avg/1.0.0`, aggregates the deltas robustly with reputation
/// (`Averaging.Instance`, the same sans-I/O core the simulator runs), applies the outer step and
/// hands the new θ back. It answers other members' pulls with its latest θ (within a staleness
/// bound), so nodes need not be in lockstep: a slow node's peers never wait past the round
/// deadline, which adapts to the measured pull times. Run config, membership and progress live in
/// the CRDT store (`run/<id>/…`). One run at a time per daemon (one trainer slot).
///
/// Config `[train]`: `attack` (test nets and demos only: `none`, `sign-flip`, `gaussian`,
/// `label-flip`, `ALIE`, `IPM`, `free-rider`; loudly logged), `spawn_trainer` (default true),
/// `trainer` (path of the trainer binary; default `lattica-train` beside `latticad`).
final class TrainingService: NodeService, @unchecked Sendable {
    static let name = "train"

    struct Settings: Equatable {
        var attack: Attack = .none
        var spawnTrainer = true
        var trainerPath: String?
        /// Test nets only: the trainer makes its inner loop this many times slower (a straggler).
        var slowdown = 1.0
    }

    let swarm: Swarm
    let loop: EventLoop
    let logger: Logger
    let ctx: ServiceContext
    let settings: Settings
    let dataDir: String
    var run: RunState?
    var rng = SeededRandom(seed: SecureRandom.uint64())
    var reaper: LoopTimer?
    /// Trainers this daemon started (children it may signal and reap).
    var spawnedPids: Set<pid_t> = []
    /// Checkpoint files are written (and hashed) here, in order, off the loop thread.
    let checkpointQueue = DispatchQueue(label: "lattica.train.checkpoints")
    /// The checkpoint writer's own copy of φ and whether a write is in flight (`checkpoint`).
    var checkpointBuffer: [Float] = []
    var checkpointBusy = false
    /// A step whose φ is not on disk yet because a write was in flight when it ended.
    var checkpointOwed: Int?
    var checkpointNotBefore = Instant.zero
    var checkpointTimer: LoopTimer?
    /// The last reply we encoded: every puller of the same θ gets the same bytes (one encoding per
    /// published θ, not per pull), and the buffer is reused for the next θ.
    var replyCache: (step: Int, theta: [Float], bytes: [UInt8])?
    /// The θ published before the current one, once nothing uses it: the buffer the next
    /// `trainer.outer_step` reads θ into (a fresh 100 MB array costs its page faults each step).
    var thetaSpare: [Float] = []
    /// Pulls ask for a model-ref (version 2) and fetch it over `/lattica/model/1.0.0`; false: θ
    /// inline in the reply (version 1), as before (`lattica-bench train` measures both).
    var modelPulls = true
    /// Model-ref state (`TrainingService+ModelPull.swift`).
    var refs = RefState()
    /// Tests: false answers a version-2 pull as a daemon from before model-refs does (`01 01 00 00`).
    var decodesVersion2 = true

    static func validate(section: TableReader) throws(ConfigError) { _ = try settings(section) }

    static func settings(_ section: TableReader) throws(ConfigError) -> Settings {
        var r = section, s = Settings()
        if let v = try r.string("attack") {
            guard let a = Attack(rawValue: v) else {
                throw ConfigError(source: section.source, message: "option 'train.attack' must be one of \(Attack.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            s.attack = a
        }
        if let v = try r.bool("spawn_trainer") { s.spawnTrainer = v }
        if let v = try r.string("trainer") { s.trainerPath = v }
        if let v = try r.double("slowdown", range: 1...100) { s.slowdown = v }
        try r.finish()
        return s
    }

    init(context: ServiceContext) throws(DaemonError) {
        swarm = context.swarm
        loop = context.loop
        logger = context.logger
        ctx = context
        dataDir = context.config.dataDir
        do { settings = try Self.settings(context.section) } catch { throw DaemonError(error.description) }
        if settings.attack != .none {
            logger.critical("ATTACK MODE: this node sends \(settings.attack) models to its peers (test nets and demos only)")
        }
        swarm.handleRequests(Averaging.Wire.protocolID, maxBytes: 1024) { [weak self] peer, bytes, respond in
            guard let self else { respond(nil); return }
            self.answerPull(bytes, from: peer, respond: respond)
        }
        registerMethods(context)
        registerDADAO(context)
    }

    /// A run this daemon had joined before it stopped (or crashed) is joined again, and its
    /// trainer resumes from the run's last checkpoint in the data dir.
    func start() {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: runsDir) else { return }
        for id in entries.sorted() {
            guard let shard = try? String(contentsOfFile: runDir(id) + "/joined", encoding: .utf8) else { continue }
            do {
                let r = try join(id, shard: shard, spawn: true)
                logger.notice("rejoined run after a restart", metadata: ["run": "\(r.run)", "shard": "\(r.shard)", "from_step": "\(savedCheckpoint(id)?.step ?? 0)"])
            } catch {
                logger.warning("cannot rejoin run", metadata: ["run": "\(id)", "error": "\(error.message)"])
            }
            break  // one trainer slot
        }
    }

    func stop() {
        run?.dadao?.timer?.cancel()
        run?.dadao?.saveTimer?.cancel()  // no last save: the state file is what a kill -9 leaves too
        run?.deadline?.cancel()
        run?.pending?.done(.failure(ControlErrorBody(code: "failed", message: "daemon is stopping")))
        run?.pending = nil
        run?.merge?.timer?.cancel()
        run?.merge?.done(.failure(ControlErrorBody(code: "failed", message: "daemon is stopping")))
        run?.merge = nil
        stopTrainer()
        checkpointTimer?.cancel()
        checkpointTimer = nil
        writeOwedCheckpoint(force: true)
        checkpointQueue.sync {}  // the last checkpoint reaches the disk before the daemon exits
    }

    var crdt: CRDTService? { ctx.service(CRDTService.self) }

    // MARK: serving pulls

    /// Another member asks for our θ: the latest we published, if it is within the staleness
    /// bound of the step asked for; crafted instead when this node attacks.
    func answerPull(_ bytes: [UInt8], from peer: PeerId, respond: @escaping ([UInt8]?) -> Void) {
        let pull: Averaging.Wire.Pull
        do {
            pull = try Averaging.Wire.decodePull(bytes)
            if !decodesVersion2, pull.version != Averaging.Wire.version { throw Averaging.Wire.DecodeError.badVersion(pull.version) }
        } catch {
            Counter(label: "lattica_train_rejected_total", dimensions: [("reason", "malformed_pull")]).increment()
            return respond(Averaging.Wire.encode(Averaging.Wire.Reply(status: .unknownRun, step: 0, parameters: [])))
        }
        guard let r = run, r.id == pull.run else {
            return respond(Averaging.Wire.encode(Averaging.Wire.Reply(status: .unknownRun, step: 0, parameters: [], version: pull.version)))
        }
        guard let (step, theta) = r.published, step >= pull.step - r.config.staleness else {
            return respond(Averaging.Wire.encode(Averaging.Wire.Reply(status: .noModel, step: 0, parameters: [], version: pull.version)))
        }
        if pull.version == Averaging.Wire.versionModelRef, settings.attack == .none, models != nil {
            return answerWithRef(step: step, theta: theta, respond: respond)
        }
        respond(answerInline(step: step, theta: theta, version: pull.version))
    }

    /// θ in the reply itself (version 1, or an attacking node).
    func answerInline(step: Int, theta: [Float], version: UInt8) -> [UInt8] {
        guard let r = run else { return Averaging.Wire.encode(Averaging.Wire.Reply(status: .unknownRun, step: 0, parameters: [], version: version)) }
        if settings.attack == .none {
            if let c = replyCache, c.step == step, c.bytes.first == version, c.theta.withUnsafeBufferPointer({ a in theta.withUnsafeBufferPointer { a.baseAddress == $0.baseAddress && a.count == $0.count } }) {
                run?.bytesOut += c.bytes.count
                Counter(label: "lattica_train_pulls_served_total").increment()
                return c.bytes
            }
            var bytes = replyCache?.bytes ?? []
            replyCache = nil  // its buffer uniquely referenced while it is rewritten (unless a stream still sends it)
            Averaging.Wire.encode(Averaging.Wire.Reply(status: .model, step: step, parameters: theta, version: version), into: &bytes)
            replyCache = (step, theta, bytes)
            run?.bytesOut += bytes.count
            Counter(label: "lattica_train_pulls_served_total").increment()
            return bytes
        }
        var out = theta
        if let avg = r.avg {
            let update = theta - avg.slow
            let (mean, std) = r.lastHonest.isEmpty ? (theta, update.map { abs($0) }) : Aggregation.moments(r.lastHonest)
            let c = Attack.Context(receiverSlow: avg.slow, ownUpdate: update, honestMean: mean, honestStd: std,
                                   honestModels: r.lastHonest, step: step)
            if let crafted = settings.attack.craft(c, rng: &rng) { out = crafted }
        }
        let reply = Averaging.Wire.encode(Averaging.Wire.Reply(status: .model, step: step, parameters: out, version: version))
        run?.bytesOut += reply.count
        Counter(label: "lattica_train_pulls_served_total").increment()
        return reply
    }

    // MARK: the outer step

    /// The trainer's θ for `step` is in `theta`: pull, aggregate, step; `done` gets the new θ.
    func outerStep(step: Int, theta: [Float], done: @escaping (Result<([Float], OuterStepResult), ControlErrorBody>) -> Void) {
        guard var r = run else { done(.failure(.badRequest("no run attached"))); return }
        guard r.pending == nil else { done(.failure(.badRequest("an outer step is already in progress"))); return }
        guard r.avg != nil, theta.count == r.avg?.slow.count else {
            done(.failure(.badRequest("θ has \(theta.count) parameters; the run's model has \(r.avg?.slow.count ?? 0)")))
            return
        }
        // The first outer step waits (up to 30 s) for the run's planned members to be connected,
        // so that nodes started a few seconds apart train together from the start.
        let connected = currentMembers(of: r)
        if step == r.firstStep, connected.count < r.config.nodes - 1, r.gatherDeadline.map({ loop.now < $0 }) ?? true {
            if r.gatherDeadline == nil { run?.gatherDeadline = loop.now + .seconds(30) }
            _ = loop.scheduleTimer(after: .milliseconds(100)) { [weak self] _ in self?.outerStep(step: step, theta: theta, done: done) }
            return
        }
        if let last = r.lastOuterStep { r.noteStepTime(loop.now - last) }
        let previous = r.published?.theta
        r.published = (step, theta)
        if let c = replyCache { replyCache = (-1, [], c.bytes) }  // keeps the bytes buffer, lets go of the old θ
        let members = connected.map { r.index(of: $0) }
        publishRef()  // hashed off the loop while the pulls go out
        r.pending = RunState.Pending(step: step, startedAt: loop.now, deadline: loop.now + r.deadlineEstimate, bytesIn: 0, done: done)
        // The averaging core is taken out of `run` (and of `r`) while it steps: uniquely
        // referenced, its 100 MB vectors are updated in place instead of copied.
        guard var instance = r.avg.take() else { return }
        run = r
        if let previous, previous.count == theta.count { thetaSpare = previous }
        // NoLoCo pairs: the partner from the members' peer ids, the same on every node.
        var partner: Int?
        if case .noloco = instance.settings.method,
           let p = Self.nolocoPartner(me: swarm.localPeer, members: connected, step: step, seed: UInt64(r.config.seed)) {
            partner = run?.index(of: p)
        }
        var ds = instance.onOuterStep(step: step, parameters: theta, members: members, now: loop.now, partner: partner)
        if instance.hasAllContributions { ds += instance.finishStep(now: loop.now) }  // nobody to pull from
        run?.avg = instance
        apply(ds, step: step)
    }

    /// Run members that are connected now (we pull only from them; the connection keeper and the
    /// DHT bring the others).
    func currentMembers(of r: RunState) -> [PeerId] {
        guard let crdt, case .set(let set)? = crdt.crdt.state.object(at: "run/\(r.id)/members") else { return [] }
        return set.elements.compactMap { v -> PeerId? in
            guard case .string(let s) = v, let p = try? PeerId(string: s), p != swarm.localPeer, swarm.connection(to: p) != nil else { return nil }
            return p
        }
    }

    func apply(_ directives: [Averaging.Directive], step: Int) {
        for d in directives {
            guard run?.pending?.step == step else { return }
            switch d {
            case .send(.pull(let s), let to):
                guard let peer = run?.peer(at: to) else { continue }
                pull(peer, index: to, step: s)
            case .send(.model, _):
                break  // we answer pulls ourselves (answerPull), with staleness
            case .scheduleTimer(.roundDeadline, _):
                // Our own deadline, adapted to the measured pull times (not the instance's fixed one).
                run?.deadline?.cancel()
                let after = max(.zero, (run?.pending?.deadline ?? loop.now) - loop.now)
                run?.deadline = loop.scheduleTimer(after: after) { [weak self] _ in
                    guard let self, var avg = self.run?.avg else { return }
                    self.run?.avg = nil  // uniquely referenced while it steps (no copy of φ and m)
                    let ds = avg.onTimer(.roundDeadline(step: step), now: self.loop.now)
                    self.run?.avg = avg
                    self.apply(ds, step: step)
                }
            case .evidence(let e):
                if case .rejected(let why) = e.kind {
                    run?.rejected += 1
                    if let p = run?.peer(at: e.peer) { run?.rejectedBy[p, default: 0] += 1 }
                    Counter(label: "lattica_train_rejected_total", dimensions: [("reason", why.rawValue)]).increment()
                    report(e.peer, step: e.step, reason: why.rawValue)
                } else if case .distance(_, true) = e.kind {
                    run?.farCount[e.peer, default: 0] += 1
                    if (run?.farCount[e.peer] ?? 0) >= 3 { report(e.peer, step: e.step, reason: "far_from_aggregate") }
                } else {
                    run?.farCount[e.peer] = 0
                }
            case .setParameters(let phi):
                finish(step: step, phi: phi)
            }
        }
    }

    /// Evidence against a peer goes to the run's reports (`run/<id>/reports/<us>`, keyed by the
    /// accused): an accusation with the SHA-256 of the contribution that earned it (θ − φ as it
    /// was decoded; θ on an attacking node), for others to weigh, never a verdict (no node acts
    /// on another's report). At most one per peer every 10 steps.
    func report(_ index: Int, step: Int, reason: String) {
        guard let r = run, let accused = r.peer(at: index), let crdt, let runID = CRDT.RunID(r.id) else { return }
        if let last = r.lastReport[index], step - last < 10 { return }
        run?.lastReport[index] = step
        let evidence = r.lastPulled[index].map { p in p.withUnsafeBytes { SHA256.hash($0) } }
            ?? SHA256.hash(Array("\(accused) \(step) \(reason)".utf8))
        let rep = CRDT.Report(reason: String(reason.prefix(64)), step: UInt64(step), evidence: [evidence])
        do { _ = try crdt.write([.report(runID, by: swarm.localPeer, against: accused, rep)]) } catch {
            logger.debug("report not written to the store", metadata: ["error": "\(error)"])
        }
        Counter(label: "lattica_train_reports_total", dimensions: [("reason", String(reason.prefix(32)))]).increment()
    }

    func pull(_ peer: PeerId, index: Int, step: Int) {
        guard let r = run else { return }
        let t0 = loop.now
        let want = r.avg?.slow.count ?? 0
        let request = Averaging.Wire.encode(Averaging.Wire.Pull(run: r.id, step: step, version: pullVersion(peer)))
        guard settings.attack == .none else {
            // An attacking node (test nets, demos) keeps the models whole: its attacks are crafted
            // from the honest models it saw (`lastHonest`).
            swarm.request(peer, Averaging.Wire.protocolID, request, timeout: r.deadlineEstimate, maxResponseBytes: 4 * want + 64) { [weak self] result in
                let decoded: Result<Averaging.Wire.ReplyReceiver.Received, AveragingPullOut.Failure>
                switch result {
                case .success(let bytes):
                    do throws(Averaging.Wire.DecodeError) {
                        let reply = try Averaging.Wire.decodeReply(bytes, expectedCount: want)
                        decoded = .success(.init(status: reply.status, step: reply.step, kind: .theta, values: reply.parameters,
                                                 finite: reply.parameters.allFinite, norm: 0))
                    } catch {
                        decoded = .failure(.malformed(error))
                    }
                    self?.pulled(peer, index: index, step: step, startedAt: t0, bytes: bytes.count, decoded)
                case .failure(let e):
                    self?.pulled(peer, index: index, step: step, startedAt: t0, bytes: 0, .failure(.transport(e.message)))
                }
            }
            return
        }
        streamPull(peer, request: request, timeout: r.deadlineEstimate, expectedCount: want, step: step, staleness: r.config.staleness) { [weak self] result, bytes in
            self?.pulled(peer, index: index, step: step, startedAt: t0, bytes: bytes, result)
        }
    }

    /// A pull's outcome: the model goes to the averaging core (its delta when decoded as one), or
    /// the peer is asked again, or counted unreachable or refused. The core is taken out of `run`
    /// while it is updated, so that its 100 MB vectors are uniquely referenced and updated in
    /// place (a copy otherwise).
    func pulled(_ peer: PeerId, index: Int, step: Int, startedAt t0: Instant, bytes: Int,
                _ result: Result<Averaging.Wire.ReplyReceiver.Received, AveragingPullOut.Failure>) {
        guard run?.pending?.step == step, var avg = run?.avg else {
            if case .success(let reply) = result { run?.avg?.recycle(reply.values) }
            return
        }
        run?.avg = nil
        var ds: [Averaging.Directive] = []
        switch result {
        case .success(let reply):
            run?.pending?.bytesIn += bytes
            run?.bytesIn += bytes
            let staleness = run?.config.staleness ?? 0
            // Fresh models first: in the first half of the round only this step's θ is taken;
            // after that anything within the staleness bound.
            let fresh = run?.pending.map { loop.now < $0.startedAt + ($0.deadline - $0.startedAt) / 2 } ?? false
            if reply.status == .unknownRun, reply.version == Averaging.Wire.version, pullVersion(peer) == Averaging.Wire.versionModelRef {
                // A daemon from before model-refs did not decode our version-2 pull: ask it in version 1.
                refs.legacy.insert(peer)
                logger.notice("peer predates model-ref pulls; pulling θ inline", metadata: ["peer": "\(peer)"])
                run?.avg = avg
                pull(peer, index: index, step: step)
                return
            }
            let isModel = reply.status == .model || reply.status == .modelRef
            let behind = reply.status == .noModel || (isModel && reply.step < step - (fresh ? 0 : staleness))
            if behind, let d = run?.pending?.deadline, loop.now + .milliseconds(30) < d {
                // The peer is still in an earlier step: ask again shortly, until the deadline.
                avg.recycle(reply.values)
                run?.avg = avg
                _ = loop.scheduleTimer(after: .milliseconds(20)) { [weak self] _ in
                    guard let self, self.run?.pending?.step == step else { return }
                    self.pull(peer, index: index, step: step)
                }
                return
            }
            if reply.status == .modelRef, reply.step >= step - staleness {
                run?.avg = avg
                fetchRef(peer, index: index, step: step, startedAt: t0, bytes: bytes, reply)
                return
            }
            if reply.status == .model, reply.step > step + staleness, reply.kind == .theta, reply.finite {
                // The peer is far ahead (we restarted, or are a straggler): kept as a
                // catch-up candidate; see `finish`.
                run?.ahead[index] = (reply.step, reply.values)
            }
            guard reply.status == .model, abs(reply.step - step) <= staleness else {
                ds = avg.onPeerUnreachable(index, now: loop.now)  // nothing close enough: ask someone else
                break
            }
            run?.notePullTime(loop.now - t0)
            run?.lastPulled[index] = reply.values
            run?.pulledSteps[index] = reply.step
            switch reply.kind {
            case .delta:
                ds = avg.onDelta(step: step, delta: reply.values, finite: reply.finite, norm: reply.norm, from: index, now: loop.now)
            case .theta:
                ds = avg.onMessage(.model(step: step, parameters: reply.values), from: index, now: loop.now)
            }
        case .failure(.malformed):
            // A wrong shape or a malformed reply: rejected before it touches the model.
            refuseMalformedReply(peer, index: index, step: step)
            ds = avg.onPeerUnreachable(index, now: loop.now)
        case .failure(.transport):
            ds = avg.onPeerUnreachable(index, now: loop.now)
        }
        if avg.hasAllContributions { ds += avg.finishStep(now: loop.now) }
        run?.avg = avg
        apply(ds, step: step)
    }

    /// A reply of the wrong shape or undecodable: counted, and reported as evidence.
    func refuseMalformedReply(_ peer: PeerId, index: Int, step: Int) {
        Counter(label: "lattica_train_rejected_total", dimensions: [("reason", "malformed_reply")]).increment()
        run?.rejected += 1
        run?.rejectedBy[peer, default: 0] += 1
        report(index, step: step, reason: "malformed_reply")
    }

    func finish(step: Int, phi phiAveraged: [Float]) {
        guard var r = run, let p = r.pending else { return }
        var phi = phiAveraged
        var nextStep = step
        // Catch up: when most of the peers we asked are more than `staleness` steps ahead, jump to
        // their step with the coordinate-wise median of their models (a minority of liars claiming
        // a far step cannot move it), and restart the averaging core there.
        let asked = max(1, r.lastPulled.count + r.ahead.count)
        if r.ahead.count * 2 > asked, r.ahead.count >= 2 {
            let target = r.ahead.values.map(\.step).sorted()[r.ahead.count / 2]
            let models = r.ahead.values.filter { abs($0.step - target) <= r.config.staleness }.map(\.theta)
            if models.count >= 2 {
                phi = Aggregation.aggregate(models, rule: .median)
                nextStep = target
                r.avg = Averaging.Instance(me: 0, initial: phi, settings: Self.averagingSettings(r.config, members: r.config.nodes), seed: rng.next())
                Counter(label: "lattica_train_catch_ups_total").increment()
                logger.notice("caught up with the run", metadata: ["from_step": "\(step)", "to_step": "\(target)", "peers": "\(models.count)"])
            }
        }
        r.ahead = [:]
        let step = nextStep
        r.deadline?.cancel()
        r.deadline = nil
        r.pending = nil
        r.step = step + 1
        // Pulls for this step keep getting θ (what the step's contributions are), not φ.
        let taken = r.lastPulled.keys.sorted()
        let partners = taken.compactMap { r.peer(at: $0)?.description }
        let staleness = taken.map { step - (r.pulledSteps[$0] ?? step) }
        // Only an attacking node needs them (and holding them would keep the step's buffers from
        // being reused).
        r.lastHonest = settings.attack == .none ? [] : Array(r.lastPulled.values)
        r.lastPulled = [:]
        r.pulledSteps = [:]
        r.partners = partners
        r.lastOuterStep = loop.now
        let ms = (loop.now - p.startedAt).secondsDouble * 1000
        run = r
        Counter(label: "lattica_train_outer_steps_total").increment()
        Recorder(label: "lattica_train_outer_step_ms").record(ms)
        var result = OuterStepResult(step: step, partners: partners, rejected: r.rejected, bytesIn: p.bytesIn, bytesOut: r.bytesOut, ms: ms)
        result.staleness = staleness
        result.deadlineMs = (p.deadline - p.startedAt).secondsDouble * 1000
        p.done(.success((phi, result)))
        // After the answer: its write-back (off the loop) and the checkpoint's copy run side by side.
        checkpoint(step: step, phi: phi)
    }

    // MARK: the final global merge

    /// The run's rounds are over and `theta` is our final φ: publish it as step `rounds`, pull
    /// every connected member's final model once (asking again while they are still in their last
    /// step, until the merge deadline), and merge them robustly (`Averaging.Instance.finalMerge`).
    func finalMerge(theta: [Float], done: @escaping (Result<([Float], OuterStepResult), ControlErrorBody>) -> Void) {
        guard let r = run, let avg = r.avg else { done(.failure(.badRequest("no run attached"))); return }
        guard r.pending == nil, r.merge == nil else { done(.failure(.badRequest("an outer step or merge is already in progress"))); return }
        guard theta.count == avg.slow.count else {
            done(.failure(.badRequest("θ has \(theta.count) parameters; the run's model has \(avg.slow.count)")))
            return
        }
        let final = r.config.rounds
        run?.published = (final, theta)
        // Everyone's last step ends within about one step cycle of ours: wait that long and more,
        // plus the transfer time of every member's model (the deadline estimate covers k − 1).
        let window = min(.seconds(120), max(.seconds(10), r.deadlineEstimate * 4 + (r.stepTimes.sorted().last ?? .zero) * 2))
        run?.merge = RunState.Merge(startedAt: loop.now, deadline: loop.now + window, done: done)
        let peers = currentMembers(of: r)
        for p in peers {
            guard let i = run?.index(of: p) else { continue }
            run?.merge?.waiting.insert(i)
        }
        run?.merge?.timer = loop.scheduleTimer(after: window) { [weak self] _ in self?.finishMerge() }
        logger.info("final merge", metadata: ["run": "\(r.id)", "members": "\(peers.count)", "window_s": "\(window.secondsDouble)"])
        if peers.isEmpty { finishMerge(); return }
        for p in peers { if let i = run?.index(of: p) { mergePull(p, index: i) } }
    }

    func mergePull(_ peer: PeerId, index: Int) {
        guard let r = run, let m = r.merge else { return }
        let final = r.config.rounds, want = r.avg?.slow.count ?? 0
        let timeout = max(.milliseconds(100), m.deadline - loop.now)
        swarm.request(peer, Averaging.Wire.protocolID, Averaging.Wire.encode(Averaging.Wire.Pull(run: r.id, step: final)),
                      timeout: timeout, maxResponseBytes: 4 * want + 64) { [weak self] result in
            guard let self, self.run?.merge != nil else { return }
            switch result {
            case .success(let bytes):
                self.run?.merge?.bytesIn += bytes.count
                self.run?.bytesIn += bytes.count
                do {
                    let reply = try Averaging.Wire.decodeReply(bytes, expectedCount: want)
                    if reply.status == .model, reply.step >= final {
                        self.run?.merge?.models[index] = reply.parameters
                    } else if reply.status != .unknownRun, let d = self.run?.merge?.deadline, self.loop.now + .milliseconds(60) < d {
                        // Still in its last step: ask again shortly, until the deadline.
                        _ = self.loop.scheduleTimer(after: .milliseconds(50)) { [weak self] _ in self?.mergePull(peer, index: index) }
                        return
                    }
                } catch {
                    self.refuseMalformedReply(peer, index: index, step: final)
                }
            case .failure:
                break
            }
            self.run?.merge?.waiting.remove(index)
            if self.run?.merge?.waiting.isEmpty == true { self.finishMerge() }
        }
    }

    func finishMerge() {
        guard var r = run, let m = r.merge, var avg = r.avg else { return }
        m.timer?.cancel()
        r.merge = nil
        let (phi, contributors, ds) = avg.finalMerge(own: r.published?.theta ?? avg.slow, m.models.map { ($0.key, $0.value) })
        r.avg = avg
        r.merged = true
        r.partners = contributors.dropFirst().compactMap { r.peer(at: $0)?.description }
        run = r
        for case .evidence(let e) in ds {
            if case .rejected(let why) = e.kind {
                run?.rejected += 1
                if let p = run?.peer(at: e.peer) { run?.rejectedBy[p, default: 0] += 1 }
                Counter(label: "lattica_train_rejected_total", dimensions: [("reason", why.rawValue)]).increment()
                report(e.peer, step: r.config.rounds, reason: why.rawValue)
            }
        }
        let ms = (loop.now - m.startedAt).secondsDouble * 1000
        Counter(label: "lattica_train_final_merges_total").increment()
        logger.notice("final merge done", metadata: ["run": "\(r.id)", "models": "\(contributors.count)", "of_members": "\(m.models.count + 1)", "ms": "\(Int(ms))"])
        m.done(.success((phi, OuterStepResult(step: r.config.rounds, partners: run?.partners ?? [], rejected: run?.rejected ?? 0,
                                               bytesIn: m.bytesIn, bytesOut: run?.bytesOut ?? 0, ms: ms))))
    }
}
