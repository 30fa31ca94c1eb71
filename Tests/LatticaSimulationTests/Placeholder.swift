import Testing
@testable import LatticaSimulation
