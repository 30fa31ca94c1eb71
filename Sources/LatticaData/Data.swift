/// Namespace of the LatticaData module; see Docs/ARCHITECTURE.md.
public enum LatticaDataModule {}
