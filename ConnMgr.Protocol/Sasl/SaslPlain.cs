using System.Text;
using System.Text.Unicode;

namespace ConnMgr.Protocol.Sasl;

/// <summary>
/// The PLAIN mechanism (RFC 4616): <c>[authzid] NUL authcid NUL passwd</c> in UTF-8. Whether PLAIN may be
/// offered at all (only on encrypted streams) is the caller's policy.
/// </summary>
public static class SaslPlain
{
    /// <summary>
    /// Longest field accepted, in characters. RFC 4616 section 2 requires accepting at least 255 octets
    /// per field; 255 characters is that or more, and bounds a password to 1020 bytes of UTF-8.
    /// </summary>
    public const int MaxFieldLength = 255;

    /// <summary>
    /// Parses a PLAIN message. False when it does not have exactly two NULs, the authcid or password is
    /// empty, a field is not UTF-8 or longer than <see cref="MaxFieldLength"/>, or the authcid or password
    /// fails SASLprep: answer malformed-request. On success <paramref name="authcid"/> and
    /// <paramref name="password"/> are SASLprep'd (RFC 4616 section 2 recommends it, and SCRAM credentials
    /// are derived from the prepared password); <paramref name="authzid"/> is null when absent and is
    /// otherwise returned as sent (see <see cref="SaslAuthzid.IsAcceptable"/>).
    /// </summary>
    public static bool TryParse(ReadOnlySpan<byte> message, out string? authzid, out string authcid, out string password)
    {
        authzid = null;
        authcid = string.Empty;
        password = string.Empty;

        var firstNul = message.IndexOf((byte)0);
        if (firstNul < 0)
        {
            return false;
        }
        var afterFirst = message[(firstNul + 1)..];
        var secondNul = afterFirst.IndexOf((byte)0);
        if (secondNul < 0)
        {
            return false;
        }
        var authzidBytes = message[..firstNul];
        var authcidBytes = afterFirst[..secondNul];
        var passwordBytes = afterFirst[(secondNul + 1)..];
        if (authcidBytes.IsEmpty || passwordBytes.IsEmpty || passwordBytes.Contains((byte)0)
            || !IsAcceptableField(authzidBytes) || !IsAcceptableField(authcidBytes) || !IsAcceptableField(passwordBytes))
        {
            return false;
        }

        if (!SaslPrep.TryNormalize(Encoding.UTF8.GetString(authcidBytes), out var preparedAuthcid)
            || !SaslPrep.TryNormalize(Encoding.UTF8.GetString(passwordBytes), out var preparedPassword))
        {
            return false;
        }
        authzid = authzidBytes.IsEmpty ? null : Encoding.UTF8.GetString(authzidBytes);
        authcid = preparedAuthcid;
        password = preparedPassword;
        return true;
    }

    /// <summary>The PLAIN message for a client; strings are sent as given (the server prepares them).</summary>
    public static byte[] Encode(string? authzid, string authcid, string password)
    {
        ArgumentException.ThrowIfNullOrEmpty(authcid);
        ArgumentException.ThrowIfNullOrEmpty(password);
        if ((authzid?.Contains('\0') ?? false) || authcid.Contains('\0') || password.Contains('\0'))
        {
            throw new ArgumentException("PLAIN fields cannot contain NUL (RFC 4616 section 2).");
        }
        var authzidLength = authzid is null ? 0 : Encoding.UTF8.GetByteCount(authzid);
        var authcidLength = Encoding.UTF8.GetByteCount(authcid);
        var message = new byte[authzidLength + 1 + authcidLength + 1 + Encoding.UTF8.GetByteCount(password)];
        if (authzid is not null)
        {
            Encoding.UTF8.GetBytes(authzid, message);
        }
        Encoding.UTF8.GetBytes(authcid, message.AsSpan(authzidLength + 1));
        Encoding.UTF8.GetBytes(password, message.AsSpan(authzidLength + 1 + authcidLength + 1));
        return message;
    }

    /// <summary>Valid UTF-8 of at most <see cref="MaxFieldLength"/> characters (lead bytes, not continuation bytes).</summary>
    private static bool IsAcceptableField(ReadOnlySpan<byte> field)
    {
        if (field.Length > MaxFieldLength * 4 || !Utf8.IsValid(field))
        {
            return false;
        }
        var characters = 0;
        foreach (var b in field)
        {
            if ((b & 0xC0) != 0x80)
            {
                characters++;
            }
        }
        return characters <= MaxFieldLength;
    }
}
