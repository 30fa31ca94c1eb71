/// The version of this build, reported by `lattica status` and identify's agent string.
public enum LatticaVersion {
    public static let string = "0.1.0"
}
