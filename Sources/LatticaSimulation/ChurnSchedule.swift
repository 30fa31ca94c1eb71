public import LatticaCore

/// A list of crashes and restarts, usually generated from a seed (`random`).
public struct ChurnSchedule: Hashable, Sendable {
    public enum Action: Hashable, Sendable { case crash, restart }

    public struct Entry: Hashable, Sendable {
        public var time: Instant
        public var node: SimNodeID
        public var action: Action
        public init(time: Instant, node: SimNodeID, action: Action) {
            self.time = time; self.node = node; self.action = action
        }
    }

    /// Sorted by time, then node.
    public var entries: [Entry]

    public init(entries: [Entry]) {
        self.entries = entries.sorted { ($0.time, $0.node) < ($1.time, $1.node) }
    }

    /// Each node alternates exponentially distributed up and down periods with the given means,
    /// starting up at `start`; the schedule ends at `end` (a node down at `end` stays down unless
    /// `restartAllAtEnd`). Deterministic in `rng`.
    public static func random(
        nodes: some Sequence<SimNodeID>,
        from start: Instant,
        until end: Instant,
        meanUptime: Duration,
        meanDowntime: Duration,
        restartAllAtEnd: Bool = false,
        rng: inout SeededRandom
    ) -> ChurnSchedule {
        let up = Double(meanUptime.nanosecondsClamped)
        let down = Double(meanDowntime.nanosecondsClamped)
        var entries: [Entry] = []
        for node in nodes {
            var t = start.nanoseconds
            var isUp = true
            while true {
                let mean = isUp ? up : down
                let dt = Int64(Swift.min(Self.exponential(mean: mean, rng: &rng), 9e18))
                t = t.addingReportingOverflow(Swift.max(1, dt)).partialValue
                if t >= end.nanoseconds || t < start.nanoseconds { break }
                entries.append(Entry(time: Instant(nanoseconds: t), node: node, action: isUp ? .crash : .restart))
                isUp.toggle()
            }
            if !isUp && restartAllAtEnd { entries.append(Entry(time: end, node: node, action: .restart)) }
        }
        return ChurnSchedule(entries: entries)
    }

    /// Exponential(1/mean) by inversion: `-mean * ln(u)`, u in (0, 1].
    static func exponential(mean: Double, rng: inout SeededRandom) -> Double {
        let u = 1 - rng.nextDouble()
        return -mean * naturalLog(u)
    }

    /// ln(x) for x > 0 without libm (x = m·2^e, ln m by the atanh series).
    static func naturalLog(_ x: Double) -> Double {
        let e = x.exponent
        let m = x.significand
        let y = (m - 1) / (m + 1)
        let y2 = y * y
        var term = y, sum = 0.0, k = 1.0
        for _ in 0..<40 {
            sum += term / k
            term *= y2
            k += 2
        }
        return Double(e) * 0.693_147_180_559_945_3 + 2 * sum
    }
}
