namespace ConnMgr.Edge.Upstream;

/// <summary>
/// What the core wants clients to be offered, from the configuration IQ it sends on every
/// link after the handshake (spec 3.7, corrected by 0.1 point 7). Client TLS is the edge's
/// job alone: the server never enforces it for CM-hosted sessions (spec 0.1 point 8).
/// </summary>
internal sealed record ClientStreamConfiguration
{
    /// <summary><c>starttls</c> was present: the server's c2s TLS policy is not <c>disabled</c>.</summary>
    public bool TlsOffered { get; init; }

    /// <summary><c>starttls</c> carried <c>required</c>.</summary>
    public bool TlsRequired { get; init; }

    /// <summary>
    /// SASL mechanisms to advertise, in the server's order, without <c>EXTERNAL</c> and
    /// <c>*-PLUS</c>: Openfire sees a CM-hosted session as unencrypted with no certificate and
    /// no channel binding, and rejects those (spec 7.2).
    /// </summary>
    public IReadOnlyList<string> Mechanisms { get; init; } = [];

    /// <summary>Stream compression allowed for clients; the edge only offers it if it implements it (spec 7.2).</summary>
    public bool CompressionOffered { get; init; }

    /// <summary>Non-SASL authentication (XEP-0078) is handled by the server.</summary>
    public bool IqAuth { get; init; }

    /// <summary>In-band registration (XEP-0077) is enabled on the server.</summary>
    public bool Register { get; init; }
}
