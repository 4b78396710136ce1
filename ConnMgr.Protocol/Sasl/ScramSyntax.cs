using System.Buffers;
using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Unicode;

namespace ConnMgr.Protocol.Sasl;

/// <summary>The attribute grammar of RFC 5802 section 7, shared by the SCRAM server and client.</summary>
internal static class ScramSyntax
{
    /// <summary>
    /// Longest SCRAM message either side accepts. Real ones are under 300 bytes; 4 KiB leaves room for a
    /// 1023-byte user name (RFC 7622 localpart limit) escaped three times over and bounds what one pending
    /// exchange keeps in memory.
    /// </summary>
    public const int MaxMessageLength = 4096;

    /// <summary>The longest hash output (SHA-256), for stack buffers.</summary>
    public const int MaxHashLength = 32;

    /// <summary>Bytes of randomness in a nonce: 18 encode to 24 base64 characters without padding.</summary>
    public const int NonceRandomBytes = 18;

    public const int NonceLength = 24;

    private static readonly SearchValues<byte> s_base64Alphabet =
        SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"u8);

    /// <summary>Attribute names RFC 5802 defines; one of them in an extension's place is a syntax error.</summary>
    private static readonly SearchValues<byte> s_definedAttributes = SearchValues.Create("aceimnprsv"u8);

    /// <summary>Reads comma-separated attributes; a trailing comma yields a final empty field.</summary>
    public ref struct FieldReader(ReadOnlySpan<byte> message)
    {
        private ReadOnlySpan<byte> _rest = message;
        private bool _done;

        public bool TryNext(out ReadOnlySpan<byte> field)
        {
            if (_done)
            {
                field = default;
                return false;
            }
            var comma = _rest.IndexOf((byte)',');
            if (comma < 0)
            {
                field = _rest;
                _done = true;
            }
            else
            {
                field = _rest[..comma];
                _rest = _rest[(comma + 1)..];
            }
            return true;
        }
    }

    /// <summary>True when <paramref name="field"/> is <c>name=value</c>; the value may be empty.</summary>
    public static bool TryGetValue(ReadOnlySpan<byte> field, char name, out ReadOnlySpan<byte> value)
    {
        if (field.Length >= 2 && field[0] == name && field[1] == '=')
        {
            value = field[2..];
            return true;
        }
        value = default;
        return false;
    }

    /// <summary>
    /// An extension attribute (<c>ALPHA "=" 1*value-char</c>) that RFC 5802 section 7 says to ignore.
    /// <c>m=</c> (a mandatory extension we cannot know, section 5.1) and any attribute the RFC defines
    /// for another position make the message malformed.
    /// </summary>
    public static bool IsIgnorableExtension(ReadOnlySpan<byte> field)
        => field.Length >= 3
            && char.IsAsciiLetter((char)field[0])
            && !s_definedAttributes.Contains(field[0])
            && field[1] == '='
            && !field[2..].Contains((byte)0)
            && Utf8.IsValid(field[2..]);

    /// <summary><c>printable = %x21-2B / %x2D-7E</c>: visible ASCII except the comma.</summary>
    public static bool IsPrintable(ReadOnlySpan<byte> value)
        => !value.IsEmpty && !value.ContainsAnyExceptInRange((byte)0x21, (byte)0x7E) && !value.Contains((byte)',');

    /// <summary>Fills <paramref name="destination"/> with a fresh random nonce (base64 characters, never a comma).</summary>
    public static void WriteNonce(Span<byte> destination)
    {
        Span<byte> random = stackalloc byte[NonceRandomBytes];
        RandomNumberGenerator.Fill(random);
        Base64.EncodeToUtf8(random, destination, out _, out _);
    }

