/// Namespace of the LatticaWire module; see Docs/ARCHITECTURE.md.
public enum LatticaWireModule {}
