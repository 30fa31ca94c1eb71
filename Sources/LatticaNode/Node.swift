/// Namespace of the LatticaNode module; see Docs/ARCHITECTURE.md.
public enum LatticaNodeModule {}
