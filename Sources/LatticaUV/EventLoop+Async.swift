/// The bridge between Swift concurrency and the loop thread.
extension EventLoop {
    /// Runs `body` on the loop thread and returns its result to the awaiting task.
    /// Throws `UVError.loopClosed` if the loop is shutting down.
    public func submit<T: Sendable>(_ body: @escaping @Sendable (EventLoop) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (cont: CheckedContinuation<T, any Error>) in
            let accepted = execute { [self] in
                cont.resume(with: Result { try body(self) })
            }
            if !accepted { cont.resume(throwing: UVError(kind: .loopClosed, operation: "submit")) }
        }
    }

    /// Runs `body` on the loop thread and suspends until it calls `complete` (exactly once; later
    /// calls are ignored). For callback-style operations (connect, write completion, ...).
    /// `body` must arrange for `complete` to be called even when its handle is closed.
    public func submitCallback<T: Sendable>(
        _ body: @escaping @Sendable (EventLoop, _ complete: @escaping (Result<T, any Error>) -> Void) -> Void
    ) async throws -> T {
        try await withCheckedThrowingContinuation { (cont: CheckedContinuation<T, any Error>) in
            let accepted = execute { [self] in
                let resumer = OnceResumer(cont)
                body(self) { resumer.resume($0) }
            }
            if !accepted { cont.resume(throwing: UVError(kind: .loopClosed, operation: "submit")) }
        }
    }
}

/// Resumes a continuation at most once (loop thread only).
final class OnceResumer<T: Sendable> {
    private var cont: CheckedContinuation<T, any Error>?
    init(_ cont: CheckedContinuation<T, any Error>) { self.cont = cont }
    func resume(_ result: Result<T, any Error>) {
        guard let c = cont else { return }
        cont = nil
        c.resume(with: result)
    }
}
