#if canImport(Glibc)
import Glibc
#endif
import LatticaAPI
import LatticaCore
import LatticaCRDT
import LatticaAveraging
import LatticaUV
import Metrics

/// The daemon's part of a `dadao` run (Docs/LEARNING.md, "DADAO over the network"): the node's
/// `DADAO.Instance` (six vectors, lazily caught up), its gossip clock and the exchanges over
/// `/lattica/dadao/1.0.0`. The trainer owns the data and the gradient clock and computes every
/// gradient; this side only applies events, which cost O(dimension) on the loop thread.
///
/// Time: DADAO time t = (loop time − start) / `time_unit_ms`; a node's gradient clock has rate 1
/// per unit and its gossip clock rate λ_mix / n (the network's total is λ_mix, over uniformly
/// chosen members: the complete graph of the simulator).
struct DADAORun {
    var instance: DADAO.Instance
    let startedAt: Instant
    let unitSeconds: Double
    let horizon: Double
    /// Exchanges this node starts per DADAO time unit.
    let gossipRate: Double
    /// The gossip clock's waits and partner draws (seeded by the run's seed and our shard).
    var rng: SeededRandom
    var timer: LoopTimer?
    /// When the gossip clock's next event is due (loop time). The schedule is absolute, as the
    /// trainer's gradient clock: a loop that stalls fires the events it owes on waking, instead
    /// of losing them (a lost exchange rate is what makes DADAO diverge).
    var nextGossipAt: Instant?
    /// Our exchange in flight (at most one: see `maxInFlight`), and gossip events that fired
    /// while it was: each starts as soon as the one before ends (at most `maxOwed`), so the
    /// exchange rate stays λ_mix / n while round trips are shorter than the gaps. (Two at most:
    /// a longer backlog keeps every node in flight, and then most exchanges find their peer
    /// busy: measured at 5 ms per time unit, 8 would leave a third of the exchanges.)
    var inFlight = 0
    var owed = 0
    static let maxOwed = 2
    /// Attempts of one exchange (the first member and two fallbacks).
    static let maxAttempts = 3
    var gradients = 0, gossips = 0, failures = 0, rejected = 0
    /// Round trips of our completed exchanges (for the mean in `DADAOStepResult`).
    var exchangeSeconds = 0.0, exchanges = 0
    /// Whether the achieved exchange rate was found too low (logged once).
    var warnedRate = false
    /// UNIX time (ns) of this node's run time 0: saved with the state, so that a restarted node
    /// resumes at the run clock (TrainingService+DADAOState.swift).
    var wallStart: Int64 = 0
    /// The state file: its timer (every 0.25 time units), a write in flight, what was last saved
    /// (an unchanged state is not written again), and the saved time this state resumed from.
    var saveTimer: LoopTimer?
    var saveBusy = false
    var saved: (time: Double, gossips: Int)?
    var resumedFrom: Double?

    /// Exchanges this node took part in (both roles) per time unit, over what the constants
    /// assume (2·λ_mix/n): DADAO diverges below about 2/3 (Docs/LEARNING.md).
    func gossipFraction(at now: Instant) -> Double {
        let t = clock(now).seconds
        return t > 0 ? Double(gossips) / (t * 2 * gossipRate) : 1
    }
    /// How long one attempt of an exchange may take; a failed attempt is retried once with
    /// another member within a second bound. Long on purpose: an answer given up on may have been
    /// applied by the answerer already, so a timeout can leave the exchange applied on one end
    /// only (a lasting bias of DADAO's fixed point, see Docs/LEARNING.md); a peer that is down
    /// fails the attempt at once (the stream or connection closes), not at the timeout.
    static let attemptTimeout = Duration.seconds(5)
    /// A node takes part in one exchange at a time, as in the simulator, where exchanges are
    /// instantaneous: while ours is in flight we answer others `busy` (they fall back to another
    /// member) and a gossip event of ours waits (`owed`). Two exchanges overlapping on one node
    /// would each correct Z by half the same difference and overshoot. The rate matters as much:
    /// with the constants of λ_mix, DADAO diverges when fewer than about 2/3 of the exchanges
    /// happen (Docs/LEARNING.md), so an event is never dropped while it can still be made up.
    static let maxInFlight = 1

