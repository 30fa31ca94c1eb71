import CLibUV
import Glibc
public import LatticaCore
import Synchronization

/// One libuv loop on one dedicated thread.
///
/// Threading model (Docs/EVENT-LOOP.md): every libuv call and every handle object (`TCPSocket`,
/// `TCPListener`, `UDPSocket`, `LoopTimer`) is touched only on the loop thread. Other threads talk to
/// the loop through `execute(_:)` (a mutex-protected job array plus one `uv_async_t`; libuv
/// coalesces `uv_async_send`, so each wake-up drains every queued job) or the async bridge
/// (`submit`). `shutdown()` closes every handle (uv_walk + uv_close), lets the close callbacks free
/// them, and joins the thread.
public final class EventLoop: @unchecked Sendable {
    private enum Phase { case running, stopping, stopped }

    private struct Queue {
        var jobs: [@Sendable () -> Void] = []
        var phase: Phase = .running
    }

    /// Loop-thread only after `init` returns.
    let uvLoop: UnsafeMutablePointer<uv_loop_t>
    private let wakeup: UnsafeMutableRawPointer  // uv_async_t, freed by the close callback
    private let queue = Mutex(Queue())
    private let threadID = Atomic<UInt>(0)
    private var thread = pthread_t()
    private let joined = Mutex(false)
    /// Spare job array swapped with the queue on each drain, so draining does not allocate.
    private var spare: [@Sendable () -> Void] = []
    /// Scratch buffer every read callback of this loop fills (reads are delivered synchronously,
    /// so one buffer per loop suffices). 256 KiB: several whole 64 KiB Noise frames per read on a
    /// busy stream (with 64 KiB reads nearly every frame straddled two reads and was copied once
    /// more to be reassembled); at least the largest datagram.
    let readBuffer: UnsafeMutableRawBufferPointer
    static let readBufferSize = 256 << 10
    /// Handles owned by this loop that are not yet freed (tests use it to prove nothing leaks).
    let liveHandles = Atomic<Int>(0)
    /// uv_prepare_t and uv_check_t (unreferenced, always started) that run `turnJobs`: the check
    /// handle right after the I/O callbacks of an iteration, the prepare handle right before the
    /// loop blocks (for work queued by timers). Freed by their close callbacks.
    private let turnHandles: (UnsafeMutableRawPointer, UnsafeMutableRawPointer)
    /// Loop thread only: jobs for the end of this turn (see `atEndOfTurn`).
    private var turnJobs: [() -> Void] = []
    private var turnSpare: [() -> Void] = []

    public let name: String
    /// After input (a read, an accept, a job) the loop keeps polling without blocking for this
    /// long before it sleeps in epoll again, so an answer that arrives soon is handled without
    /// the cost of waking a sleeping thread (tens of µs on a VM). 0 turns it off.
    public let busyPoll: Duration
    private let busyPollNanos: UInt64
    /// Loop thread only: bumped by every callback that handled input.
    var activity = 0

    /// A write to a socket the peer closed must fail with EPIPE, not kill the process.
    private static let ignoreSIGPIPE: Void = { signal(SIGPIPE, SIG_IGN) }()

