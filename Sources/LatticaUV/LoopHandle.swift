import CLibUV

/// Base of every libuv handle wrapper. Owns the C handle memory.
///
/// Lifetime: once the handle is initialised, `handle.data` holds a *retained* reference to this
/// object (`Unmanaged.passRetained`), so the object lives at least until libuv is done with the
/// handle. `close()` calls `uv_close`; the close callback releases that reference, clears `data`,
/// tells the subclass (`didClose`) and frees the C memory. Nothing else frees a handle.
public class LoopHandle: @unchecked Sendable {
    public let loop: EventLoop
    /// uv_handle_t-compatible memory; nil after the close callback freed it.
    private(set) var raw: UnsafeMutableRawPointer?
    public private(set) var isClosing = false
    /// Runs once, in the close callback (after pending requests were cancelled). Loop thread.
    public var onClose: (() -> Void)?

    init(loop: EventLoop, type: uv_handle_type) {
        self.loop = loop
        raw = .allocate(byteCount: uv_handle_size(type), alignment: 16)
    }

    deinit {
        // Only reached when the handle was never registered (init failed) or after close.
        raw?.deallocate()
    }

    var handle: UnsafeMutablePointer<uv_handle_t> { raw!.assumingMemoryBound(to: uv_handle_t.self) }

    /// Call after the uv_*_init succeeded: from now on libuv owns a reference to `self`.
    func register() {
        uv_handle_set_data(handle, Unmanaged.passRetained(self).toOpaque())
        loop.liveHandles.add(1, ordering: .relaxed)
    }

    /// The wrapper stored in `handle.data`, without touching its retain count.
    static func owner<T: LoopHandle>(_ h: UnsafeRawPointer?, as: T.Type) -> T {
        let data = uv_handle_get_data(h!.assumingMemoryBound(to: uv_handle_t.self))!
        // Checked in debug builds; a plain pointer cast on the hot path in release.
        return unsafeDowncast(Unmanaged<LoopHandle>.fromOpaque(data).takeUnretainedValue(), to: T.self)
    }

    /// Closes the handle (idempotent). Pending requests complete with `ECANCELED` first, then
    /// `didClose` runs and the memory is freed. Loop thread only.
    public func close() {
        loop.assertInLoop()
        guard !isClosing, let raw else { return }
        isClosing = true
        willClose()
        uv_close(raw.assumingMemoryBound(to: uv_handle_t.self), LoopHandle.closeCallback)
    }

    /// Subclass hook, before uv_close.
    func willClose() {}
    /// Subclass hook, in the close callback (the C handle is still allocated, but closed).
    func didClose() {}

    static let closeCallback: uv_close_cb = { h in
        guard let h else { return }
        if let data = uv_handle_get_data(h) {
            uv_handle_set_data(h, nil)
            let owner = Unmanaged<LoopHandle>.fromOpaque(data).takeRetainedValue()
            owner.didClose()
            owner.raw = nil
            owner.loop.liveHandles.subtract(1, ordering: .relaxed)
            let onClose = owner.onClose
            owner.onClose = nil
            onClose?()
        }
        UnsafeMutableRawPointer(h).deallocate()
    }
}
