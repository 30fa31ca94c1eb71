// The learning layer includes the averaging layer: `import LatticaLearning` sees both.
@_exported import LatticaAveraging
