import LatticaCore
import LatticaLearning
import Testing

/// The streaming decoder of averaging replies (`Averaging.Wire.ReplyReceiver`) against the whole-
/// message decoder, the fused kernels it uses, and the instance's delta path against its θ path.
@Suite struct ReplyReceiverTests {
    init() { _ = BLASSetup.installed }

    /// Feeds `bytes` in chunks of random sizes (seeded): a float may straddle two chunks.
    func receive(_ bytes: [UInt8], count: Int, deltaSteps: ClosedRange<Int>, phi: [Float], rng: inout SeededRandom) throws(Averaging.Wire.DecodeError) -> Averaging.Wire.ReplyReceiver.Received {
        var r = Averaging.Wire.ReplyReceiver(expectedCount: count, deltaSteps: deltaSteps)
        var i = 0
        while i < bytes.count {
            let n = min(bytes.count - i, 1 + Int(rng.next() % 23))
            var failure: Averaging.Wire.DecodeError?
            bytes[i..<(i + n)].withUnsafeBytes { raw in
                phi.withUnsafeBufferPointer { p in
                    do throws(Averaging.Wire.DecodeError) { try r.onBytes(raw, phi: p) } catch { failure = error }
                }
            }
            if let failure { throw failure }
            i += n
        }
        return try r.finish()
    }

    @Test func receiver_decodesLikeTheWholeMessageDecoder_asDeltaOrTheta() throws {
        var rng = SeededRandom(seed: 0x5EED_0011)
        for trial in 0..<200 {
            let count = 1 + Int(rng.next() % 50)
            let theta = (0..<count).map { _ in Float(rng.nextDouble() * 4 - 2) }
            let phi = (0..<count).map { _ in Float(rng.nextDouble() - 0.5) }
            let step = Int(rng.next() % 10)
            let bytes = Averaging.Wire.encode(Averaging.Wire.Reply(status: .model, step: step, parameters: theta))
            let whole = try Averaging.Wire.decodeReply(bytes, expectedCount: count)
            let steps = trial % 2 == 0 ? max(0, step - 1)...(step + 1) : (step + 5)...(step + 6)
            let got = try receive(bytes, count: count, deltaSteps: steps, phi: phi, rng: &rng)
            #expect(got.status == .model && got.step == whole.step && got.finite)
            if trial % 2 == 0 {
                #expect(got.kind == .delta)
                #expect(got.values == zip(whole.parameters, phi).map { $0 - $1 })
                #expect(abs(got.norm - whole.parameters.distance(to: phi)) <= 1e-5 * max(1, got.norm))
            } else {
                #expect(got.kind == .theta && got.values == whole.parameters)
            }
        }
    }

    @Test func receiver_refusesWhatTheWholeMessageDecoderRefuses() {
        var rng = SeededRandom(seed: 0x5EED_0012)
        let phi = [Float](repeating: 0, count: 4)
        let good = Averaging.Wire.encode(Averaging.Wire.Reply(status: .model, step: 3, parameters: [1, 2, 3, 4]))
        let cases: [[UInt8]] = [
            Array(good.dropLast()),                                   // truncated
            good + [0],                                               // trailing
            [3] + good.dropFirst(),                                   // version (2 is the model-ref version)
            [1, 9] + good.dropFirst(2),                               // status
            Averaging.Wire.encode(Averaging.Wire.Reply(status: .model, step: 3, parameters: [1, 2, 3])),  // count
            Averaging.Wire.encode(Averaging.Wire.Reply(status: .noModel, step: 0, parameters: [])) + [0],
            [1],
        ]
        for c in cases {
            var whole: Averaging.Wire.DecodeError?
            do throws(Averaging.Wire.DecodeError) { _ = try Averaging.Wire.decodeReply(c, expectedCount: 4) } catch { whole = error }
            var streamed: Averaging.Wire.DecodeError?
            do throws(Averaging.Wire.DecodeError) { _ = try receive(c, count: 4, deltaSteps: 0...10, phi: phi, rng: &rng) } catch { streamed = error }
            #expect(whole != nil && streamed != nil, "\(c)")
        }
        // A status without a model and its empty body decodes the same either way.
        let none = Averaging.Wire.encode(Averaging.Wire.Reply(status: .noModel, step: 0, parameters: []))
        do throws(Averaging.Wire.DecodeError) {
            #expect(try receive(none, count: 4, deltaSteps: 0...10, phi: phi, rng: &rng).status == .noModel)
        } catch {
            Issue.record("no-model reply refused: \(error)")
        }
    }

    @Test func receiver_flagsNaNAndInfinity_wherever_theyAre() throws {
        var rng = SeededRandom(seed: 0x5EED_0013)
        for bad: Float in [.nan, .infinity, -.infinity] {
            for at in [0, 7, 8, 31, 32, 4095, 4096, 4103] {
                var theta = [Float](repeating: 0.5, count: 4104)
                theta[at] = bad
                let bytes = Averaging.Wire.encode(Averaging.Wire.Reply(status: .model, step: 1, parameters: theta))
                let phi = [Float](repeating: 0.25, count: theta.count)
                #expect(try !receive(bytes, count: theta.count, deltaSteps: 0...2, phi: phi, rng: &rng).finite)
                #expect(try !receive(bytes, count: theta.count, deltaSteps: 5...6, phi: phi, rng: &rng).finite)
                #expect(!theta.allFinite)
            }
        }
        #expect([Float](repeating: 1, count: 17).allFinite)
    }

