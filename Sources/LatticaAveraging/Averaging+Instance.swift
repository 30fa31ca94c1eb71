public import LatticaCore

extension Averaging {
    /// One node's averaging state: slow weights φ, outer momentum m, the step in progress and the
    /// contributions that have arrived for it, reputation and metrics.
    public struct Instance: Sendable {
        public let me: Int
        public let settings: Settings
        public private(set) var slow: [Float]
        var momentum: [Float]
        var rng: SeededRandom
        public private(set) var reputation: Reputation
        public private(set) var metrics = Metrics()

        /// θ published for the current step (what we answer pulls with).
        var published: [Float]
        var step = -1
        var members: [Int] = []
        var requested: Set<Int> = []
        var tried: Set<Int> = []
        var received: [(peer: Int, parameters: [Float])] = []
        /// Peers whose entry in `received` is already their delta θ − φ (`onDelta`), not θ.
        var deltaPeers: Set<Int> = []
        var finished = true
        /// Buffers of the last step's deltas and aggregate, reused by the next (a fresh 100 MB
        /// array costs its page faults on every step): `spareBuffers` for the shell's pulls.
        var spare: [[Float]] = []
        var ownDelta: [Float] = []
        var aggregateBuffer: [Float] = []

        /// `initial` is the agreed initial model (θ = φ at the start).
        public init(me: Int, initial: [Float], settings: Settings, seed: UInt64) {
            self.me = me
            self.settings = settings
            slow = initial
            published = initial
            momentum = [Float](repeating: 0, count: initial.count)
            rng = SeededRandom(seed: seed)
            reputation = Reputation(settings: settings.reputation)
        }

        /// NoLoCo's pairing for an outer step: a permutation of the sorted members seeded by
        /// (network seed, step); consecutive entries are partners. Every node computes the same
        /// pairing without negotiating. Returns nil for the odd one out.
        public static func nolocoPartner(of me: Int, members: [Int], step: Int, networkSeed: UInt64) -> Int? {
            var perm = members.sorted()
            var r = SeededRandom(seed: networkSeed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(truncatingIfNeeded: step))
            perm.shuffle(using: &r)
            guard let i = perm.firstIndex(of: me) else { return nil }
            let j = i ^ 1
            return j < perm.count ? perm[j] : nil
        }

        /// Start of outer step `step`: θ is the result of the inner loop; `members` the nodes
        /// currently known (including or excluding `me`). Returns the pulls to send and the
        /// round deadline.
        ///
        /// `partner`, for NoLoCo only: the partner the shell computed itself (a network derives the
        /// pairing from peer ids, which its small integer indices do not preserve).
        public mutating func onOuterStep(step: Int, parameters theta: [Float], members: [Int], now: Instant, partner: Int? = nil) -> [Directive] {
            precondition(theta.count == slow.count, "θ of the wrong shape from our own trainer")
            self.step = step
            published = theta
            self.members = members.filter { $0 != me }
            requested = []
            tried = []
            received = []
            deltaPeers = []
            finished = false
            let targets: [Int]
            switch settings.method {
            case .localOnly: targets = []
            case .diloco: targets = self.members
            case .noloco:
                targets = (partner ?? Self.nolocoPartner(of: me, members: self.members + [me], step: step, networkSeed: settings.networkSeed))
                    .map { [$0] } ?? randomPeers(1)
            case .gossip: targets = randomPeers(1)
            case .robust(let k, _): targets = randomPeers(k - 1)
            }
            var out: [Directive] = targets.map { requested.insert($0); tried.insert($0); return .send(.pull(step: step), to: $0) }
            out.append(.scheduleTimer(.roundDeadline(step: step), at: now + settings.roundTimeout))
            return out
        }

        /// Up to `count` distinct peers, sampled by reputation weight when enabled.
        mutating func randomPeers(_ count: Int) -> [Int] {
            var pool = members.filter { !tried.contains($0) }
            var out: [Int] = []
            while out.count < count && !pool.isEmpty {
                let weights = pool.map { settings.useReputation ? reputation.weight($0) : 1.0 }
                let total = weights.reduce(0, +)
                var x = rng.nextDouble() * total
                var pick = pool.count - 1
                for (i, w) in weights.enumerated() { x -= w; if x < 0 { pick = i; break } }
                out.append(pool.remove(at: pick))
            }
            return out
        }

