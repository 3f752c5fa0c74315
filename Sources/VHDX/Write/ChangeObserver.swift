import VHDXFormat

/// The kinds of change to virtual content, reported to the observer before each is applied.
public enum ChangeKind: String, Sendable {
    /// Data written (write, and the data a merge folds into an ancestor).
    case write
    /// A range made to read as zeros.
    case zero
    /// A range discarded (reads as zeros afterwards on this engine).
    case trim
    /// The virtual size changed; the range is what was added or removed.
    case resize
    /// A differencing image was pointed at a parent whose DataWriteGuid it was not made
    /// against (`--ignore-id-mismatch`): any byte the parent supplies may now differ.
    case reparent
}

/// The one observation point of changes to what a reader of the disk sees (change tracking
/// hooks in here). Every change passes it *before* it is applied, including the engine's own
/// composite operations (merge into an ancestor, resize, reparent); a throw cancels the
/// change with nothing written. Compact changes no content and is not reported.
///
/// The observer may keep metadata of its own inside the image: pages it stages with
/// `VHDXFile.stageObserverPages` are committed through the log together with the change's
/// own metadata (or before any data is written in place), so its state and the change it
/// describes are durable together.
package protocol ChangeObserver: AnyObject {
    /// Before the session's first user-visible change renews DataWriteGuid. `proposed` is the
    /// GUID the engine must use (a merge's pre-recorded linkage), else nil; the observer
    /// returns the GUID to write (it may record it first), or `proposed` when given.
    func sessionWillBegin(_ image: VHDXFile, proposed: GUID?) throws(VHDXError) -> GUID
    /// Before a change of `kind` over `range` (virtual bytes) is applied. For a resize,
    /// `image.virtualSize` is still the old size and `newSize` the new one.
    func willChange(_ image: VHDXFile, _ kind: ChangeKind, _ range: Range<UInt64>, newSize: UInt64?) throws(VHDXError)
    /// Before a writable open replays a pending log into the file, and after it did.
    func willReplayLog(_ image: VHDXFile) throws(VHDXError)
    func didReplayLog(_ image: VHDXFile) throws(VHDXError)
    /// Before `flush` makes acknowledged changes durable, and before `close` empties the log.
    func willFlush(_ image: VHDXFile) throws(VHDXError)
    func willClose(_ image: VHDXFile) throws(VHDXError)
}

extension ChangeObserver {
    package func willReplayLog(_ image: VHDXFile) throws(VHDXError) {}
    package func didReplayLog(_ image: VHDXFile) throws(VHDXError) {}
    package func willFlush(_ image: VHDXFile) throws(VHDXError) {}
    package func willClose(_ image: VHDXFile) throws(VHDXError) {}
}
