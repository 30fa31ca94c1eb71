public import LatticaCore

/// DADAO (Nabli & Oyallon, ICML 2023; reference AdelNabli/DADAO): decentralized, accelerated,
/// asynchronous optimisation of L-smooth, μ-strongly convex local losses. Gradient steps and
/// gossip are independent Poisson processes; between its events a node's six vectors follow a
/// linear ODE that is applied lazily, as exp(M·Δt), when the next event reaches the node.
public enum DADAO {
    public struct Constants: Hashable, Sendable {
        public let L: Double, mu: Double, nu: Double
        public let gamma: Double, gammaTilde: Double, delta: Double, deltaTilde: Double
        public let beta: Double, betaTilde: Double
        /// Row-major 6×6 ODE matrix over (X, X̃, Y, Ỹ, Z, Z̃).
        public let ode: [Double]

        /// `chi1` = 1/λ₂ of the Laplacian normalised by |E|; `lambdaMix` the total gossip rate.
        public init(L: Double, mu: Double, chi1: Double, lambdaMix: Double) {
            self.L = L; self.mu = mu
            let nu = mu / 2
            self.nu = nu
            let r = (nu / L).squareRoot()
            let alpha = r / 4, alphaTilde = r / 8, eta = r / 8, theta = 0.5 / r
            gamma = 1 / (4 * L)
            gammaTilde = 1 / (4 * (L * nu).squareRoot())
            delta = r / 4
            deltaTilde = 1
            beta = 0.5
            betaTilde = 2 * (chi1 / lambdaMix) * (L / nu).squareRoot()
            var m = [Double](repeating: 0, count: 36)
            m[0 * 6 + 0] = -eta; m[0 * 6 + 1] = eta
            m[1 * 6 + 0] = eta; m[1 * 6 + 1] = -eta
            m[2 * 6 + 2] = -alpha; m[2 * 6 + 3] = alpha
            m[3 * 6 + 1] = -theta * nu; m[3 * 6 + 2] = -theta; m[3 * 6 + 4] = -theta
            m[4 * 6 + 4] = -alpha; m[4 * 6 + 5] = alpha
            m[5 * 6 + 4] = alphaTilde; m[5 * 6 + 5] = -alphaTilde
            ode = m
        }
    }

    /// exp(A·t) of a 6×6 matrix by scaling and squaring with a Taylor series.
    public static func expm6(_ a: [Double], t: Double) -> [Double] {
        var norm = 0.0
        for i in 0..<6 { var s = 0.0; for j in 0..<6 { s += abs(a[i * 6 + j]) }; norm = max(norm, s) }
        norm *= abs(t)
        var squarings = 0
        var scale = t
        while norm > 0.25 { norm /= 2; scale /= 2; squarings += 1 }
        let x = a.map { $0 * scale }
        var result = [Double](repeating: 0, count: 36)
        for i in 0..<6 { result[i * 6 + i] = 1 }
        var term = result
        for k in 1...12 {
            term = mul6(term, x).map { $0 / Double(k) }
            for i in 0..<36 { result[i] += term[i] }
        }
        for _ in 0..<squarings { result = mul6(result, result) }
        return result
    }

    static func mul6(_ a: [Double], _ b: [Double]) -> [Double] {
        var c = [Double](repeating: 0, count: 36)
        for i in 0..<6 { for k in 0..<6 { let aik = a[i * 6 + k]; if aik == 0 { continue }; for j in 0..<6 { c[i * 6 + j] += aik * b[k * 6 + j] } } }
        return c
    }

    /// One node's DADAO state. Sans-I/O: the shell calls `onGradientEvent` at the node's Poisson
    /// gradient times and, for a gossip on edge (i, j), exchanges `gossipPayload(now:)` (Y + Z,
    /// the one vector that crosses the wire) and calls `onGossip(peerPayload:now:)` on both ends.
    public struct Instance: Sendable {
        public let constants: Constants
        /// Rows: X, X̃, Y, Ỹ, Z, Z̃; each of dimension `dimension`.
        public private(set) var state: [[Double]]
        public private(set) var lastEvent: Instant
        var pendingOwnPayload: [Double]?

        public init(initial x: [Double], constants: Constants, now: Instant = .zero) {
            self.constants = constants
            state = [x] + [[Double]](repeating: [Double](repeating: 0, count: x.count), count: 5)
            lastEvent = now
        }

        /// The model output X.
        public var x: [Double] { state[0] }

        /// Replaces the six vectors (a resumed state, `init(restoring:…)`).
        mutating func restore(_ s: [[Double]]) { state = s }

        /// Applies the ODE from the last event up to `now` (lazy catch-up).
        public mutating func catchUp(to now: Instant) {
            let dt = (now - lastEvent).secondsDouble
            lastEvent = now
            guard dt > 0 else { return }
            let e = DADAO.expm6(constants.ode, t: dt)
            let d = state[0].count
            var next = [[Double]](repeating: [Double](repeating: 0, count: d), count: 6)
            for i in 0..<6 { for k in 0..<6 where e[i * 6 + k] != 0 {
                let w = e[i * 6 + k]
                for c in 0..<d { next[i][c] += w * state[k][c] }
            } }
            state = next
        }