    /// DADAO time of a loop instant, as the instance's `Instant` (its seconds are time units).
    func clock(_ now: Instant) -> Instant {
        Instant(nanoseconds: Int64(max(0, (now - startedAt).secondsDouble / unitSeconds) * 1e9))
    }
}

enum DADAOMetrics {
    static func exchange(_ role: String, _ result: String) {
        Counter(label: "lattica_train_dadao_gossips_total", dimensions: [("role", role), ("result", result)]).increment()
    }
    static func rejected(_ reason: String) {
        Counter(label: "lattica_train_dadao_rejected_total", dimensions: [("reason", reason)]).increment()
    }
}

extension TrainingService {
    /// Test hook: with false, the gossip clock never starts an exchange (the no-gossip baseline).
    nonisolated(unsafe) static var dadaoGossipEnabled = true

    func registerDADAO(_ ctx: ServiceContext) {
        swarm.handleRequests(DADAO.Wire.protocolID, maxBytes: DADAO.Wire.maxMessageBytes) { [weak self] peer, bytes, respond in
            guard let self else { respond(nil); return }
            respond(DADAO.Wire.encode(self.answerGossip(bytes, from: peer)))
        }
        ctx.method(Methods.TrainerDADAOStart.self) { [self] p in
            try await ctx.onLoop { () throws in
                guard let r = self.run, r.id == p.run, r.config.method == "dadao" else { throw ControlErrorBody.badRequest("not attached to a dadao run '\(p.run.prefix(128))'") }
                try self.checkMemfdOwner(p.shm)
            }
            let x0 = try SharedVector.read(p.shm, count: p.count)
            // A state saved before a crash (off the loop thread): resumed instead of x0.
            let saved = self.loadDADAOState(run: p.run, dimension: p.count, L: p.l, mu: p.mu)
            let outcome: Result<([Double], DADAOStepResult), ControlErrorBody> = try await ctx.onLoop { (done: @escaping (Result<Result<([Double], DADAOStepResult), ControlErrorBody>, SwarmError>) -> Void) in
                self.startDADAO(run: p.run, x0: x0, L: p.l, mu: p.mu, nextMs: p.nextMs, gatherUntil: nil, resume: saved) { done(.success($0)) }
            }
            let (x, result) = try outcome.get()
            try SharedVector.write(p.shm, x)
            return result
        }
        ctx.method(Methods.TrainerDADAOGradient.self) { [self] p in
            try await ctx.onLoop { () throws in
                guard let d = self.run?.dadao, self.run?.id == p.run else { throw ControlErrorBody.badRequest("no DADAO state for run '\(p.run.prefix(128))' (trainer.dadao_start first)") }
                guard d.instance.dimension == p.count else { throw ControlErrorBody.badRequest("the gradient has \(p.count) values; the run's model has \(d.instance.dimension)") }
                try self.checkMemfdOwner(p.shm)
            }
            let g = try SharedVector.read(p.shm, count: p.count)  // off the loop thread
            let (x, result) = try await ctx.onLoop { () throws -> ([Double], DADAOStepResult) in
                if let l = p.loss { self.run?.loss = l }
                return try self.dadaoGradient(g, nextMs: p.nextMs)
            }
            try SharedVector.write(p.shm, x)
            return result
        }
    }

