/// What an upload to object storage sent: parts sent now, and parts kept from an earlier run
/// of the same export that was killed or cut off (their bytes were identical).
public struct ObjectParts: Sendable, Equatable {
    public var sent: Int
    public var reused: Int

    public init(sent: Int, reused: Int) {
        self.sent = sent
        self.reused = reused
    }
}
