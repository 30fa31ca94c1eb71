import LatticaCore
import LatticaLearning
import Testing

@Suite struct AveragingTests {
    init() { _ = BLASSetup.installed }  // OpenBLAS, as the trainer uses (latticad keeps the portable loops)
    @Test func nolocoPairing_isSymmetric_andAgreedByEveryNode_andChangesPerStep() {
        let members = Array(0..<16)
        for step in 0..<5 {
            for me in members {
                let p = Averaging.Instance.nolocoPartner(of: me, members: members.shuffled(), step: step, networkSeed: 42)!
                #expect(p != me && Averaging.Instance.nolocoPartner(of: p, members: members, step: step, networkSeed: 42) == me)
            }
        }
        let pairs = (0..<10).map { Averaging.Instance.nolocoPartner(of: 0, members: members, step: $0, networkSeed: 42)! }
        #expect(Set(pairs).count > 3)
    }

    func instance(_ method: Averaging.Method, reputation: Bool = false) -> Averaging.Instance {
        var s = Averaging.Settings(method: method)
        s.useReputation = reputation
        return Averaging.Instance(me: 0, initial: [0, 0], settings: s, seed: 1)
    }

    func pulls(_ ds: [Averaging.Directive]) -> [Int] {
        ds.compactMap { if case .send(.pull, let to) = $0 { to } else { nil } }
    }

    @Test func outerStep_appliesMomentumFormula_withTheMeanOfThePair() {
        var a = instance(.noloco)
        let peer = pulls(a.onOuterStep(step: 0, parameters: [2, 0], members: [0, 1], now: .zero)).first!
        #expect(peer == 1)
        _ = a.onMessage(.model(step: 0, parameters: [0, 4]), from: 1, now: .zero)
        let out = a.finishStep(now: .zero)
        // mean Δ = (1, 2); m = 0.7·(1, 2); φ = m.
        #expect(out.contains(.setParameters([0.7, 1.4])))
        #expect(a.slow == [0.7, 1.4])
    }

    @Test func pullRequests_areAnsweredWithThePublishedModel() {
        var a = instance(.gossip)
        _ = a.onOuterStep(step: 3, parameters: [5, 6], members: [0, 1, 2], now: .zero)
        #expect(a.onMessage(.pull(step: 3), from: 2, now: .zero) == [.send(.model(step: 3, parameters: [5, 6]), to: 2)])
        #expect(a.onMessage(.pull(step: 2), from: 2, now: .zero).isEmpty)
    }

    @Test func badContributions_areRejectedCountedAndRecorded_beforeTouchingTheModel() {
        var a = instance(.robust(k: 4, rule: .median))
        let peers = pulls(a.onOuterStep(step: 0, parameters: [1, 1], members: [0, 1, 2, 3], now: .zero))
        #expect(peers.sorted() == [1, 2, 3])
        let r1 = a.onMessage(.model(step: 0, parameters: [1, .nan]), from: peers[0], now: .zero)
        let r2 = a.onMessage(.model(step: 0, parameters: [1, 1, 1]), from: peers[1], now: .zero)
        let r3 = a.onMessage(.model(step: 0, parameters: [1e9, 0]), from: peers[2], now: .zero)
        let r4 = a.onMessage(.model(step: 0, parameters: [1, 1]), from: 7, now: .zero)
        #expect(r1 == [.evidence(Evidence(peer: peers[0], step: 0, kind: .rejected(.nonFinite)))])
        #expect(r2 == [.evidence(Evidence(peer: peers[1], step: 0, kind: .rejected(.wrongShape)))])
        #expect(r3 == [.evidence(Evidence(peer: peers[2], step: 0, kind: .rejected(.absurdNorm)))])
        #expect(r4 == [.evidence(Evidence(peer: 7, step: 0, kind: .rejected(.unsolicited)))])
        #expect(a.metrics.rejectedTotal == 4)
        let out = a.finishStep(now: .zero)
        #expect(out.contains(.setParameters([0.7, 0.7])))  // only our own delta (1, 1) survived
    }

