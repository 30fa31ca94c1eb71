import ArgumentParser
import Foundation
import LatticaAPI

struct ModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "Content-addressed models: store, fetch, share (Docs/MODEL.md).",
        discussion: "A model's id (HASH) is the SHA-256 of its manifest: 64 hex digits. Pulls are resumable: an interrupted pull keeps its verified chunks and the next pull fetches only the rest.",
        subcommands: [List.self, Pull.self, Push.self, Export.self]
    )

    /// Pulls and pushes of large models take longer than the client's default 30 s.
    static func call<M: ControlMethod>(_ global: GlobalOptions, _ m: M.Type, _ params: M.Params, timeoutSeconds: Int) -> M.Result? {
        let c: ControlClient
        do { c = try ControlClient(socketPath: global.socketPath, timeoutSeconds: timeoutSeconds) } catch { fail(error) }
        do {
            if global.json {
                let line = try c.roundTrip(m, params)
                let env = try? JSONDecoder().decode(ControlResponse<JSONValue>.self, from: Data(line))
                if let e = env?.error { fail(ControlClientError(socketPath: global.socketPath, message: "\(M.name) failed: \(e.message) [\(e.code)]")) }
                guard let result = env?.result, let out = try? JSONEncoder.controlAPI.encode(result) else {
                    fail(ControlClientError(socketPath: global.socketPath, message: "daemon sent an unreadable response"))
                }
                print(String(decoding: out, as: UTF8.self))
                return nil
            }
            return try c.call(m, params)
        } catch { fail(error) }
    }

    static func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
    }

    static func size(_ n: UInt64) -> String {
        let d = Double(n)
        let kib = 1024.0, mib = kib * kib, gib = mib * kib
        if d >= gib { return String(format: "%.2f GiB", d / gib) }
        if d >= mib { return String(format: "%.1f MiB", d / mib) }
        if d >= kib { return String(format: "%.1f KiB", d / kib) }
        return "\(n) B"
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls", abstract: "The stored models, and pulls in progress.")
        @OptionGroup var global: GlobalOptions
        func run() throws {
            guard let r = try global.call(Methods.ModelList.self, NoParams()) else { return }
            if r.models.isEmpty && r.partial.isEmpty { print("no models stored"); return }
            for m in r.models { print("\(m.hash)  \(ModelCommand.size(m.size))  \(m.chunks) chunk\(m.chunks == 1 ? "" : "s") of \(ModelCommand.size(UInt64(m.chunkSize)))") }
            for p in r.partial {
                let of = p.size.map { " of \(ModelCommand.size($0))" } ?? ""
                print("\(p.hash)  partial: \(ModelCommand.size(p.bytesOnDisk))\(of) on disk\(p.active ? " (pulling)" : "")")
            }
        }
    }

    struct Pull: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Fetch model HASH from a peer, or from its providers in the DHT; resumes an interrupted pull.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The model id (64 hex digits).") var hash: String
        @Option(help: "Pull from this peer id (default: the DHT's providers of /lattica/model/HASH).") var peer: String?
        @Option(help: "Give up after this many seconds.") var timeout = 3600
        func run() throws {
            guard let r = ModelCommand.call(global, Methods.ModelPull.self, .init(hash: hash, peer: peer), timeoutSeconds: timeout) else { return }
            if r.alreadyStored { print("\(r.hash): stored already (\(ModelCommand.size(r.size)))"); return }
            let mbps = r.ms > 0 ? Double(r.bytesFetched) / 1e6 / (r.ms / 1000) : 0
            print("\(r.hash): \(ModelCommand.size(r.size)) from \(r.peer ?? "?"): \(r.chunksFetched) chunk\(r.chunksFetched == 1 ? "" : "s") fetched, "
                  + "\(r.chunksResumed) resumed, in \(String(format: "%.0f", r.ms)) ms (\(String(format: "%.1f", mbps)) MB/s)")
        }
    }

    struct Push: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Import FILE into the store and announce it; prints its id.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The file (a model file, a checkpoint, any bytes).") var file: String
        @Option(help: "log2 of the chunk size, 12 to 24 (default 20: 1 MiB).") var chunkShift: Int?
        func run() throws {
            guard let r = ModelCommand.call(global, Methods.ModelPush.self, .init(path: ModelCommand.absolute(file), chunkShift: chunkShift), timeoutSeconds: 3600) else { return }
            print(r.hash)
            FileHandle.standardError.write(Data("\(ModelCommand.size(r.size)) in \(r.chunks) chunk\(r.chunks == 1 ? "" : "s"); announced to \(r.announced) DHT peer\(r.announced == 1 ? "" : "s")\n".utf8))
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Copy stored model HASH to a new file PATH.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The model id.") var hash: String
        @Argument(help: "Where to write it (must not exist).") var path: String
        func run() throws {
            guard let r = ModelCommand.call(global, Methods.ModelExport.self, .init(hash: hash, path: ModelCommand.absolute(path)), timeoutSeconds: 3600) else { return }
            print("\(r.hash) → \(r.path) (\(ModelCommand.size(r.size)))")
        }
    }
}
