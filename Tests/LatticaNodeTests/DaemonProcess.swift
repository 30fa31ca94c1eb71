import Foundation
import LatticaAPI
import LatticaCore
@testable import LatticaNode
import Synchronization

/// Where the built `latticad` and `lattica` are: `$LATTICA_BIN_DIR` (set by Scripts/test.sh), else
/// the directory of the test bundle (SwiftPM puts products beside it).
let binDir: String = {
    if let d = ProcessInfo.processInfo.environment["LATTICA_BIN_DIR"], !d.isEmpty { return d }
    return URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path
}()

/// A fresh temporary directory, removed by `cleanup()`.
struct TempDir {
    let path: String
    init() {
        path = NSTemporaryDirectory() + "lattica-test-" + UUID().uuidString.prefix(8)
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    func cleanup() { try? FileManager.default.removeItem(atPath: path) }
}

/// Result of a command that ran to completion.
struct CommandResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs a binary from `binDir` to completion.
func run(_ tool: String, _ args: [String], env: [String: String] = [:]) throws -> CommandResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: binDir + "/" + tool)
    p.arguments = args
    var e = ProcessInfo.processInfo.environment
    e.removeValue(forKey: "LATTICA_DATA_DIR")
    for (k, v) in env { e[k] = v }
    p.environment = e
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let r = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return CommandResult(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
                         stderr: String(decoding: r, as: UTF8.self))
}

/// A running `latticad`. `start` returns once the daemon logged that it started (it listens and
/// serves its control socket by then); `stop` sends SIGTERM and waits for the exit.
final class DaemonProcess: @unchecked Sendable {
    let process = Process()
    let dataDir: String
    private let stderrLines = Mutex<[String]>([])
    private let started = Mutex<CheckedContinuation<Bool, Never>?>(nil)
    private let startedFlag = Mutex(false)

    init(dataDir: String, args: [String] = []) {
        self.dataDir = dataDir
        process.executableURL = URL(fileURLWithPath: binDir + "/latticad")
        process.arguments = ["--data-dir", dataDir, "--listen", "/ip4/127.0.0.1/tcp/0", "--metrics-addr", "127.0.0.1:0",
                             "--log-level", "info"] + args
    }

    var log: String { stderrLines.withLock { $0.joined(separator: "\n") } }

    /// Starts the daemon; throws when it exits before it is ready.
    func start() async throws {
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        // A plain thread with blocking reads, not `readabilityHandler`: a libdispatch source on a
        // pipe whose fd is closed while still registered crashes libdispatch's epoll drain
        // (swift-subprocess#47 shows the same crash).
        let reader = Thread { [self] in
            var buffer = Data()
            while true {
                let chunk = err.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                buffer.append(chunk)
                while let nl = buffer.firstIndex(of: 10) {
                    let line = String(decoding: buffer[..<nl], as: UTF8.self)
                    buffer.removeSubrange(...nl)
                    stderrLines.withLock { $0.append(line) }
                    if line.contains("latticad started") { signal(true) }
                }
            }
            signal(false)
        }
        reader.start()
        let ok = await withCheckedContinuation { (c: CheckedContinuation<Bool, Never>) in
            let done = startedFlag.withLock { $0 }
            if done { c.resume(returning: true) } else { started.withLock { $0 = c } }
        }
        if !ok {
            process.waitUntilExit()
            throw DaemonStartError(log: log, status: process.terminationStatus)
        }
    }

    private func signal(_ ok: Bool) {
        let c = started.withLock { c -> CheckedContinuation<Bool, Never>? in
            let x = c; c = nil; return x
        }
        if ok { startedFlag.withLock { $0 = true } }
        c?.resume(returning: ok)
    }

    /// SIGTERM, then waits; returns the exit status and how long the exit took.
    func stop(signal sig: Int32 = SIGTERM) -> (status: Int32, seconds: Double) {
        let t0 = Date()
        kill(process.processIdentifier, sig)
        process.waitUntilExit()
        return (process.terminationStatus, Date().timeIntervalSince(t0))
    }

    /// Kills the process if it still runs (test cleanup on failure paths).
    func kill9() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
    }
}

struct DaemonStartError: Error, CustomStringConvertible {
    var log: String
    var status: Int32
    var description: String { "latticad exited with \(status) before it was ready:\n\(log)" }
}

extension Daemon {
    /// Pings `peer` through the ping service.
    func pingPeer(_ peer: PeerId, count: Int) async throws -> [Duration] {
        try await onLoop { [self] _, done in
            guard let ping = service(PingService.self) else { done(.failure(SwarmError("no ping service"))); return }
            ping.ping(peer, count: count) { done($0) }
        }
    }
}

/// The seed of a seeded fuzz or property test: `$LATTICA_TEST_SEED` when set (to replay a failure),
/// else `fallback`. Tests print it in every failure message.
func testSeed(_ fallback: UInt64) -> UInt64 {
    ProcessInfo.processInfo.environment["LATTICA_TEST_SEED"].flatMap { UInt64($0) } ?? fallback
}

/// Runs blocking work (a `ControlClient` call) on its own thread, so that it never holds one of
/// the few cooperative threads the daemon's control handlers need.
func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
        Thread { c.resume(with: Result { try body() }) }.start()
    }
}

/// Tests hand one client to one thread at a time (through `blocking`).
extension ControlClient: @unchecked Sendable {}
