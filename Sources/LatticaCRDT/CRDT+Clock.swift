public import LatticaCore

extension CRDT {
    /// A hybrid logical clock time (Kulkarni et al., "Logical Physical Clocks", 2014): wall-clock
    /// milliseconds, and a logical counter that orders events within one millisecond or while
    /// the wall clock lags behind a time already seen.
    public struct Timestamp: Hashable, Comparable, Sendable, CustomStringConvertible {
        public var wall: UInt64
        public var logical: UInt32
        public init(wall: UInt64, logical: UInt32 = 0) { self.wall = wall; self.logical = logical }
        public static let zero = Timestamp(wall: 0)
        public static func < (a: Self, b: Self) -> Bool { (a.wall, a.logical) < (b.wall, b.logical) }
        public var description: String { "\(wall).\(logical)" }
    }

    /// A timestamp with its author: the total order of last-writer-wins (ties broken by author).
    public struct Stamp: Hashable, Comparable, Sendable, CustomStringConvertible {
        public var time: Timestamp
        public var author: PeerId
        public init(time: Timestamp, author: PeerId) { self.time = time; self.author = author }
        public static func < (a: Self, b: Self) -> Bool { a.time == b.time ? a.author < b.author : a.time < b.time }
        public var description: String { "\(time)@\(a: author)" }
    }

    /// The local hybrid logical clock. It never reads a clock: `tick(wall:)` takes the wall time,
    /// `observe(_:)` takes a remote time (already checked against the future bound).
    public struct HybridClock: Hashable, Sendable {
        public private(set) var last: Timestamp

        public init(last: Timestamp = .zero) { self.last = last }

        /// The time of a new local event: strictly greater than every time returned or observed
        /// before, and at least `wall`.
        public mutating func tick(wall: WallTime) -> Timestamp {
            if wall.milliseconds > last.wall {
                last = Timestamp(wall: wall.milliseconds)
            } else if last.logical == .max {
                last = Timestamp(wall: last.wall &+ 1)
            } else {
                last.logical += 1
            }
            return last
        }

        /// A time seen in a remote delta: later local ticks are after it.
        public mutating func observe(_ t: Timestamp) {
            if t > last { last = t }
        }
    }
}
