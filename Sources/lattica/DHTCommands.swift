import ArgumentParser
import Foundation
import LatticaAPI
import LatticaCore

struct DHTCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dht",
        abstract: "Records and providers in the Kademlia DHT.",
        subcommands: [Put.self, Get.self, Provide.self, Providers.self, Table.self]
    )

    struct Put: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Store a record on the peers closest to KEY.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The record key.") var key: String
        @Argument(help: "The value, or @FILE to read it from a file (at most 64 KiB).") var value: String
        @Option(help: "Peers that must confirm the store.") var quorum = 1

        func run() throws {
            let bytes: [UInt8]
            if value.hasPrefix("@") {
                let path = String(value.dropFirst())
                guard let d = FileManager.default.contents(atPath: path) else { throw ValidationError("cannot read \(path)") }
                let limit = Methods.DHTPut.Params.maxValueBytes
                guard d.count <= limit else { throw ValidationError("\(path) has \(d.count) bytes; a record value holds at most \(limit)") }
                bytes = Array(d)
            } else {
                bytes = Array(value.utf8)
            }
            guard let r = try global.call(Methods.DHTPut.self, .init(key: key, valueHex: Hex.encode(bytes), quorum: quorum)) else { return }
            print("stored '\(r.key)' on \(r.storedOn) peer\(r.storedOn == 1 ? "" : "s") (quorum \(r.quorum)) in \(formatMillis(r.ms))")
        }
    }

    struct Get: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Find the record stored under KEY.")
        @OptionGroup var global: GlobalOptions
        @Argument var key: String
        @Option(help: "Valid copies wanted before answering.") var quorum = 1

        func run() throws {
            guard let r = try global.call(Methods.DHTGet.self, .init(key: key, quorum: quorum)) else { return }
            print(r.value ?? "0x" + r.valueHex)
        }
    }

    struct Provide: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Announce that this node provides KEY.")
        @OptionGroup var global: GlobalOptions
        @Argument var key: String

        func run() throws {
            guard let r = try global.call(Methods.DHTProvide.self, .init(key: key)) else { return }
            print("announced '\(r.key)' to \(r.told) peer\(r.told == 1 ? "" : "s")")
        }
    }

    struct Providers: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Find the peers that provide KEY.")
        @OptionGroup var global: GlobalOptions
        @Argument var key: String

        func run() throws {
            guard let r = try global.call(Methods.DHTProviders.self, .init(key: key)) else { return }
            if r.providers.isEmpty { print("no providers of '\(r.key)'"); return }
            for p in r.providers { print(p.peerId + (p.addrs.isEmpty ? "" : "  " + p.addrs.joined(separator: " "))) }
        }
    }

    struct Table: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The routing table: buckets, peers and their ages.")
        @OptionGroup var global: GlobalOptions

        func run() throws {
            guard let r = try global.call(Methods.DHTTable.self, NoParams()) else { return }
            print("\(r.protocolId) (\(r.mode) mode): \(r.size) peer\(r.size == 1 ? "" : "s") in \(r.buckets.count) bucket\(r.buckets.count == 1 ? "" : "s")")
            var rows = [["BUCKET", "PEER", "AGE", "CONNECTED"]]
            for b in r.buckets {
                for p in b.peers { rows.append([String(b.index), p.peerId, formatDuration(p.ageSeconds), p.connected ? "yes" : "no"]) }
            }
            if rows.count > 1 { printTable(rows) }
        }
    }
}

