import Testing
@testable import LatticaWire
