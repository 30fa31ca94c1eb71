import Foundation
import LatticaCore
import LatticaData
import LatticaLearning
import Testing

@Suite struct DataTests {
    init() { _ = BLASSetup.installed }  // OpenBLAS, as the trainer uses (latticad keeps the portable loops)
    func temp(_ name: String, _ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("lattica-\(UInt64.random(in: 0...UInt64.max))-\(name)").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func fixtures_matchScikitLearnShapes() throws {
        let d = try DataFiles.fixture("digits"), b = try DataFiles.fixture("breast_cancer")
        #expect(d.count == 1797 && d.featureCount == 64 && d.classes == 10)
        #expect(b.count == 569 && b.featureCount == 30 && b.classes == 2)
        #expect(d.features.max() == 16)
    }

    @Test func csv_readsFeaturesAndLastColumnLabels_skippingHeaderAndComments() throws {
        let p = try temp("ok.csv", "a,b,label\n# comment\n1,2,0\n3.5,-4,1\n\n")
        defer { unlink(p) }
        let d = try DataFiles.readCSV(p)
        #expect(d.features == [1, 2, 3.5, -4] && d.labels == [0, 1] && d.featureCount == 2)
    }

    @Test(arguments: [("1,2,0\n1,x,1\n", "line 2"), ("1,2,0\n1,2\n", "line 2"), ("1,2,0\n1,2,0.5\n", "line 2"), ("1,2,0\n\n1,nan,1\n", "line 3")])
    func csv_malformedRecord_namesFileAndLine(text: String, line: String) throws {
        let p = try temp("bad.csv", text)
        defer { unlink(p) }
        #expect { try DataFiles.readCSV(p) } throws: { e in
            let s = "\(e)"; return s.contains("bad.csv") && s.contains(line)
        }
    }

    @Test func idx_readsImagesAndLabels_andNamesTheRecordOfATruncatedFile() throws {
        let dir = FileManager.default.temporaryDirectory.path
        let img = dir + "/lattica-\(UInt64.random(in: 0...UInt64.max))-img.idx", lab = img + ".labels"
        defer { unlink(img); unlink(lab) }
        var ib: [UInt8] = [0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2] + [0, 255, 51, 102, 1, 2, 3, 4]
        let lb: [UInt8] = [0, 0, 8, 1, 0, 0, 0, 2, 3, 9]
        try Data(ib).write(to: URL(fileURLWithPath: img)); try Data(lb).write(to: URL(fileURLWithPath: lab))
        let d = try DataFiles.readIDX(images: img, labels: lab)
        #expect(d.count == 2 && d.featureCount == 4 && d.labels == [3, 9] && d.features[1] == 1 && d.features[2] == 0.2)
        ib.removeLast(3)
        try Data(ib).write(to: URL(fileURLWithPath: img))
        #expect { try DataFiles.readIDX(images: img, labels: lab) } throws: { "\($0)".contains("record 1") && "\($0)".contains(img) }
    }

    @Test func dirichletSplit_isSeeded_coversEveryRowOnce_andIsSkewed() throws {
        let d = try DataFiles.fixture("digits")
        let a = DataSplit.dirichlet(alpha: 0.5).assign(d, nodes: 16, seed: 3)
        #expect(a == DataSplit.dirichlet(alpha: 0.5).assign(d, nodes: 16, seed: 3))
        #expect(a.flatMap { $0 }.sorted() == Array(0..<d.count))
        // Non-iid: the largest class share of a typical node is far above 10%.
        let shares = a.map { part in Double((0..<10).map { c in part.filter { d.labels[$0] == c }.count }.max()!) / Double(part.count) }
        #expect(shares.sorted()[8] > 0.3)
        let iid = DataSplit.iid.assign(d, nodes: 16, seed: 3)
        #expect(iid.allSatisfy { abs($0.count - d.count / 16) <= 1 })
        let four = DataSplit.classesPerNode(4).assign(d, nodes: 16, seed: 3)
        #expect(four.allSatisfy { part in Set(part.map { d.labels[$0] }).count == 4 })
    }

    @Test func trainTestSplit_isStratifiedAndDisjoint() throws {
        let d = try DataFiles.fixture("digits")
        let (tr, te) = d.trainTestSplit(testFraction: 0.25, seed: 1)
        #expect(tr.count + te.count == d.count && abs(te.count - 450) <= 10)
        #expect((0..<10).allSatisfy { c in te.labels.filter { $0 == c }.count >= 40 })
    }
}
