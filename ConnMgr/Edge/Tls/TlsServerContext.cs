using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;

namespace ConnMgr.Edge.Tls;

/// <summary>
/// One certificate version and the handshake options built from it, once: every handshake reuses
/// them. A connection takes the current context when its handshake starts and keeps it, so a
/// replaced certificate only affects later handshakes.
/// </summary>
internal sealed class TlsServerContext
{
    /// <summary>ALPN protocol id for XMPP client streams over Direct TLS (XEP-0368 section 3).</summary>
    public static readonly SslApplicationProtocol XmppClient = new("xmpp-client");

    private TlsServerContext(X509Certificate2 certificate, SslStreamCertificateContext certificateContext, int version)
    {
        Certificate = certificate;
        Version = version;
        StartTls = Options(certificateContext, alpn: null);
        DirectTls = Options(certificateContext, alpn: [XmppClient]);
        Https = Options(certificateContext, alpn: [SslApplicationProtocol.Http11]);
    }

    public X509Certificate2 Certificate { get; }

    /// <summary>Increases each time the provider loads a certificate.</summary>
    public int Version { get; }

    /// <summary>Options for the handshake after &lt;starttls/&gt; (no ALPN: the stream already exists).</summary>
    public SslServerAuthenticationOptions StartTls { get; }

    /// <summary>Options for port 5223: ALPN <c>xmpp-client</c>.</summary>
    public SslServerAuthenticationOptions DirectTls { get; }

    /// <summary>Options for <c>Edge:HttpsPort</c>: ALPN <c>http/1.1</c> (the web transports need no HTTP/2).</summary>
    public SslServerAuthenticationOptions Https { get; }

    /// <summary>
    /// Builds the context. <see cref="SslStreamCertificateContext"/> resolves the chain once
    /// (offline: no fetching of intermediates at start-up) instead of once per handshake.
    /// </summary>
    public static TlsServerContext Create(X509Certificate2 certificate, X509Certificate2Collection intermediates, int version) =>
        new(certificate, SslStreamCertificateContext.Create(certificate, intermediates, offline: true), version);

    private static SslServerAuthenticationOptions Options(SslStreamCertificateContext certificateContext, List<SslApplicationProtocol>? alpn) => new()
    {
        ServerCertificateContext = certificateContext,
        // TLS 1.0 and 1.1 are deprecated (RFC 8996); RFC 7590 asks XMPP for TLS 1.2 or later.
        EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
        ClientCertificateRequired = false,
        CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        AllowRenegotiation = false,
        ApplicationProtocols = alpn,
    };
}
