using System.Security.Cryptography.X509Certificates;

namespace ConnMgr.Tests.OpenfireDouble;

/// <summary>TLS policy of a listener (Openfire's <c>Connection.TLSPolicy</c>, spec 2 and 3.7).</summary>
public enum TlsPolicy
{
    Disabled,
    Optional,
    Required,
}

/// <summary>How raw-text deliveries (SASL replies, client stream errors) are wrapped in a route (spec 6.2).</summary>
public enum RawTextEncoding
{
    /// <summary>Openfire up to 4.7: the text is spliced into the route verbatim, so it arrives as child elements.</summary>
    Openfire47,

    /// <summary>Openfire 4.8 and later (OF-2678): the text is a text node, escaped by dom4j (&amp;, &lt;, &gt;; not quotes).</summary>
    Openfire48,
}

/// <summary>What happens to a CM's client sessions when its last link goes (spec 8.4 as corrected by 0.1 point 2).</summary>
public enum LastLinkBehaviour
{
    /// <summary>Openfire up to 4.9: every client session hosted by that CM is closed.</summary>
    CloseSessions,

    /// <summary>Openfire 5.x: the sessions usually stay on the server as ghosts; traffic for them is dropped until a link of that CM name returns.</summary>
    KeepGhostSessions,
}

/// <summary>
/// Knobs of <see cref="OpenfireDoubleServer"/>. Defaults are Openfire's defaults (spec 9.1) unless a
/// property says otherwise; timers are shortened by tests.
/// </summary>
public sealed record OpenfireDoubleOptions
{
    /// <summary>XMPP domain of the server. Default <c>example.com</c>.</summary>
    public string Domain { get; init; } = "example.com";

    /// <summary>
    /// Shared link secret (<c>xmpp.multiplex.defaultSecret</c>). Null means "not configured": every link
    /// header is answered with <c>internal-server-error</c> (spec 3.3). Default <c>secret</c>.
    /// </summary>
    public string? Secret { get; init; } = "secret";

    /// <summary>STARTTLS policy on links (<c>xmpp.multiplex.tls.policy</c>, default optional, spec 2).</summary>
    public TlsPolicy LinkTlsPolicy { get; init; } = TlsPolicy.Optional;

    /// <summary>
    /// Listen like the Direct-TLS CM port 5263: TLS from the first byte (spec 2, 3.5). As Openfire does
    /// there, the features still advertise <c>&lt;starttls/&gt;</c> (spec 3.4 quirk). Default false.
    /// </summary>
    public bool DirectTls { get; init; }

    /// <summary>Certificate for TLS on links; null = a self-signed certificate for <see cref="Domain"/> generated in-process.</summary>
    public X509Certificate2? ServerCertificate { get; init; }

    /// <summary>Raw-text route encoding (spec 6.2). Default: the current form, <see cref="RawTextEncoding.Openfire48"/>.</summary>
    public RawTextEncoding RawTextEncoding { get; init; } = RawTextEncoding.Openfire48;

    /// <summary>What losing a CM's last link does to its sessions. Default: current Openfire, <see cref="LastLinkBehaviour.KeepGhostSessions"/>.</summary>
    public LastLinkBehaviour LastLinkBehaviour { get; init; } = LastLinkBehaviour.KeepGhostSessions;

    // Configuration IQ content (spec 3.7 as corrected by 0.1 point 7).

    /// <summary>c2s TLS policy reported in the configuration IQ (<c>xmpp.client.tls.policy</c>, default optional).</summary>
    public TlsPolicy ClientTlsPolicy { get; init; } = TlsPolicy.Optional;

    /// <summary>
    /// SASL mechanisms reported in the configuration IQ, in this order. The double implements PLAIN,
    /// SCRAM-SHA-1 and ANONYMOUS; EXTERNAL and every <c>*-PLUS</c> are listed (Openfire's list is global)
    /// but always fail through a CM with <c>invalid-mechanism</c> (spec 7.2). Default: PLAIN, SCRAM-SHA-1,
    /// SCRAM-SHA-1-PLUS, EXTERNAL, so that an edge that forgets to filter is caught.
    /// </summary>
    public IReadOnlyList<string> Mechanisms { get; init; } = ["PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-1-PLUS", "EXTERNAL"];

    /// <summary>Report zlib for clients (<c>xmpp.client.compression.policy</c> = optional, Openfire's c2s default). Default true.</summary>
    public bool ClientCompression { get; init; } = true;

    /// <summary>Report iq-auth (since Openfire 4.1 only with the Non-SASL Authentication plugin). Default false.</summary>
    public bool IqAuth { get; init; }

    /// <summary>Report in-band registration (<c>register.inband</c>, default true).</summary>
    public bool Register { get; init; } = true;

    // Client sessions.

    /// <summary>User table for SASL: user name (case-insensitive) to password.</summary>
    public IReadOnlyDictionary<string, string> Users { get; init; } =
        new Dictionary<string, string> { ["alice"] = "secret", ["bob"] = "secret" };

    /// <summary>Sessions not resource-bound this long after create are closed (<c>xmpp.client.preauth.timeout</c>, 5 min).</summary>
    public TimeSpan PreAuthTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>SASL failures after which the session is closed (<c>xmpp.auth.retries</c>, 3).</summary>
    public int AuthRetries { get; init; } = 3;

    /// <summary>IP literals refused at create with <c>not-allowed</c> (<c>xmpp.client.login.blocked</c>; the block list wins).</summary>
    public IReadOnlyList<string> BlockedAddresses { get; init; } = [];

    /// <summary>If not empty, only these IP literals may create sessions (<c>xmpp.client.login.allowed</c>).</summary>
    public IReadOnlyList<string> AllowedAddresses { get; init; } = [];

    // Link housekeeping.

    /// <summary>Read-idle limit of a link (<c>xmpp.multiplex.idle</c>, 5 min); zero or less disables it (spec 8.3).</summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>Whitespace heartbeat period on every link (30 s, spec 8.3).</summary>
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Largest top-level element in characters (<c>xmpp.parser.buffer.size</c>, 1 048 576, spec 2).</summary>
    public int MaxElementSize { get; init; } = 1_048_576;

    /// <summary>A CM that does not take our bytes for this long loses the link (<c>xmpp.socket.write-timeout-seconds</c>, 30 s).</summary>
    public TimeSpan WriteTimeout { get; init; } = TimeSpan.FromSeconds(30);

    // Test plumbing.

    /// <summary>Source of link stream IDs (the handshake salt); null = random base-36, up to 10 chars (spec 3.4).</summary>
    public Func<string>? StreamIdFactory { get; init; }

    /// <summary>Seed for the "random link" choice of replies (spec 8.2); null = unseeded.</summary>
    public int? RandomSeed { get; init; }

    /// <summary>Optional sink for a one-line trace of what the double does (e.g. <c>TestContext.Progress.WriteLine</c>).</summary>
    public Action<string>? Log { get; init; }
}
