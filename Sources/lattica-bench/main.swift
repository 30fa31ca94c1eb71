print("lattica-bench: not yet")
