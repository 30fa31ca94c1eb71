/// Namespace of the LatticaDHT module; see Docs/ARCHITECTURE.md.
public enum LatticaDHTModule {}
