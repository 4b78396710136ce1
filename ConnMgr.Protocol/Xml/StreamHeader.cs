namespace ConnMgr.Protocol.Xml;

/// <summary>
/// The stream header (the <c>stream</c> start tag, RFC 6120 4.7) as the peer sent it. Built once per stream,
/// so it may allocate.
/// </summary>
public sealed class StreamHeader
{
    private readonly byte[][] _prefixes;
    private readonly byte[][] _uris;

    internal StreamHeader(
        string prefix,
        string? defaultNamespace,
        KeyValuePair<string, string>[] attributes,
        KeyValuePair<string, string>[] namespaceDeclarations,
        bool hadXmlDeclaration,
        byte[] qualifiedName,
        byte[][] prefixes,
        byte[][] uris)
    {
        Prefix = prefix;
        DefaultNamespace = defaultNamespace;
        Attributes = attributes;
        NamespaceDeclarations = namespaceDeclarations;
        HadXmlDeclaration = hadXmlDeclaration;
        QualifiedNameUtf8 = qualifiedName;
        _prefixes = prefixes;
        _uris = uris;
        foreach (var (name, value) in attributes)
        {
            switch (name)
            {
                case "to": To = value; break;
                case "from": From = value; break;
                case "id": Id = value; break;
                case "version": Version = value; break;
                case "xml:lang": Lang = value; break;
            }
        }
    }

    /// <summary>The stream element's prefix: <c>stream</c> usually, <c>""</c> if it used a default namespace.</summary>
    public string Prefix { get; }

    /// <summary>The default namespace declared on the header (the content namespace, e.g. <c>jabber:client</c>).</summary>
    public string? DefaultNamespace { get; }

    public string? To { get; }
    public string? From { get; }
    public string? Id { get; }
    public string? Version { get; }

    /// <summary>The <c>xml:lang</c> attribute.</summary>
    public string? Lang { get; }

    /// <summary>Every attribute except namespace declarations: qualified name, unescaped and normalized value.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Attributes { get; }

    /// <summary>Namespace declarations on the header: prefix (<c>""</c> for the default namespace) to URI.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> NamespaceDeclarations { get; }

    public bool HadXmlDeclaration { get; }

    /// <summary>The UTF-8 qualified name, e.g. <c>stream:stream</c>, that the stream's end tag must repeat.</summary>
    internal byte[] QualifiedNameUtf8 { get; }

    /// <summary>Finds the URI bound to a prefix declared on the header (UTF-8), for stanzas that use it.</summary>
    internal bool TryGetNamespace(ReadOnlySpan<byte> prefix, out ReadOnlySpan<byte> uri)
    {
        for (var i = 0; i < _prefixes.Length; i++)
        {
            if (prefix.SequenceEqual(_prefixes[i]))
            {
                uri = _uris[i];
                return true;
            }
        }
        uri = default;
        return false;
    }
}