    /// Starts the loop thread. `name` is for logs and debugging.
    public init(name: String = "lattica-uv", busyPoll: Duration = .zero) {
        _ = EventLoop.ignoreSIGPIPE
        self.name = name
        self.busyPoll = max(.zero, busyPoll)
        busyPollNanos = UInt64(self.busyPoll.nanosecondsClamped)
        uvLoop = .allocate(capacity: 1)
        precondition(uv_loop_init(uvLoop) == 0, "uv_loop_init failed")
        readBuffer = .allocate(byteCount: EventLoop.readBufferSize, alignment: 16)
        wakeup = .allocate(byteCount: uv_handle_size(UV_ASYNC), alignment: 16)
        let asyncHandle = wakeup.assumingMemoryBound(to: uv_async_t.self)
        precondition(uv_async_init(uvLoop, asyncHandle) { async in
            let loop = Unmanaged<EventLoop>.fromOpaque(async!.pointee.loop.pointee.data).takeUnretainedValue()
            loop.drain()
        } == 0)
        asyncHandle.pointee.data = nil  // marks it as ours, not a LoopHandle (see closeAllHandles)
        turnHandles = (.allocate(byteCount: uv_handle_size(UV_PREPARE), alignment: 16),
                       .allocate(byteCount: uv_handle_size(UV_CHECK), alignment: 16))
        let prepare = turnHandles.0.assumingMemoryBound(to: uv_prepare_t.self)
        let check = turnHandles.1.assumingMemoryBound(to: uv_check_t.self)
        precondition(uv_prepare_init(uvLoop, prepare) == 0 && uv_check_init(uvLoop, check) == 0)
        prepare.pointee.data = nil
        check.pointee.data = nil
        uv_prepare_start(prepare) { h in
            Unmanaged<EventLoop>.fromOpaque(h!.pointee.loop.pointee.data).takeUnretainedValue().runTurnJobs()
        }
        uv_check_start(check) { h in
            Unmanaged<EventLoop>.fromOpaque(h!.pointee.loop.pointee.data).takeUnretainedValue().runTurnJobs()
        }
        // They must not keep the loop alive.
        uv_unref(UnsafeMutableRawPointer(prepare).assumingMemoryBound(to: uv_handle_t.self))
        uv_unref(UnsafeMutableRawPointer(check).assumingMemoryBound(to: uv_handle_t.self))
        uvLoop.pointee.data = Unmanaged.passUnretained(self).toOpaque()

        // The thread holds the only strong reference the loop needs while it runs; it is released
        // when the thread exits, so `uvLoop.data` (unretained) stays valid for the whole run.
        let box = Unmanaged.passRetained(self).toOpaque()
        let status = pthread_create(&thread, nil, { arg in
            let loop = Unmanaged<EventLoop>.fromOpaque(arg!).takeRetainedValue()
            loop.run()
            return nil
        }, box)
        precondition(status == 0, "pthread_create failed: \(status)")
    }

    deinit {
        // The thread (which held a reference) has exited, so uv_loop_close already ran.
        uvLoop.deallocate()
        readBuffer.deallocate()
    }

    private func run() {
        threadID.store(UInt(bitPattern: Int(bitPattern: pthread_self())), ordering: .releasing)
        lattica_set_thread_name(name)  // shows in top -H, perf and gdb
        if busyPollNanos == 0 {
            while uv_run(uvLoop, UV_RUN_DEFAULT) != 0 {}
        } else {
            var seen = activity
            var activeAt: UInt64 = 0
            while true {
                let spinning = uv_hrtime() &- activeAt < busyPollNanos
                if uv_run(uvLoop, spinning ? UV_RUN_NOWAIT : UV_RUN_ONCE) == 0 { break }
                if activity != seen {
                    seen = activity
                    activeAt = uv_hrtime()
                } else if spinning {
                    sched_yield()  // polite: another runnable thread on this core goes first
                }
            }
        }
        // Every handle is closed and freed here. No job can be added any more, but some may
        // have been queued between the last wake-up and the phase change: run them.
        for job in queue.withLock({ $0.jobs }) { job() }
        precondition(uv_loop_close(uvLoop) == 0, "uv_loop_close: handles still open")
    }

    /// True on this loop's thread.
    public var inLoop: Bool {
        threadID.load(ordering: .acquiring) == UInt(bitPattern: Int(bitPattern: pthread_self()))
    }

    /// Traps in debug builds when called off the loop thread.
    @inline(__always) public func assertInLoop(_ file: StaticString = #fileID, _ line: UInt = #line) {
        assert(inLoop, "libuv handle touched off its loop thread", file: file, line: line)
    }

    /// Monotonic time (uv_hrtime), readable from any thread.
    public var now: Instant { Instant(nanoseconds: Int64(bitPattern: uv_hrtime())) }

