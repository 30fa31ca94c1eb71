import Foundation
public import LatticaLearning

/// The experiment driver behind `lattica-bench learning` and Scripts/bench/learning.sh: runs the
/// tables of ALGORITHMS.md through the seeded round loop and prints them with the anchor numbers
/// beside ours (or, with `json`, one JSON object per line and cell).
public enum LearningBench {
    public struct Options: Sendable {
        public var nodes = 16
        public var byzantine = 4
        public var rounds = 60
        public var innerSteps = 10
        public var seeds: [UInt64] = [1, 2, 3]
        public var dirichletAlpha = 0.5
        public var json = false
        public var svgPath: String? = "learning-accuracy.svg"
        /// Which parts to run: "table", "bristle", "dadao", "perf".
        public var tracks: Set<String> = ["table", "bristle", "dadao", "perf"]
        /// Only these row names (nil = all).
        public var rows: Set<String>?
        public var attacks: [Attack]?
        public var fashionDirectory = "/usr/share/datasets/fashion-mnist"
        public var perfVectorLength = 25_000_000
        public var numpyPython: String?
        /// Reputation settings of the "ours" rows.
        public var farFactor = Reputation.Settings().farFactor
        public var minCosine = Reputation.Settings().minCosine
        /// Outer momentum β of the CenteredClip + reputation row (nil: 0.7).
        public var oursBeta: Float?
        public var oursK: Int?
        /// Rows from `--spec` (replace the built-in rows when set).
        public var specRows: [Row]?
        public init() {}
    }

    /// One row of the main table.
    public struct Row: Sendable {
        public var name: String
        public var aggregator: String
        public var method: Averaging.Method
        public var reputation = false
        public var beta: Float?
        public var anchors: [Attack: Double] = [:]
        /// Set by spec rows (`row(spec:)`): outer learning rate and reputation settings of the row.
        public var alpha: Float?
        public var reputationSettings: Reputation.Settings?
        public var normBound: Double?
        public var mergeDuplicates: Double?
    }

    public static let columns: [Attack] = [.none, .signFlip, .gaussian, .labelFlip, .alie, .ipm, .freeRider]

    public static var rows: [Row] {
        let cclip = Aggregation.Rule.centeredClip(tau: nil, iterations: 20)
        let flag = Aggregation.Rule.flag(r: 2, iterations: 1)
        func a(_ v: [Double]) -> [Attack: Double] { Dictionary(uniqueKeysWithValues: zip(columns, v)) }
        return [
            Row(name: "local only", aggregator: "none", method: .localOnly, anchors: [.none: 62.5]),
            Row(name: "DiLoCo (all-reduce)", aggregator: "mean", method: .diloco, anchors: a([95.3, 10.2, 78.6, 90.6, 95.0, 95.1])),
            Row(name: "NoLoCo (pairs)", aggregator: "mean", method: .noloco, anchors: a([93.6, 11.9, 25.9, 79.4, 91.1, 91.1])),
            Row(name: "gossip (pairs)", aggregator: "mean", method: .gossip),
            Row(name: "k=8 + mean", aggregator: "mean", method: .robust(k: 8, rule: .mean)),
            Row(name: "k=8 + median", aggregator: "median", method: .robust(k: 8, rule: .median), anchors: a([95.5, 83.9, 94.7, 92.9, 93.8, 94.1])),
            Row(name: "k=8 + trimmed mean", aggregator: "trimmed-mean", method: .robust(k: 8, rule: .trimmedMean(trim: 2))),
            Row(name: "k=8 + Multi-Krum", aggregator: "multi-krum", method: .robust(k: 8, rule: .multiKrum(f: 2, m: 4))),
            Row(name: "k=8 + CenteredClip", aggregator: "centered-clip", method: .robust(k: 8, rule: cclip), anchors: a([95.6, 80.4, 94.9, 93.8, 95.6, 94.9])),
            Row(name: "k=8 + Flag (r=2)", aggregator: "flag", method: .robust(k: 8, rule: flag), anchors: a([94.8, 92.0, 92.1, 93.1, 94.8, 91.5])),
            Row(name: "ours: k=8 + Flag + reputation", aggregator: "flag+reputation", method: .robust(k: 8, rule: flag), reputation: true),
            // Separates the two changes of the row below: beta 0.7 alone, without reputation.
            Row(name: "k=8 + CClip, beta 0.7, no reputation", aggregator: "centered-clip-beta0.7", method: .robust(k: 8, rule: cclip), beta: 0.7),
            Row(name: "ours: k=8 + CClip + reputation, beta 0.7", aggregator: "centered-clip+reputation", method: .robust(k: 8, rule: cclip), reputation: true, beta: 0.7),
        ]
    }