        /// A message from `peer`. Pulls are answered with the published θ; models are checked
        /// (shape, finiteness, norm) and stored for the step, or rejected as evidence.
        public mutating func onMessage(_ message: Message, from peer: Int, now: Instant) -> [Directive] {
            switch message {
            case .pull(let s):
                guard s == step else { return [] }
                return [.send(.model(step: s, parameters: published), to: peer)]
            case .model(let s, let p):
                metrics.modelsReceived += 1
                guard !finished, requested.contains(peer), !received.contains(where: { $0.peer == peer }) else {
                    return reject(peer, s == step ? .unsolicited : .wrongStep)
                }
                guard s == step else { return reject(peer, .wrongStep) }
                guard p.count == slow.count else { return reject(peer, .wrongShape) }
                guard p.allFinite else { return reject(peer, .nonFinite) }
                guard p.distance(to: slow) <= settings.maxDeltaNorm else { return reject(peer, .absurdNorm) }
                received.append((peer, p))
                return []
            }
        }

        /// A model that the shell decoded straight into its delta θ − φ from our current φ
        /// (`Wire.ReplyReceiver`), with its finiteness and ‖θ − φ‖ measured in the same pass: the
        /// same checks as a `.model` message, in the same order.
        public mutating func onDelta(step s: Int, delta: [Float], finite: Bool, norm: Double, from peer: Int, now: Instant) -> [Directive] {
            metrics.modelsReceived += 1
            guard !finished, requested.contains(peer), !received.contains(where: { $0.peer == peer }) else {
                return reject(peer, s == step ? .unsolicited : .wrongStep)
            }
            guard s == step else { return reject(peer, .wrongStep) }
            guard delta.count == slow.count else { return reject(peer, .wrongShape) }
            guard finite else { return reject(peer, .nonFinite) }
            guard norm <= settings.maxDeltaNorm else { return reject(peer, .absurdNorm) }
            received.append((peer, delta))
            deltaPeers.insert(peer)
            return []
        }

        /// A buffer of the model's size left from an earlier step, for the shell to decode the
        /// next pull into (nil: allocate).
        public mutating func spareBuffer() -> [Float]? { spare.popLast() }

        /// A buffer the shell no longer needs (a pull that failed or came too late).
        public mutating func recycle(_ buffer: [Float]) {
            if buffer.count == slow.count, spare.count < max(1, members.count) { spare.append(buffer) }
        }

        mutating func reject(_ peer: Int, _ reason: RejectReason) -> [Directive] {
            metrics.rejected[reason, default: 0] += 1
            let e = Evidence(peer: peer, step: step, kind: .rejected(reason))
            if settings.useReputation { reputation.record(e) }
            return [.evidence(e)]
        }

        /// The chosen partner cannot be reached: pull from another live peer instead.
        public mutating func onPeerUnreachable(_ peer: Int, now: Instant) -> [Directive] {
            guard !finished, requested.remove(peer) != nil else { return [] }
            members.removeAll { $0 == peer }
            metrics.fallbacks += 1
            guard let other = randomPeers(1).first else { return [] }
            requested.insert(other); tried.insert(other)
            return [.send(.pull(step: step), to: other)]
        }

        /// Peers asked for this step's model that have not answered yet.
        public var missingContributions: [Int] {
            finished ? [] : requested.filter { r in !received.contains { $0.peer == r } }.sorted()
        }

        /// True when every pulled model has arrived (the shell may finish before the deadline).
        public var hasAllContributions: Bool { !finished && received.count == requested.count }

        public mutating func onTimer(_ timer: Timer, now: Instant) -> [Directive] {
            guard case .roundDeadline(let s) = timer, s == step, !finished else { return [] }
            return finishStep(now: now)
        }

        /// `deltas` with every vector longer than `factor` × the lower median norm scaled down to it.
        public static func bounded(_ deltas: [[Float]], factor: Double) -> [[Float]] {
            let norms = deltas.map { $0.l2Norm }
            let bound = factor * norms.sorted()[(norms.count - 1) / 2]
            return zip(deltas, norms).map { d, norm in
                norm > bound && norm > 0 ? d.map { $0 * Float(bound / norm) } : d
            }
        }

