/// GUIDs that [MS-VHDX] defines (docs/vhdx-format.md §0, "Known GUIDs"), as constants: built
/// from their fields, never parsed at run time.
public enum KnownGUID {
    public static let batRegion = GUID(0x2DC27766, 0xF623, 0x4200, 0x9D64_115E9BFD4A08)  // {2DC27766-F623-4200-9D64-115E9BFD4A08}
    public static let metadataRegion = GUID(0x8B7CA206, 0x4790, 0x4B9A, 0xB8FE_575F050F886E)  // {8B7CA206-4790-4B9A-B8FE-575F050F886E}

    public static let fileParameters = GUID(0xCAA16737, 0xFA36, 0x4D43, 0xB3B6_33F0AA44E76B)  // {CAA16737-FA36-4D43-B3B6-33F0AA44E76B}
    public static let virtualDiskSize = GUID(0x2FA54224, 0xCD1B, 0x4876, 0xB211_5DBED83BF4B8)  // {2FA54224-CD1B-4876-B211-5DBED83BF4B8}
    public static let virtualDiskID = GUID(0xBECA12AB, 0xB2E6, 0x4523, 0x93EF_C309E000C746)  // {BECA12AB-B2E6-4523-93EF-C309E000C746}
    public static let logicalSectorSize = GUID(0x8141BF1D, 0xA96F, 0x4709, 0xBA47_F233A8FAAB5F)  // {8141BF1D-A96F-4709-BA47-F233A8FAAB5F}
    public static let physicalSectorSize = GUID(0xCDA348C7, 0x445D, 0x4471, 0x9CC9_E9885251C556)  // {CDA348C7-445D-4471-9CC9-E9885251C556}
    public static let parentLocator = GUID(0xA8D35F2D, 0xB30B, 0x454D, 0xABF7_D3D84834AB0C)  // {A8D35F2D-B30B-454D-ABF7-D3D84834AB0C}

    public static let parentLocatorTypeVHDX = GUID(0xB04AEFB7, 0xD19E, 0x4A81, 0xB789_25B8E9445913)  // {B04AEFB7-D19E-4A81-B789-25B8E9445913}

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