    public static var bestAnchor: [Attack: Double] {
        var best: [Attack: Double] = [:]
        for r in rows { for (a, v) in r.anchors { best[a] = max(best[a] ?? 0, v) } }
        return best
    }

    public struct Cell: Sendable {
        public var row: String
        public var aggregator: String
        public var attack: Attack
        public var summary: Experiment.Summary
        public var anchor: Double?
        public var seconds: Double
    }

    public static func config(_ row: Row, attack: Attack, options o: Options) -> Experiment.Config {
        var c = Experiment.Config(method: row.method)
        c.nodes = o.nodes
        c.byzantine = o.byzantine
        c.rounds = o.rounds
        c.innerSteps = o.innerSteps
        c.split = .dirichlet(alpha: o.dirichletAlpha)
        c.attack = attack
        c.averaging.useReputation = row.reputation
        c.averaging.reputation.farFactor = o.farFactor
        c.averaging.reputation.minCosine = o.minCosine
        if let rs = row.reputationSettings { c.averaging.reputation = rs }
        if let a = row.alpha { c.averaging.alpha = a }
        c.averaging.normBound = row.normBound
        c.averaging.mergeDuplicates = row.mergeDuplicates
        if let b = row.beta { c.averaging.beta = row.reputationSettings == nil ? (o.oursBeta ?? b) : b }
        if row.reputation, let k = o.oursK, case .robust(_, let rule) = row.method { c.averaging.method = .robust(k: k, rule: rule) }
        return c
    }

    /// Runs the main table; prints as it goes through `emit`.
    @discardableResult
    public static func mainTable(_ o: Options, digits: Dataset, emit: (String) -> Void) -> [Cell] {
        let attacks = o.attacks ?? columns
        var cells: [Cell] = []
        let clock = ContinuousClock()
        var nodeRounds = 0
        var totalSeconds = 0.0
        if !o.json {
            emit("Main table: digits, 64-32-10 MLP, \(o.nodes) nodes, Dirichlet(\(o.dirichletAlpha)), \(o.byzantine) Byzantine, \(o.rounds) outer rounds, H = \(o.innerSteps), Adam 3e-3, batch 16, seeds \(o.seeds.map(String.init).joined(separator: ","))")
            emit("cell = ours% [worst honest node%] (anchor%)")
            emit(pad("method", 42) + attacks.map { pad($0 == .none ? "clean" : $0.rawValue, 26) }.joined())
        }
        let selected = o.specRows ?? rows.filter { row in o.rows.map { $0.contains(row.name) || $0.contains(row.aggregator) } ?? true }
        for row in selected {
            var line = pad(row.name, 42)
            for attack in attacks {
                if case .localOnly = row.method, attack != .none { line += pad("", 26); continue }
                let t0 = clock.now
                let s = Experiment.run(config(row, attack: attack, options: o), data: digits, seeds: o.seeds)
                let secs = (clock.now - t0).secondsDouble
                nodeRounds += s.outcomes.map(\.nodeRounds).reduce(0, +)
                totalSeconds += secs
                let cell = Cell(row: row.name, aggregator: row.aggregator, attack: attack, summary: s, anchor: row.anchors[attack], seconds: secs)
                cells.append(cell)
                if o.json {
                    emit(jsonLine(cell))
                } else {
                    let anchor = row.anchors[attack].map { String(format: " (%.1f)", $0) } ?? ""
                    line += pad(String(format: "%.1f [%.1f]%@", s.accuracy * 100, s.worstNodeAccuracy * 100, anchor), 26)
                }
            }
            if !o.json { emit(line) }
        }
        if !o.json {
            emit(pad("best anchor row per column", 42) + attacks.map { a in pad(bestAnchor[a].map { String(format: "%.1f", $0) } ?? "", 26) }.joined())
            emit(String(format: "simulation speed: %.0f node-rounds/s (%d node-rounds in %.1f s, training + averaging + evaluation)",
                        Double(nodeRounds) / max(totalSeconds, 1e-9), nodeRounds, totalSeconds))
            emit("")
            emit("Accuracy per outer round (clean, mean of honest nodes over seeds), every 5th round:")
            for c in cells where c.attack == .none {
                let pts = stride(from: 4, to: c.summary.perRound.count, by: 5).map { String(format: "%.1f", c.summary.perRound[$0] * 100) }
                emit(pad(c.row, 42) + pts.joined(separator: " "))
            }
        } else {
            emit(String(format: "{\"simulation_node_rounds_per_second\": %.1f}", Double(nodeRounds) / max(totalSeconds, 1e-9)))
        }
        if let path = o.svgPath {
            let series = cells.filter { $0.attack == .none }.map { ($0.row, $0.summary.perRound) }
            let svg = SVGChart.lines(title: "Honest test accuracy per outer round (digits, clean, \(o.nodes) nodes)", series: series)
            try? svg.write(toFile: path, atomically: true, encoding: .utf8)
            if !o.json { emit("wrote \(path)") }
        }
        return cells
    }

