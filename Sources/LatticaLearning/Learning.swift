/// Namespace of the LatticaLearning module; see Docs/ARCHITECTURE.md.
public enum LatticaLearningModule {}
