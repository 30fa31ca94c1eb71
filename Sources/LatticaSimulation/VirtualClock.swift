public import LatticaCore

/// A virtual clock: a queue of events ordered by (time, insertion sequence).
///
/// Events at equal times run in the order they were scheduled; nothing else orders them, so a run
/// is a pure function of the calls made (after swift-nio's `EmbeddedEventLoop`, STYLE.md §4).
/// A 4-ary min-heap of 16-byte keys (four children share a cache line or two, half the levels of
/// a binary heap); payloads live in a slab with a free list, so sifting never moves a payload and a
/// steady-state run does not allocate. Limits: 2^28 pending events, 2^36 schedules per clock.
public struct VirtualClock<Event> {
    /// 16 bytes: the time, and the insertion sequence (high 36 bits) above the payload slot
    /// (low 28 bits), so comparing `order` compares sequence numbers.
    @usableFromInline struct Key {
        @usableFromInline var time: Int64
        @usableFromInline var order: UInt64

        @inlinable init(time: Int64, seq: UInt64, slot: Int32) {
            self.time = time
            self.order = seq << Self.slotBits | UInt64(UInt32(bitPattern: slot))
        }

        @inlinable static var slotBits: UInt64 { 28 }
        @inlinable var slot: Int { Int(truncatingIfNeeded: order & ((1 << Self.slotBits) - 1)) }

        @inlinable @inline(__always)
        func precedes(_ o: Key) -> Bool { time < o.time || (time == o.time && order < o.order) }
    }

    @usableFromInline var heap: [Key] = []
    @usableFromInline var slots: [Event?] = []
    @usableFromInline var freeSlots: [Int32] = []
    @usableFromInline var nextSeq: UInt64 = 0

    /// The current virtual time: the time of the last event taken, or the last `advance(to:)` target.
    @inlinable public var now: Instant { _now }
    @usableFromInline var _now: Instant

    public init(start: Instant = .zero) { _now = start }

    /// Events scheduled and not yet taken.
    @inlinable public var pendingCount: Int { heap.count }
    @inlinable public var isIdle: Bool { heap.isEmpty }
    /// The time of the earliest pending event.
    @inlinable public var nextEventTime: Instant? { heap.first.map { Instant(nanoseconds: $0.time) } }
    /// How many events have ever been scheduled (the next insertion sequence number).
    @inlinable public var scheduledCount: UInt64 { nextSeq }

    /// Schedules `event` at `time`; a time in the past is clamped to `now` (it runs after events
    /// already due now). Returns the insertion sequence number.
    @inlinable @discardableResult
    public mutating func schedule(_ event: Event, at time: Instant) -> UInt64 {
        let t = Swift.max(time.nanoseconds, now.nanoseconds)
        let slot: Int32
        if let s = freeSlots.popLast() {
            slot = s
            slots[Int(s)] = event
        } else {
            precondition(slots.count < 1 << 28, "VirtualClock: too many pending events")
            slot = Int32(truncatingIfNeeded: slots.count)
            slots.append(event)
        }
        let seq = nextSeq
        precondition(seq < 1 << 36, "VirtualClock: sequence space exhausted")
        nextSeq &+= 1
        heap.append(Key(time: t, seq: seq, slot: slot))
        siftUp(heap.count - 1)
        return seq
    }

    /// Schedules `event` at `now + delay` (negative delays are clamped to now).
    @inlinable @discardableResult
    public mutating func schedule(_ event: Event, after delay: Duration) -> UInt64 {
        schedule(event, at: now + delay)
    }

    /// Takes the earliest event if it is due at or before `limit`, moving `now` to its time.
    @inlinable
    public mutating func popNext(through limit: Instant = Instant(nanoseconds: .max)) -> (time: Instant, event: Event)? {
        guard let top = heap.first, top.time <= limit.nanoseconds else { return nil }
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            siftDown(0)
        }
        let slot = top.slot
        let event = slots[slot].take()!
        freeSlots.append(Int32(truncatingIfNeeded: slot))
        _now = Instant(nanoseconds: top.time)
        return (now, event)
    }

    /// Runs every event due at or before `time` (including ones scheduled by the handler), then sets
    /// `now` to `time` (never backwards).
    @inlinable
    public mutating func advance<E: Error>(to time: Instant, _ handle: (inout Self, Event) throws(E) -> Void) throws(E) {
        while let (_, e) = popNext(through: time) { try handle(&self, e) }
        moveNow(to: time)
    }

    /// Same as `advance(to:_:)` (the name the network and the simulation use).
    @inlinable
    public mutating func run<E: Error>(until time: Instant, _ handle: (inout Self, Event) throws(E) -> Void) throws(E) {
        try advance(to: time, handle)
    }

    /// Runs events until none are left or `limit` have run. Returns how many ran.
    @inlinable @discardableResult
    public mutating func runUntilIdle<E: Error>(limit: Int = .max, _ handle: (inout Self, Event) throws(E) -> Void) throws(E) -> Int {
        var n = 0
        while n < limit, let (_, e) = popNext() {
            try handle(&self, e)
            n += 1
        }
        return n
    }

    /// Moves `now` forward to `time` without running anything (no-op when `time` is not later).
    /// Events pending before `time` stay pending and will run at their own (earlier) times.
    @inlinable
    public mutating func moveNow(to time: Instant) {
        if time > _now { _now = time }
    }

    /// Drops the pending events for which `shouldRemove` is true, keeping the order of the rest.
    /// O(pending). Returns how many were removed.
    @inlinable @discardableResult
    public mutating func removeAll(where shouldRemove: (Event) throws -> Bool) rethrows -> Int {
        var kept = 0
        for i in heap.indices {
            let k = heap[i]
            if try shouldRemove(slots[k.slot]!) {
                slots[k.slot] = nil
                freeSlots.append(Int32(truncatingIfNeeded: k.slot))
            } else {
                heap[kept] = k
                kept += 1
            }
        }
        let removed = heap.count - kept
        heap.removeLast(removed)
        if heap.count > 1 {
            var i = (heap.count - 2) >> 2
            while i >= 0 {
                siftDown(i)
                i -= 1
            }
        }
        return removed
    }

    /// Drops every pending event.
    public mutating func removeAll() {
        heap.removeAll(keepingCapacity: true)
        slots.removeAll(keepingCapacity: true)
        freeSlots.removeAll(keepingCapacity: true)
    }

    @inlinable
    mutating func siftUp(_ start: Int) {
        heap.withUnsafeMutableBufferPointer { h in
            var i = start
            let k = h[i]
            while i > 0 {
                let parent = (i - 1) >> 2
                if k.precedes(h[parent]) {
                    h[i] = h[parent]
                    i = parent
                } else { break }
            }
            h[i] = k
        }
    }

    @inlinable
    mutating func siftDown(_ start: Int) {
        heap.withUnsafeMutableBufferPointer { h in
            let n = h.count
            var i = start
            let k = h[i]
            while true {
                let first = 4 * i + 1
                if first >= n { break }
                var c = first
                let end = Swift.min(first + 4, n)
                var j = first + 1
                while j < end {
                    if h[j].precedes(h[c]) { c = j }
                    j += 1
                }
                if h[c].precedes(k) {
                    h[i] = h[c]
                    i = c
                } else { break }
            }
            h[i] = k
        }
    }
}

extension VirtualClock: Sendable where Event: Sendable {}
extension VirtualClock.Key: Sendable {}
