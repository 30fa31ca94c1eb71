/// Namespace of the LatticaSimulation module; see Docs/ARCHITECTURE.md.
public enum LatticaSimulationModule {}
