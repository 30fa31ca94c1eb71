import Testing
@testable import LatticaLearning