        /// A gradient event: `gradient` returns ∇f_i at the given X.
        public mutating func onGradientEvent(now: Instant, gradient: ([Double]) -> [Double]) {
            catchUp(to: now)
            let k = constants
            let gradX = gradient(state[0])
            let d = gradX.count
            for c in 0..<d {
                let g = gradX[c] - k.nu * state[0][c] - state[3][c]
                state[0][c] -= k.gamma * g
                state[1][c] -= k.gammaTilde * g
                state[3][c] += (k.delta + k.deltaTilde) * g
            }
        }

        /// Catches up and returns Y + Z, the vector sent to the gossip partner.
        public mutating func gossipPayload(now: Instant) -> [Double] {
            catchUp(to: now)
            let p = zip(state[2], state[4]).map { $0 + $1 }
            pendingOwnPayload = p
            return p
        }

        /// Completes a gossip: w = (Y+Z)_own − (Y+Z)_peer; Z −= β·w; Z̃ −= β̃·w.
        public mutating func onGossip(peerPayload: [Double], now: Instant) {
            let own = pendingOwnPayload ?? gossipPayload(now: now)
            pendingOwnPayload = nil
            _ = apply(own: own, peer: peerPayload)
        }

        // MARK: the exchange over the network (`/lattica/dadao/1.0.0`, Docs/WIRE.md)

        /// The dimension of every vector (the model's parameter count).
        public var dimension: Int { state[0].count }

        /// Is `p` a payload this instance can take: the right dimension, every value finite?
        public func accepts(_ p: [Double]) -> Bool { p.count == dimension && p.allSatisfy(\.isFinite) }

        /// The initiator's side, at its gossip event: catches up and returns Y + Z. Nothing is
        /// kept: the shell keeps this exact vector with the exchange in flight, so that several
        /// exchanges (ours and peers') may overlap and each is completed with its own pair.
        public mutating func beginExchange(now: Instant) -> [Double] {
            catchUp(to: now)
            return zip(state[2], state[4]).map { $0 + $1 }
        }

        /// The initiator's side, when the answer arrives: `own` is what `beginExchange` returned
        /// for this exchange, `peer` the answerer's Y + Z. Applies w = own − peer at `now`.
        /// False (nothing applied) for a payload of the wrong dimension or with NaN/Inf.
        @discardableResult
        public mutating func completeExchange(own: [Double], peer: [Double], now: Instant) -> Bool {
            guard accepts(peer), own.count == dimension else { return false }
            catchUp(to: now)
            return apply(own: own, peer: peer)
        }

        /// The answerer's side, in one step: catches up, takes its own Y + Z, applies
        /// w = own − peer and returns own (the answer). Nil (nothing applied) for a payload of the
        /// wrong dimension or with NaN/Inf. Both ends compute w from the same two vectors, so
        /// Σ_i (α̃·Z_i + α·Z̃_i), which the ODE conserves, is conserved by the exchange too.
        public mutating func answerExchange(peer: [Double], now: Instant) -> [Double]? {
            guard accepts(peer) else { return nil }
            let own = beginExchange(now: now)
            apply(own: own, peer: peer)
            return own
        }

        /// X at `t` ≥ the last event if no gradient event happens before: X and X̃ follow their own
        /// 2×2 block of the ODE (Ẋ = η(X̃−X), X̃' = η(X−X̃)), which gossip never touches, so this
        /// is exact for a gradient event at `t`. The trainer evaluates ∇f_i there ahead of time.
        public func predictedX(at t: Instant) -> [Double] {
            let dt = (t - lastEvent).secondsDouble
            guard dt > 0 else { return state[0] }
            let e = DADAO.expm6(constants.ode, t: dt)
            return zip(state[0], state[1]).map { e[0] * $0 + e[1] * $1 }
        }

        /// A gradient event with a gradient computed elsewhere (by the trainer, at
        /// `predictedX(at: now)`): the same update as `onGradientEvent`. False (nothing applied)
        /// for a gradient of the wrong dimension or with NaN/Inf.
        @discardableResult
        public mutating func onGradientEvent(now: Instant, gradient g: [Double]) -> Bool {
            guard accepts(g) else { return false }
            onGradientEvent(now: now) { _ in g }
            return true
        }

        @discardableResult
        mutating func apply(own: [Double], peer: [Double]) -> Bool {
            guard peer.count == own.count, own.count == dimension, peer.allSatisfy(\.isFinite) else { return false }
            for c in 0..<own.count {
                let w = own[c] - peer[c]
                state[4][c] -= constants.beta * w
                state[5][c] -= constants.betaTilde * w
            }
            return true
        }
    }

    /// χ1 and λ_mix of the complete graph on `n` nodes (every member may gossip with every
    /// other, as over the network): λ₂ of its Laplacian is n and every edge's effective
    /// resistance 2/n, so χ1 = |E|/n = (n−1)/2, χ2 = (n−1)/2 and λ_mix = √(2·χ1·χ2) = (n−1)/√2
    /// (`Experiment.graphConstants` gives the same numbers by eigen-decomposition).
    public static func completeGraph(nodes n: Int) -> (chi1: Double, chi2: Double, lambdaMix: Double) {
        let c = Double(max(2, n) - 1) / 2
        return (c, c, (2 * c * c).squareRoot())
    }
}