    /// Loop thread. Waits (up to 30 s, as a first outer step does) for the planned members to be
    /// connected, then creates the state and starts the gossip clock.
    func startDADAO(run id: String, x0: [Double], L: Double, mu: Double, nextMs: Double, gatherUntil: Instant?, resume: DADAO.Snapshot? = nil,
                    done: @escaping (Result<([Double], DADAOStepResult), ControlErrorBody>) -> Void) {
        guard let r = run, r.id == id else { done(.failure(.badRequest("not attached to run '\(id.prefix(128))'"))); return }
        guard x0.allSatisfy(\.isFinite) else { done(.failure(.badRequest("x0 holds NaN or Inf"))); return }
        let until = gatherUntil ?? loop.now + .seconds(30)
        if currentMembers(of: r).count < r.config.nodes - 1, loop.now < until {
            _ = loop.scheduleTimer(after: .milliseconds(100)) { [weak self] _ in
                self?.startDADAO(run: id, x0: x0, L: L, mu: mu, nextMs: nextMs, gatherUntil: until, resume: resume, done: done)
            }
            return
        }
        run?.dadao?.timer?.cancel()
        run?.dadao?.saveTimer?.cancel()
        let n = max(2, r.config.nodes)
        let g = DADAO.completeGraph(nodes: n)
        let k = DADAO.Constants(L: L, mu: mu, chi1: g.chi1, lambdaMix: g.lambdaMix)
        var seed = UInt64(r.config.seed) &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(r.shard.index + 1) &* 0xBF58_476D_1CE4_E5B9
        let unit = Double(r.config.timeUnitMs) / 1000
        let wallNow = Int64(wallClockSeconds() * 1e9)
        var instance = DADAO.Instance(initial: x0, constants: k), startedAt = loop.now, wallStart = wallNow
        if let s = resume {
            // The run clock goes on from the saved wall start (the others' clocks kept running);
            // the ODE carries the saved state over the downtime, the exchanges bring it back.
            let elapsed = max(s.time, Double(wallNow - s.wallStartNanoseconds) / 1e9 / unit)
            startedAt = loop.now - .nanoseconds(Int64(elapsed * unit * 1e9))
            wallStart = s.wallStartNanoseconds
            instance = DADAO.Instance(restoring: s.state, lastEvent: Instant(nanoseconds: Int64(s.time * 1e9)), constants: k)
            seed ^= s.time.bitPattern  // other draws than the first life's
        }
        var d = DADAORun(instance: instance, startedAt: startedAt, unitSeconds: unit, horizon: Double(r.config.rounds),
                         gossipRate: g.lambdaMix / Double(n), rng: SeededRandom(seed: seed))
        d.wallStart = wallStart
        if let s = resume {
            d.gradients = s.gradients; d.gossips = s.gossips; d.failures = s.failures; d.rejected = s.rejected
            d.resumedFrom = s.time
            d.saved = (s.time, s.gossips)
            Counter(label: "lattica_train_dadao_resumed_total").increment()
            logger.notice("DADAO resumed from the saved state", metadata: ["run": "\(id)", "saved_t": "\(s.time)", "now_t": "\(d.clock(loop.now).seconds)"])
        }
        run?.dadao = d
        run?.trainerState = "attached"
        logger.info("DADAO started", metadata: ["run": "\(id)", "L": "\(L)", "mu": "\(mu)", "lambda_mix": "\(g.lambdaMix)",
                                                "members": "\(currentMembers(of: r).count + 1)", "unit_ms": "\(r.config.timeUnitMs)"])
        scheduleGossip()
        scheduleDADAOSave()
        done(.success((d.instance.predictedX(at: d.clock(loop.now + .milliseconds(Int64(nextMs)))), dadaoResult(d))))
    }

    /// Loop thread: `trainer.final_merge`. A `dadao` run's final X (float32, as every model
    /// travels) becomes φ of an averaging core made for the merge alone, and the merge is every
    /// method's (`finalMerge`: pulls over /lattica/avg/1.0.0, the run's rule).
    func finalMergeAnyMethod(theta: [Float], done: @escaping (Result<([Float], OuterStepResult), ControlErrorBody>) -> Void) {
        guard let r = run else { done(.failure(.badRequest("no run attached"))); return }
        if r.avg == nil, r.config.method == "dadao" {
            do throws(ControlErrorBody) { try setStart(step: r.config.rounds, phi: theta) } catch { done(.failure(error)); return }
        }
        finalMerge(theta: theta, done: done)
    }

