import LatticaCore
import Testing
@testable import LatticaWire

@Suite struct MultistreamTests {
    static func sends(_ d: [Multistream.Directive]) -> [UInt8] {
        d.reduce(into: []) { if case .send(let b) = $1 { $0 += b } }
    }

    static func outcome(_ d: [Multistream.Directive]) -> Multistream.Directive? {
        d.first { if case .send = $0 { false } else { true } }
    }

    /// Runs a dialer against a listener, returns both outcomes.
    static func run(_ dialer: inout Multistream.Instance, _ listener: inout Multistream.Instance,
                    chunk: Int = .max) -> (Multistream.Directive?, Multistream.Directive?) {
        var toListener = sends(dialer.start())
        var toDialer = sends(listener.start())
        var dOut: Multistream.Directive?, lOut: Multistream.Directive?
        var rounds = 0
        while (!toListener.isEmpty || !toDialer.isEmpty) && rounds < 1000 {
            rounds += 1
            if !toListener.isEmpty {
                let n = min(chunk, toListener.count)
                let d = listener.onBytes(toListener.prefix(n)); toListener.removeFirst(n)
                toDialer += sends(d); if let o = outcome(d) { lOut = o }
            }
            if !toDialer.isEmpty {
                let n = min(chunk, toDialer.count)
                let d = dialer.onBytes(toDialer.prefix(n)); toDialer.removeFirst(n)
                toListener += sends(d); if let o = outcome(d) { dOut = o }
            }
        }
        return (dOut, lOut)
    }

    @Test func dialer_sendsHeaderAndProposal_asExactLengthPrefixedLines() {
        var d = Multistream.Instance(dialing: ["/noise"])
        let bytes = Self.sends(d.start())
        let expected: [UInt8] = [0x13] + Array("/multistream/1.0.0\n".utf8) + [0x07] + Array("/noise\n".utf8)
        #expect(bytes == expected)
        #expect(Multistream.encoded("na") == [0x03, 0x6E, 0x61, 0x0A])
    }

    @Test func negotiation_agreesOnSecondChoice_whenListenerRefusesFirst() {
        var d = Multistream.Instance(dialing: ["/tls/1.0.0", "/noise"])
        var l = Multistream.Instance(listening: ["/noise"])
        let (a, b) = Self.run(&d, &l)
        #expect(a == .negotiated(protocol: "/noise", leftover: []))
        #expect(b == .negotiated(protocol: "/noise", leftover: []))
    }

    @Test func negotiation_worksByteByByte() {
        var d = Multistream.Instance(dialing: ["/a", "/b", "/yamux/1.0.0"])
        var l = Multistream.Instance(listening: ["/yamux/1.0.0"])
        let (a, b) = Self.run(&d, &l, chunk: 1)
        #expect(a == .negotiated(protocol: "/yamux/1.0.0", leftover: []))
        #expect(b == .negotiated(protocol: "/yamux/1.0.0", leftover: []))
    }

    @Test func negotiation_fails_whenNoProtocolIsShared() {
        var d = Multistream.Instance(dialing: ["/x", "/y"])
        var l = Multistream.Instance(listening: ["/z"])
        let (a, _) = Self.run(&d, &l)
        #expect(a == .failed(.noCommonProtocol(["/x", "/y"])))
    }

    @Test func listener_passesBytesAfterProposal_asLeftover() {
        var l = Multistream.Instance(listening: ["/p"])
        _ = l.start()
        var input = Multistream.encoded(Multistream.protocolID) + Multistream.encoded("/p")
        input += [1, 2, 3]
        let d = l.onBytes(input)
        #expect(d.last == .negotiated(protocol: "/p", leftover: [1, 2, 3]))
        #expect(Self.sends(d) == Multistream.encoded("/p"))
    }

    @Test func listener_answersLs_withItsProtocolList() {
        var l = Multistream.Instance(listening: ["/a", "/bb"])
        _ = l.start()
        let d = l.onBytes(Multistream.encoded(Multistream.protocolID) + Multistream.encoded("ls"))
        var expected: [UInt8] = []
        Multistream.encodeList(["/a", "/bb"], into: &expected)
        // inner: 03 "/a\n" 04 "/bb\n" "\n" -> 10 bytes
        #expect(expected == [10, 3, 0x2F, 0x61, 0x0A, 4, 0x2F, 0x62, 0x62, 0x0A, 0x0A])
        #expect(Self.sends(d) == expected)
        #expect(!l.isFinished)
    }

    @Test func listener_fails_onWrongHeader_andOnOversizeMessage() {
        var l = Multistream.Instance(listening: ["/p"])
        _ = l.start()
        #expect(l.onBytes(Multistream.encoded("/multistream/2.0.0")).last == .failed(.badHeader("/multistream/2.0.0")))
        var l2 = Multistream.Instance(listening: ["/p"])
        _ = l2.start()
        #expect(l2.onBytes([0x80, 0x10]).last == .failed(.messageTooLong(2048)))
    }

    @Test func listener_givesUp_afterTooManyProposals() {
        var l = Multistream.Instance(listening: ["/p"], settings: .init(maxAttempts: 3))
        _ = l.start()
        var input = Multistream.encoded(Multistream.protocolID)
        for i in 0..<5 { input += Multistream.encoded("/q\(i)") }
        #expect(l.onBytes(input).last == .failed(.tooManyAttempts))
    }

    @Test func decoders_neverCrash_andStayBounded_onRandomMutatedAndTruncatedInput() {
        let seed: UInt64 = 0x5EED_0001  // printed in every failure: the run replays
        var rng = SeededRandom(seed: seed)
        var valid = Multistream.encoded(Multistream.protocolID)
        for p in ["/noise", "ls", "/yamux/1.0.0", "na"] { valid += Multistream.encoded(p) }
        var outcomes = [0, 0, 0]
        for round in 0..<4000 {
            var input: [UInt8]
            switch round % 3 {
            case 0: input = (0..<Int(rng.next() % 64)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            case 1:
                input = valid
                for _ in 0..<(1 + Int(rng.next() % 4)) {
                    input[Int(rng.next() % UInt64(input.count))] = UInt8.random(in: 0...255, using: &rng)
                }
            default: input = Array(valid.prefix(Int(rng.next() % UInt64(valid.count))))
            }
            var inst = round % 2 == 0
                ? Multistream.Instance(listening: ["/noise"]) : Multistream.Instance(dialing: ["/noise", "/tls"])
            _ = inst.start()
            var last: Multistream.Directive?
            for chunk in input.chunked(by: 1 + Int(rng.next() % 7)) {
                if let o = Self.outcome(inst.onBytes(chunk)) { last = o }
                #expect(inst.buffer.count <= inst.settings.maxMessageLength + 10, "seed \(seed)")
            }
            switch last {
            case .negotiated: outcomes[0] += 1
            case .failed: outcomes[1] += 1
            default: outcomes[2] += 1
            }
        }
        #expect(outcomes[1] > 1000)  // garbage is rejected, not silently accepted
    }
}

extension Array {
    func chunked(by n: Int) -> [ArraySlice<Element>] {
        stride(from: 0, to: count, by: Swift.max(1, n)).map { self[$0..<Swift.min($0 + n, count)] }
    }
}
