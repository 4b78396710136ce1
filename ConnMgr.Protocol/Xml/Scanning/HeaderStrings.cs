using System.Text;

namespace ConnMgr.Protocol.Xml.Scanning;

/// <summary>
/// The strings most stream headers repeat: attribute names, the stream and content namespaces, the version,
/// and what the options add (the served domain). A stream keeps its header for as long as it lives, idle or
/// not, so a header built from this table instead of fresh copies saves each connection about half a kilobyte.
/// </summary>
internal sealed class HeaderStrings
{
    private static readonly string[] s_common =
    [
        "to", "from", "id", "version", "xml:lang", "xmlns", "xmlns:stream", "stream", "stream:stream", "1.0", "en",
        XmppNamespaces.Stream, XmppNamespaces.Client, XmppNamespaces.Server, XmppNamespaces.ConnectionManagerStream,
    ];

    private readonly string[] _strings;
    private readonly byte[][] _utf8;

    public HeaderStrings(IEnumerable<string> extra)
    {
        _strings = [.. s_common, .. extra];
        _utf8 = [.. _strings.Select(Encoding.UTF8.GetBytes)];
    }

    /// <summary>The table's string for these UTF-8 bytes, or a new one.</summary>
    public string String(ReadOnlySpan<byte> utf8)
    {
        var k = IndexOf(utf8);
        return k >= 0 ? _strings[k] : Encoding.UTF8.GetString(utf8);
    }

    /// <summary>The table's bytes equal to <paramref name="utf8"/> (shared: never to be written), or a copy.</summary>
    public byte[] Bytes(ReadOnlySpan<byte> utf8)
    {
        var k = IndexOf(utf8);
        return k >= 0 ? _utf8[k] : utf8.ToArray();
    }

    private int IndexOf(ReadOnlySpan<byte> utf8)
    {
        for (var k = 0; k < _utf8.Length; k++)
        {
            if (utf8.SequenceEqual(_utf8[k]))
                return k;
        }
        return -1;
    }
}
