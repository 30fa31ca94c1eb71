print("latticad: not yet")
