namespace ConnMgr.Edge.Transport;

/// <summary>How a client reached us: which listener accepted the connection.</summary>
internal enum TransportKind : byte
{
    /// <summary>Plain TCP, port 5222 by default; TLS comes later through STARTTLS (RFC 6120 section 5).</summary>
    Tcp,

    /// <summary>TLS from the first byte, port 5223 by default (XEP-0368).</summary>
    DirectTls,
}
