/// A training checkpoint: model parameters, inner-optimizer (Adam) state and step counter, stored
/// as a model file of kind "checkpoint:mlp:<activation>" with tensors W*/b*, adam.m, adam.v, step.
public struct Checkpoint: Hashable, Sendable {
    public var architecture: MLPArchitecture
    public var parameters: [Float]
    public var adam: Adam?
    public var step: Int

    public init(architecture: MLPArchitecture, parameters: [Float], adam: Adam?, step: Int) {
        self.architecture = architecture; self.parameters = parameters; self.adam = adam; self.step = step
    }

    public func modelFile() -> ModelFile {
        var tensors = architecture.tensors(parameters)
        if let a = adam {
            tensors.append(("adam.m", Tensor(shape: [a.m.count], scalars: a.m)))
            tensors.append(("adam.v", Tensor(shape: [a.v.count], scalars: a.v)))
            tensors.append(("adam.t+lr", Tensor(shape: [2], scalars: [Float(a.t), a.learningRate])))
        }
        tensors.append(("step", Tensor(shape: [1], scalars: [Float(step)])))
        return ModelFile(kind: "checkpoint:mlp:\(architecture.activation.rawValue)", tensors: tensors)
    }

    public init?(_ file: ModelFile) {
        guard file.kind.hasPrefix("checkpoint:") else { return nil }
        var t = file.tensors
        guard let s = t.popLast(), s.name == "step" else { return nil }
        var adam: Adam?
        if t.count >= 3, t[t.count - 1].name == "adam.t+lr" {
            let tl = t.removeLast().tensor, v = t.removeLast().tensor, m = t.removeLast().tensor
            guard m.count == v.count else { return nil }
            adam = Adam(learningRate: tl.scalars[1], m: m.scalars, v: v.scalars, t: Int(tl.scalars[0]))
        }
        guard let (arch, p) = ModelFile(kind: String(file.kind.dropFirst("checkpoint:".count)), tensors: t).mlp() else { return nil }
        if let a = adam, a.m.count != p.count { return nil }
        architecture = arch; parameters = p; self.adam = adam; step = Int(s.tensor.scalars[0])
    }
}
