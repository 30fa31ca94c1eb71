import Foundation
import Synchronization

/// A test peer that nobody here wrote (py-libp2p or the real Lattica), driven over the JSON line
/// protocol of Scripts/interop/ (Docs/INTEROP.md). Killed on `close()`.
final class InteropPeer: @unchecked Sendable {
    enum Kind: String { case pylibp2p, lattica }
    static let repo = #filePath.components(separatedBy: "/Tests/")[0]
    static var python: String { repo + "/.venv/bin/python" }

    /// Why interop tests cannot run here, or nil when they can.
    static func unavailable(_ kind: Kind) -> String? {
        guard FileManager.default.isExecutableFile(atPath: python) else { return ".venv missing: run Scripts/interop-setup.sh" }
        if kind == .lattica {
            // Lattica sends STUN to public servers at start: only inside a namespace with just lo.
            // /proc/net/dev lists the interfaces of this process's network namespace.
            let dev = (try? String(contentsOfFile: "/proc/net/dev", encoding: .utf8)) ?? ""
            let ifaces = dev.split(separator: "\n").dropFirst(2).compactMap { $0.split(separator: ":").first?.trimmingCharacters(in: .whitespaces) }
            if ifaces != ["lo"] { return "not in an isolated network namespace (run under Scripts/interop/netns-run.sh)" }
        }
        return nil
    }

    let kind: Kind
    let process = Process()
    private let stdinPipe = Pipe(), stdoutPipe = Pipe()
    private var buffer = Data()
    private(set) var ready: [String: Any] = [:]
    var peerId: String { ready["peer_id"] as? String ?? "" }
    var addr: String { (ready["listen_addrs"] as? [String])?.first ?? "" }

    init(_ kind: Kind, _ args: [String] = []) throws {
        self.kind = kind
        process.executableURL = URL(fileURLWithPath: Self.python)
        process.arguments = ["-u", Self.repo + "/Scripts/interop/\(kind == .lattica ? "lattica_peer.py" : "pylibp2p_peer.py")"] + args
        process.standardInput = stdinPipe
        process.standardOutput = stdoutPipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        ready = try readObject()
        guard ready["event"] as? String == "ready" else { close(); throw PeerError("\(kind) did not start: \(ready)") }
    }

    struct PeerError: Error, CustomStringConvertible { var description: String; init(_ d: String) { description = d } }

    /// Sends a command and returns the answer (blocking; the peers answer in order).
    func call(_ cmd: [String: Any]) throws -> [String: Any] {
        var line = try JSONSerialization.data(withJSONObject: cmd)
        line.append(10)
        stdinPipe.fileHandleForWriting.write(line)
        return try readObject()
    }

    private func readObject() throws -> [String: Any] {
        while true {
            if let nl = buffer.firstIndex(of: 10) {
                let line = buffer[buffer.startIndex..<nl]
                buffer.removeSubrange(buffer.startIndex...nl)
                if line.first == UInt8(ascii: "{"), let o = try JSONSerialization.jsonObject(with: line) as? [String: Any] { return o }
                continue
            }
            let chunk = stdoutPipe.fileHandleForReading.availableData
            if chunk.isEmpty { throw PeerError("\(kind) exited") }
            buffer.append(chunk)
        }
    }

    func close() {
        if process.isRunning {
            _ = try? call(["cmd": "quit"])
            if process.isRunning { process.terminate() }
            process.waitUntilExit()
        }
    }
}
