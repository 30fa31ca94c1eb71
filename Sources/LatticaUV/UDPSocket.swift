import CLibUV
import Glibc

/// A UDP socket, callback API. Loop thread only.
///
/// `onDatagram` gets a view of the loop's read buffer (valid only during the call) and the
/// sender. Sends go straight to the kernel (`uv_udp_try_send`); when the kernel buffer is full the
/// datagram is copied into libuv's send queue, bounded by `maxSendQueueBytes` (beyond it the send
/// fails with `.writeQueueFull`: datagrams are droppable by nature).
public final class UDPSocket: LoopHandle, @unchecked Sendable {
    public var onDatagram: ((UnsafeRawBufferPointer, SocketAddress) -> Void)?
    public var onError: ((UVError) -> Void)?
    public let maxSendQueueBytes: Int
    public private(set) var localAddress: SocketAddress
    public private(set) var isReceiving = false
    /// Datagrams larger than the 64 KiB read buffer (cut short, then dropped).
    public private(set) var truncatedDatagrams = 0

    var udp: UnsafeMutablePointer<uv_udp_t> { raw!.assumingMemoryBound(to: uv_udp_t.self) }

    /// Binds to `address` (port 0 picks a free port; see `localAddress`).
    public static func bind(on loop: EventLoop, address: SocketAddress, maxSendQueueBytes: Int = 4 << 20) throws(UVError) -> UDPSocket {
        loop.assertInLoop()
        let socket = try UDPSocket(loop: loop, address: address, maxSendQueueBytes: maxSendQueueBytes)
        do throws(UVError) {
            try UVError.check(address.withSockaddr { sa, _ in uv_udp_bind(socket.udp, sa, 0) }, "udp bind \(address)")
            let udp = socket.udp
            socket.localAddress = try SocketAddress.read({ uv_udp_getsockname(udp, $0, $1) }, "getsockname")
        } catch {
            socket.close()
            throw error
        }
        return socket
    }

    private init(loop: EventLoop, address: SocketAddress, maxSendQueueBytes: Int) throws(UVError) {
        self.localAddress = address
        self.maxSendQueueBytes = maxSendQueueBytes
        super.init(loop: loop, type: UV_UDP)
        try UVError.check(uv_udp_init(loop.uvLoop, raw!.assumingMemoryBound(to: uv_udp_t.self)), "udp init")
        register()
    }

    public func startReceiving() {
        loop.assertInLoop()
        guard !isClosing, !isReceiving else { return }
        let status = uv_udp_recv_start(udp, { h, _, buf in
            let loop = LoopHandle.owner(h, as: UDPSocket.self).loop
            buf!.pointee = uv_buf_init(loop.readBuffer.baseAddress!.assumingMemoryBound(to: CChar.self), UInt32(loop.readBuffer.count))
        }, { h, nread, buf, addr, flags in
            let socket = LoopHandle.owner(h, as: UDPSocket.self)
            if nread < 0 {
                socket.onError?(UVError(code: Int32(nread), operation: "udp receive"))
                return
            }
            guard let addr, let from = SocketAddress(sockaddr: addr) else { return }  // 0 bytes, no addr: nothing read
            socket.loop.activity &+= 1
            if flags & UInt32(UV_UDP_PARTIAL.rawValue) != 0 { socket.truncatedDatagrams += 1; return }
            socket.onDatagram?(UnsafeRawBufferPointer(start: buf!.pointee.base, count: nread), from)
        })
        if status == 0 { isReceiving = true } else { onError?(UVError(code: status, operation: "udp receive start")) }
    }

    public func stopReceiving() {
        loop.assertInLoop()
        guard !isClosing, isReceiving else { return }
        uv_udp_recv_stop(udp)
        isReceiving = false
    }

    public func send(_ bytes: [UInt8], to address: SocketAddress, completion: ((UVError?) -> Void)? = nil) {
        bytes.withUnsafeBytes { send($0, to: address, completion: completion) }
    }

    /// Sends one datagram. `completion` may run before `send` returns.
    public func send(_ bytes: UnsafeRawBufferPointer, to address: SocketAddress, completion: ((UVError?) -> Void)? = nil) {
        loop.assertInLoop()
        guard !isClosing else { completion?(UVError(kind: .closed, operation: "udp send")); return }
        var buf = uv_buf_init(UnsafeMutablePointer(mutating: bytes.baseAddress?.assumingMemoryBound(to: CChar.self)), UInt32(bytes.count))
        let n = address.withSockaddr { sa, _ in uv_udp_try_send(udp, &buf, 1, sa) }
        if n >= 0 { completion?(nil); return }
        guard n == UV_EAGAIN.rawValue else { completion?(UVError(code: n, operation: "udp send to \(address)")); return }
        guard uv_udp_get_send_queue_size(udp) + bytes.count <= maxSendQueueBytes else {
            completion?(UVError(kind: .writeQueueFull, operation: "udp send to \(address)"))
            return
        }
        let request = WriteRequest(count: bytes.count, completion: completion)
        if !bytes.isEmpty { request.storage.copyMemory(from: bytes) }
        buf = uv_buf_init(request.storage.baseAddress?.assumingMemoryBound(to: CChar.self), UInt32(bytes.count))
        let req = UnsafeMutablePointer<uv_udp_send_t>.allocate(capacity: 1)
        req.pointee.data = Unmanaged.passRetained(request).toOpaque()
        let status = address.withSockaddr { sa, _ in
            uv_udp_send(req, udp, &buf, 1, sa) { req, status in
                let request = Unmanaged<WriteRequest>.fromOpaque(req!.pointee.data).takeRetainedValue()
                req!.deallocate()
                request.completion?(status < 0 ? UVError(code: status, operation: "udp send") : nil)
            }
        }
        if status < 0 {
            Unmanaged<WriteRequest>.fromOpaque(req.pointee.data).release()
            req.deallocate()
            completion?(UVError(code: status, operation: "udp send to \(address)"))
        }
    }

    override func willClose() { isReceiving = false }
    override func didClose() { onDatagram = nil; onError = nil }
}
