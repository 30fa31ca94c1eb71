extension Dashboard {
    /// Progress of every node over outer steps, per run, as `run/<id>/progress/<peer>` changes
    /// arrive: the points of the curves. Bounded: at most `maxRuns` runs (the least recently
    /// updated one gives way, never the pinned one), `maxSeriesPerRun` nodes per run (later ones
    /// are not tracked) and `maxPoints` points per node (when full, every other point is
    /// dropped, so a long run keeps its whole curve at a coarser resolution). No I/O.
    struct History {
        let limits: Limits
        private(set) var runs: [String: RunHistory] = [:]
        private var tick: UInt64 = 0

        struct RunHistory {
            /// Series in the order their first point arrived.
            var series: [(peer: String, points: [Point])] = []
            var lastUpdate: UInt64 = 0
        }

        init(limits: Limits) { self.limits = limits }

        /// Records that `peer` reached `step` in `run`. `pinned` (the run this node trains in)
        /// is never evicted. Returns false when the point was not kept (bounds).
        @discardableResult
        mutating func record(run: String, peer: String, step: UInt64, loss: Double, accuracy: Double?, pinned: String?) -> Bool {
            tick += 1
            if runs[run] == nil, runs.count >= limits.maxRuns {
                guard let victim = runs.filter({ $0.key != pinned }).min(by: { $0.value.lastUpdate < $1.value.lastUpdate })?.key else { return false }
                runs.removeValue(forKey: victim)
            }
            var r = runs[run] ?? RunHistory()
            r.lastUpdate = tick
            let point = Point(step: step, loss: loss.isFinite ? loss : nil, accuracy: accuracy.flatMap { $0.isFinite ? $0 : nil })
            if let i = r.series.firstIndex(where: { $0.peer == peer }) {
                Self.add(point, to: &r.series[i].points, max: limits.maxPoints)
            } else {
                guard r.series.count < limits.maxSeriesPerRun else { runs[run] = r; return false }
                r.series.append((peer, [point]))
            }
            runs[run] = r
            return true
        }

        /// Appends in step order: the same step replaces the last point; an earlier step (the node
        /// restarted from an older checkpoint) drops the points from that step on.
        static func add(_ p: Point, to points: inout [Point], max: Int) {
            if let last = points.last, p.step <= last.step {
                points.removeAll { $0.step >= p.step }
            }
            points.append(p)
            if points.count > max {
                let n = points.count
                points = stride(from: 0, to: n - 1, by: 2).map { points[$0] } + [points[n - 1]]
            }
        }

        /// Runs by most recent update first.
        var runIDs: [String] { runs.sorted { $0.value.lastUpdate > $1.value.lastUpdate }.map(\.key) }

        func series(of run: String) -> [Series] {
            (runs[run]?.series ?? []).map { Series(peer: $0.peer, points: $0.points) }
        }
    }
}
