namespace ConnMgr.Edge.Tls;

/// <summary>
/// Where the client certificate comes from, filled by the composition root from <c>Xmpp:Domain</c>,
/// <c>DataDirectory</c>, <c>Tls:CertificatePath</c> and <c>Tls:KeyPath</c>.
/// </summary>
internal sealed record CertificateSettings(string Domain, string DataDirectory)
{
    /// <summary>PEM certificate, optionally followed by its intermediates. Unset: a generated self-signed one.</summary>
    public string? CertificatePath { get; init; }

    /// <summary>PEM private key. Unset with a certificate path: the key is read from the certificate file.</summary>
    public string? KeyPath { get; init; }

    /// <summary>
    /// How often the files' timestamps are compared (from the heartbeat): a replaced certificate
    /// (a renewal) is served within this long, with no restart.
    /// </summary>
    public TimeSpan ReloadCheckInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Validity of a generated certificate.</summary>
    public TimeSpan GeneratedValidity { get; init; } = TimeSpan.FromDays(5 * 365);
}
