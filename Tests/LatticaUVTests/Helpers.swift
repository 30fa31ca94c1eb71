import Foundation
import LatticaCore
@testable import LatticaUV

/// Runs `body` with a fresh loop and always shuts it down.
func withLoop<T>(_ body: (EventLoop) async throws -> T) async throws -> T {
    let loop = EventLoop(name: "test")
    do {
        let result = try await body(loop)
        await loop.shutdownGracefully()
        return result
    } catch {
        await loop.shutdownGracefully()
        throw error
    }
}

func randomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var rng = SeededRandom(seed: seed)
    var out = [UInt8](repeating: 0, count: count)
    var i = 0
    while i < count {
        let word = rng.next()
        withUnsafeBytes(of: word) { w in
            for b in w where i < count { out[i] = b; i += 1 }
        }
    }
    return out
}

/// Reads from a connection until `count` bytes arrived or EOF.
func readExactly(_ connection: TCPConnection, _ count: Int) async throws -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(count)
    while out.count < count, let chunk = try await connection.read() { out += chunk }
    return out
}

/// A one-shot signal from the loop thread to a test task.
final class Signal<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: T?
    private var waiter: CheckedContinuation<T, Never>?

    func fire(_ v: T) {
        lock.lock()
        if value != nil { lock.unlock(); return }
        value = v
        let w = waiter
        waiter = nil
        lock.unlock()
        w?.resume(returning: v)
    }

    func wait() async -> T {
        await withCheckedContinuation { cont in
            lock.lock()
            if let value { lock.unlock(); cont.resume(returning: value); return }
            waiter = cont
            lock.unlock()
        }
    }
}

enum ProcessStats {
    /// Number of open file descriptors of this process.
    static func fdCount() -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? -1
    }

    /// What /proc/self/fd/<fd> links to (e.g. "socket:[12345]"), nil if closed.
    static func fdTarget(_ fd: Int32) -> String? {
        try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)")
    }

    /// Every socket inode currently open in this process.
    static func openSocketTargets() -> Set<String> {
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return Set(fds.compactMap { Int32($0).flatMap(fdTarget) }.filter { $0.hasPrefix("socket:") })
    }

    /// Resident set size in bytes (/proc/self/statm, second field, in pages).
    static func rssBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return -1 }
        let fields = text.split(separator: " ")
        return (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
