using ConnMgr.Protocol.Sasl;
using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Text;

namespace ConnMgr.Core.Storage;

/// <summary>
/// The one place where user names and passwords are normalised before they reach the store
/// or a key derivation. This is a deliberately small stand-in for the full profiles (PRECIS
/// UsernameCaseMapped, RFC 8265 section 3.3, and SASLprep, RFC 4013): it covers what every
/// client sends in practice and rejects what would break an address or a terminal. Swap the
/// bodies of <see cref="TryNormalize"/> and <see cref="TryNormalizePassword"/> for the full
/// profiles when they exist; every caller goes through these two methods.
/// </summary>
internal static class UserNames
{
    /// <summary>RFC 7622 section 3.3: a localpart is at most 1023 octets of UTF-8.</summary>
    public const int MaxNameBytes = 1023;

    /// <summary>
    /// Bounds the PBKDF2 input a client or an import file can hand us; no SASL mechanism needs
    /// more. Same figure as the localpart limit, for one number to remember.
    /// </summary>
    public const int MaxPasswordBytes = 1023;

    // RFC 7622 section 3.3.1 (and nodeprep, RFC 6122 appendix A.5) forbids these eight in a
    // localpart: '@' and '/' delimit the other JID parts, the rest are awkward in XML and URIs.
    private static readonly SearchValues<char> s_forbiddenInName = SearchValues.Create("\"&'/:<>@");

    /// <summary>
    /// Lower-cases (invariant) and NFC-normalises <paramref name="name"/>, then rejects what a
    /// localpart must not contain. <paramref name="error"/> completes the sentence
    /// "the user name ...", e.g. "contains whitespace".
    /// </summary>
    public static bool TryNormalize(string name, [NotNullWhen(true)] out string? normalized, [NotNullWhen(false)] out string? error)
    {
        normalized = null;
        if (name.Length == 0)
        {
            error = "is empty";
            return false;
        }

        if (HasUnpairedSurrogate(name))
        {
            error = "is not valid Unicode (unpaired surrogate)";
            return false;
        }
        var folded = name.ToLowerInvariant().Normalize(NormalizationForm.FormC);

        var forbidden = folded.AsSpan().IndexOfAny(s_forbiddenInName);
        if (forbidden >= 0)
        {
            error = $"contains '{folded[forbidden]}'";
            return false;
        }

        foreach (var rune in folded.EnumerateRunes())
        {
            if (Rune.IsWhiteSpace(rune))
            {
                error = "contains whitespace";
                return false;
            }
            if (IsInvisibleOrUnassigned(rune))
            {
                error = $"contains the control or invisible character U+{rune.Value:X4}";
                return false;
            }
        }

        if (Encoding.UTF8.GetByteCount(folded) > MaxNameBytes)
        {
            error = $"is longer than {MaxNameBytes} bytes of UTF-8";
            return false;
        }

        normalized = folded;
        error = null;
        return true;
    }

    /// <summary>
    /// SASLprep (RFC 4013, through <see cref="SaslPrep"/>) with the store's own length cap.
    /// A SCRAM client applies SASLprep before PBKDF2, so the store must derive from the same form.
    /// Case is preserved.
    /// </summary>
    public static bool TryNormalizePassword(string password, [NotNullWhen(true)] out string? normalized, [NotNullWhen(false)] out string? error)
    {
        normalized = null;
        if (password.Length == 0)
        {
            error = "is empty";
            return false;
        }

        if (HasUnpairedSurrogate(password))
        {
            error = "is not valid Unicode (unpaired surrogate)";
            return false;
        }

        // The same SASLprep the SCRAM client applies before hashing (RFC 5802
        // section 5.1), so a stored key matches what a client derives.
        if (!SaslPrep.TryNormalize(password, out var prepared))
        {
            error = DescribeSaslPrepRefusal(password);
            return false;
        }
        if (Encoding.UTF8.GetByteCount(prepared) > MaxPasswordBytes)
        {
            error = $"is longer than {MaxPasswordBytes} bytes of UTF-8";
            return false;
        }

        normalized = prepared;
        error = null;
        return true;
    }

    /// <summary>Names the first character SASLprep refused, so the operator knows what to change.</summary>
    private static string DescribeSaslPrepRefusal(string password)
    {
        foreach (var rune in password.EnumerateRunes())
        {
            if (Rune.GetUnicodeCategory(rune) is UnicodeCategory.Control or UnicodeCategory.PrivateUse or UnicodeCategory.OtherNotAssigned)
            {
                return Rune.GetUnicodeCategory(rune) == UnicodeCategory.Control
                    ? $"contains the control character U+{rune.Value:X4}"
                    : $"contains the character U+{rune.Value:X4}, which SASLprep (RFC 4013) prohibits";
            }
        }
        return SaslPrep.TryNormalize(password + "x", out _)
            ? "is empty once invisible characters are removed"
            : "is refused by SASLprep (RFC 4013: prohibited character or mixed right-to-left text)";
    }

    private static bool HasUnpairedSurrogate(ReadOnlySpan<char> text)
    {
        for (var i = 0; i < text.Length; i++)
        {
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                i++;
            }
            else if (char.IsSurrogate(text[i]))
            {
                return true;
            }
        }
        return false;
    }

    private static bool IsInvisibleOrUnassigned(Rune rune) => Rune.GetUnicodeCategory(rune) switch
    {
        UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.Surrogate
            or UnicodeCategory.PrivateUse or UnicodeCategory.OtherNotAssigned => true,
        _ => false,
    };

    // RFC 3454 table B.1, "commonly mapped to nothing" (used by RFC 4013 section 2.1).
    // RFC 3454 table C.1.2, non-ASCII space characters (U+200B is in B.1 as well and is dropped first).
}
