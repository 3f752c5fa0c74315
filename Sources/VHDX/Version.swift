/// The one place the release version is written: `vhdx --version` prints it, and
/// Scripts/install.sh checks the installed binary against it.
public enum SwiftVHDX {
    /// This build's version (semantic versioning).
    public static let version = "0.1.0"
}
