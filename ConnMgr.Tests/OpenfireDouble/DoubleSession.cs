using System.Diagnostics;

namespace ConnMgr.Tests.OpenfireDouble;

/// <summary>The server's state for one client stream hosted by a CM (spec 5).</summary>
internal sealed class DoubleSession(string streamId, string cmDomain, string domain, string? hostName, string? hostAddress)
{
    public string StreamId => streamId;

    public string CmDomain => cmDomain;

    public string? HostName => hostName;

    public string? HostAddress => hostAddress;

    public long CreatedTimestamp { get; } = Stopwatch.GetTimestamp();

    public ClientSessionState State { get; set; }

    public string? Username { get; set; }

    public string? BoundJid { get; set; }

    public int AuthFailures { get; set; }

    public SaslExchange? Sasl { get; set; }

    /// <summary>The client sent available presence and not unavailable since.</summary>
    public bool Available { get; set; }

    public string? BareJid => BoundJid is null ? Username is null ? null : $"{Username}@{domain}" : BoundJid[..BoundJid.IndexOf('/')];

    /// <summary>
    /// What Openfire stamps as <c>from</c> on the client's stanzas (spec 6.1.1, anti-spoofing): the full
    /// JID once bound; before that the server's pre-bind address, domain plus a per-session resource.
    /// </summary>
    public string Address => BoundJid ?? (Username is null ? $"{domain}/{streamId}" : $"{Username}@{domain}/{streamId}");

    public SessionInfo Snapshot(bool isGhost) =>
        new(streamId, cmDomain, State, Username, BoundJid, hostName, hostAddress, AuthFailures, Available, isGhost);
}
