using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace ConnMgr.Options;

/// <summary>Section <c>Tls</c>: the certificate clients see.</summary>
internal sealed class TlsOptions : SectionOptions
{
    internal const string Section = "Tls";

    internal override string? SectionName => Section;

    /// <summary>
    /// <c>Tls:CertificatePath</c>: PEM file with the server certificate, followed by
    /// its intermediates. Relative paths start at the current directory. Default
    /// unset: a self-signed certificate for <c>Xmpp:Domain</c> is generated in
    /// <c>DataDirectory</c>. Set together with <see cref="KeyPath"/>.
    /// </summary>
    public string? CertificatePath { get; set; }

    /// <summary><c>Tls:KeyPath</c>: PEM file with the certificate's unencrypted private key. Default unset.</summary>
    public string? KeyPath { get; set; }

    /// <summary>True when the operator supplies the certificate (both paths set).</summary>
    public bool HasCertificate => !string.IsNullOrEmpty(CertificatePath) && !string.IsNullOrEmpty(KeyPath);
}

internal sealed class TlsOptionsValidator : SectionValidator<TlsOptions>
{
    protected override void Check(TlsOptions o, List<string> failures)
    {
        string certKey = o.Key(nameof(o.CertificatePath));
        string keyKey = o.Key(nameof(o.KeyPath));
        bool hasCert = !string.IsNullOrEmpty(o.CertificatePath);
        bool hasKey = !string.IsNullOrEmpty(o.KeyPath);
        if (hasCert != hasKey)
        {
            failures.Add(hasCert
                ? $"{keyKey} must be set when {certKey} is set (both or neither)"
                : $"{certKey} must be set when {keyKey} is set (both or neither)");
            return;
        }
        if (!hasCert)
        {
            return;
        }
        bool found = FileExists(failures, certKey, o.CertificatePath!) & FileExists(failures, keyKey, o.KeyPath!);
        if (!found)
        {
            return;
        }
        try
        {
            // Loaded here so that a wrong or mismatched file stops start-up with the
            // key's name, instead of failing the first client's TLS handshake.
            using X509Certificate2 certificate = X509Certificate2.CreateFromPemFile(o.CertificatePath!, o.KeyPath!);
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException or IOException or UnauthorizedAccessException)
        {
            failures.Add($"{certKey} and {keyKey} must be a PEM certificate and its unencrypted private key "
                + $"({Path.GetFullPath(o.CertificatePath!)}, {Path.GetFullPath(o.KeyPath!)}): {e.Message}");
        }
    }

    private static bool FileExists(List<string> failures, string key, string path)
    {
        if (File.Exists(path))
        {
            return true;
        }
        failures.Add($"{key} must name an existing file ({Path.GetFullPath(path)} not found)");
        return false;
    }
}
