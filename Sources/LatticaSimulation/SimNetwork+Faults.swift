public import LatticaCore

// Link overrides, partitions and churn for `SimNetwork`.

extension SimNetwork {
    // MARK: Links

    /// Overrides the model of the directed link `from → to` (`nil` restores the default).
    public mutating func setLink(from: SimNodeID, to: SimNodeID, _ model: LinkModel?) {
        linkOverrides[Self.linkKey(from.raw, to.raw)] = model
    }

    /// Overrides both directions between `a` and `b`.
    public mutating func setLink(between a: SimNodeID, and b: SimNodeID, _ model: LinkModel?) {
        setLink(from: a, to: b, model)
        setLink(from: b, to: a, model)
    }

    /// The model in force for `from → to`.
    public func link(from: SimNodeID, to: SimNodeID) -> LinkModel {
        linkOverrides[Self.linkKey(from.raw, to.raw)] ?? defaultLink
    }

    /// Gives `node` an access latency (its "last mile"), added to the latency of every message it
    /// sends or receives. Cheap heterogeneity: per-pair latencies that differ but stay stable, with
    /// O(nodes) memory.
    public mutating func setAccessLatency(_ delay: Duration, for node: SimNodeID) {
        accessLatency[node.raw] = Swift.max(0, delay.nanosecondsClamped)
    }

    public func accessLatency(of node: SimNodeID) -> Duration { .nanoseconds(accessLatency[node.raw]) }

    // MARK: Partitions

    /// Whether a message from `from` to `to` would pass the partition and link blocks now.
    public func canReach(from: SimNodeID, to: SimNodeID) -> Bool { canReach(from.raw, to.raw) }

    @inlinable @inline(__always)
    func canReach(_ f: Int, _ t: Int) -> Bool {
        guard partitioned else { return true }
        return sides[f] == sides[t] && !blockedLinks.contains(Self.linkKey(f, t))
    }

    /// Splits the network: each listed group becomes a side, and every node not listed forms one
    /// more side. Nodes on different sides cannot reach each other; messages already in flight
    /// across sides are dropped on arrival. Replaces any earlier partition (link blocks stay).
    public mutating func partition(_ groups: [[SimNodeID]]) {
        for i in sides.indices { sides[i] = 0 }
        for (g, group) in groups.enumerated() {
            for node in group { sides[node.raw] = Int32(g + 1) }
        }
        partitioned = true
    }

    /// Cuts `node` off from every other node.
    public mutating func isolate(_ node: SimNodeID) {
        if !partitioned { for i in sides.indices { sides[i] = 0 } }
        sides[node.raw] = Int32.min &+ Int32(truncatingIfNeeded: node.raw)
        partitioned = true
    }

    /// Blocks the directed link `from → to` (asymmetric reachability).
    public mutating func block(from: SimNodeID, to: SimNodeID) {
        blockedLinks.insert(Self.linkKey(from.raw, to.raw))
        partitioned = true
    }

    /// Removes every partition and link block.
    public mutating func heal() {
        for i in sides.indices { sides[i] = 0 }
        blockedLinks.removeAll()
        partitioned = false
    }

    // MARK: Churn

    /// Crashes `node` now: it stops receiving (messages in flight to it are dropped, even if it
    /// restarts before they arrive) and its armed timers are dropped. No-op when already down.
    public mutating func crash(_ node: SimNodeID) {
        guard up[node.raw] else { return }
        crashNow(node.raw)
    }

    @usableFromInline
    mutating func crashNow(_ n: Int) {
        up[n] = false
        incarnations[n] &+= 1
        _counters.crashes += 1
        _counters.timersDroppedByCrash += timers[n].count
        staleTimers += timers[n].count
        timers[n].removeAll()
        _digest = SimDigest.combine(SimDigest.combine(_digest, UInt64(bitPattern: now.nanoseconds) ^ 0xC4A5), UInt64(n))
        if let trace { trace(now, .crashed(SimNodeID(n))) }
    }

    /// Schedules a crash of `node` at `time`.
    public mutating func scheduleCrash(_ node: SimNodeID, at time: Instant) {
        clock.schedule(.crash(Int32(truncatingIfNeeded: node.raw)), at: time)
    }

    /// Schedules a (re)start of `node` at `time`: if it is down then, it comes up and the driver
    /// gets `.started(node)`. Use `time = now` for an immediate restart, ordered after events due now.
    public mutating func scheduleStart(_ node: SimNodeID, at time: Instant) {
        clock.schedule(.start(Int32(truncatingIfNeeded: node.raw)), at: time)
    }

    /// Schedules a `.started(node)` event at `time` for a node that is already up (its first start
    /// when it joined up); skipped if the node crashed in between.
    public mutating func scheduleStartEvent(_ node: SimNodeID, at time: Instant) {
        clock.schedule(.boot(Int32(truncatingIfNeeded: node.raw), incarnation: incarnations[node.raw]), at: time)
    }

    /// Schedules every crash and restart of `schedule`.
    public mutating func apply(_ schedule: ChurnSchedule) {
        for e in schedule.entries {
            switch e.action {
            case .crash: scheduleCrash(e.node, at: e.time)
            case .restart: scheduleStart(e.node, at: e.time)
            }
        }
    }
}
