/// GUIDs that [MS-VHDX] defines (vhdx-format.md §0, "Known GUIDs").
public enum KnownGUID {
    public static let batRegion = GUID(text: "2DC27766-F623-4200-9D64-115E9BFD4A08")!
    public static let metadataRegion = GUID(text: "8B7CA206-4790-4B9A-B8FE-575F050F886E")!

    public static let fileParameters = GUID(text: "CAA16737-FA36-4D43-B3B6-33F0AA44E76B")!
    public static let virtualDiskSize = GUID(text: "2FA54224-CD1B-4876-B211-5DBED83BF4B8")!
    public static let virtualDiskID = GUID(text: "BECA12AB-B2E6-4523-93EF-C309E000C746")!
    public static let logicalSectorSize = GUID(text: "8141BF1D-A96F-4709-BA47-F233A8FAAB5F")!
    public static let physicalSectorSize = GUID(text: "CDA348C7-445D-4471-9CC9-E9885251C556")!
    public static let parentLocator = GUID(text: "A8D35F2D-B30B-454D-ABF7-D3D84834AB0C")!

    public static let parentLocatorTypeVHDX = GUID(text: "B04AEFB7-D19E-4A81-B789-25B8E9445913")!

    public static func regionName(_ g: GUID) -> String {
        switch g {
        case batRegion: return "BAT"
        case metadataRegion: return "metadata"
        default: return "unknown region {\(g)}"
        }
    }

    public static func metadataItemName(_ g: GUID) -> String {
        switch g {
        case fileParameters: return "File Parameters"
        case virtualDiskSize: return "Virtual Disk Size"
        case virtualDiskID: return "Virtual Disk ID"
        case logicalSectorSize: return "Logical Sector Size"
        case physicalSectorSize: return "Physical Sector Size"
        case parentLocator: return "Parent Locator"
        default: return "unknown item {\(g)}"
        }
    }
}

/// ASCII signatures, compared as raw bytes.
public enum Signature {
    public static let file = Array("vhdxfile".utf8)
    public static let header = Array("head".utf8)
    public static let regionTable = Array("regi".utf8)
    public static let metadataTable = Array("metadata".utf8)
    public static let logEntry = Array("loge".utf8)
    public static let zeroDescriptor = Array("zero".utf8)
    public static let dataDescriptor = Array("desc".utf8)
    public static let dataSector = Array("data".utf8)
}