    @Test func receiver_reusesTheBufferItIsGiven() {
        var r = Averaging.Wire.ReplyReceiver(expectedCount: 3, deltaSteps: 0...0, reuse: [9, 9, 9])
        let bytes = Averaging.Wire.encode(Averaging.Wire.Reply(status: .model, step: 0, parameters: [1, 2, 3]))
        let phi: [Float] = [1, 1, 1]
        var failure: Averaging.Wire.DecodeError?
        bytes.withUnsafeBytes { raw in
            phi.withUnsafeBufferPointer { p in
                do throws(Averaging.Wire.DecodeError) { try r.onBytes(raw, phi: p) } catch { failure = error }
            }
        }
        #expect(failure == nil)
        do throws(Averaging.Wire.DecodeError) {
            let got = try r.finish()
            #expect(got.values == [0, 1, 2] && got.norm == 5.0.squareRoot())
        } catch {
            Issue.record("refused: \(error)")
        }
    }

    /// The same contributions as deltas (what the daemon decodes) or as models give the same step.
    @Test func instance_deltaPath_matchesTheModelPath_andRefusesLikeIt() {
        let n = 64
        var rng = SeededRandom(seed: 0x5EED_0014)
        let phi0 = (0..<n).map { _ in Float(rng.nextDouble()) }
        var s = Averaging.Settings(method: .robust(k: 4, rule: .flag(r: 2, iterations: 20)), alpha: 0.7, beta: 0.5)
        s.normBound = 2
        var a = Averaging.Instance(me: 0, initial: phi0, settings: s, seed: 1)
        var b = a
        let own = phi0.map { $0 + 0.01 }
        _ = a.onOuterStep(step: 0, parameters: own, members: [0, 1, 2, 3], now: .zero)
        _ = b.onOuterStep(step: 0, parameters: own, members: [0, 1, 2, 3], now: .zero)
        let models = (1...3).map { j in phi0.enumerated().map { i, v in v + Float(j) * 0.003 + Float(i % 5) * 1e-3 * (j == 3 ? 40 : 1) } }
        for (j, m) in models.enumerated() {
            _ = a.onMessage(.model(step: 0, parameters: m), from: j + 1, now: .zero)
            let d = zip(m, phi0).map { $0 - $1 }
            _ = b.onDelta(step: 0, delta: d, finite: true, norm: m.distance(to: phi0), from: j + 1, now: .zero)
        }
        let da = a.finishStep(now: .zero), db = b.finishStep(now: .zero)
        guard case .setParameters(let pa)? = da.last, case .setParameters(let pb)? = db.last else { Issue.record("no step"); return }
        #expect(zip(pa, pb).allSatisfy { abs($0 - $1) <= 1e-5 })
        // Refused in the same way: non-finite, absurd norm, unsolicited.
        var c = Averaging.Instance(me: 0, initial: phi0, settings: s, seed: 1)
        _ = c.onOuterStep(step: 1, parameters: own, members: [0, 1, 2, 3], now: .zero)
        func reason(_ ds: [Averaging.Directive]) -> String { ds.map { "\($0)" }.joined() }
        #expect(reason(c.onDelta(step: 1, delta: models[0], finite: false, norm: 1, from: 1, now: .zero)).contains("nonFinite"))
        #expect(reason(c.onDelta(step: 1, delta: models[0], finite: true, norm: 1e9, from: 2, now: .zero)).contains("absurdNorm"))
        #expect(reason(c.onDelta(step: 1, delta: models[0], finite: true, norm: 1, from: 7, now: .zero)).contains("unsolicited"))
        #expect(reason(c.onDelta(step: 1, delta: [1], finite: true, norm: 1, from: 3, now: .zero)).contains("wrongShape"))
    }

    /// The norm bound folded into the weights gives what scaled copies gave.
    @Test func boundedAggregation_withoutCopies_matchesScaledCopies() {
        var rng = SeededRandom(seed: 0x5EED_0015)
        let deltas = (0..<6).map { j in (0..<300).map { _ in Float(rng.nextDouble() - 0.5) * (j == 5 ? 30 : 1) } }
        for rule in [Aggregation.Rule.mean, .flag(r: 2, iterations: 20)] {
            var out: [Float] = []
            Aggregation.aggregateBounded(deltas, rule: rule, factor: 2, into: &out)
            let expected = Aggregation.aggregate(Averaging.Instance.bounded(deltas, factor: 2), rule: rule)
            #expect(zip(out, expected).allSatisfy { abs($0 - $1) <= 1e-4 * max(1, abs($1)) }, "\(rule)")
        }
    }
}
