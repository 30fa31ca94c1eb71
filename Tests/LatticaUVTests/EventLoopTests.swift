import Foundation
import LatticaCore
import Synchronization
import Testing
@testable import LatticaUV

@Suite struct EventLoopTests {
    @Test func jobsFromManyThreads_allRunExactlyOnce_onTheLoopThread() async throws {
        try await withLoop { loop in
            let threads = 8, perThread = 5_000
            let seen = Mutex([Int](repeating: 0, count: threads * perThread))
            let offLoop = Atomic<Int>(0)
            DispatchQueue.concurrentPerform(iterations: threads) { t in
                for i in 0..<perThread {
                    let id = t * perThread + i
                    #expect(loop.execute {
                        if !loop.inLoop { offLoop.add(1, ordering: .relaxed) }
                        seen.withLock { $0[id] += 1 }
                    })
                }
            }
            // Jobs run in FIFO order, so this one runs after all of the above.
            try await loop.submit { _ in () }
            let counts = seen.withLock { $0 }
            #expect(counts.allSatisfy { $0 == 1 })
            #expect(offLoop.load(ordering: .relaxed) == 0)
        }
    }

    @Test func submit_returnsTheValue_andPropagatesErrors() async throws {
        try await withLoop { loop in
            let onLoop = try await loop.submit { $0.inLoop }
            #expect(onLoop)
            await #expect(throws: UVError.self) {
                try await loop.submit { _ in throw UVError(kind: .invalidArgument, operation: "test") }
            }
        }
    }

    @Test func now_isMonotonic_andAdvancesWithTimers() async throws {
        try await withLoop { loop in
            let before = loop.now
            try await loop.sleep(for: .milliseconds(20))
            let after = loop.now
            #expect(after - before >= .milliseconds(20))
        }
    }

    @Test func timers_fireInDueOrder_tiesInScheduleOrder() async throws {
        try await withLoop { loop in
            var rng = SeededRandom(seed: 7)
            let delays = (0..<40).map { _ in Int(rng.next() % 30) + 1 }
            let fired = Signal<[Int]>()
            try await loop.submit { loop in
                var order: [Int] = []
                for (i, d) in delays.enumerated() {
                    loop.scheduleTimer(after: .milliseconds(d)) { _ in
                        order.append(i)
                        if order.count == delays.count { fired.fire(order) }
                    }
                }
            }
            let order = await fired.wait()
            let expected = delays.indices.sorted { (delays[$0], $0) < (delays[$1], $1) }
            #expect(order == expected)
        }
    }

    @Test func repeatingTimer_firesUntilCancelled_andCancelledTimerNeverFires() async throws {
        try await withLoop { loop in
            let done = Signal<(Int, Bool)>()
            try await loop.submit { loop in
                var cancelledFired = false
                let victim = loop.scheduleTimer(after: .milliseconds(5)) { _ in cancelledFired = true }
                victim.cancel()
                var ticks = 0
                loop.scheduleTimer(after: .milliseconds(1), repeating: .milliseconds(2)) { timer in
                    ticks += 1
                    if ticks == 5 {
                        timer.cancel()
                        // Give the cancelled one-shot time to (wrongly) fire before reporting.
                        loop.scheduleTimer(after: .milliseconds(10)) { _ in done.fire((ticks, cancelledFired)) }
                    }
                }
            }
            let (ticks, cancelledFired) = await done.wait()
            #expect(ticks == 5)
            #expect(!cancelledFired)
        }
    }

    @Test func endOfTurnJobs_runAfterTheCurrentCallbacks_beforeTheNextIteration() async throws {
        try await withLoop { loop in
            let order = Signal<[String]>()
            try await loop.submit { loop in
                var log: [String] = []
                loop.scheduleTimer(after: .zero) { _ in
                    log.append("timer")
                    order.fire(log)
                }
                loop.atEndOfTurn {
                    log.append("end 1")
                    loop.atEndOfTurn { log.append("end 2") }  // queued by an end-of-turn job: same turn
                }
                log.append("job")
            }
            #expect(await order.wait() == ["job", "end 1", "end 2", "timer"])
        }
    }

    @Test func busyPolling_echoesAndShutsDown_andAnIdleLoopSleeps() async throws {
        let loop = EventLoop(name: "busy", busyPoll: .microseconds(500))
        let server = try await TCPServer.listen(on: loop, address: .loopback())
        let client = try await TCPConnection.connect(to: server.localAddress, on: loop)
        let accepted = try #require(try await server.accept())
        for i in 0..<200 {
            try await client.write([UInt8(i & 0xFF)])
            let got = try #require(try await accepted.read())
            #expect(got == [UInt8(i & 0xFF)])
        }
        // Idle: the loop thread must sleep in epoll, not spin (spinning would use the whole 300 ms).
        func threadCPU() async throws -> Double {
            try await loop.submit { _ in
                var t = timespec()
                clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
                return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
            }
        }
        let before = try await threadCPU()
        try await Task.sleep(for: .milliseconds(300))
        let used = try await threadCPU() - before
        #expect(used < 0.05, "idle loop used \(used) s of CPU in 300 ms")
        await loop.shutdownGracefully()
        #expect(loop.openHandleCount == 0)
    }

    @Test func shutdown_closesEveryOpenHandle_andRejectsLaterJobs() async throws {
        let loop = EventLoop(name: "shutdown")
        let server = try await TCPServer.listen(on: loop, address: .loopback())
        let client = try await TCPConnection.connect(to: server.localAddress, on: loop)
        let accepted = try #require(try await server.accept())
        let udp = try await UDPEndpoint.bind(on: loop, address: .loopback())
        let closes = Mutex(0)
        try await loop.submit { loop in
            loop.scheduleTimer(after: .seconds(3600)) { _ in }.onClose = { closes.withLock { $0 += 1 } }
            loop.scheduleTimer(after: .seconds(1), repeating: .seconds(1)) { _ in }.onClose = { closes.withLock { $0 += 1 } }
        }
        #expect(loop.openHandleCount == 6)  // listener, 2 sockets, udp, 2 timers
        let pendingRead = Task { try await accepted.read() }
        let pendingReceive = Task { try await udp.receive() }
        await loop.shutdownGracefully()
        #expect(closes.withLock { $0 } == 2)
        #expect(loop.openHandleCount == 0)
        await #expect(throws: UVError.self) { _ = try await pendingRead.value }
        #expect(try await pendingReceive.value == nil)
        #expect(try await server.accept() == nil)
        #expect(!loop.execute {})
        await #expect(throws: UVError.self) { try await client.write([1, 2, 3]) }
    }
}
