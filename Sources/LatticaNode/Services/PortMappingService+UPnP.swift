import LatticaCore
import LatticaNAT
import LatticaUV

/// The UPnP-IGD shell of `PortMappingService`: SSDP over its own UDP socket (answers are
/// unicast back to it), HTTP exchanges over libuv TCP (`UPnPExchange`), and the DeletePortMapping
/// round trip at shutdown (`drain`).
extension PortMappingService {
    func startUPnP(local: (ip: [UInt8], lan: UPnP.Subnet)) {
        let sock: UDPSocket
        do { sock = try UDPSocket.bind(on: loop, address: try SocketAddress(host: "0.0.0.0", port: 0)) } catch {
            logger.warning("port mapping: cannot open the SSDP socket", metadata: ["error": "\(error)"])
            return tryNext()
        }
        sock.onDatagram = { [weak self] buf, from in
            guard let self, case .upnp(var c) = self.active else { return }
            guard buf.count <= UPnP.maxSSDP, from.family == .ipv4 else { Self.countBad(.upnp, "too_large"); return }
            let out = c.onDatagram(Array(buf), from: from.ipBytes, now: self.loop.now)
            self.active = .upnp(c)
            self.applyUPnP(out)
        }
        sock.startReceiving()
        ssdpSocket = sock
        var c = UPnP.Client(internalPort: internalPort, settings: .init(lifetime: settings.lifetime, localIP: local.ip, lan: [local.lan]))
        let out = c.start(now: loop.now)
        active = .upnp(c)
        applyUPnP(out)
    }

    func closeSSDP() {
        ssdpSocket?.close()
        ssdpSocket = nil
    }

    func applyUPnP(_ directives: [UPnP.Directive]) {
        for d in directives {
            switch d {
            case .sendSSDP(let bytes):
                guard let s = ssdpSocket else { continue }
                let group: SocketAddress
                do { group = try SocketAddress(host: "239.255.255.250", port: UPnP.ssdpPort) } catch {
                    logger.warning("port mapping: SSDP group address", metadata: ["error": "\(error)"]); continue
                }
                s.send(bytes, to: group) { [logger] e in
                    if let e { logger.debug("port mapping: M-SEARCH not sent", metadata: ["error": "\(e)"]) }
                }
            case .http(let id, let url, let request):
                exchange(url, request) { [weak self] result in
                    guard let self, case .upnp(var c) = self.active else { return }
                    if case .failure(let e) = result { Self.countBad(.upnp, e.reason) }
                    let out = c.onHTTP(id: id, result: result, now: self.loop.now)
                    self.active = .upnp(c)
                    self.applyUPnP(out)
                }
            case .scheduleTimer(let at): schedule(at: at)
            case .mapped(let ip, let port, let lifetime):
                // the SSDP socket has done its work once we hold a mapping
                closeSSDP()
                mapped(.upnp, ip, port, lifetime)
            case .unmapped: unmapped(.upnp)
            case .rejected(let e):
                Self.countBad(.upnp, e.reason)
                logger.debug("port mapping: UPnP answer refused", metadata: ["reason": "\(e)"])
            case .gaveUp(.noAnswer): gaveUp(.upnp, "no_answer", "no UPnP IGD answered the M-SEARCH")
            case .gaveUp(.refused(let code)): gaveUp(.upnp, "refused", "the IGD refused AddPortMapping (UPnP error \(code))")
            case .gaveUp(.failed(let e)): gaveUp(.upnp, "failed", "UPnP failed: \(e)")
            }
        }
    }

    /// DeletePortMapping before the services stop; `done` when the IGD answered or failed.
    func drainUPnP(_ done: @escaping () -> Void) {
        guard case .upnp(var c) = active else { return done() }
        stopping = true
        let out = c.stop(now: loop.now)
        active = .upnp(c)
        var sent = false
        for d in out {
            switch d {
            case .http(_, let url, let request):
                sent = true
                exchange(url, request) { [weak self] result in
                    switch result {
                    case .success(let r) where r.status == 200: break
                    case .success(let r):
                        Self.countBad(.upnp, "soap")
                        self?.logger.info("port mapping: DeletePortMapping answered HTTP \(r.status)")
                    case .failure(let e):
                        Self.countBad(.upnp, e.reason)
                        self?.logger.info("port mapping: DeletePortMapping failed", metadata: ["error": "\(e)"])
                    }
                    done()
                }
            case .unmapped: unmapped(.upnp)
            default: break
            }
        }
        if !sent { done() }
    }

    /// One HTTP exchange with the IGD, bounded (5 s, `UPnP.maxResponse` bytes); at most 4 at once.
    func exchange(_ url: UPnP.URL, _ request: [UInt8], _ completion: @escaping (Result<UPnP.HTTPResponse, UPnP.Error>) -> Void) {
        guard exchanges < 4 else { return completion(.failure(UPnP.Error("http", "too many exchanges in flight"))) }
        let addr: SocketAddress
        do { addr = try SocketAddress(host: url.host.map(String.init).joined(separator: "."), port: url.port) } catch {
            return completion(.failure(UPnP.Error("url", "\(error)")))
        }
        exchanges += 1
        UPnPExchange.run(on: loop, to: addr, request: request, timeout: .seconds(5)) { [weak self] r in
            self?.exchanges -= 1
            completion(r)
        }
    }
}

/// Connect, write one request, read until `UPnP.parseHTTP` completes the response or rejects
/// it, close. Loop thread only; `completion` runs exactly once.
final class UPnPExchange {
    private let socket: TCPSocket
    private var received: [UInt8] = []
    private var completion: ((Result<UPnP.HTTPResponse, UPnP.Error>) -> Void)?
    private var timer: LoopTimer?

    private init(socket: TCPSocket, completion: @escaping (Result<UPnP.HTTPResponse, UPnP.Error>) -> Void) {
        self.socket = socket; self.completion = completion
    }

    static func run(on loop: EventLoop, to addr: SocketAddress, request: [UInt8], timeout: Duration,
                    _ completion: @escaping (Result<UPnP.HTTPResponse, UPnP.Error>) -> Void) {
        let deadline = loop.now + timeout
        TCPSocket.connect(on: loop, to: addr, timeout: timeout) { result in
            switch result {
            case .failure(let e): completion(.failure(UPnP.Error("http", "connect \(addr): \(e)")))
            case .success(let s):
                let x = UPnPExchange(socket: s, completion: completion)
                x.timer = loop.scheduleTimer(after: max(deadline - loop.now, .milliseconds(1))) { [x] _ in
                    x.finish(.failure(UPnP.Error("http", "no complete answer from \(addr) within \(timeout)")))
                }
                s.onData = { [x] bytes in
                    x.received.append(contentsOf: bytes)
                    x.check(eof: false)
                }
                s.onEnd = { [x] _ in x.check(eof: true) }
                s.startReading()
                s.write(request) { [x] e in
                    if let e { x.finish(.failure(UPnP.Error("http", "write: \(e)"))) }
                }
            }
        }
    }

    private func check(eof: Bool) {
        switch UPnP.parseHTTP(received, eof: eof) {
        case .incomplete: return
        case .complete(let r): finish(.success(r))
        case .invalid(let e): finish(.failure(e))
        }
    }

    private func finish(_ r: Result<UPnP.HTTPResponse, UPnP.Error>) {
        guard let c = completion else { return }
        completion = nil
        timer?.cancel()
        timer = nil
        socket.onData = nil
        socket.onEnd = nil
        socket.close()
        c(r)
    }
}
