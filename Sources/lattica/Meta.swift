import ArgumentParser
import Foundation
import LatticaAPI

struct MetaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "meta",
        abstract: "The replicated metadata store (CRDTs, signed by their author; Docs/CRDT.md).",
        discussion: "Paths: kv/… (anyone), run/<id>/config (the run's creator), run/<id>/members (each peer itself), run/<id>/checkpoints, run/<id>/progress/<peer> and run/<id>/reports/<peer> (that peer).",
        subcommands: [Set.self, Add.self, Remove.self, Incr.self, Get.self, List.self, Log.self]
    )

    struct TypeOption: ParsableArguments {
        @Option(help: "How VALUE is read: string, int, bool or hex.") var type: String = "string"
        func validate() throws {
            guard MetaValueType.all.contains(type) else { throw ValidationError("--type must be one of \(MetaValueType.all.joined(separator: ", "))") }
        }
    }

    static func printWrite(_ r: MetaWriteResult) { print("\(r.path): written as \(r.author)#\(r.seq), state \(r.stateHash.prefix(16))…") }

    struct Set: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set a register (last writer wins; --multi-value keeps concurrent writes).")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var type: TypeOption
        @Flag(help: "A multi-value register: concurrent writes stay visible as conflicts.") var multiValue = false
        @Argument var path: String
        @Argument var value: String
        func run() throws {
            guard let r = try global.call(Methods.MetaSet.self, .init(path: path, value: value, type: type.type, multiValue: multiValue)) else { return }
            MetaCommand.printWrite(r)
        }
    }

    /// What `add` and `remove` share: the set, the element, how it is read.
    struct ElementArguments: ParsableArguments {
        @OptionGroup var global: GlobalOptions
        @OptionGroup var type: TypeOption
        @Argument var path: String
        @Argument var element: String

        func write<M: ControlMethod>(_ m: M.Type) throws where M.Params == MetaElementParams, M.Result == MetaWriteResult {
            guard let r = try global.call(m, .init(path: path, element: element, type: type.type)) else { return }
            MetaCommand.printWrite(r)
        }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add ELEMENT to the set at PATH (add wins over a concurrent remove).")
        @OptionGroup var args: ElementArguments
        func run() throws { try args.write(Methods.MetaAdd.self) }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove ELEMENT from the set at PATH (the adds this node has seen).")
        @OptionGroup var args: ElementArguments
        func run() throws { try args.write(Methods.MetaRemove.self) }
    }

    struct Incr: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add BY (default 1, may be negative) to the counter at PATH.")
        @OptionGroup var global: GlobalOptions
        @Argument var path: String
        @Argument var by: Int = 1
        func run() throws {
            guard let r = try global.call(Methods.MetaIncrement.self, .init(path: path, by: by)) else { return }
            MetaCommand.printWrite(r)
        }
    }

    struct Get: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A register's value, or a set's elements one per line (--json: author, clock, conflicts).")
        @OptionGroup var global: GlobalOptions
        @Argument var path: String
        func run() throws {
            guard let r = try global.call(Methods.MetaGet.self, .init(path: path)) else { return }
            switch r.kind {
            case "none": fail(ControlClientError(socketPath: global.socketPath, message: "\(path): nothing stored"))
            case "register", "counter": print(r.value ?? "")
            default: for e in r.elements { print(e) }
            }
            if !r.conflicts.isEmpty { FileHandle.standardError.write(Data("(\(r.conflicts.count) conflicting value(s); --json shows them)\n".utf8)) }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The paths that hold something, under PREFIX.")
        @OptionGroup var global: GlobalOptions
        @Argument var prefix: String = ""
        func run() throws {
            guard let r = try global.call(Methods.MetaList.self, .init(prefix: prefix)) else { return }
            for p in r.paths { print(p) }
        }
    }

    struct Log: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Recent deltas, newest first: author, time, path, operation.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .shortAndLong, help: "How many (1–10000).") var count = 20
        func run() throws {
            guard let r = try global.call(Methods.MetaLog.self, .init(limit: count)) else { return }
            let f = DateFormatter()
            f.dateFormat = "yyyy-MM-dd HH:mm:ss.SSS"
            var rows = [["TIME", "AUTHOR", "SEQ", "PATH", "OP"]]
            for e in r.entries {
                rows.append([f.string(from: Date(timeIntervalSince1970: Double(e.timeMs) / 1000)), String(e.author.suffix(8)), String(e.seq), e.path, e.op])
            }
            if rows.count > 1 { printTable(rows) } else { print("no deltas yet") }
        }
    }
}

struct Sync: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Replication of the metadata store: state hash, and per peer what each side lacks.")
    @OptionGroup var global: GlobalOptions
    @Flag(help: "Start an anti-entropy round with every peer first.") var now = false
    @Flag(help: "Refresh every second until interrupted.") var watch = false

    func run() throws {
        var first = true
        repeat {
            guard let r = try global.call(Methods.Sync.self, .init(now: now && first)) else {
                if watch { Thread.sleep(forTimeInterval: 1); first = false; continue } else { return }
            }
            if watch { print("\u{1B}[H\u{1B}[2J", terminator: "") }
            print("state \(r.stateHash)  \(r.deltas) deltas from \(r.authors) author\(r.authors == 1 ? "" : "s"), \(r.paths) paths")
            if let bytes = r.logBytes, let deltas = r.logDeltas {
                print("log \(deltas) of the \(r.deltas) deltas (\(bytes) bytes; the others were overwritten and compacted away), \(r.compactions ?? 0) compactions of our own log since the start")
            }
            var rows = [["PEER", "LAG", "THEY LACK", "WE LACK", "LAST SYNC"]]
            for p in r.peers {
                rows.append([p.peerId, String(p.lag), String(p.theyLack), String(p.weLack), p.lastSyncSeconds.map { formatDuration($0) + " ago" } ?? "never"])
            }
            if rows.count > 1 { printTable(rows) } else { print("no peers that speak the store") }
            first = false
            if watch { Thread.sleep(forTimeInterval: 1) }
        } while watch
    }
}
