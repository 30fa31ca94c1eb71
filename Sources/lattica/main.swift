print("lattica: not yet")