    /// Runs `job` on the loop thread, after everything queued before it. Returns false (and drops
    /// the job) once the loop is shutting down.
    @discardableResult
    public func execute(_ job: @escaping @Sendable () -> Void) -> Bool {
        let accepted = queue.withLock { q in
            guard q.phase == .running else { return false }
            q.jobs.append(job)
            return true
        }
        if accepted { uv_async_send(wakeup.assumingMemoryBound(to: uv_async_t.self)) }
        return accepted
    }

    /// Loop thread only: runs `job` once the callbacks of the current loop iteration are done
    /// (after this batch of reads, timers or jobs), before the loop waits for I/O again. Used to
    /// coalesce the writes of one turn into one system call.
    public func atEndOfTurn(_ job: @escaping () -> Void) {
        assertInLoop()
        turnJobs.append(job)
    }

    private func runTurnJobs() {
        // Jobs may queue more jobs: run until none is left.
        while !turnJobs.isEmpty {
            swap(&turnJobs, &turnSpare)
            for job in turnSpare { job() }
            turnSpare.removeAll(keepingCapacity: true)
        }
    }

    /// Loop thread: runs the jobs queued so far (one snapshot per wake-up, so a flood of jobs
    /// cannot starve I/O: jobs queued meanwhile re-signal the async handle and run in the next
    /// iteration); on shutdown, closes every handle.
    private func drain() {
        let stopping = queue.withLock { q in
            swap(&q.jobs, &spare)
            return q.phase == .stopping
        }
        if !spare.isEmpty { activity &+= 1 }
        for job in spare { job() }
        spare.removeAll(keepingCapacity: true)
        if stopping { closeAllHandles() }
    }

    private func closeAllHandles() {
        uv_walk(uvLoop, { handle, _ in
            guard let handle, uv_is_closing(handle) == 0 else { return }
            if let data = uv_handle_get_data(handle) {
                Unmanaged<LoopHandle>.fromOpaque(data).takeUnretainedValue().close()
            } else {
                uv_close(handle, LoopHandle.closeCallback)
            }
        }, nil)
        queue.withLock { $0.phase = .stopped }
    }

    /// Closes every handle, runs their close callbacks, and joins the thread. Jobs queued before
    /// this call still run; later `execute` calls return false. Must not be called on the loop
    /// thread (use `shutdownGracefully()` from async code). Idempotent.
    public func shutdown() {
        precondition(!inLoop, "EventLoop.shutdown() called on its own thread")
        let first = queue.withLock { q in
            guard q.phase == .running else { return false }
            q.phase = .stopping
            return true
        }
        if first { uv_async_send(wakeup.assumingMemoryBound(to: uv_async_t.self)) }
        joined.withLock { done in
            guard !done else { return }
            pthread_join(thread, nil)
            done = true
        }
    }

    /// `shutdown()` without blocking a cooperative thread: the join happens on a detached thread.
    public func shutdownGracefully() async {
        await withCheckedContinuation { (cont: CheckedContinuation<Void, Never>) in
            let box = Unmanaged.passRetained(ShutdownJob(loop: self, cont: cont)).toOpaque()
            var t = pthread_t()
            let status = pthread_create(&t, nil, { arg in
                let job = Unmanaged<ShutdownJob>.fromOpaque(arg!).takeRetainedValue()
                job.loop.shutdown()
                job.cont.resume()
                return nil
            }, box)
            precondition(status == 0)
            pthread_detach(t)
        }
    }

    /// Number of handles of this loop not yet freed (the loop's own wake-up handle is not counted).
    public var openHandleCount: Int { liveHandles.load(ordering: .relaxed) }
}

private final class ShutdownJob: Sendable {
    let loop: EventLoop
    let cont: CheckedContinuation<Void, Never>
    init(loop: EventLoop, cont: CheckedContinuation<Void, Never>) { self.loop = loop; self.cont = cont }
}
