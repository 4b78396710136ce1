using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace ConnMgr.Edge.Tls;

/// <summary>
/// The certificate the daemon makes for itself when none is configured, so TLS works out of the
/// box: ECDSA P-256 (smaller and faster to handshake than RSA 2048, which every XMPP client
/// supports), for the domain and its subdomains (MUC, upload...), written as PEM.
/// </summary>
internal static class SelfSignedCertificate
{
    private const string ServerAuthenticationOid = "1.3.6.1.5.5.7.3.1";

    private const UnixFileMode PrivateDirectory = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const UnixFileMode PrivateFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode PublicFile = PrivateFile | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    /// <summary>Writes <paramref name="keyPath"/> (mode 0600) and <paramref name="certificatePath"/>.</summary>
    public static void Generate(string domain, TimeSpan validity, string certificatePath, string keyPath)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var name = new X500DistinguishedNameBuilder();
        name.AddCommonName(domain);
        var request = new CertificateRequest(name.Build(), key, HashAlgorithmName.SHA256);

        var subjectAlternativeNames = new SubjectAlternativeNameBuilder();
        if (IPAddress.TryParse(domain, out var address))
        {
            subjectAlternativeNames.AddIpAddress(address);
        }
        else
        {
            subjectAlternativeNames.AddDnsName(domain);
            subjectAlternativeNames.AddDnsName("*." + domain);
        }
        request.CertificateExtensions.Add(subjectAlternativeNames.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: false, hasPathLengthConstraint: false, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(ServerAuthenticationOid)], critical: false));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));

        // A day back: a client whose clock is a little behind must not see "not yet valid".
        var now = DateTimeOffset.UtcNow;
        using var certificate = request.CreateSelfSigned(now.AddDays(-1), now.Add(validity));

        CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(keyPath))!);
        CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(certificatePath))!);
        // Key first: a crash before the certificate is written leaves no certificate, so the next
        // start generates a fresh pair instead of loading a mismatched one.
        WriteAtomically(keyPath, key.ExportPkcs8PrivateKeyPem() + "\n", PrivateFile);
        WriteAtomically(certificatePath, certificate.ExportCertificatePem() + "\n", PublicFile);
    }

    private static void CreateDirectory(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(path);
        }
        else
        {
            Directory.CreateDirectory(path, PrivateDirectory);
        }
    }

    /// <summary>Write to a temporary file created with its final mode, then rename over the target.</summary>
    private static void WriteAtomically(string path, string content, UnixFileMode mode)
    {
        var temporary = path + ".tmp";
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = mode;
        }
        using (var writer = new StreamWriter(temporary, System.Text.Encoding.ASCII, options))
        {
            writer.Write(content);
        }
        if (!OperatingSystem.IsWindows())
        {
            // UnixCreateMode only applies to a new file; a stale temporary file keeps its mode.
            File.SetUnixFileMode(temporary, mode);
        }
        File.Move(temporary, path, overwrite: true);
    }
}
