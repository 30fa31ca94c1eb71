import CLibUV

/// A libuv timer, one-shot or repeating. Loop thread only; create with `EventLoop.scheduleTimer`.
///
/// A one-shot timer closes itself after firing; `cancel()` stops and closes it (idempotent).
/// Timers due at the same instant fire in the order they were scheduled (libuv orders by
/// due time, then by start order).
public final class LoopTimer: LoopHandle, @unchecked Sendable {
    private var body: ((LoopTimer) -> Void)?
    private let repeats: Bool

    fileprivate init(loop: EventLoop, after delay: Duration, repeating interval: Duration?, body: @escaping (LoopTimer) -> Void) {
        self.body = body
        self.repeats = interval != nil
        super.init(loop: loop, type: UV_TIMER)
        uv_timer_init(loop.uvLoop, raw!.assumingMemoryBound(to: uv_timer_t.self))
        register()
        let timeout = LoopTimer.milliseconds(delay)
        let period = interval.map { max(1, LoopTimer.milliseconds($0)) } ?? 0
        uv_timer_start(raw!.assumingMemoryBound(to: uv_timer_t.self), { t in
            let timer = LoopHandle.owner(t, as: LoopTimer.self)
            timer.fire()
        }, timeout, period)
    }

    private func fire() {
        guard !isClosing, let body else { return }
        if !repeats { self.body = nil; close() }
        body(self)
    }

    /// Stops the timer; its body will not run again. Loop thread only.
    public func cancel() {
        body = nil
        close()
    }

    public var isCancelled: Bool { isClosing }

    override func willClose() {
        uv_timer_stop(raw!.assumingMemoryBound(to: uv_timer_t.self))
    }

    override func didClose() { body = nil }

    /// libuv timers have millisecond resolution; round up so a timer never fires early.
    static func milliseconds(_ d: Duration) -> UInt64 {
        let ns = d.nanosecondsClamped
        guard ns > 0 else { return 0 }
        return UInt64((ns + 999_999) / 1_000_000)
    }
}

extension EventLoop {
    /// Schedules `body` after `delay`, then every `interval` if given. Loop thread only (from other
    /// threads wrap it in `execute`). Returns the timer for `cancel()`.
    @discardableResult
    public func scheduleTimer(after delay: Duration, repeating interval: Duration? = nil, _ body: @escaping (LoopTimer) -> Void) -> LoopTimer {
        assertInLoop()
        return LoopTimer(loop: self, after: delay, repeating: interval, body: body)
    }

    /// Suspends the calling task for `delay` using a loop timer. `sleep(for: .zero)` returns after
    /// the loop finished its current iteration, including the close callbacks of every handle
    /// closed by jobs queued before it (libuv runs close callbacks at the end of an iteration,
    /// timers at the start of the next).
    public func sleep(for delay: Duration) async throws {
        try await withCheckedThrowingContinuation { (cont: CheckedContinuation<Void, any Error>) in
            let accepted = execute { [self] in
                // Resume from the close callback, so the timer itself is freed when the task
                // continues (openHandleCount is exact right after a sleep).
                var fired = false
                let timer = scheduleTimer(after: delay) { _ in fired = true }
                timer.onClose = {
                    if fired { cont.resume() } else { cont.resume(throwing: UVError(kind: .loopClosed, operation: "sleep")) }
                }
            }
            if !accepted { cont.resume(throwing: UVError(kind: .loopClosed, operation: "sleep")) }
        }
    }
}