        /// `deltas` without those closer to an earlier kept one than `fraction` × s, where s is the
        /// distance from the first delta (own, honest) to its nearest other contribution. Attackers
        /// can only make s smaller (merging less); merging honest deltas would need every other
        /// contribution far from ours. Scales that attackers can inflate (the median pairwise
        /// distance, the lower median of the distances from own; the lower median norm, which also
        /// carries the part all deltas share when φ lags) merged honest deltas under 6/16 sign-flip
        /// at fraction 0.3 (Docs/LEARNING.md).
        public static func distinct(_ deltas: [[Float]], fraction: Double) -> [[Float]] {
            let k = deltas.count
            let d2 = Aggregation.withBuffers(deltas) { Aggregation.squaredDistances($0) }
            let limit = fraction * fraction * (1..<k).map { d2[$0] }.min()!
            var kept: [Int] = []
            for i in 0..<k where !kept.contains(where: { d2[$0 * k + i] <= limit }) { kept.append(i) }
            return kept.map { deltas[$0] }
        }

        /// Completes the outer step with the contributions received so far.
        public mutating func finishStep(now: Instant) -> [Directive] {
            guard !finished else { return [] }
            finished = true
            metrics.outerSteps += 1
            var directives: [Directive] = []
            let n = slow.count
            var own = ownDelta
            ownDelta = []
            own.subtract(published, slow)
            var reuse = aggregateBuffer
            aggregateBuffer = []
            let (contributors, deltas, aggregate) = aggregateDeltas(own: own, received.sorted(by: { $0.peer < $1.peer }), given: deltaPeers, into: &reuse)
            // Evidence: each peer's distance from the aggregate, relative to the median distance.
            if deltas.count >= 3 {
                // One pass per delta: its distance from the aggregate, its dot product and norm.
                let cmp = aggregate.withUnsafeBufferPointer { g in deltas.map { d in d.withUnsafeBufferPointer { Kernels.compare($0, g) } } }
                let dist = cmp.map { $0.squaredDistance.squareRoot() }
                let sorted = dist.sorted()
                let med = max(sorted[sorted.count / 2], 1e-12)
                let aggNorm = aggregate.l2Norm
                for (i, peer) in contributors.enumerated() where peer != me {
                    let ratio = dist[i] / med
                    // Far out, or pointing against the aggregate (IPM-style inner-product attacks).
                    let cosine = aggNorm > 0 ? cmp[i].dot / (max(cmp[i].squaredNorm.squareRoot(), 1e-30) * aggNorm) : 1
                    let far = ratio > settings.reputation.farFactor || cosine < settings.reputation.minCosine
                    if far { metrics.farContributions += 1 }
                    let e = Evidence(peer: peer, step: step, kind: .distance(ratio: ratio, far: far))
                    if settings.useReputation { reputation.record(e) }
                    directives.append(.evidence(e))
                }
            }
            // Outer step: m ← β·m + α·agg; φ ← φ + m; θ ← φ.
            let a = settings.alpha, b = settings.beta
            momentum.withUnsafeMutableBufferPointer { m in
                slow.withUnsafeMutableBufferPointer { phi in
                    aggregate.withUnsafeBufferPointer { g in
                        for i in 0..<n { m[i] = b * m[i] + a * g[i]; phi[i] += m[i] }
                    }
                }
            }
            // The buffers go back for the next step (dropped references first: `deltas` and
            // `received` share them).
            let given = deltaPeers
            let pulled = received.filter { given.contains($0.peer) }.map(\.parameters)
            received = []
            deltaPeers = []
            _ = consume deltas
            // (For the mean of our delta alone, the aggregate is `own` itself: not kept twice.)
            let same = aggregate.withUnsafeBufferPointer { a in own.withUnsafeBufferPointer { a.baseAddress == $0.baseAddress } }
            ownDelta = own
            aggregateBuffer = same ? [] : aggregate
            spare = Array(pulled.prefix(max(1, members.count)))
            published = slow
            directives.append(.setParameters(slow))
            return directives
        }

