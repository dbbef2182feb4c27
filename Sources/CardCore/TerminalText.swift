/// Text laid out for a terminal, where East Asian wide characters take two columns.
public enum TerminalText {
    /// `s` with every scalar that a terminal would act on rather than show (C0 and C1 control
    /// characters, DEL, and the bidirectional overrides and isolates that reorder what follows)
    /// written as a visible `\u{…}` escape.
    ///
    /// Names, addresses and notes come from agencies' queues: printed raw, `ESC ] 0 ; … BEL` would
    /// retitle the operator's terminal, `ESC [ 2 J` clear it, and U+202E show text reversed.
    /// With `keepingNewlines`, `\n` stays a line break (for whole blocks of output); a table
    /// cell escapes it too, since a line break inside a cell would break the table.
    public static func escapingControls(_ s: String, keepingNewlines: Bool = false) -> String {
        func mustEscape(_ scalar: Unicode.Scalar) -> Bool {
            switch scalar.value {
            case 0x0A: return !keepingNewlines
            case 0x00...0x1F, 0x7F...0x9F, 0x061C, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: return true
            default: return false
            }
        }
        guard s.unicodeScalars.contains(where: mustEscape) else { return s }
        var out = String.UnicodeScalarView()
        for scalar in s.unicodeScalars {
            if mustEscape(scalar) {
                out.append(contentsOf: "\\u{\(String(scalar.value, radix: 16, uppercase: true))}".unicodeScalars)
            } else {
                out.append(scalar)
            }
        }
        return String(out)
    }

    /// Terminal columns a string occupies: East Asian wide and fullwidth characters take two,
    /// combining marks and zero-width characters none, everything else one.
    public static func displayWidth(_ s: String) -> Int {
        var width = 0
        for scalar in s.unicodeScalars { width += columns(of: scalar.value) }
        return width
    }

    private static func columns(of v: UInt32) -> Int {
        switch v {
        case 0x0300...0x036F, 0x200B...0x200F, 0x20D0...0x20FF, 0xFE00...0xFE0F, 0xFE20...0xFE2F:
            return 0
        case 0x1100...0x115F, 0x2E80...0x303E, 0x3041...0x33FF, 0x3400...0x4DBF, 0x4E00...0x9FFF,
             0xA000...0xA4CF, 0xAC00...0xD7A3, 0xF900...0xFAFF, 0xFE30...0xFE4F, 0xFF00...0xFF60,
             0xFFE0...0xFFE6, 0x1F300...0x1F64F, 0x1F900...0x1F9FF, 0x20000...0x2FFFD, 0x30000...0x3FFFD:
            return 2
        default:
            return 1
        }
    }
}
