using System.Globalization;
using System.Text;

namespace ConnMgr.Protocol.Sasl;

/// <summary>
/// SASLprep (RFC 4013), the stringprep profile (RFC 3454) that RFC 5802 section 2.2 prescribes for SCRAM
/// user names and passwords, treating them as "stored strings" (unassigned code points are refused).
/// </summary>
/// <remarks>
/// <para>
/// Why SASLprep and not PRECIS OpaqueString (RFC 8265, NFC): SCRAM clients hash the password after
/// SASLprep (NFKC), and the stored credential must be derived from the same bytes or nobody can log in.
/// For ASCII input the two agree; for the rest, matching what SCRAM clients send wins.
/// </para>
/// <para>
/// Where this differs from a strict Unicode 3.2 implementation, and why it is acceptable:
/// <list type="bullet">
/// <item>NFKC and "unassigned" use the Unicode version of the running .NET, not 3.2. Characters
/// assigned since 3.2 are accepted (strict SASLprep refuses them); assigned characters normalize the
/// same, by Unicode's normalization stability policy.</item>
/// <item>The bidi rule (RFC 3454 section 6) uses table D.1 (RandALCat) exactly as printed in the RFC.
/// Table D.2 (LCat, 360 ranges) is approximated by "letter or spacing mark" (general categories L* and
/// Mc): that covers every letter of left-to-right scripts, but not their digits and symbols (e.g.
/// Devanagari digits, Braille), so a string mixing Hebrew or Arabic with those passes here.</item>
/// </list>
/// Both sides of a login apply the same rule to the same string, so a difference can at worst make an
/// exotic password unusable with a client that prepares it differently; it never lets a wrong one in.
/// </para>
/// <para>
/// NFKC needs ICU. In globalization-invariant mode .NET leaves non-ASCII text unnormalized without
/// saying so; there this class refuses every string with a character outside printable ASCII, the
/// fallback RFC 5802 section 2.2 allows ("implement SASLprep or disallow ... non US-ASCII").
/// </para>
/// <para>
/// A character in both B.1 and C.1.2 (U+200B ZERO WIDTH SPACE) is mapped to a space: RFC 4013 section
/// 2.1 lists the space mapping first, and GNU SASL does the same (<c>gsasl --mkpasswd</c> derives the
/// same keys for "a\u200Bb" as for "a b").
/// </para>
/// </remarks>
public static class SaslPrep
{
    /// <summary>Whether NFKC works here: it does not in globalization-invariant mode.</summary>
    private static readonly bool s_canNormalize = "\u00AA".Normalize(NormalizationForm.FormKC) == "a";

    /// <summary>RFC 3454 table D.1: characters with bidirectional property R or AL (Unicode 3.2).</summary>
    private static readonly int[] s_randAlCat =
    [
        0x05BE, 0x05BE, 0x05C0, 0x05C0, 0x05C3, 0x05C3, 0x05D0, 0x05EA, 0x05F0, 0x05F4, 0x061B, 0x061B,
        0x061F, 0x061F, 0x0621, 0x063A, 0x0640, 0x064A, 0x066D, 0x066F, 0x0671, 0x06D5, 0x06DD, 0x06DD,
        0x06E5, 0x06E6, 0x06FA, 0x06FE, 0x0700, 0x070D, 0x0710, 0x0710, 0x0712, 0x072C, 0x0780, 0x07A5,
        0x07B1, 0x07B1, 0x200F, 0x200F, 0xFB1D, 0xFB1D, 0xFB1F, 0xFB28, 0xFB2A, 0xFB36, 0xFB38, 0xFB3C,
        0xFB3E, 0xFB3E, 0xFB40, 0xFB41, 0xFB43, 0xFB44, 0xFB46, 0xFBB1, 0xFBD3, 0xFD3D, 0xFD50, 0xFD8F,
        0xFD92, 0xFDC7, 0xFDF0, 0xFDFC, 0xFE70, 0xFE74, 0xFE76, 0xFEFC,
    ];

    /// <summary>
    /// Applies SASLprep. Returns false when the input contains a prohibited or unassigned character,
    /// fails the bidi rule, or prepares to the empty string (RFC 5802 section 5.1 and RFC 4616 section 2
    /// both require a non-empty name and password).
    /// </summary>
    public static bool TryNormalize(string input, out string normalized)
        => TryNormalize(input, s_canNormalize, out normalized);

