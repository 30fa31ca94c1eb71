import LatticaCore

/// The schedule of one port-mapping lease over UDP (PCP, NAT-PMP): a request retransmitted with
/// doubling timeouts, renewal at half the granted lifetime, the mapping kept until it expires when
/// renewals go unanswered or are refused. Pure: the clients turn its steps into their directives
/// and decide which bytes a request is.
public struct MappingLease: Sendable, Equatable {
    public enum Phase: Sendable, Equatable {
        case idle
        case requesting
        case mapped(renewAt: Instant, expiresAt: Instant)
        case renewing(expiresAt: Instant)
        case done
    }

    public enum Step: Sendable, Equatable {
        case nothing
        /// Arm the timer for this instant.
        case wait(Instant)
        /// Send the request (again), and arm the timer for `timeoutAt`.
        case send(timeoutAt: Instant)
        /// Every try of the first request went unanswered.
        case gaveUp
        /// The mapping expired.
        case expired
    }

    public let initialTimeout: Duration
    public let maxTries: Int
    public private(set) var phase: Phase = .idle
    private var tries = 0
    private var deadline = Instant.zero

    public init(initialTimeout: Duration, maxTries: Int) {
        self.initialTimeout = initialTimeout; self.maxTries = maxTries
    }

    public var isMapped: Bool {
        switch phase { case .mapped, .renewing: true; default: false }
    }

    /// Starts (or restarts, for a second request in the same exchange) the first request.
    public mutating func request(now: Instant) -> Step {
        phase = .requesting
        return transmit(now: now, first: true)
    }

    /// The server granted `lifetime` seconds: when to renew.
    public mutating func granted(lifetime: UInt32, now: Instant) -> Instant {
        let life = Duration.seconds(Int64(lifetime))
        let renewAt = now + life / 2
        phase = .mapped(renewAt: renewAt, expiresAt: now + life)
        return renewAt
    }

    /// A renewal failed: keep the mapping until it expires; the instant to arm the timer for.
    public mutating func keepUntilExpiry() -> Instant? {
        guard case .renewing(let expiresAt) = phase else { return nil }
        phase = .mapped(renewAt: expiresAt, expiresAt: expiresAt)
        return expiresAt
    }

    public mutating func finish() { phase = .done }

    public mutating func onTimer(now: Instant) -> Step {
        switch phase {
        case .requesting:
            guard now >= deadline else { return .wait(deadline) }
            if tries >= maxTries { phase = .done; return .gaveUp }
            return transmit(now: now, first: false)
        case .renewing(let expiresAt):
            if now >= expiresAt { phase = .done; return .expired }
            guard now >= deadline else { return .wait(deadline) }
            // the server stopped answering: keep what we have until it expires
            if tries >= maxTries { return keepUntilExpiry().map { .wait($0) } ?? .nothing }
            return transmit(now: now, first: false)
        case .mapped(let renewAt, let expiresAt):
            if now >= expiresAt { phase = .done; return .expired }
            guard now >= renewAt else { return .wait(renewAt) }
            phase = .renewing(expiresAt: expiresAt)
            return transmit(now: now, first: true)
        case .idle, .done:
            return .nothing
        }
    }

    private mutating func transmit(now: Instant, first: Bool) -> Step {
        tries = first ? 1 : tries + 1
        deadline = now + initialTimeout * (1 << (tries - 1))
        return .send(timeoutAt: deadline)
    }
}