    func dadaoResult(_ d: DADAORun) -> DADAOStepResult {
        var r = DADAOStepResult(time: d.clock(loop.now).seconds, gradients: d.gradients, gossips: d.gossips, failures: d.failures, rejected: d.rejected)
        r.exchangeMs = d.exchanges > 0 ? d.exchangeSeconds / Double(d.exchanges) * 1000 : nil
        r.resumedFrom = d.resumedFrom
        return r
    }

    /// Loop thread: a gradient event now, with the trainer's gradient; X at its next event back.
    func dadaoGradient(_ g: [Double], nextMs: Double) throws(ControlErrorBody) -> ([Double], DADAOStepResult) {
        guard var d = run?.dadao else { throw .badRequest("no DADAO state (trainer.dadao_start first)") }
        guard d.instance.accepts(g) else { throw .badRequest("the gradient holds NaN or Inf") }
        run?.dadao = nil  // uniquely referenced while it is updated
        let now = d.clock(loop.now)
        d.instance.onGradientEvent(now: now, gradient: g)
        d.gradients += 1
        Counter(label: "lattica_train_dadao_gradients_total").increment()
        let x = d.instance.predictedX(at: d.clock(loop.now + .milliseconds(Int64(nextMs))))
        run?.step = Int(now.seconds)
        run?.lastOuterStep = loop.now
        run?.dadao = d
        return (x, dadaoResult(d))
    }

    // MARK: the gossip clock and the initiator's side

    func scheduleGossip() {
        guard var d = run?.dadao else { return }
        let wait = -log(max(d.rng.nextDouble(), 1e-300)) / d.gossipRate * d.unitSeconds
        // More than 10 time units behind (a stalled machine): start over from now, no burst.
        let base = d.nextGossipAt.map { loop.now - $0 > .milliseconds(Int64(10_000 * d.unitSeconds)) ? loop.now : $0 } ?? loop.now
        let due = base + .nanoseconds(Int64(wait * 1e9))
        d.nextGossipAt = due
        d.timer = loop.scheduleTimer(after: max(.zero, due - loop.now)) { [weak self] _ in self?.gossipEvent() }
        run?.dadao = d
    }

    func gossipEvent() {
        guard let d = run?.dadao else { return }
        let fraction = d.gossipFraction(at: loop.now)
        Gauge(label: "lattica_train_dadao_gossip_fraction").record(fraction)
        if fraction < 0.8, !d.warnedRate, d.clock(loop.now).seconds > 100 {
            run?.dadao?.warnedRate = true
            logger.warning("DADAO exchanges fall behind the rate its constants assume; below about 2/3 it diverges (a larger time_unit_ms gives them room)",
                           metadata: ["fraction": "\(fraction)", "exchange_ms": "\(d.exchanges > 0 ? d.exchangeSeconds / Double(d.exchanges) * 1000 : 0)"])
        }
        guard d.clock(loop.now).seconds < d.horizon else { return }  // the horizon: we stop starting exchanges (and still answer)
        defer { scheduleGossip() }
        guard Self.dadaoGossipEnabled else { return }
        guard d.inFlight < DADAORun.maxInFlight else {
            if d.owed < DADAORun.maxOwed {
                run?.dadao?.owed += 1
                DADAOMetrics.exchange("initiator", "deferred")
            } else {
                run?.dadao?.failures += 1
                DADAOMetrics.exchange("initiator", "busy")
            }
            return
        }
        gossipAttempt(tried: [])
    }

    /// Our exchange ended (done or given up): a gossip event that fired meanwhile starts now.
    func startOwedExchange() {
        guard let d = run?.dadao, d.owed > 0, d.inFlight == 0, d.clock(loop.now).seconds < d.horizon else { return }
        run?.dadao?.owed -= 1
        gossipAttempt(tried: [])
    }

