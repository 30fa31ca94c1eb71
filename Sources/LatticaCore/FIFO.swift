/// A first-in first-out queue with amortised O(1) `append` and `popFirst` (an array and a head
/// index; the consumed prefix is dropped once it is at least half the storage).
public struct FIFO<Element> {
    private var storage: [Element] = []
    private var head = 0

    public init() {}

    public var count: Int { storage.count - head }
    public var isEmpty: Bool { head == storage.count }
    public var first: Element? { isEmpty ? nil : storage[head] }

    public mutating func append(_ e: Element) { storage.append(e) }

    @discardableResult
    public mutating func popFirst() -> Element? {
        guard head < storage.count else { return nil }
        let e = storage[head]
        head += 1
        if head == storage.count {
            storage.removeAll(keepingCapacity: storage.capacity <= 1024)
            head = 0
        } else if head >= 64 && head * 2 >= storage.count {
            storage.removeFirst(head)
            head = 0
        }
        return e
    }

    /// Takes every element out, oldest first.
    public mutating func removeAll() -> [Element] {
        defer { storage = []; head = 0 }
        return Array(storage[head...])
    }
}

extension FIFO: Sendable where Element: Sendable {}