    /// The final merge checks every model as a step does, then aggregates the deltas from φ with
    /// the run's rule and no outer rate or momentum: here the coordinate-wise median of the four
    /// valid models (ours and three peers'), with the NaN model and the wrong shape refused.
    @Test func finalMerge_rejectsBadModels_andAggregatesTheRestWithTheRule() {
        var a = instance(.robust(k: 8, rule: .median))
        let (phi, contributors, ds) = a.finalMerge(own: [1, 1], [
            (1, [2, 2]), (2, [3, -1]), (3, [100, 100]), (4, [.nan, 0]), (5, [1, 1, 1]),
        ])
        #expect(ds == [.evidence(Evidence(peer: 4, step: -1, kind: .rejected(.nonFinite))),
                       .evidence(Evidence(peer: 5, step: -1, kind: .rejected(.wrongShape)))])
        #expect(contributors == [0, 1, 2, 3])
        // Medians of (1, 2, 3, 100) and (1, 2, -1, 100) (even count: the mean of the middle two).
        #expect(phi == [2.5, 1.5], "\(phi)")
        #expect(a.slow == phi)
        // The mean for non-robust methods, unless a merge rule is set (the daemon sets the run's).
        var b = instance(.diloco)
        #expect(b.finalMerge(own: [0, 0], [(1, [2, 4])]).phi == [1, 2])
        var settings = Averaging.Settings(method: .diloco)
        settings.mergeRule = .median
        var c = Averaging.Instance(me: 0, initial: [0, 0], settings: settings, seed: 1)
        #expect(c.finalMerge(own: [0, 0], [(1, [1, 1]), (2, [90, -90])]).phi == [1, 0])
    }

    @Test func unreachablePartner_fallsBackToAnotherLivePeer() {
        var a = instance(.noloco)
        let first = pulls(a.onOuterStep(step: 0, parameters: [0, 0], members: Array(0..<6), now: .zero)).first!
        let fallback = pulls(a.onPeerUnreachable(first, now: .zero))
        #expect(fallback.count == 1 && fallback[0] != first && fallback[0] != 0)
        #expect(a.metrics.fallbacks == 1)
    }

    @Test func reputation_neverBansOnOneFarRound_butDeprioritisesRepeatedOffenders_andForgives() {
        var r = Reputation()
        r.record(Evidence(peer: 5, step: 0, kind: .distance(ratio: 9, far: true)))
        #expect(r.isTrusted(5))
        for s in 1..<4 { r.record(Evidence(peer: 5, step: s, kind: .distance(ratio: 9, far: true))) }
        #expect(!r.isTrusted(5) && r.weight(5) == r.settings.floorWeight && r.weight(6) == 1)
        for s in 4..<10 { r.record(Evidence(peer: 5, step: s, kind: .distance(ratio: 1, far: false))) }
        #expect(r.isTrusted(5))
    }

    @Test func deadlineTimer_finishesTheStep_onlyOnce() {
        var a = instance(.diloco)
        let ds = a.onOuterStep(step: 1, parameters: [1, 0], members: [0, 1, 2], now: .zero)
        #expect(ds.contains(.scheduleTimer(.roundDeadline(step: 1), at: .zero + .seconds(30))))
        #expect(a.onTimer(.roundDeadline(step: 1), now: .zero + .seconds(30)).contains(.setParameters([0.7, 0])))
        #expect(a.onTimer(.roundDeadline(step: 1), now: .zero + .seconds(31)).isEmpty)
    }

    @Test func attacks_craftTheSpecifiedDeltas() {
        var rng = SeededRandom(seed: 1)
        let ctx = Attack.Context(receiverSlow: [1, 1], ownUpdate: [0.5, -0.5], honestMean: [3, 1], honestStd: [1, 2])
        #expect(Attack.signFlip.craft(ctx, rng: &rng) == [-4, 6])
        #expect(Attack.alie.craft(ctx, rng: &rng) == [2, -1])
        #expect(Attack.ipm.craft(ctx, rng: &rng) == [0.8, 1])
        #expect(Attack.labelFlip.craft(ctx, rng: &rng) == nil && Attack.freeRider.craft(ctx, rng: &rng) == nil)
        #expect(Attack.gaussian.craft(ctx, rng: &rng)!.count == 2)
    }
}