    /// One attempt: a random connected member (seeded draw over the sorted peer ids), our Y + Z of
    /// now; on an answer both ends have applied the same w. A member that is down, not ready or
    /// too slow gets up to two fallbacks to other members; then the event is given up (counted).
    func gossipAttempt(tried: Set<PeerId>) {
        guard let r = run, var d = r.dadao else { return }
        let candidates = currentMembers(of: r).filter { !tried.contains($0) }.sorted { $0.description < $1.description }
        guard !candidates.isEmpty else {
            DADAOMetrics.exchange("initiator", tried.isEmpty ? "no_peer" : "unreachable")
            let owed = run?.dadao?.owed ?? 0
            run?.dadao?.failures += 1 + owed
            run?.dadao?.owed = 0  // nobody to gossip with: what is owed is given up too
            return
        }
        let peer = candidates[Int(d.rng.next() % UInt64(candidates.count))]
        run?.dadao = nil
        let own = d.instance.beginExchange(now: d.clock(loop.now))
        d.inFlight += 1
        run?.dadao = d
        let dim = own.count, runID = r.id, t0 = loop.now, generation = d.startedAt
        let request = DADAO.Wire.encode(DADAO.Wire.Request(run: runID, payload: own))
        swarm.request(peer, DADAO.Wire.protocolID, request, timeout: DADAORun.attemptTimeout, maxResponseBytes: 16 + 8 * dim) { [weak self] result in
            // The answer of an exchange begun by an earlier state (a trainer that started over) is dropped.
            guard let self, self.run?.id == runID, self.run?.dadao?.startedAt == generation else { return }
            self.run?.dadao?.inFlight -= 1
            var retry = false, continuing = false
            defer { if !continuing { self.startOwedExchange() } }
            switch result {
            case .failure(let e):
                // A timeout may leave the exchange applied on the answerer's side only: counted apart.
                if e.message.contains("timed out") {
                    DADAOMetrics.exchange("initiator", "timeout")
                    self.logger.warning("DADAO exchange timed out: it may have been applied by the answerer only", metadata: ["peer": "\(peer)"])
                }
                retry = true
            case .success(let bytes):
                do throws(DADAO.Wire.DecodeError) {
                    let a = try DADAO.Wire.decodeAnswer(bytes, expectedCount: dim)
                    switch a.status {
                    case .payload:
                        guard a.payload.allSatisfy(\.isFinite) else { self.refuseGossip(peer, "non_finite"); return }
                        guard var d = self.run?.dadao else { return }
                        self.run?.dadao = nil
                        d.instance.completeExchange(own: own, peer: a.payload, now: d.clock(self.loop.now))
                        d.gossips += 1
                        d.exchanges += 1
                        d.exchangeSeconds += (self.loop.now - t0).secondsDouble
                        self.run?.dadao = d
                        self.notePartner(peer)
                        DADAOMetrics.exchange("initiator", tried.isEmpty ? "ok" : "fallback_ok")
                    case .unknownRun, .notReady, .busy:
                        if a.status == .busy { DADAOMetrics.exchange("initiator", "peer_busy") }
                        retry = true
                    case .refused:
                        // Our payload was refused: nothing applied on either side (a config mismatch).
                        self.run?.dadao?.failures += 1
                        DADAOMetrics.exchange("initiator", "refused")
                    }
                } catch {
                    self.refuseGossip(peer, { if case .wrongCount = error { "dimension" } else { "malformed" } }())
                }
            }
            guard retry else { return }
            if tried.count + 1 < DADAORun.maxAttempts {
                continuing = true
                self.gossipAttempt(tried: tried.union([peer]))
            } else {
                self.run?.dadao?.failures += 1
                DADAOMetrics.exchange("initiator", "unreachable")
            }
        }
    }

    func notePartner(_ p: PeerId) {
        _ = run?.index(of: p)
        let s = p.description
        run?.partners.removeAll { $0 == s }
        run?.partners.append(s)
        if (run?.partners.count ?? 0) > 8 { run?.partners.removeFirst() }
    }

