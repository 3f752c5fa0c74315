import ArgumentParser
import VHDX

/// A command that creates a file under a name the user gives (or replaces one, with --force).
/// `Tool.main` checks every such output before the command runs, in one place:
/// - the name must not say VHD Set (`.vhds`) unless the command makes a set: one rule,
///   `.vhds` names a set everywhere (a plain VHDX, a stream or a raw image under that name would
///   then be refused as "not a set" by every other command) — a usage error, exit 64;
/// - an existing output must be a regular file, also with --force: a device, FIFO, socket or
///   directory is never replaced (`refuseNonRegularOutput`) — exit 1, the node untouched.
protocol WritesOutput {
    /// The file the command creates or replaces; nil when it writes to standard output.
    var outputPath: String? { get }
    /// Why a `.vhds` name is wrong for this output and what to do instead; nil when a set is
    /// what the command makes.
    var setNameAdvice: String? { get }
}

enum OutputRule {
    /// Exits (64 or 1) when `command`'s output breaks a rule above; returns otherwise.
    static func check(_ command: any ParsableCommand) {
        guard let w = command as? WritesOutput, let output = w.outputPath else { return }
        if let advice = w.setNameAdvice, SetName.isSetName(output) {
            Output.usageError("\(printable(output)): a .vhds name is a VHD Set; \(advice)", for: command)
        }
        do { try refuseNonRegularOutput(output) } catch { Output.fail(error) }
    }
}

extension CreateCommand: WritesOutput {
    var outputPath: String? { file }
    var setNameAdvice: String? {
        "`vhdx set create \(printable(file)) SIZE` makes one; `vhdx create` makes a single VHDX file (name it .vhdx, or .avhdx for a differencing one)"
    }
}

extension ConvertCommand: WritesOutput {
    var outputPath: String? { destination == "-" ? nil : destination }
    var setNameAdvice: String? { "`vhdx set create SET.vhds --from DISK.vhdx` makes a set of a converted disk" }
}

extension SetCreateCommand: WritesOutput {
    var outputPath: String? { self.set }
    var setNameAdvice: String? { nil }
}

extension ExportCommand: WritesOutput {
    var outputPath: String? { output == "-" ? nil : output }
    var setNameAdvice: String? {
        "an export is not one: name OUT .vhdx (a full image), .avhdx (a differencing image over --base), or anything else for the stream (e.g. .vxs)"
    }
}

extension RestoreCommand: WritesOutput {
    var outputPath: String? { output }
    var setNameAdvice: String? {
        "a restore makes a VHDX (OUT.vhdx) or a raw image (any other name); `vhdx set create SET.vhds --from OUT.vhdx` then makes a set of it"
    }
}
