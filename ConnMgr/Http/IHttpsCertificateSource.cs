using System.Net.Security;

namespace ConnMgr.Http;

/// <summary>
/// The TLS options for each handshake on <c>Edge:HttpsPort</c>. The edge owns the certificate (one
/// for XMPP and HTTPS, reloaded when its files change), so the HTTP listener asks per handshake
/// rather than keeping a copy.
/// </summary>
internal interface IHttpsCertificateSource
{
    /// <summary>The current options; null while the edge has not loaded a certificate yet.</summary>
    SslServerAuthenticationOptions? HttpsOptions { get; }
}