    /// A payload we cannot take (as initiator: the answer; as answerer: the request): counted,
    /// and evidence in the run's reports. Nothing is applied on our side.
    func refuseGossip(_ peer: PeerId, _ reason: String) {
        DADAOMetrics.rejected(reason)
        run?.dadao?.rejected += 1
        run?.rejected += 1
        run?.rejectedBy[peer, default: 0] += 1
        guard let i = run?.index(of: peer) else { return }
        report(i, step: run?.step ?? 0, reason: "dadao_" + reason)
    }

    // MARK: the answerer's side

    /// A member's exchange: its Y + Z in, ours out, the exchange applied here before we answer
    /// (in one loop turn: exchanges from several peers never interleave inside one).
    func answerGossip(_ bytes: [UInt8], from peer: PeerId) -> DADAO.Wire.Answer {
        let req: DADAO.Wire.Request
        do { req = try DADAO.Wire.decodeRequest(bytes) } catch {
            if run?.dadao != nil { refuseGossip(peer, "malformed") } else { DADAOMetrics.rejected("malformed") }
            return .init(status: .refused)
        }
        guard let r = run, r.id == req.run else { DADAOMetrics.exchange("answerer", "unknown_run"); return .init(status: .unknownRun) }
        guard var d = r.dadao else { DADAOMetrics.exchange("answerer", "not_ready"); return .init(status: .notReady) }
        guard isMember(peer, of: r) else { DADAOMetrics.rejected("not_member"); return .init(status: .refused) }
        guard d.inFlight == 0 else { DADAOMetrics.exchange("answerer", "busy"); return .init(status: .busy) }
        guard req.payload.count == d.instance.dimension else { refuseGossip(peer, "dimension"); return .init(status: .refused) }
        guard req.payload.allSatisfy(\.isFinite) else { refuseGossip(peer, "non_finite"); return .init(status: .refused) }
        run?.dadao = nil
        guard let own = d.instance.answerExchange(peer: req.payload, now: d.clock(loop.now)) else {
            run?.dadao = d
            return .init(status: .refused)
        }
        d.gossips += 1
        run?.dadao = d
        notePartner(peer)
        DADAOMetrics.exchange("answerer", "ok")
        return .init(status: .payload, payload: own)
    }

    func isMember(_ p: PeerId, of r: RunState) -> Bool {
        guard let crdt, case .set(let set)? = crdt.crdt.state.object(at: "run/\(r.id)/members") else { return false }
        return set.elements.contains(.string(p.description))
    }
}

/// A DADAO vector in the trainer's shared-memory file: `count` float64, little endian (8 × count
/// bytes; the file checks of `SharedTheta.open`: a regular file of this user, 0600, that size).
/// Small (DADAO models have at most 2^18 parameters), so read and written with pread/pwrite.
enum SharedVector {
    static func read(_ path: String, count: Int) throws(ControlErrorBody) -> [Double] {
        let fd = try SharedTheta.open(path, count: 2 * count, write: false)
        defer { close(fd) }
        var out = [Double](repeating: 0, count: count)
        let ok = out.withUnsafeMutableBytes { b in pread(fd, b.baseAddress, b.count, 0) == b.count }
        guard ok else { throw .badRequest("cannot read \(count) float64 from '\(path)' (did the trainer truncate it?)") }
        return out
    }

    static func write(_ path: String, _ v: [Double]) throws(ControlErrorBody) {
        let fd: Int32
        do { fd = try SharedTheta.open(path, count: 2 * v.count, write: true) } catch {
            throw ControlErrorBody(code: "failed", message: "cannot write the vector back: \(error.message)")
        }
        defer { close(fd) }
        let ok = v.withUnsafeBytes { b in pwrite(fd, b.baseAddress, b.count, 0) == b.count }
        guard ok else { throw ControlErrorBody(code: "failed", message: "cannot write the vector back to '\(path)': \(String(cString: strerror(errno)))") }
    }
}
