/// Namespace of the LatticaUV module; see Docs/ARCHITECTURE.md.
public enum LatticaUVModule {}
