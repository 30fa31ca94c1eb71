import Dispatch
import Foundation

/// Waits for the first of a set of POSIX signals (SIGINT, SIGTERM), delivered through Dispatch
/// signal sources so that no async-signal-unsafe code runs in a handler.
final class SignalWaiter: @unchecked Sendable {
    private let signals: [Int32]
    private var sources: [any DispatchSourceSignal] = []
    private let queue = DispatchQueue(label: "lattica.signals")

    init(_ signals: [Int32]) { self.signals = signals }

    func wait() async -> Int32 {
        await withCheckedContinuation { (c: CheckedContinuation<Int32, Never>) in
            queue.sync {
                var resumed = false
                for s in signals {
                    signal(s, SIG_IGN)
                    let src = DispatchSource.makeSignalSource(signal: s, queue: queue)
                    src.setEventHandler { [weak self] in
                        guard !resumed else { return }
                        resumed = true
                        self?.cancel()
                        c.resume(returning: s)
                    }
                    src.resume()
                    sources.append(src)
                }
            }
        }
    }

    private func cancel() {
        for s in sources { s.cancel() }
        sources.removeAll()
    }
}
