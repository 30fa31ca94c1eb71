import LatticaCore
import LatticaNAT
import Testing

/// Fixtures written after UPnP Device Architecture 1.1 and the IGD:1/IGD:2 service templates, in
/// the shape miniupnpd 2.3 sends them.
enum UPnPFixtures {
    static let gw: [UInt8] = [192, 168, 1, 1]
    static let lan = UPnP.Subnet(address: [192, 168, 1, 0], mask: [255, 255, 255, 0])
    static let location = UPnP.URL(host: gw, port: 40000, path: "/rootDesc.xml")

    static let ssdpText = """
        HTTP/1.1 200 OK\r
        CACHE-CONTROL: max-age=120\r
        ST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r
        USN: uuid:3a0f6c1e-13a7-4a3b-9a5e-000000000001::urn:schemas-upnp-org:device:InternetGatewayDevice:1\r
        EXT:\r
        SERVER: Debian/12 UPnP/1.1 MiniUPnPd/2.3.1\r
        LOCATION: http://192.168.1.1:40000/rootDesc.xml\r
        OPT: "http://schemas.upnp.org/upnp/1/0/"; ns=01\r
        01-NLS: 1\r
        BOOTID.UPNP.ORG: 1\r
        CONFIGID.UPNP.ORG: 1337\r
        \r

        """
    static let ssdp = Array(ssdpText.utf8)

    static let description = """
        <?xml version="1.0"?>
        <root xmlns="urn:schemas-upnp-org:device-1-0" configId="1337"><specVersion><major>1</major><minor>1</minor></specVersion>
        <device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType><friendlyName>Debian router</friendlyName>
        <serviceList><service><serviceType>urn:schemas-upnp-org:service:Layer3Forwarding:1</serviceType>
        <serviceId>urn:upnp-org:serviceId:L3Forwarding1</serviceId><controlURL>/ctl/L3F</controlURL></service></serviceList>
        <deviceList><device><deviceType>urn:schemas-upnp-org:device:WANDevice:1</deviceType><deviceList><device>
        <deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:1</deviceType><serviceList><service>
        <serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType><serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId>
        <controlURL>/ctl/IPConn</controlURL><eventSubURL>/evt/IPConn</eventSubURL><SCPDURL>/WANIPCn.xml</SCPDURL></service>
        </serviceList></device></deviceList></device></deviceList><presentationURL>http://192.168.1.1/</presentationURL></device></root>
        """

