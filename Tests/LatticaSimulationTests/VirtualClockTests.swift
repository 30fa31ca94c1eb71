import LatticaCore
import LatticaSimulation
import Testing

@Suite struct VirtualClockTests {
    @Test func eventsAtEqualTimes_runInInsertionOrder() {
        var clock = VirtualClock<Int>()
        for i in 0..<1000 { clock.schedule(i, at: .ms(Int64(i % 3))) }
        var seen: [Int] = []
        clock.runUntilIdle { _, e in seen.append(e) }
        let expected = (0..<1000).filter { $0 % 3 == 0 } + (0..<1000).filter { $0 % 3 == 1 }
            + (0..<1000).filter { $0 % 3 == 2 }
        #expect(seen == expected)
    }

    @Test func events_comeOutOrderedByTimeThenSequence_forRandomSchedules() {
        var rng = SeededRandom(seed: 11)
        var clock = VirtualClock<Int>()
        var reference: [(Int64, Int)] = []
        var seen: [Int] = []
        var next = 0
        // Interleave pushes and pops, as a simulation does.
        for _ in 0..<20_000 {
            if rng.next() % 3 != 0 || clock.isIdle {
                let t = clock.now.nanoseconds + Int64(rng.next() % 50)
                clock.schedule(next, at: Instant(nanoseconds: t))
                reference.append((t, next))
                next += 1
            } else if let (_, e) = clock.popNext() {
                seen.append(e)
            }
        }
        clock.runUntilIdle { _, e in seen.append(e) }
        let expected = reference.sorted { $0.0 < $1.0 || ($0.0 == $1.0 && $0.1 < $1.1) }.map(\.1)
        #expect(seen == expected)
    }

    @Test func advance_runsEventsDueByTheTarget_andLeavesTheClockThere() {
        var clock = VirtualClock<String>()
        clock.schedule("a", at: .ms(5))
        clock.schedule("b", at: .ms(10))
        clock.schedule("c", at: .ms(11))
        var seen: [(String, Instant)] = []
        clock.advance(to: .ms(10)) { clock, e in
            seen.append((e, clock.now))
            if e == "a" { clock.schedule("a2", after: .milliseconds(1)) }
        }
        #expect(seen.map(\.0) == ["a", "a2", "b"])
        #expect(seen.map(\.1) == [.ms(5), .ms(6), .ms(10)])
        #expect(clock.now == .ms(10))
        #expect(clock.pendingCount == 1)
        #expect(clock.nextEventTime == .ms(11))

        // `run(until:)` is the same operation; the clock never moves backwards.
        clock.run(until: .ms(3)) { _, _ in Issue.record("nothing is due by 3 ms") }
        #expect(clock.now == .ms(10))
        clock.run(until: .ms(20)) { _, e in seen.append((e, .ms(20))) }
        #expect(seen.last?.0 == "c")
        #expect(clock.now == .ms(20))
    }

    @Test func schedulingInThePast_isClampedToNow_andRunsAfterEventsAlreadyDue() {
        var clock = VirtualClock<Int>(start: .ms(100))
        clock.schedule(1, at: .ms(100))
        clock.schedule(2, at: .ms(3))
        #expect(clock.nextEventTime == .ms(100))
        var seen: [Int] = []
        clock.runUntilIdle { _, e in seen.append(e) }
        #expect(seen == [1, 2])
        #expect(clock.now == .ms(100))
    }

    @Test func runUntilIdle_stopsAtTheLimit() {
        var clock = VirtualClock<Int>()
        clock.schedule(0, at: .zero)
        // A self-perpetuating event chain never goes idle.
        let ran = clock.runUntilIdle(limit: 500) { clock, e in clock.schedule(e + 1, after: .seconds(1)) }
        #expect(ran == 500)
        #expect(clock.pendingCount == 1)
        #expect(clock.now == Instant.zero + .seconds(499))
    }

    @Test func removeAll_dropsMatchingEvents_andKeepsTheOrderOfTheRest() {
        var clock = VirtualClock<Int>()
        var rng = SeededRandom(seed: 5)
        var reference: [(Int64, Int)] = []
        for i in 0..<5000 {
            let t = Int64(rng.next() % 100)
            clock.schedule(i, at: Instant(nanoseconds: t))
            if i % 3 != 0 { reference.append((t, i)) }
        }
        #expect(clock.removeAll { $0 % 3 == 0 } == 1667)
        for i in 5000..<5100 { clock.schedule(i, at: Instant(nanoseconds: 50)); reference.append((50, i)) }
        var seen: [Int] = []
        clock.runUntilIdle { _, e in seen.append(e) }
        #expect(seen == reference.sorted { $0.0 < $1.0 || ($0.0 == $1.0 && $0.1 < $1.1) }.map(\.1))
    }
}
