/// Namespace of the LatticaStore module; see Docs/ARCHITECTURE.md.
public enum LatticaStoreModule {}
