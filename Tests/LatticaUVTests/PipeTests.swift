import Foundation
import Testing
@testable import LatticaUV

@Suite struct PipeTests {
    @Test func unixSocketListener_echoesToAPlainSocketClient_andReportsNoIPAddress() async throws {
        let path = NSTemporaryDirectory() + "lattica-uv-\(UUID().uuidString.prefix(8)).sock"
        defer { unlink(path) }
        try await withLoop { loop in
            let accepted = Signal<Bool>()  // remoteAddress == nil && isUnixSocket
            try await loop.submit { loop in
                var listener: PipeListener?
                listener = try PipeListener.listen(on: loop, path: path) { r in
                    guard case .success(let s) = r else { return }
                    accepted.fire(s.isUnixSocket && s.remoteAddress == nil)
                    s.onData = { s.write($0) }
                    s.onEnd = { _ in s.close(); listener?.close() }
                    s.startReading()
                }
            }
            // A plain blocking client on this thread; the loop runs on its own.
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            #expect(fd >= 0)
            defer { Glibc.close(fd) }
            var addr = sockaddr_un()
            addr.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &addr.sun_path) { raw in
                for (i, b) in path.utf8.enumerated() { raw[i] = b }
            }
            let connected = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            #expect(connected == 0)
            let message = Array("hello over a unix socket".utf8)
            #expect(Glibc.write(fd, message, message.count) == message.count)
            var back = [UInt8](repeating: 0, count: 256)
            var got = 0
            while got < message.count {
                let n = back.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + got, 256 - got) }
                if n <= 0 { break }
                got += n
            }
            #expect(Array(back[0..<got]) == message)
            #expect(await accepted.wait())
        }
    }
}
