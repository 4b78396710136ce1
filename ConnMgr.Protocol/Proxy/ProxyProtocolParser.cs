using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Net.Sockets;

namespace ConnMgr.Protocol.Proxy;

/// <summary>
/// Parses the PROXY protocol header (HAProxy's proxy-protocol.txt, versions 1 and 2) that a load
/// balancer sends before any client byte. Use it only on a listener configured for it: the
/// specification (section 2) forbids guessing whether a header is present, since anyone could
/// then forge their address.
/// </summary>
/// <remarks>
/// Contract of <see cref="TryParse"/>: the caller sets <c>consumed</c> to the buffer start and
/// <c>examined</c> to its end, and calls <c>AdvanceTo(consumed, examined)</c> afterwards. On
/// success both point just past the header (client bytes may follow in the same buffer); when more
/// bytes are needed <c>consumed</c> is left alone and <c>examined</c> is the buffer end. A malformed
/// header throws <see cref="ProxyProtocolException"/>, as soon as the first wrong byte is seen: the
/// specification asks receivers to abort such connections early. The parser never looks further
/// than <see cref="MaxV1HeaderLength"/> bytes for version 1, or the given limit for version 2.
/// </remarks>
public static class ProxyProtocolParser
{
    /// <summary>
    /// Longest valid version 1 line, CRLF included: "PROXY UNKNOWN" followed by two 39-character
    /// IPv6 addresses and two 5-digit ports (spec 2.1). No CRLF in this many bytes is an error.
    /// </summary>
    public const int MaxV1HeaderLength = 107;

    /// <summary>
    /// Default bound on a version 2 header: 16 fixed bytes, an address block of at most 216 bytes
    /// (two AF_UNIX paths, spec 2.2) and room for the TLVs proxies append (ALPN, SNI, TLS details,
    /// cloud vendor identifiers), which stay far below this.
    /// </summary>
    public const int DefaultMaxV2HeaderLength = 2048;

    /// <summary>The smallest limit that still admits every address block (16 + 216 bytes).</summary>
    public const int MinV2HeaderLimit = V2FixedLength + UnixAddressLength;

    private const int V2FixedLength = 16;
    private const int V2SignatureLength = 12;
    private const int InetAddressLength = 12;   // 2 x 4 address bytes + 2 x 2 port bytes
    private const int Inet6AddressLength = 36;  // 2 x 16 address bytes + 2 x 2 port bytes
    private const int UnixAddressLength = 216;  // 2 x 108 path bytes
    private const int TransportStream = 1;
    private const int MaxV1FieldLength = 39;    // the longest textual IPv6 address fits a v1 line

    private static ReadOnlySpan<byte> V1Prefix => "PROXY "u8;

    private static ReadOnlySpan<byte> V2Signature => [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A];

    public static bool TryParse(
        in ReadOnlySequence<byte> buffer,
        ref SequencePosition consumed,
        ref SequencePosition examined,
        out ProxyHeader header,
        int maxV2HeaderLength = DefaultMaxV2HeaderLength)
    {
        if (maxV2HeaderLength < MinV2HeaderLimit)
        {
            ThrowLimitTooSmall(maxV2HeaderLength);
        }

        header = default;
        if (buffer.IsEmpty)
        {
            examined = buffer.End;
            return false;
        }

        var first = buffer.FirstSpan[0];
        int length;
        var complete = first switch
        {
            (byte)'P' => TryParseV1(buffer, out header, out length),
            0x0D => TryParseV2(buffer, maxV2HeaderLength, out header, out length),
            _ => Invalid<bool>("the connection does not start with a PROXY protocol header", out length),
        };
        if (!complete)
        {
            examined = buffer.End;
            return false;
        }

        consumed = examined = buffer.GetPosition(length);
        return true;
    }

    private static bool TryParseV1(in ReadOnlySequence<byte> buffer, out ProxyHeader header, out int length)
    {
        header = default;
        length = 0;
        var available = (int)Math.Min(buffer.Length, MaxV1HeaderLength);
        Span<byte> copy = stackalloc byte[MaxV1HeaderLength];
        scoped ReadOnlySpan<byte> window;
        if (buffer.FirstSpan.Length >= available)
        {
            window = buffer.FirstSpan[..available];
        }
        else
        {
            buffer.Slice(0, available).CopyTo(copy);
            window = copy[..available];
        }

        var prefixLength = Math.Min(available, V1Prefix.Length);
        if (!window[..prefixLength].SequenceEqual(V1Prefix[..prefixLength]))
        {
            ThrowInvalid("PROXY v1: the line must start with \"PROXY \"");
        }

        var lineFeed = window.IndexOf((byte)'\n');
        if (lineFeed < 0)
        {
            if (available == MaxV1HeaderLength)
            {
                ThrowInvalid("PROXY v1: no CRLF within the first 107 bytes");
            }
            return false;
        }
        if (window[lineFeed - 1] != (byte)'\r')
        {
            ThrowInvalid("PROXY v1: the line must end with CRLF");
        }

        header = ParseV1Line(window[V1Prefix.Length..(lineFeed - 1)]);
        length = lineFeed + 1;
        return true;
    }

