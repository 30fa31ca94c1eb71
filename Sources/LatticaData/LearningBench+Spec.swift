public import LatticaLearning

extension LearningBench {
    public enum SpecError: Error, CustomStringConvertible {
        case bad(String)
        public var description: String { switch self { case .bad(let s): s } }
    }

    /// A main-table row from a one-line spec (`lattica-bench learning --spec`, Scripts/bench/tune.sh):
    /// `key=value` pairs separated by `;`, e.g. `agg=centered-clip;beta=0.7;rep=1;far=1.5`.
    ///
    /// | key | meaning | default |
    /// |---|---|---|
    /// | `name` | row label | the spec itself |
    /// | `agg` | mean, median, trimmed-mean, multi-krum, centered-clip, flag | centered-clip |
    /// | `k` | contributions per aggregation (own + k − 1 pulled) | 8 |
    /// | `alpha`, `beta` | outer learning rate and momentum | 0.7, 0.5 |
    /// | `rep` | reputation on (1) or off (0) | 0 |
    /// | `far`, `cos` | reputation: far beyond `far` median distances, or cosine below `cos` | 1.5, −0.5 |
    /// | `decay`, `thr` | reputation EMA decay and trust threshold | 0.75, 0.5 |
    /// | `tau` | CenteredClip radius (`auto` = median distance to the median) | auto |
    /// | `r`, `it` | Flag subspace dimension and IRLS steps | 2, 1 |
    /// | `trim` | trimmed mean: values dropped per side | 2 |
    /// | `f`, `m` | Multi-Krum | 2, 4 |
    /// | `dedup` | collusion guard: contributions within `dedup` × the lower median delta norm of an earlier one count once (0 = off) | 0 |
    /// | `clip` | norm bound: deltas longer than `clip` × the lower median norm are shortened (0 = off) | 0 |
    public static func row(spec: String) throws -> Row {
        var kv: [String: String] = [:]
        for part in spec.split(separator: ";") where !part.isEmpty {
            let p = part.split(separator: "=", maxSplits: 1).map(String.init)
            guard p.count == 2 else { throw SpecError.bad("spec \(spec): '\(part)' is not key=value") }
            kv[p[0]] = p[1]
        }
        let known: Set<String> = ["name", "agg", "k", "alpha", "beta", "rep", "far", "cos", "decay", "thr", "tau", "r", "it", "trim", "f", "m", "clip", "dedup"]
        if let unknown = kv.keys.first(where: { !known.contains($0) }) { throw SpecError.bad("spec \(spec): unknown key '\(unknown)'") }
        func num(_ key: String, _ def: Double) throws -> Double {
            guard let s = kv[key] else { return def }
            guard let v = Double(s) else { throw SpecError.bad("spec \(spec): \(key)=\(s) is not a number") }
            return v
        }
        func int(_ key: String, _ def: Int) throws -> Int { Int(try num(key, Double(def))) }
        let k = try int("k", 8)
        let rule: Aggregation.Rule
        switch kv["agg"] ?? "centered-clip" {
        case "mean": rule = .mean
        case "median": rule = .median
        case "trimmed-mean": rule = .trimmedMean(trim: try int("trim", 2))
        case "multi-krum": rule = .multiKrum(f: try int("f", 2), m: try int("m", 4))
        case "centered-clip": rule = .centeredClip(tau: kv["tau"].flatMap { $0 == "auto" ? nil : Double($0) }, iterations: 20)
        case "flag": rule = .flag(r: try int("r", 2), iterations: try int("it", 1))
        case let other: throw SpecError.bad("spec \(spec): unknown aggregator '\(other)'")
        }
        var row = Row(name: kv["name"] ?? spec, aggregator: spec, method: .robust(k: k, rule: rule))
        row.reputation = try num("rep", 0) != 0
        row.beta = Float(try num("beta", 0.5))
        row.alpha = Float(try num("alpha", 0.7))
        var rep = Reputation.Settings()
        rep.farFactor = try num("far", rep.farFactor)
        rep.minCosine = try num("cos", rep.minCosine)
        rep.decay = try num("decay", rep.decay)
        rep.threshold = try num("thr", rep.threshold)
        row.reputationSettings = rep
        let clip = try num("clip", 0)
        row.normBound = clip > 0 ? clip : nil
        let dedup = try num("dedup", 0)
        row.mergeDuplicates = dedup > 0 ? dedup : nil
        return row
    }
}