    static func http(_ status: String, _ body: String, chunked: Bool = false) -> [UInt8] {
        if chunked {
            let b = Array(body.utf8)
            let half = b.count / 2
            var out: [UInt8] = Array("HTTP/1.1 \(status)\r\nContent-Type: text/xml\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)
            out += Array(String(half, radix: 16).utf8)
            out += [13, 10]
            out += b[..<half]
            out += [13, 10]
            out += Array(String(b.count - half, radix: 16).utf8)
            out += Array(";ext=1\r\n".utf8)
            out += b[half...]
            out += Array("\r\n0\r\n\r\n".utf8)
            return out
        }
        return Array("HTTP/1.1 \(status)\r\nContent-Type: text/xml; charset=\"utf-8\"\r\nConnection: close\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8)
    }

    static func soapOK(_ action: String, _ inner: String) -> String {
        "<?xml version=\"1.0\"?>\r\n<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\">"
            + "<s:Body><u:\(action)Response xmlns:u=\"urn:schemas-upnp-org:service:WANIPConnection:1\">\(inner)</u:\(action)Response></s:Body></s:Envelope>\r\n"
    }

    static func fault(_ code: Int, _ desc: String) -> String {
        "<?xml version=\"1.0\"?>\r\n<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\">"
            + "<s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail>"
            + "<UPnPError xmlns=\"urn:schemas-upnp-org:control-1-0\"><errorCode>\(code)</errorCode><errorDescription>\(desc)</errorDescription>"
            + "</UPnPError></detail></s:Fault></s:Body></s:Envelope>\r\n"
    }
}

@Suite struct UPnPTests {
    typealias F = UPnPFixtures
    func at(_ s: Double) -> Instant { Instant(nanoseconds: Int64(s * 1e9)) }
    func response(_ bytes: [UInt8]) -> UPnP.HTTPResponse {
        guard case .complete(let r) = UPnP.parseHTTP(bytes, eof: true) else { Issue.record("not a response"); return .init(status: 0, body: []) }
        return r
    }

    @Test func mSearch_isTheUDA11Request() {
        #expect(String(decoding: UPnP.mSearch("urn:schemas-upnp-org:device:InternetGatewayDevice:1"), as: UTF8.self)
                == "M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 2\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n\r\n")
    }

    @Test func ssdp_yieldsTheLocation_andRefusesWhatIsNotAnIPv4HTTPURL() throws {
        let a = try UPnP.parseSSDP(F.ssdp).get()
        #expect(a.location == F.location)
        #expect(a.searchTarget == "urn:schemas-upnp-org:device:InternetGatewayDevice:1")
        let dns = String(decoding: F.ssdp, as: UTF8.self).replacingOccurrences("192.168.1.1:40000", "router.lan:40000")
        #expect((try? UPnP.parseSSDP(Array(dns.utf8)).get()) == nil, "no DNS names")
        let https = String(decoding: F.ssdp, as: UTF8.self).replacingOccurrences("http://", "https://")
        #expect((try? UPnP.parseSSDP(Array(https.utf8)).get()) == nil)
        #expect((try? UPnP.parseSSDP(Array("NOTIFY * HTTP/1.1\r\nLOCATION: http://1.2.3.4/\r\n\r\n".utf8)).get()) == nil)
        #expect((try? UPnP.parseSSDP(F.ssdp + [UInt8](repeating: 65, count: 5000)).get()) == nil, "over 4 KiB")
    }

    @Test func http_readsContentLengthChunkedAndCloseDelimitedBodies_withinTheCap() {
        let body = F.soapOK("GetExternalIPAddress", "<NewExternalIPAddress>11.200.0.11</NewExternalIPAddress>")
        let plain = F.http("200 OK", body)
        #expect(UPnP.parseHTTP(Array(plain.dropLast(3)), eof: false) == .incomplete)
        #expect(UPnP.parseHTTP(plain, eof: false) == .complete(.init(status: 200, body: Array(body.utf8))))
        #expect(UPnP.parseHTTP(F.http("200 OK", body, chunked: true), eof: false) == .complete(.init(status: 200, body: Array(body.utf8))))
        #expect(UPnP.parseHTTP(Array("HTTP/1.0 200 OK\r\n\r\nabc".utf8), eof: true) == .complete(.init(status: 200, body: Array("abc".utf8))))
        if case .invalid(let e) = UPnP.parseHTTP(Array("HTTP/1.1 302 Found\r\nLocation: http://10.0.0.1/\r\n\r\n".utf8), eof: false) {
            #expect(e.reason == "redirect")
        } else { Issue.record("a redirect must be refused") }
        if case .invalid(let e) = UPnP.parseHTTP(Array("HTTP/1.1 200 OK\r\nContent-Length: 999999\r\n\r\n".utf8), eof: false) {
            #expect(e.reason == "too_large")
        } else { Issue.record("Content-Length over the cap") }
        if case .invalid = UPnP.parseHTTP(Array("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc".utf8), eof: true) {} else { Issue.record("short body at close") }
        if case .invalid = UPnP.parseHTTP(Array("SIP/2.0 200 OK\r\n\r\n".utf8), eof: false) {} else { Issue.record("not HTTP") }
        if case .invalid = UPnP.parseHTTP([UInt8](repeating: 65, count: UPnP.maxResponse + 1), eof: false) {} else { Issue.record("over 64 KiB") }
    }

    @Test func description_findsTheNestedWANIPConnection_andRefusesOffHostURLs() throws {
        let s = try UPnP.parseDescription(Array(F.description.utf8), location: F.location).get()
        #expect(s == .init(serviceType: "urn:schemas-upnp-org:service:WANIPConnection:1",
                           controlURL: .init(host: F.gw, port: 40000, path: "/ctl/IPConn")))
        let off = F.description.replacingOccurrences("<controlURL>/ctl/IPConn", "<controlURL>http://192.168.1.66:80/ctl")
        #expect(UPnP.parseDescription(Array(off.utf8), location: F.location).map(\.serviceType) == .failure(.init("off_lan", "control URL on another host: 192.168.1.66:80")))
        let none = F.description.replacingOccurrences("WANIPConnection:1", "WANCommonInterfaceConfig:1")
        #expect((try? UPnP.parseDescription(Array(none.utf8), location: F.location).get()) == nil)
        #expect((try? UPnP.parseDescription(Array(F.description.dropLast(7).utf8), location: F.location).get()) == nil, "unclosed root")
    }

    @Test func scanner_decodesEntitiesAndCDATA_andBoundsTheDepth() throws {
        #expect(try UPnP.scan(Array("<a x='1'>&lt;b&gt; &amp; &#65;&#x42;<![CDATA[<c>]]><!-- n --><d/></a>".utf8)).get()
                == [.open("a"), .text("<b> & AB"), .text("<c>"), .open("d"), .close("d"), .close("a")])
        #expect((try? UPnP.scan(Array("<a>&bogus;</a>".utf8)).get()) == nil)
        #expect((try? UPnP.scan(Array(String(repeating: "<a>", count: 40).utf8)).get()) == nil, "deeper than 32")
        #expect(UPnP.escape("a<b>&\"c'") == "a&lt;b&gt;&amp;&quot;c&apos;")
    }

    @Test func soap_requestIsEscaped_andAnswersAndFaultsDecode() throws {
        let svc = UPnP.Service(serviceType: "urn:schemas-upnp-org:service:WANIPConnection:1", controlURL: .init(host: F.gw, port: 40000, path: "/ctl/IPConn"))
        let req = String(decoding: UPnP.soapRequest(svc, action: "AddPortMapping", args: [("NewPortMappingDescription", "a<b>&c")]), as: UTF8.self)
        #expect(req.hasPrefix("POST /ctl/IPConn HTTP/1.1\r\nHost: 192.168.1.1:40000\r\n"))
        #expect(req.contains("SOAPAction: \"urn:schemas-upnp-org:service:WANIPConnection:1#AddPortMapping\"\r\n"))
        #expect(req.contains("<NewPortMappingDescription>a&lt;b&gt;&amp;c</NewPortMappingDescription>"))
        let head = req.split(separator: "\r\n\r\n", maxSplits: 1)
        #expect(req.contains("Content-Length: \(head[1].utf8.count)\r\n"))
        let ok = response(F.http("200 OK", F.soapOK("GetExternalIPAddress", "<NewExternalIPAddress>11.200.0.11</NewExternalIPAddress>")))
        #expect(try UPnP.parseSOAP(ok, action: "GetExternalIPAddress").get() == .ok(["NewExternalIPAddress": "11.200.0.11"]))
        #expect((try? UPnP.parseSOAP(ok, action: "AddPortMapping").get()) == nil, "the answer to another action")
        let f = response(F.http("500 Internal Server Error", F.fault(725, "OnlyPermanentLeasesSupported")))
        #expect(try UPnP.parseSOAP(f, action: "AddPortMapping").get() == .fault(code: 725, description: "OnlyPermanentLeasesSupported"))
        #expect((try? UPnP.parseSOAP(response(F.http("500 Internal Server Error", "<html/>")), action: "AddPortMapping").get()) == nil)
    }

    func mappedClient(lifetime: UInt32 = 120, addAnswer: String? = nil) -> (UPnP.Client, [UPnP.Directive]) {
        var c = UPnP.Client(internalPort: 4001, settings: .init(lifetime: lifetime, localIP: [192, 168, 1, 11], lan: [F.lan]))
        let first = c.start(now: at(0))
        #expect(first.count == 5, "four M-SEARCHes and a timer")
        guard case .http(let id1, let url1, _)? = c.onDatagram(F.ssdp, from: F.gw, now: at(0.1)).first else { Issue.record("no GET"); return (c, []) }
        #expect(url1 == F.location)
        guard case .http(let id2, _, let soap)? = c.onHTTP(id: id1, result: .success(response(F.http("200 OK", F.description))), now: at(0.2)).first else {
            Issue.record("no GetExternalIPAddress"); return (c, [])
        }
        #expect(String(decoding: soap, as: UTF8.self).contains("#GetExternalIPAddress\""))
        let ip = response(F.http("200 OK", F.soapOK("GetExternalIPAddress", "<NewExternalIPAddress>11.200.0.11</NewExternalIPAddress>")))
        guard case .http(let id3, _, let add)? = c.onHTTP(id: id2, result: .success(ip), now: at(0.3)).first else { Issue.record("no AddPortMapping"); return (c, []) }
        #expect(String(decoding: add, as: UTF8.self).contains("<NewInternalClient>192.168.1.11</NewInternalClient><NewEnabled>1</NewEnabled><NewPortMappingDescription>latticad</NewPortMappingDescription><NewLeaseDuration>\(lifetime)</NewLeaseDuration>"))
        let r = response(F.http(addAnswer == nil ? "200 OK" : "500 Internal Server Error", addAnswer ?? F.soapOK("AddPortMapping", "")))
        let out = c.onHTTP(id: id3, result: .success(r), now: at(0.4))
        return (c, out)
    }

    @Test func client_discoversDescribesMaps_renewsAtHalfTheLease_andDeletesAtStop() {
        var (c, out) = mappedClient()
        #expect(out == [.mapped(externalIP: [11, 200, 0, 11], externalPort: 4001, lifetime: 120), .scheduleTimer(at: at(0.4) + .seconds(60))])
        #expect(c.onTimer(now: at(30)) == [.scheduleTimer(at: at(0.4) + .seconds(60))], "an early timer only re-arms")
        guard case .http(let id, _, let renew)? = c.onTimer(now: at(60.5)).first else { Issue.record("no renewal"); return }
        #expect(String(decoding: renew, as: UTF8.self).contains("#AddPortMapping\""))
        out = c.onHTTP(id: id, result: .success(response(F.http("200 OK", F.soapOK("AddPortMapping", "")))), now: at(60.5))
        #expect(out.first == .mapped(externalIP: [11, 200, 0, 11], externalPort: 4001, lifetime: 120))
        let stop = c.stop(now: at(61))
        guard case .http(_, let url, let del)? = stop.first else { Issue.record("no delete"); return }
        #expect(url.path == "/ctl/IPConn")
        #expect(String(decoding: del, as: UTF8.self).contains("<NewRemoteHost></NewRemoteHost><NewExternalPort>4001</NewExternalPort><NewProtocol>TCP</NewProtocol></u:DeletePortMapping>"))
        #expect(stop.last == .unmapped)
    }

    @Test func client_retriesWithAPermanentLease_whenTheIGDAnswers725() {
        var (c, out) = mappedClient(addAnswer: F.fault(725, "OnlyPermanentLeasesSupported"))
        guard case .http(let id, _, let again)? = out.first else { Issue.record("no retry"); return }
        #expect(String(decoding: again, as: UTF8.self).contains("<NewLeaseDuration>0</NewLeaseDuration>"))
        out = c.onHTTP(id: id, result: .success(response(F.http("200 OK", F.soapOK("AddPortMapping", "")))), now: at(1))
        #expect(out.first == .mapped(externalIP: [11, 200, 0, 11], externalPort: 4001, lifetime: 0))
        #expect(c.isMapped)
    }

    @Test func client_refusesOffLANAnswers_andGivesUpAfterThreeRounds() {
        var c = UPnP.Client(internalPort: 4001, settings: .init(localIP: [192, 168, 1, 11], lan: [F.lan]))
        _ = c.start(now: at(0))
        guard case .rejected(let e)? = c.onDatagram(F.ssdp, from: [10, 0, 0, 9], now: at(0.1)).first else { Issue.record("accepted"); return }
        #expect(e.reason == "off_lan")
        guard case .rejected(let e2)? = c.onDatagram(F.ssdp, from: [192, 168, 1, 66], now: at(0.1)).first else { Issue.record("accepted"); return }
        #expect(e2.reason == "off_lan", "LOCATION names another host than the sender")
        #expect(c.onTimer(now: at(1)).count == 5)
        #expect(c.onTimer(now: at(2)).count == 5)
        #expect(c.onTimer(now: at(3)) == [.gaveUp(.noAnswer)])
    }
}

extension String {
    func replacingOccurrences(_ a: String, _ b: String) -> String {
        var out = "", rest = Substring(self)
        while let r = rest.firstRange(of: a) {
            out += rest[..<r.lowerBound] + b
            rest = rest[r.upperBound...]
        }
        return out + rest
    }
}