    internal static bool TryNormalize(string input, bool canNormalize, out string normalized)
    {
        ArgumentNullException.ThrowIfNull(input);
        normalized = string.Empty;
        if (input.Length == 0)
        {
            return false;
        }

        // Printable ASCII is its own SASLprep output: nothing maps, NFKC is the identity, no bidi.
        if (!input.AsSpan().ContainsAnyExceptInRange(' ', '~'))
        {
            normalized = input;
            return true;
        }
        if (!canNormalize)
        {
            return false;
        }

        var mapped = new StringBuilder(input.Length);
        var rest = input.AsSpan();
        while (!rest.IsEmpty)
        {
            // Lone surrogates (table C.5) and non-characters (C.4) are refused before normalization, which
            // leaves them unchanged anyway and throws on some of them (U+FFFE, U+FFFF).
            if (Rune.DecodeFromUtf16(rest, out var rune, out var consumed) != System.Buffers.OperationStatus.Done
                || IsNonCharacter(rune.Value))
            {
                return false;
            }
            if (IsNonAsciiSpace(rune.Value))
            {
                mapped.Append(' ');
            }
            else if (!IsMappedToNothing(rune.Value))
            {
                mapped.Append(rest[..consumed]);
            }
            rest = rest[consumed..];
        }

        var output = mapped.ToString().Normalize(NormalizationForm.FormKC);
        if (output.Length == 0)
        {
            return false;
        }

        bool hasRandAl = false, hasL = false, firstIsRandAl = false, lastIsRandAl = false, first = true;
        foreach (var rune in output.EnumerateRunes())
        {
            var category = Rune.GetUnicodeCategory(rune);
            if (IsProhibited(rune.Value) || category == UnicodeCategory.OtherNotAssigned)
            {
                return false;
            }
            var isRandAl = InRanges(s_randAlCat, rune.Value);
            hasRandAl |= isRandAl;
            hasL |= !isRandAl && IsApproximatelyLCat(category);
            if (first)
            {
                firstIsRandAl = isRandAl;
                first = false;
            }
            lastIsRandAl = isRandAl;
        }

        // RFC 3454 section 6: with any RandALCat character, no LCat character, and RandALCat at both ends.
        if (hasRandAl && (hasL || !firstIsRandAl || !lastIsRandAl))
        {
            return false;
        }
        normalized = output;
        return true;
    }

    /// <summary>RFC 3454 table C.1.2, which RFC 4013 section 2.1 maps to U+0020.</summary>
    private static bool IsNonAsciiSpace(int c)
        => c is 0x00A0 or 0x1680 or (>= 0x2000 and <= 0x200B) or 0x202F or 0x205F or 0x3000;

    /// <summary>RFC 3454 table B.1, "commonly mapped to nothing" (soft hyphen, joiners, variation selectors).</summary>
    private static bool IsMappedToNothing(int c)
        => c is 0x00AD or 0x034F or 0x1806 or (>= 0x180B and <= 0x180D) or (>= 0x200B and <= 0x200D)
            or 0x2060 or (>= 0xFE00 and <= 0xFE0F) or 0xFEFF;

    /// <summary>The prohibited output of RFC 4013 section 2.3: RFC 3454 tables C.1.2 and C.2.1 to C.9.</summary>
    private static bool IsProhibited(int c)
        => IsNonAsciiSpace(c)
            // C.2.1 ASCII controls
            || c is <= 0x1F or 0x7F
            // C.2.2 non-ASCII controls
            || c is (>= 0x80 and <= 0x9F) or 0x06DD or 0x070F or 0x180E or 0x200C or 0x200D or 0x2028 or 0x2029
                or (>= 0x2060 and <= 0x2063) or (>= 0x206A and <= 0x206F) or 0xFEFF or (>= 0xFFF9 and <= 0xFFFC)
                or (>= 0x1D173 and <= 0x1D17A)
            // C.3 private use
            || c is (>= 0xE000 and <= 0xF8FF) or (>= 0xF0000 and <= 0xFFFFD) or (>= 0x100000 and <= 0x10FFFD)
            || IsNonCharacter(c)
            // C.5 surrogates
            || c is >= 0xD800 and <= 0xDFFF
            // C.6 inappropriate for plain text
            || c is >= 0xFFF9 and <= 0xFFFD
            // C.7 inappropriate for canonical representation (ideographic description characters)
            || c is >= 0x2FF0 and <= 0x2FFB
            // C.8 change display properties or deprecated
            || c is 0x0340 or 0x0341 or 0x200E or 0x200F or (>= 0x202A and <= 0x202E) or (>= 0x206A and <= 0x206F)
            // C.9 tagging characters
            || c is 0xE0001 or (>= 0xE0020 and <= 0xE007F);

    /// <summary>RFC 3454 table C.4: U+FDD0..U+FDEF and the last two code points of every plane.</summary>
    private static bool IsNonCharacter(int c) => c is >= 0xFDD0 and <= 0xFDEF || (c & 0xFFFE) == 0xFFFE;

    private static bool IsApproximatelyLCat(UnicodeCategory category)
        => category is UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter
            or UnicodeCategory.TitlecaseLetter or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter
            or UnicodeCategory.SpacingCombiningMark;

    private static bool InRanges(int[] ranges, int c)
    {
        for (var i = 0; i < ranges.Length; i += 2)
        {
            if (c < ranges[i])
            {
                return false;
            }
            if (c <= ranges[i + 1])
            {
                return true;
            }
        }
        return false;
    }
}
