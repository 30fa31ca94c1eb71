import ArgumentParser
import LatticaAPI

struct NATCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nat",
        abstract: "Reachability: public or private, the NAT's mapping and filtering, mapped and advertised addresses, port mappings, relay reservations, DHT mode.")

    @OptionGroup var global: GlobalOptions

    func run() throws {
        guard let r = try global.call(Methods.NATStatus.self, NoParams()) else { return }
        printTable([
            ["reachability", r.reachability],
            ["nat mapping", r.mapping],
            ["nat filtering", r.filtering],
            ["dht mode", r.dhtMode],
        ])
        list("mapped addresses", r.mappedAddrs)
        list("advertised addresses", r.advertisedAddrs)
        print("\nport mappings")
        if r.portMappings.isEmpty { print("  none") }
        for m in r.portMappings {
            print("  \(m.method)  \(m.internalAddr) -> \(m.externalAddr)  (\(formatDuration(m.lifetimeSeconds)) left)")
        }
        print("\nrelay reservations")
        if r.relayReservations.isEmpty { print("  none") }
        for v in r.relayReservations {
            print("  \(v.relay)  (expires in \(formatDuration(v.expiresInSeconds)))")
            for a in v.addrs { print("    \(a)") }
        }
    }

    func list(_ title: String, _ items: [String]) {
        print("\n\(title)")
        if items.isEmpty { print("  none") }
        for a in items { print("  \(a)") }
    }
}