    static func jsonLine(_ c: Cell) -> String {
        func esc(_ s: String) -> String { s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") }
        let anchor = c.anchor.map { String(format: "%.1f", $0) } ?? "null"
        return String(format: "{\"method\": \"%@\", \"aggregator\": \"%@\", \"attack\": \"%@\", \"accuracy\": %.2f, \"worst_node_accuracy\": %.2f, \"seeds\": [%@], \"per_seed\": [%@], \"per_seed_worst\": [%@], \"far_from_honest\": %d, \"far_from_byzantine\": %d, \"anchor\": %@, \"seconds\": %.2f}",
                      esc(c.row), esc(c.aggregator), c.attack.rawValue, c.summary.accuracy * 100, c.summary.worstNodeAccuracy * 100,
                      c.summary.seeds.map(String.init).joined(separator: ", "),
                      c.summary.outcomes.map { String(format: "%.2f", $0.meanAccuracy * 100) }.joined(separator: ", "),
                      c.summary.outcomes.map { String(format: "%.2f", $0.worstAccuracy * 100) }.joined(separator: ", "),
                      c.summary.outcomes.map(\.farFromHonest).reduce(0, +), c.summary.outcomes.map(\.farFromByzantine).reduce(0, +), anchor, c.seconds)
    }

    static func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }
}

/// A dependency-free SVG line chart.
public enum SVGChart {
    public static func lines(title: String, series: [(String, [Double])], yLabel: String = "accuracy") -> String {
        let w = 900.0, h = 520.0, left = 60.0, right = 330.0, top = 40.0, bottom = 50.0
        let pw = w - left - right, ph = h - top - bottom
        let maxX = Double(max(1, (series.map { $0.1.count }.max() ?? 1) - 1))
        let colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#000000", "#aa0066"]
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(h))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"\(left)\" y=\"24\" font-size=\"15\">\(title)</text>\n"
        for i in 0...10 {
            let y = top + ph * (1 - Double(i) / 10)
            s += "<line x1=\"\(left)\" y1=\"\(y)\" x2=\"\(left + pw)\" y2=\"\(y)\" stroke=\"#ddd\"/><text x=\"\(left - 8)\" y=\"\(y + 4)\" text-anchor=\"end\">\(i * 10)%</text>\n"
        }
        s += "<text x=\"\(left + pw / 2)\" y=\"\(h - 12)\" text-anchor=\"middle\">outer round</text>\n"
        for (i, (name, ys)) in series.enumerated() {
            let c = colors[i % colors.count]
            let pts = ys.enumerated().map { String(format: "%.1f,%.1f", left + pw * Double($0.offset) / maxX, top + ph * (1 - $0.element)) }.joined(separator: " ")
            s += "<polyline fill=\"none\" stroke=\"\(c)\" stroke-width=\"2\" points=\"\(pts)\"/>\n"
            let ly = top + 18 * Double(i)
            let label = name.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            s += "<line x1=\"\(left + pw + 15)\" y1=\"\(ly)\" x2=\"\(left + pw + 35)\" y2=\"\(ly)\" stroke=\"\(c)\" stroke-width=\"3\"/><text x=\"\(left + pw + 40)\" y=\"\(ly + 4)\">\(label) \(String(format: "%.1f%%", (ys.last ?? 0) * 100))</text>\n"
        }
        return s + "</svg>\n"
    }
}