    private static ProxyHeader ParseV1Line(ReadOnlySpan<byte> line)
    {
        // "UNKNOWN" may be followed by anything, which the receiver must ignore (spec 2.1).
        if (line.StartsWith("UNKNOWN"u8) && (line.Length == 7 || line[7] == (byte)' '))
        {
            return new ProxyHeader(1, ProxyCommand.Proxy, ProxyAddressFamily.Unspecified, null, null);
        }

        ProxyAddressFamily family;
        if (line.StartsWith("TCP4 "u8))
        {
            family = ProxyAddressFamily.InterNetwork;
        }
        else if (line.StartsWith("TCP6 "u8))
        {
            family = ProxyAddressFamily.InterNetworkV6;
        }
        else
        {
            return Invalid<ProxyHeader>("PROXY v1: the protocol must be TCP4, TCP6 or UNKNOWN", out _);
        }

        var rest = line[5..];
        var sourceAddress = ParseV1Address(NextField(ref rest, "source address"), family);
        var destinationAddress = ParseV1Address(NextField(ref rest, "destination address"), family);
        var sourcePort = ParsePort(NextField(ref rest, "source port"));
        if (rest.IsEmpty || rest.Contains((byte)' '))
        {
            ThrowInvalid("PROXY v1: expected exactly one destination port after the source port");
        }
        var destinationPort = ParsePort(rest);
        return new ProxyHeader(
            1,
            ProxyCommand.Proxy,
            family,
            new IPEndPoint(sourceAddress, sourcePort),
            new IPEndPoint(destinationAddress, destinationPort));
    }

    private static ReadOnlySpan<byte> NextField(ref ReadOnlySpan<byte> rest, string name)
    {
        var space = rest.IndexOf((byte)' ');
        if (space <= 0)
        {
            ThrowInvalid($"PROXY v1: missing {name} (fields are separated by exactly one space)");
        }
        var field = rest[..space];
        rest = rest[(space + 1)..];
        return field;
    }

    private static IPAddress ParseV1Address(ReadOnlySpan<byte> field, ProxyAddressFamily family)
    {
        if (family == ProxyAddressFamily.InterNetwork)
        {
            return ParseDottedQuad(field);
        }

        // Only hex digits, ':' and '.' (an embedded IPv4 tail): no zone index, no brackets.
        if (field.Length > MaxV1FieldLength || field.ContainsAnyExcept("0123456789abcdefABCDEF:."u8))
        {
            ThrowInvalid("PROXY v1: malformed IPv6 address");
        }
        Span<char> text = stackalloc char[MaxV1FieldLength];
        for (var i = 0; i < field.Length; i++)
        {
            text[i] = (char)field[i];
        }
        if (!IPAddress.TryParse(text[..field.Length], out var address) || address.AddressFamily != AddressFamily.InterNetworkV6)
        {
            ThrowInvalid("PROXY v1: malformed IPv6 address");
        }
        return address;
    }

    /// <summary>
    /// Strict a.b.c.d: IPAddress.TryParse also takes "1.2.3", "0x7f.1" and octal, which no
    /// proxy sends and which would let a header mean something else than it reads.
    /// </summary>
    private static IPAddress ParseDottedQuad(ReadOnlySpan<byte> field)
    {
        Span<byte> octets = stackalloc byte[4];
        var rest = field;
        for (var i = 0; i < 4; i++)
        {
            var dot = rest.IndexOf((byte)'.');
            var part = i < 3 ? (dot < 0 ? [] : rest[..dot]) : rest;
            if (!TryParseDecimal(part, 3, out var value) || value > 255)
            {
                ThrowInvalid("PROXY v1: malformed IPv4 address");
            }
            octets[i] = (byte)value;
            rest = i < 3 ? rest[(dot + 1)..] : [];
        }
        return new IPAddress(octets);
    }

    private static int ParsePort(ReadOnlySpan<byte> field)
    {
        if (!TryParseDecimal(field, 5, out var value) || value > ushort.MaxValue)
        {
            ThrowInvalid("PROXY v1: a port must be a decimal number from 0 to 65535");
        }
        return value;
    }

    /// <summary>1 to <paramref name="maxDigits"/> ASCII digits, no sign, no leading zero.</summary>
    private static bool TryParseDecimal(ReadOnlySpan<byte> digits, int maxDigits, out int value)
    {
        value = 0;
        if (digits.IsEmpty || digits.Length > maxDigits || (digits.Length > 1 && digits[0] == (byte)'0'))
        {
            return false;
        }
        foreach (var digit in digits)
        {
            var d = digit - '0';
            if ((uint)d > 9)
            {
                return false;
            }
            value = (value * 10) + d;
        }
        return true;
    }