        /// The deltas Δ_j = θ_j − φ (own first) of the trusted contributions (all of them when fewer
        /// than 3 trusted ones remain, or without reputation), and their aggregate: the run's rule
        /// for robust methods with 3 or more, the mean otherwise.
        /// `own` and the models of the peers in `given` are deltas already; `into`: a buffer to
        /// write the aggregate into when the rule allows (its old contents are overwritten).
        func aggregateDeltas(own ownDelta: [Float], _ models: [(peer: Int, parameters: [Float])], given: Set<Int> = [],
                             rule override: Aggregation.Rule? = nil, into buffer: inout [Float]) -> (contributors: [Int], deltas: [[Float]], aggregate: [Float]) {
            var contributors = [me]
            var deltas = [ownDelta]
            func delta(_ peer: Int, _ p: [Float]) -> [Float] { given.contains(peer) ? p : p - slow }
            for (peer, p) in models where !settings.useReputation || reputation.isTrusted(peer) {
                contributors.append(peer); deltas.append(delta(peer, p))
            }
            // Keep deprioritised peers only if too few trusted ones answered.
            if settings.useReputation && contributors.count < 3 {
                for (peer, p) in models where !contributors.contains(peer) { contributors.append(peer); deltas.append(delta(peer, p)) }
            }
            // What the rule sees: deltas bounded in norm and near-duplicates counted once, when set
            // (the evidence is computed from the deltas themselves).
            // As the robust rules, the bound needs 3 or more: with two, the lower median is the smaller
            // norm, and a partner that has not moved (θ = φ) would zero the other's delta.
            let rule: Aggregation.Rule = switch (override, settings.method) {
            case (let rule?, _) where deltas.count >= 3: rule
            case (nil, .robust(_, let rule)) where deltas.count >= 3: rule
            default: .mean
            }
            if deltas.count >= 3, let factor = settings.normBound, settings.mergeDuplicates == nil {
                // Mean and Flag are weighted sums of their inputs: the bound's scale factors go into
                // the weights (Flag's Gram matrix scaled by them) instead of into scaled copies.
                switch rule {
                case .mean, .flag:
                    Aggregation.aggregateBounded(deltas, rule: rule, factor: factor, into: &buffer)
                    return (contributors, deltas, buffer)
                default: break
                }
            }
            var inputs = deltas.count >= 3 ? settings.normBound.map { Self.bounded(deltas, factor: $0) } ?? deltas : deltas
            if let eps = settings.mergeDuplicates, inputs.count >= 3 { inputs = Self.distinct(inputs, fraction: eps) }
            // The mean of one input is that input: no pass, no copy.
            if rule == .mean, inputs.count == 1 { return (contributors, deltas, inputs[0]) }
            Aggregation.aggregate(inputs, rule: rule, into: &buffer)
            return (contributors, deltas, buffer)
        }

        /// The final global merge ("A Single Merging Suffices"): at a run's end the node takes every
        /// member's final model once and aggregates them robustly with its own. Each model is checked
        /// as in a step (shape, finiteness, norm: rejected ones become evidence), untrusted peers are
        /// left out when reputation is on (unless fewer than 3 would remain), and the deltas from our
        /// φ are aggregated with `settings.mergeRule` (default: the method's rule, the mean for
        /// non-robust methods): φ ← φ + agg, with no
        /// outer learning rate or momentum. Returns the merged φ (also the new published θ), the
        /// peers that contributed, and the evidence.
        /// `own` is this node's final θ (normally φ itself).
        public mutating func finalMerge(own: [Float], _ models: [(peer: Int, parameters: [Float])]) -> (phi: [Float], contributors: [Int], directives: [Directive]) {
            precondition(own.count == slow.count, "θ of the wrong shape from our own trainer")
            finished = true
            var directives: [Directive] = []
            var accepted: [(peer: Int, parameters: [Float])] = []
            for (peer, p) in models.sorted(by: { $0.peer < $1.peer }) where peer != me && !accepted.contains(where: { $0.peer == peer }) {
                let reason: RejectReason? = p.count != slow.count ? .wrongShape : !p.allFinite ? .nonFinite
                    : p.distance(to: slow) > settings.maxDeltaNorm ? .absurdNorm : nil
                if let reason { directives += reject(peer, reason); continue }
                accepted.append((peer, p))
            }
            var buffer: [Float] = []
            let (contributors, _, aggregate) = aggregateDeltas(own: own - slow, accepted, rule: settings.mergeRule, into: &buffer)
            slow.withUnsafeMutableBufferPointer { phi in
                aggregate.withUnsafeBufferPointer { g in for i in 0..<phi.count { phi[i] += g[i] } }
            }
            published = slow
            return (slow, contributors, directives)
        }
    }
}
