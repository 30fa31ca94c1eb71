/// A value usable only on its event loop's thread (in the manner of NIOLoopBound): it may be
/// carried across threads (through `EventLoop.execute`, inside `@Sendable` closures), but reading
/// it off the loop thread traps in debug builds. "Loop thread only" as a checked fact.
public struct LoopBound<Value>: @unchecked Sendable {
    public let loop: EventLoop
    private let _value: Value

    public init(_ value: Value, loop: EventLoop) {
        self._value = value
        self.loop = loop
    }

    public var value: Value {
        loop.assertInLoop()
        return _value
    }
}
