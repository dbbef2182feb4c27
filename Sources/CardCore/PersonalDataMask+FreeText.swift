extension PersonalDataMask {
    /// Free text (a validation detail, a note) with every run of seven or more digits masked like
    /// an identity number, a trailing `X` of an identity number included: `child.id_number
    /// 43010520190312001X is wrong` → `child.id_number **************001X is wrong`.
    ///
    /// Text shown to a clerk may come from an older cardsync or a hand-edited file, so it is not
    /// trusted to be masked already. Seven digits catch every phone number (mobile: 11 in a row;
    /// landline: 7 or 8 after the area code) and identity number; dates and times have at most
    /// four digits in a row, so they stay readable, and text masked already (four digits after
    /// the stars) is left as it is.
    public static func freeText(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        var run = ""
        func flush(_ next: Character?) {
            var token = run
            var checkCharacter = false
            if let next, next == "X" || next == "x", token.count == 17 { token.append(next); checkCharacter = true }
            out += token.filter(\.isASCIIDigit).count >= 7 ? identityNumber(token) : token
            run = ""
            if let next, !checkCharacter { out.append(next) }
        }
        for c in text {
            if c.isASCIIDigit { run.append(c) } else if run.isEmpty { out.append(c) } else { flush(c) }
        }
        if !run.isEmpty { flush(nil) }
        return out
    }
}

private extension Character {
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