    /// <summary>
    /// Decodes a <c>saslname</c>: UTF-8 without NUL, where "=2C" stands for ',' and "=3D" for '=' and no
    /// other '=' may appear (RFC 5802 section 5.1, "n" attribute).
    /// </summary>
    public static bool TryDecodeSaslName(ReadOnlySpan<byte> value, out string name)
    {
        name = string.Empty;
        if (value.IsEmpty || value.Length > MaxMessageLength || value.Contains((byte)0))
        {
            return false;
        }
        Span<byte> decoded = stackalloc byte[value.Length];
        var length = 0;
        for (var i = 0; i < value.Length; i++)
        {
            var b = value[i];
            if (b == '=')
            {
                if (i + 2 >= value.Length)
                {
                    return false;
                }
                var escaped = value.Slice(i + 1, 2);
                if (escaped.SequenceEqual("2C"u8))
                {
                    b = (byte)',';
                }
                else if (escaped.SequenceEqual("3D"u8))
                {
                    b = (byte)'=';
                }
                else
                {
                    return false;
                }
                i += 2;
            }
            decoded[length++] = b;
        }
        if (!Utf8.IsValid(decoded[..length]))
        {
            return false;
        }
        name = Encoding.UTF8.GetString(decoded[..length]);
        return true;
    }

    /// <summary>The UTF-8 <c>saslname</c> form of <paramref name="name"/>: ',' as "=2C", '=' as "=3D".</summary>
    public static byte[] EncodeSaslName(string name)
    {
        var utf8 = Encoding.UTF8.GetBytes(name);
        var specials = utf8.AsSpan().Count((byte)',') + utf8.AsSpan().Count((byte)'=');
        if (specials == 0)
        {
            return utf8;
        }
        var encoded = new byte[utf8.Length + 2 * specials];
        var length = 0;
        foreach (var b in utf8)
        {
            if (b == ',')
            {
                "=2C"u8.CopyTo(encoded.AsSpan(length));
                length += 3;
            }
            else if (b == '=')
            {
                "=3D"u8.CopyTo(encoded.AsSpan(length));
                length += 3;
            }
            else
            {
                encoded[length++] = b;
            }
        }
        return encoded;
    }

    /// <summary>
    /// Strict RFC 4648 base64 as RFC 5802 section 7 writes it: whole quanta, padding only at the end,
    /// no whitespace (the framework decoders skip whitespace, so this check comes first).
    /// </summary>
    public static bool IsStrictBase64(ReadOnlySpan<byte> value)
    {
        if (value.Length % 4 != 0)
        {
            return false;
        }
        var padding = value.EndsWith("=="u8) ? 2 : value.EndsWith("="u8) ? 1 : 0;
        return !value[..^padding].ContainsAnyExcept(s_base64Alphabet);
    }

    /// <summary>Decodes strict base64; false when it is not, or when it decodes to more than <paramref name="destination"/> holds.</summary>
    public static bool TryDecodeBase64(ReadOnlySpan<byte> value, Span<byte> destination, out int written)
    {
        written = 0;
        return IsStrictBase64(value)
            && Base64.DecodeFromUtf8(value, destination, out _, out written) == OperationStatus.Done;
    }

    /// <summary><c>posit-number = %x31-39 *DIGIT</c>, within int range.</summary>
    public static bool TryParsePositNumber(ReadOnlySpan<byte> value, out int number)
    {
        number = 0;
        if (value.IsEmpty || value.Length > 10 || value[0] is < (byte)'1' or > (byte)'9')
        {
            return false;
        }
        long accumulated = 0;
        foreach (var digit in value)
        {
            if (digit is < (byte)'0' or > (byte)'9')
            {
                return false;
            }
            accumulated = accumulated * 10 + (digit - '0');
        }
        if (accumulated > int.MaxValue)
        {
            return false;
        }
        number = (int)accumulated;
        return true;
    }

    /// <summary>The concatenation of up to four byte strings, as SCRAM messages are assembled.</summary>
    public static byte[] Concat(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b, ReadOnlySpan<byte> c = default, ReadOnlySpan<byte> d = default)
    {
        var result = new byte[a.Length + b.Length + c.Length + d.Length];
        a.CopyTo(result);
        b.CopyTo(result.AsSpan(a.Length));
        c.CopyTo(result.AsSpan(a.Length + b.Length));
        d.CopyTo(result.AsSpan(a.Length + b.Length + c.Length));
        return result;
    }
}
