import LatticaCore
import Testing
@testable import LatticaCRDT

@Suite struct NamespaceTests {
    @Test func test_paths_parseIntoTheirNamespaces_orAreRejectedWithTheirReason() {
        var rng = SeededRandom(seed: 61)
        let creator = makeSigner(&rng).peerId
        let run = "\(creator).mnist-2"
        let cases: [(String, Result<CRDT.Namespace, CRDT.RejectReason>)] = [
            ("kv/a", .success(.kv)),
            ("kv/a/b/c", .success(.kv)),
            ("run/\(run)/config", .success(.runConfig(run: run))),
            ("run/\(creator)/members", .success(.runMembers(run: "\(creator)"))),
            ("run/\(run)/checkpoints", .success(.runCheckpoints(run: run))),
            ("run/\(run)/checkpoints/p", .success(.runNodeCheckpoints(run: run, peer: "p"))),
            ("run/\(run)/checkpoints/p/q", .failure(.unknownNamespace)),
            ("run/\(run)/progress/p", .success(.runProgress(run: run, peer: "p"))),
            ("run/\(run)/reports/p", .success(.runReports(run: run, peer: "p"))),
            ("kv", .failure(.unknownNamespace)),
            ("kv/", .failure(.badPath)),
            ("/kv/a", .failure(.badPath)),
            ("kv//a", .failure(.badPath)),
            ("kv/a b", .failure(.badPath)),
            ("kv/é", .failure(.badPath)),
            ("", .failure(.badPath)),
            ("model/x", .failure(.unknownNamespace)),
            ("run/\(run)/other", .failure(.unknownNamespace)),
            ("run/\(run)/progress", .failure(.unknownNamespace)),
            ("run/\(run)/progress/p/q", .failure(.unknownNamespace)),
            ("run/notapeer/config", .failure(.badPath)),
            ("run/\(creator).bad*name/config", .failure(.badPath)),
            ("run/\(creator)./config", .failure(.badPath)),
        ]
        for (path, expected) in cases {
            #expect(CRDT.Namespace.parse(path) == expected, "\(path)")
        }
        #expect(CRDT.Namespace.creator(ofRun: run) == Substring(creator.description))
    }
}