    private static bool TryParseV2(in ReadOnlySequence<byte> buffer, int maxLength, out ProxyHeader header, out int length)
    {
        header = default;
        length = 0;
        Span<byte> fixedPart = stackalloc byte[V2FixedLength];
        var available = (int)Math.Min(buffer.Length, V2FixedLength);
        buffer.Slice(0, available).CopyTo(fixedPart);

        var signatureLength = Math.Min(available, V2SignatureLength);
        if (!fixedPart[..signatureLength].SequenceEqual(V2Signature[..signatureLength]))
        {
            ThrowInvalid("PROXY v2: bad signature");
        }

        var command = ProxyCommand.Local;
        if (available > 12)
        {
            var versionCommand = fixedPart[12];
            if (versionCommand >> 4 != 2)
            {
                ThrowInvalid($"PROXY v2: version must be 2, not {versionCommand >> 4}");
            }
            if ((versionCommand & 0x0F) > 1)
            {
                ThrowInvalid($"PROXY v2: unknown command {versionCommand & 0x0F}");
            }
            command = (ProxyCommand)(versionCommand & 0x0F);
        }

        var family = ProxyAddressFamily.Unspecified;
        var transport = 0;
        if (available > 13)
        {
            var familyTransport = fixedPart[13];
            if (familyTransport >> 4 > 3)
            {
                ThrowInvalid($"PROXY v2: unknown address family {familyTransport >> 4}");
            }
            if ((familyTransport & 0x0F) > 2)
            {
                ThrowInvalid($"PROXY v2: unknown transport protocol {familyTransport & 0x0F}");
            }
            family = (ProxyAddressFamily)(familyTransport >> 4);
            transport = familyTransport & 0x0F;
        }

        if (available < V2FixedLength)
        {
            return false;
        }

        var blockLength = BinaryPrimitives.ReadUInt16BigEndian(fixedPart[14..]);
        var total = V2FixedLength + blockLength;
        if (total > maxLength)
        {
            ThrowInvalid($"PROXY v2: a {total}-byte header exceeds the {maxLength}-byte limit");
        }
        if (buffer.Length < total)
        {
            return false;
        }
        length = total;

        // LOCAL: a health check from the proxy itself; the block is skipped whatever it holds.
        if (command == ProxyCommand.Local)
        {
            header = new ProxyHeader(2, ProxyCommand.Local, family, null, null);
            return true;
        }

        var addressLength = family switch
        {
            ProxyAddressFamily.InterNetwork => InetAddressLength,
            ProxyAddressFamily.InterNetworkV6 => Inet6AddressLength,
            ProxyAddressFamily.Unix => UnixAddressLength,
            _ => 0,
        };
        if (blockLength < addressLength)
        {
            ThrowInvalid($"PROXY v2: {blockLength} address bytes, family {family} needs {addressLength}");
        }

        var block = buffer.Slice(V2FixedLength, blockLength);
        // With UNSPEC the block has no defined layout, so there are no TLVs to walk.
        if (family != ProxyAddressFamily.Unspecified)
        {
            ValidateTlvs(block.Slice(addressLength));
        }

        if (transport != TransportStream || family is ProxyAddressFamily.Unspecified or ProxyAddressFamily.Unix)
        {
            header = new ProxyHeader(2, ProxyCommand.Proxy, family, null, null);
            return true;
        }

        Span<byte> address = stackalloc byte[Inet6AddressLength];
        block.Slice(0, addressLength).CopyTo(address);
        var size = family == ProxyAddressFamily.InterNetwork ? 4 : 16;
        var source = new IPAddress(address[..size]);
        var destination = new IPAddress(address.Slice(size, size));
        var sourcePort = BinaryPrimitives.ReadUInt16BigEndian(address[(2 * size)..]);
        var destinationPort = BinaryPrimitives.ReadUInt16BigEndian(address[((2 * size) + 2)..]);
        header = new ProxyHeader(
            2,
            ProxyCommand.Proxy,
            family,
            new IPEndPoint(source, sourcePort),
            new IPEndPoint(destination, destinationPort));
        return true;
    }

    /// <summary>TLVs are skipped, but each must fit the header: type (1), length (2, big endian), value.</summary>
    private static void ValidateTlvs(ReadOnlySequence<byte> tlvs)
    {
        var reader = new SequenceReader<byte>(tlvs);
        while (!reader.End)
        {
            if (reader.Remaining < 3)
            {
                ThrowInvalid("PROXY v2: truncated TLV");
            }
            reader.Advance(1);
            reader.TryReadBigEndian(out short signedLength);
            var valueLength = (ushort)signedLength;
            if (valueLength > reader.Remaining)
            {
                ThrowInvalid("PROXY v2: a TLV runs past the end of the header");
            }
            reader.Advance(valueLength);
        }
    }

    private static T Invalid<T>(string message, out int length)
    {
        length = 0;
        ThrowInvalid(message);
        return default!;
    }

    [DoesNotReturn]
    private static void ThrowInvalid(string message) => throw new ProxyProtocolException(message);

    [DoesNotReturn]
    private static void ThrowLimitTooSmall(int limit) =>
        throw new ArgumentOutOfRangeException(nameof(limit), limit, $"The PROXY v2 header limit must be at least {MinV2HeaderLimit} bytes.");
}
