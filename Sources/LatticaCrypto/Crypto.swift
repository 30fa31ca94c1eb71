/// Namespace of the LatticaCrypto module; see Docs/ARCHITECTURE.md.
public enum LatticaCryptoModule {}
