/// Namespace of the LatticaAPI module; see Docs/ARCHITECTURE.md.
public enum LatticaAPIModule {}
