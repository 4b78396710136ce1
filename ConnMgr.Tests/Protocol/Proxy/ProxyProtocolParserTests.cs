using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Text;
using ConnMgr.Protocol.Proxy;
using NUnit.Framework;

namespace ConnMgr.Tests.Protocol.Proxy;

public class ProxyProtocolParserTests
{
    private static readonly byte[] ClientBytes = "<?xml version='1.0'?>"u8.ToArray();

    private static readonly byte[] Signature = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A];

    public sealed record Valid(string Name, byte[] Header, ProxyHeader Expected)
    {
        public override string ToString() => Name;
    }

    public sealed record Malformed(string Name, byte[] Bytes)
    {
        public override string ToString() => Name;
    }

    private static readonly string MaxIPv6 = string.Join(':', Enumerable.Repeat("ffff", 8));

    public static IEnumerable<Valid> ValidHeaders()
    {
        yield return new("v1 TCP4", Ascii("PROXY TCP4 192.0.2.10 198.51.100.1 56324 5222\r\n"),
            V1(ProxyAddressFamily.InterNetwork, "192.0.2.10", 56324, "198.51.100.1", 5222));
        yield return new("v1 TCP4 ports 0", Ascii("PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n"),
            V1(ProxyAddressFamily.InterNetwork, "0.0.0.0", 0, "255.255.255.255", 65535));
        yield return new("v1 TCP6", Ascii("PROXY TCP6 2001:db8::1 2001:db8::2 4000 5223\r\n"),
            V1(ProxyAddressFamily.InterNetworkV6, "2001:db8::1", 4000, "2001:db8::2", 5223));
        yield return new("v1 TCP6 longest (104 bytes)", Ascii($"PROXY TCP6 {MaxIPv6} {MaxIPv6} 65535 65535\r\n"),
            V1(ProxyAddressFamily.InterNetworkV6, MaxIPv6, 65535, MaxIPv6, 65535));
        yield return new("v1 UNKNOWN", Ascii("PROXY UNKNOWN\r\n"),
            new ProxyHeader(1, ProxyCommand.Proxy, ProxyAddressFamily.Unspecified, null, null));
        yield return new("v1 UNKNOWN worst case (107 bytes)", Ascii($"PROXY UNKNOWN {MaxIPv6} {MaxIPv6} 65535 65535\r\n"),
            new ProxyHeader(1, ProxyCommand.Proxy, ProxyAddressFamily.Unspecified, null, null));

        yield return new("v2 PROXY TCP over IPv4", V2(0x21, 0x11, [.. Ip("203.0.113.7"), .. Ip("192.0.2.1"), .. Port(51000), .. Port(5222)]),
            V2Header(ProxyAddressFamily.InterNetwork, "203.0.113.7", 51000, "192.0.2.1", 5222));
        yield return new("v2 PROXY TCP over IPv6 with TLVs",
            V2(0x21, 0x21, [.. Ip("2001:db8::7"), .. Ip("2001:db8::1"), .. Port(443), .. Port(5223),
                .. Tlv(0x01, "xmpp-client"u8), .. Tlv(0x02, "chat.example"u8), .. Tlv(0x04, [])]),
            V2Header(ProxyAddressFamily.InterNetworkV6, "2001:db8::7", 443, "2001:db8::1", 5223));
        yield return new("v2 LOCAL, no block", V2(0x20, 0x00, []),
            new ProxyHeader(2, ProxyCommand.Local, ProxyAddressFamily.Unspecified, null, null));
        yield return new("v2 LOCAL with an address block to skip", V2(0x20, 0x11, [.. Ip("10.0.0.1"), .. Ip("10.0.0.2"), .. Port(1), .. Port(2)]),
            new ProxyHeader(2, ProxyCommand.Local, ProxyAddressFamily.InterNetwork, null, null));
        yield return new("v2 PROXY UNSPEC with opaque bytes", V2(0x21, 0x00, [1, 2, 3, 4, 5]),
            new ProxyHeader(2, ProxyCommand.Proxy, ProxyAddressFamily.Unspecified, null, null));
        yield return new("v2 PROXY AF_UNIX stream", V2(0x21, 0x31, new byte[216]),
            new ProxyHeader(2, ProxyCommand.Proxy, ProxyAddressFamily.Unix, null, null));
        yield return new("v2 PROXY UDP over IPv4", V2(0x21, 0x12, [.. Ip("203.0.113.7"), .. Ip("192.0.2.1"), .. Port(1), .. Port(2)]),
            new ProxyHeader(2, ProxyCommand.Proxy, ProxyAddressFamily.InterNetwork, null, null));
    }

    public static IEnumerable<Malformed> MalformedHeaders()
    {
        yield return new("plain XMPP", Ascii("<?xml version='1.0'?><stream:stream>"));
        yield return new("TLS ClientHello", [0x16, 0x03, 0x01, 0x00, 0xA5, 0x01]);
        yield return new("v1 lower case", Ascii("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n"));
        yield return new("v1 LF without CR", Ascii("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"));
        yield return new("v1 no space after PROXY", Ascii("PROXY\r\n"));
        yield return new("v1 empty protocol", Ascii("PROXY \r\n"));
        yield return new("v1 unknown protocol", Ascii("PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n"));
        yield return new("v1 UNKNOWNX", Ascii("PROXY UNKNOWNX\r\n"));
        yield return new("v1 three octets", Ascii("PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n"));
        yield return new("v1 octet over 255", Ascii("PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n"));
        yield return new("v1 octet with leading zero", Ascii("PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n"));
        yield return new("v1 hex octet", Ascii("PROXY TCP4 0x7f.0.0.1 5.6.7.8 1 2\r\n"));
        yield return new("v1 five octets", Ascii("PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n"));
        yield return new("v1 double space", Ascii("PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n"));
        yield return new("v1 port over 65535", Ascii("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n"));
        yield return new("v1 port with sign", Ascii("PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n"));
        yield return new("v1 port with leading zero", Ascii("PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n"));
        yield return new("v1 missing port", Ascii("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"));
        yield return new("v1 extra field", Ascii("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n"));
        yield return new("v1 trailing space", Ascii("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n"));
        yield return new("v1 IPv6 address under TCP4", Ascii("PROXY TCP4 ::1 ::1 1 2\r\n"));
        yield return new("v1 IPv4 address under TCP6", Ascii("PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n"));
        yield return new("v1 IPv6 zone index", Ascii("PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n"));
        yield return new("v1 no CRLF in 107 bytes", Ascii("PROXY UNKNOWN " + new string('a', 100)));
        yield return new("v2 bad signature", [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x55, 0x0A, 0x21, 0x11, 0, 0]);
        yield return new("v2 version 1", V2(0x11, 0x11, [.. Ip("1.2.3.4"), .. Ip("5.6.7.8"), .. Port(1), .. Port(2)]));
        yield return new("v2 version 3", V2(0x31, 0x11, [.. Ip("1.2.3.4"), .. Ip("5.6.7.8"), .. Port(1), .. Port(2)]));
        yield return new("v2 command 2", V2(0x22, 0x11, [.. Ip("1.2.3.4"), .. Ip("5.6.7.8"), .. Port(1), .. Port(2)]));
        yield return new("v2 family 4", V2(0x21, 0x41, new byte[12]));
        yield return new("v2 transport 3", V2(0x21, 0x13, new byte[12]));
        yield return new("v2 IPv4 block too short", V2(0x21, 0x11, new byte[8]));
        yield return new("v2 IPv6 block too short", V2(0x21, 0x21, new byte[12]));
        yield return new("v2 over the length limit", V2(0x21, 0x11, new byte[ProxyProtocolParser.DefaultMaxV2HeaderLength]));
        yield return new("v2 truncated TLV", V2(0x21, 0x11, [.. new byte[12], 0x01, 0x00]));
        yield return new("v2 TLV past the end", V2(0x21, 0x11, [.. new byte[12], .. Tlv(0x01, "h2"u8)[..^1]]));
    }

    [TestCaseSource(nameof(ValidHeaders))]
    public void Parses_a_valid_header_and_stops_before_client_bytes(Valid test)
    {
        byte[] input = [.. test.Header, .. ClientBytes];
        AssertParsed(new ReadOnlySequence<byte>(input), test);
        AssertParsed(SingleByteSegments(input), test);
    }

    [TestCaseSource(nameof(ValidHeaders))]
    public void Asks_for_more_at_every_truncation(Valid test)
    {
        for (var length = 0; length < test.Header.Length; length++)
        {
            foreach (var sequence in new[] { new ReadOnlySequence<byte>(test.Header, 0, length), SingleByteSegments(test.Header[..length]) })
            {
                var consumed = sequence.Start;
                var examined = sequence.End;
                var complete = ProxyProtocolParser.TryParse(sequence, ref consumed, ref examined, out _);

                Assert.That(complete, Is.False, $"{length} of {test.Header.Length} bytes");
                Assert.That(consumed, Is.EqualTo(sequence.Start), "nothing consumed");
                Assert.That(examined, Is.EqualTo(sequence.End), "everything examined");
            }
        }
    }

    [TestCaseSource(nameof(MalformedHeaders))]
    public void Rejects_malformed_input_and_never_accepts_a_prefix(Malformed test)
    {
        var whole = new ReadOnlySequence<byte>(test.Bytes);
        var start = whole.Start;
        var end = whole.End;
        Assert.Throws<ProxyProtocolException>(() => ProxyProtocolParser.TryParse(whole, ref start, ref end, out _));

        for (var length = 0; length < test.Bytes.Length; length++)
        {
            var prefix = SingleByteSegments(test.Bytes[..length]);
            var consumed = prefix.Start;
            var examined = prefix.End;
            try
            {
                Assert.That(ProxyProtocolParser.TryParse(prefix, ref consumed, ref examined, out _), Is.False, $"prefix of {length} bytes");
            }
            catch (ProxyProtocolException)
            {
                // Rejected early: what the specification recommends.
            }
        }
    }

    [Test]
    public void Error_messages_name_the_problem()
    {
        var sequence = new ReadOnlySequence<byte>(Ascii("PROXY TCP4 1.2.3.4 5.6.7.8 70000 2\r\n"));
        var consumed = sequence.Start;
        var examined = sequence.End;
        var error = Assert.Throws<ProxyProtocolException>(() => ProxyProtocolParser.TryParse(sequence, ref consumed, ref examined, out _));
        Assert.That(error!.Message, Does.Contain("port"));
    }

    [Test]
    public void A_custom_v2_limit_applies_and_must_admit_every_address_block()
    {
        var header = V2(0x21, 0x11, [.. Ip("1.2.3.4"), .. Ip("5.6.7.8"), .. Port(1), .. Port(2), .. Tlv(0x04, new byte[300])]);
        var sequence = new ReadOnlySequence<byte>(header);
        var consumed = sequence.Start;
        var examined = sequence.End;

        Assert.Throws<ProxyProtocolException>(() => ProxyProtocolParser.TryParse(sequence, ref consumed, ref examined, out _, maxV2HeaderLength: 300));
        Assert.That(ProxyProtocolParser.TryParse(sequence, ref consumed, ref examined, out _, maxV2HeaderLength: 400), Is.True);
        Assert.Throws<ArgumentOutOfRangeException>(() => ProxyProtocolParser.TryParse(sequence, ref consumed, ref examined, out _, maxV2HeaderLength: 100));
    }

    private static void AssertParsed(ReadOnlySequence<byte> sequence, Valid test)
    {
        var consumed = sequence.Start;
        var examined = sequence.End;

        var complete = ProxyProtocolParser.TryParse(sequence, ref consumed, ref examined, out var header);

        Assert.That(complete, Is.True);
        Assert.That(header, Is.EqualTo(test.Expected));
        Assert.That(sequence.Slice(consumed).ToArray(), Is.EqualTo(ClientBytes), "consumed ends exactly at the header end");
        Assert.That(examined, Is.EqualTo(consumed));
    }

    private static ProxyHeader V1(ProxyAddressFamily family, string source, int sourcePort, string destination, int destinationPort) =>
        new(1, ProxyCommand.Proxy, family, new IPEndPoint(IPAddress.Parse(source), sourcePort), new IPEndPoint(IPAddress.Parse(destination), destinationPort));

    private static ProxyHeader V2Header(ProxyAddressFamily family, string source, int sourcePort, string destination, int destinationPort) =>
        new(2, ProxyCommand.Proxy, family, new IPEndPoint(IPAddress.Parse(source), sourcePort), new IPEndPoint(IPAddress.Parse(destination), destinationPort));

    private static byte[] V2(byte versionCommand, byte familyTransport, byte[] block)
    {
        var length = new byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(length, (ushort)block.Length);
        return [.. Signature, versionCommand, familyTransport, .. length, .. block];
    }

    private static byte[] Tlv(byte type, ReadOnlySpan<byte> value)
    {
        var length = new byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(length, (ushort)value.Length);
        return [type, .. length, .. value];
    }

    private static byte[] Ip(string address) => IPAddress.Parse(address).GetAddressBytes();

    private static byte[] Port(ushort port)
    {
        var bytes = new byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(bytes, port);
        return bytes;
    }

    private static byte[] Ascii(string text) => Encoding.ASCII.GetBytes(text);

    private static ReadOnlySequence<byte> SingleByteSegments(byte[] bytes)
    {
        if (bytes.Length == 0)
        {
            return ReadOnlySequence<byte>.Empty;
        }
        var first = new Segment(bytes.AsMemory(0, 1), 0);
        var last = first;
        for (var i = 1; i < bytes.Length; i++)
        {
            last = last.Append(bytes.AsMemory(i, 1));
        }
        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}
