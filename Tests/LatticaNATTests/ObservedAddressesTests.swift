import LatticaCore
import Testing
@testable import LatticaNAT

func testPeer(_ n: Int) -> PeerId {
    PeerId(ed25519PublicKey: (0..<32).map { UInt8(truncatingIfNeeded: n &* 31 &+ $0) })
}

func ma(_ s: String) -> Multiaddr { try! Multiaddr(s) }

@Suite struct ObservedAddressesTests {
    func table(minPeers: Int = 3, minNetworks: Int = 2) -> NAT.ObservedAddresses {
        var s = NAT.ObservedAddresses.Settings()
        s.minPeers = minPeers
        s.minNetworks = minNetworks
        var t = NAT.ObservedAddresses(settings: s)
        t.setListenPorts([4001])
        return t
    }

    @Test func observedIP_isConfirmedWithListenPort_whenThreePeersFromTwoNetworksReportIt() {
        var t = table()
        let now = Instant.zero
        let peers = ["/ip4/8.8.8.8/tcp/1", "/ip4/8.8.8.9/tcp/1", "/ip4/9.9.9.9/tcp/1"]
        for (i, p) in peers.enumerated() {
            #expect(t.confirmed(now: now).isEmpty)
            let r = t.onObserved(ma("/ip4/1.2.3.4/tcp/50000"), by: testPeer(i), peerAddr: ma(p), outbound: true, now: now)
            #expect(r == [.foreignPort])  // the ephemeral port is not a candidate, the IP is
        }
        #expect(t.confirmed(now: now) == [ma("/ip4/1.2.3.4/tcp/4001")])
    }

    @Test func onePeerRepeatingAForgedAddress_neverConfirmsIt() {
        var t = table()
        for k in 0..<100 {
            t.onObserved(ma("/ip4/6.6.6.6/tcp/4001"), by: testPeer(1), peerAddr: ma("/ip4/8.8.8.8/tcp/1"), outbound: true,
                         now: Instant(nanoseconds: Int64(k)))
        }
        #expect(t.confirmed(now: Instant(nanoseconds: 100)).isEmpty)
        #expect(t.voterCount == 1)
    }

    @Test func threePeersFromOneNetwork_doNotConfirm_butTwoNetworksDo() {
        var t = table()
        for i in 0..<3 {
            t.onObserved(ma("/ip4/6.6.6.6/tcp/4001"), by: testPeer(i), peerAddr: ma("/ip4/8.8.8.\(i + 1)/tcp/1"), outbound: true, now: .zero)
        }
        #expect(t.confirmed(now: .zero).isEmpty)
        t.onObserved(ma("/ip4/6.6.6.6/tcp/4001"), by: testPeer(9), peerAddr: ma("/ip4/7.7.7.7/tcp/1"), outbound: true, now: .zero)
        #expect(t.confirmed(now: .zero) == [ma("/ip4/6.6.6.6/tcp/4001")])
    }

    @Test func reportsOnInboundConnections_andRelayed_andBadScope_areRejected() {
        var t = table(minPeers: 1, minNetworks: 1)
        #expect(t.onObserved(ma("/ip4/1.2.3.4/tcp/4001"), by: testPeer(1), peerAddr: ma("/ip4/8.8.8.8/tcp/1"), outbound: false, now: .zero) == [.inbound])
        #expect(t.onObserved(ma("/ip4/1.2.3.4/tcp/4001"), by: testPeer(2), peerAddr: ma("/ip4/8.8.8.8/tcp/1/p2p/\(testPeer(3))/p2p-circuit"),
                             outbound: true, now: .zero) == [.relayed])
        #expect(t.onObserved(ma("/ip4/127.0.0.1/tcp/4001"), by: testPeer(4), peerAddr: ma("/ip4/8.8.8.8/tcp/1"), outbound: true, now: .zero) == [.badScope])
        #expect(t.onObserved(ma("/ip4/0.0.0.0/tcp/4001"), by: testPeer(5), peerAddr: ma("/ip4/8.8.8.8/tcp/1"), outbound: true, now: .zero) == [.badScope])
        #expect(t.onObserved(ma("/ip6/::2/tcp/4001"), by: testPeer(6), peerAddr: ma("/ip4/8.8.8.8/tcp/1"), outbound: true, now: .zero) == [.familyMismatch])
        #expect(t.onObserved(ma("/ip4/1.2.3.4/udp/4001"), by: testPeer(7), peerAddr: ma("/ip4/8.8.8.8/tcp/1"), outbound: true, now: .zero) == [.unsupported])
        #expect(t.confirmed(now: .zero).isEmpty)
        #expect(t.voterCount == 0)
    }

    @Test func aForeignPort_isNeverConfirmed_evenWhenEveryoneReportsIt() {
        var t = table(minPeers: 1, minNetworks: 1)
        for i in 0..<5 {
            t.onObserved(ma("/ip4/1.2.3.4/tcp/7777"), by: testPeer(i), peerAddr: ma("/ip4/\(10 + i).0.0.1/tcp/1"), outbound: true, now: .zero)
        }
        #expect(!t.confirmed(now: .zero).contains(ma("/ip4/1.2.3.4/tcp/7777")))
        #expect(t.confirmed(now: .zero) == [ma("/ip4/1.2.3.4/tcp/4001")])
    }

    @Test func votesExpire_afterTheWindow_andANewReportReplacesThePeersVote() {
        var t = table(minPeers: 2, minNetworks: 1)
        t.onObserved(ma("/ip4/1.2.3.4/tcp/4001"), by: testPeer(1), peerAddr: ma("/ip4/8.8.8.8/tcp/1"), outbound: true, now: .zero)
        t.onObserved(ma("/ip4/1.2.3.4/tcp/4001"), by: testPeer(2), peerAddr: ma("/ip4/8.8.8.9/tcp/1"), outbound: true, now: .zero)
        #expect(t.confirmed(now: .zero).count == 1)
        // Peer 2 now sees us elsewhere: its old vote is gone.
        t.onObserved(ma("/ip4/5.5.5.5/tcp/4001"), by: testPeer(2), peerAddr: ma("/ip4/8.8.8.9/tcp/1"), outbound: true, now: .zero)
        #expect(t.confirmed(now: .zero).isEmpty)
        t.onObserved(ma("/ip4/5.5.5.5/tcp/4001"), by: testPeer(1), peerAddr: ma("/ip4/8.8.8.8/tcp/1"), outbound: true, now: .zero)
        #expect(t.confirmed(now: .zero) == [ma("/ip4/5.5.5.5/tcp/4001")])
        let late = Instant.zero + t.settings.window + .seconds(1)
        #expect(t.confirmed(now: late).isEmpty)
        t.expire(now: late)
        #expect(t.voterCount == 0)
    }

    @Test func theTableIsBounded_byMaxVoters() {
        var s = NAT.ObservedAddresses.Settings()
        s.maxVoters = 8
        var t = NAT.ObservedAddresses(settings: s)
        t.setListenPorts([4001])
        for i in 0..<1000 {
            t.onObserved(ma("/ip4/\(i % 200 + 1).1.1.1/tcp/4001"), by: testPeer(i), peerAddr: ma("/ip4/8.8.\(i % 250).1/tcp/1"),
                         outbound: true, now: Instant(nanoseconds: Int64(i)))
        }
        #expect(t.voterCount == 8)
    }
}
