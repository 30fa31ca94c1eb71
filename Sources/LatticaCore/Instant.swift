/// A point in time, in nanoseconds since an arbitrary epoch chosen by whoever drives the instance
/// (the libuv shell uses the monotonic clock; the simulator starts at zero).
///
/// Protocol instances never read a clock: `now` is passed into every call (STYLE.md §1, §2).
public struct Instant: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var nanoseconds: Int64

    @inlinable public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    public static let zero = Instant(nanoseconds: 0)

    @inlinable public static func < (a: Instant, b: Instant) -> Bool { a.nanoseconds < b.nanoseconds }

    @inlinable public static func + (a: Instant, d: Duration) -> Instant {
        Instant(nanoseconds: a.nanoseconds &+ d.nanosecondsClamped)
    }

    @inlinable public static func - (a: Instant, d: Duration) -> Instant {
        Instant(nanoseconds: a.nanoseconds &- d.nanosecondsClamped)
    }

    /// The duration from `b` to `a`.
    @inlinable public static func - (a: Instant, b: Instant) -> Duration {
        .nanoseconds(a.nanoseconds &- b.nanoseconds)
    }

    public var seconds: Double { Double(nanoseconds) / 1e9 }

    public var description: String { "t+\(seconds)s" }
}

extension Duration {
    /// Whole nanoseconds, clamped to the range of `Int64`.
    @inlinable public var nanosecondsClamped: Int64 {
        let (s, atto) = components
        let (mul, o1) = s.multipliedReportingOverflow(by: 1_000_000_000)
        if o1 { return s < 0 ? .min : .max }
        let (sum, o2) = mul.addingReportingOverflow(atto / 1_000_000_000)
        if o2 { return s < 0 ? .min : .max }
        return sum
    }

    /// Seconds as a floating-point number.
    @inlinable public var secondsDouble: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) * 1e-18
    }
}
