using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace ConnMgr.Tests.OpenfireDouble;

/// <summary>Self-signed server certificates made in-process, one per domain for the test run (P-256 keys are cheap to make).</summary>
internal static class DoubleCertificate
{
    private static readonly ConcurrentDictionary<string, Lazy<X509Certificate2>> s_byDomain = new(StringComparer.OrdinalIgnoreCase);

    public static X509Certificate2 For(string domain) =>
        s_byDomain.GetOrAdd(domain, d => new Lazy<X509Certificate2>(() => Create(d))).Value;

    private static X509Certificate2 Create(string domain)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={domain}", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName(domain);
        names.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        using X509Certificate2 ephemeral = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));

        // Round-trip through PKCS#12 so that the private key is usable by SslStream on every platform.
        return X509CertificateLoader.LoadPkcs12(ephemeral.Export(X509ContentType.Pkcs12), null);
    }
}
