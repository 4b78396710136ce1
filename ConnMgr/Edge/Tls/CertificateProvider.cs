using System.Diagnostics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using ConnMgr.Edge.Transport;
using Microsoft.Extensions.Logging;

namespace ConnMgr.Edge.Tls;

/// <summary>
/// The certificate clients see, as a <see cref="TlsServerContext"/>. Loaded from the configured
/// PEM files, or else from <c>&lt;DataDirectory&gt;/tls/</c>, where a self-signed certificate for
/// the domain is generated on first start and reused afterwards.
/// </summary>
/// <remarks>
/// A replaced certificate is picked up without a restart: the heartbeat compares the files'
/// timestamps and sizes every <see cref="CertificateSettings.ReloadCheckInterval"/> (stat calls
/// only; a file watcher would add a thread and misses replacements through renamed directories,
/// as Kubernetes secrets do). New handshakes get the new context, open connections keep theirs.
/// A pair that fails to load (a renewal caught halfway, certificate written but not the key yet)
/// is logged and the old context stays in use until the files change again.
/// </remarks>
internal sealed partial class CertificateProvider : IHeartbeatHandler
{
    private readonly CertificateSettings _settings;
    private readonly ILogger _logger;
    private readonly string _certificatePath;
    private readonly string? _keyPath;
    private readonly long _checkInterval;
    private TlsServerContext _current;
    private FileStamp _loadedStamp;
    private FileStamp _failedStamp;
    private long _nextCheck;

    public CertificateProvider(CertificateSettings settings, ILogger<CertificateProvider> logger)
    {
        _settings = settings;
        _logger = logger;
        _checkInterval = (long)(settings.ReloadCheckInterval.TotalSeconds * Stopwatch.Frequency);

        if (settings.CertificatePath is null)
        {
            if (settings.KeyPath is not null)
            {
                throw new InvalidOperationException("Tls:KeyPath is set but Tls:CertificatePath is not: set both, or neither for a generated certificate.");
            }
            var directory = Path.Combine(settings.DataDirectory, "tls");
            _certificatePath = Path.Combine(directory, "cert.pem");
            _keyPath = Path.Combine(directory, "key.pem");
            if (!File.Exists(_certificatePath) || !File.Exists(_keyPath))
            {
                SelfSignedCertificate.Generate(settings.Domain, settings.GeneratedValidity, _certificatePath, _keyPath);
                LogGenerated(_certificatePath, settings.Domain);
            }
        }
        else
        {
            _certificatePath = settings.CertificatePath;
            _keyPath = settings.KeyPath;
        }

        _loadedStamp = FileStamp.Of(_certificatePath, _keyPath);
        try
        {
            _current = Load(version: 1);
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException or IOException or UnauthorizedAccessException)
        {
            throw new InvalidOperationException(
                $"Cannot load the TLS certificate (Tls:CertificatePath '{_certificatePath}', Tls:KeyPath '{_keyPath ?? "(in the certificate file)"}'): {e.Message}", e);
        }
    }

    public TlsServerContext Current => Volatile.Read(ref _current);

    public string CertificatePath => _certificatePath;

    public string? KeyPath => _keyPath;

    public void OnHeartbeat(long timestamp)
    {
        if (timestamp < _nextCheck)
        {
            return;
        }
        _nextCheck = timestamp + _checkInterval;
        ReloadIfChanged();
    }

    /// <summary>Loads the files again if they changed since the last load. True when a new context is in use.</summary>
    public bool ReloadIfChanged()
    {
        FileStamp stamp;
        try
        {
            stamp = FileStamp.Of(_certificatePath, _keyPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            LogReloadFailed(e, _certificatePath);
            return false;
        }
        if (stamp == _loadedStamp || stamp == _failedStamp)
        {
            return false;
        }

        try
        {
            var context = Load(Current.Version + 1);
            _loadedStamp = stamp;
            Volatile.Write(ref _current, context);
            return true;
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException or IOException or UnauthorizedAccessException)
        {
            _failedStamp = stamp;
            LogReloadFailed(e, _certificatePath);
            return false;
        }
    }

    private TlsServerContext Load(int version)
    {
        using var fromPem = X509Certificate2.CreateFromPemFile(_certificatePath, _keyPath);
        // CreateFromPemFile gives an ephemeral key. OpenSSL (Linux) uses it as is, but SChannel
        // (Windows) cannot, and it is the documented .NET caveat for SslStream servers; one PKCS#12
        // round trip per load makes the certificate usable everywhere, at start-up cost only.
        var certificate = X509CertificateLoader.LoadPkcs12(fromPem.Export(X509ContentType.Pkcs12), password: null);

        // The leaf is the first certificate of the file; any others are its chain.
        var all = new X509Certificate2Collection();
        all.ImportFromPemFile(_certificatePath);
        var intermediates = new X509Certificate2Collection();
        for (var i = 1; i < all.Count; i++)
        {
            intermediates.Add(all[i]);
        }
        all[0].Dispose();

        if (!certificate.MatchesHostname(_settings.Domain))
        {
            LogDomainMismatch(certificate.Subject, _settings.Domain);
        }
        if (certificate.NotAfter < DateTime.Now)
        {
            LogExpired(certificate.Subject, certificate.NotAfter);
        }
        LogLoaded(certificate.Subject, certificate.Thumbprint, certificate.NotAfter, _certificatePath);
        return TlsServerContext.Create(certificate, intermediates, version);
    }

    [LoggerMessage(EventId = 1100, Level = LogLevel.Information, Message = "TLS certificate {Subject} ({Thumbprint}, valid until {NotAfter}) loaded from {Path}")]
    private partial void LogLoaded(string subject, string thumbprint, DateTime notAfter, string path);

    [LoggerMessage(EventId = 1101, Level = LogLevel.Warning, Message = "Generated a self-signed TLS certificate for {Domain} in {Path}; clients will not trust it until Tls:CertificatePath names a real one")]
    private partial void LogGenerated(string path, string domain);

    [LoggerMessage(EventId = 1102, Level = LogLevel.Warning, Message = "Could not reload the TLS certificate from {Path}; still serving the previous one")]
    private partial void LogReloadFailed(Exception exception, string path);

    [LoggerMessage(EventId = 1103, Level = LogLevel.Warning, Message = "TLS certificate {Subject} does not cover the XMPP domain {Domain}")]
    private partial void LogDomainMismatch(string subject, string domain);

    [LoggerMessage(EventId = 1104, Level = LogLevel.Warning, Message = "TLS certificate {Subject} expired on {NotAfter}")]
    private partial void LogExpired(string subject, DateTime notAfter);

    private readonly record struct FileStamp(DateTime CertificateWritten, long CertificateLength, DateTime KeyWritten, long KeyLength)
    {
        public static FileStamp Of(string certificatePath, string? keyPath)
        {
            var certificate = new FileInfo(certificatePath);
            var key = keyPath is null ? null : new FileInfo(keyPath);
            return new FileStamp(
                certificate.LastWriteTimeUtc,
                certificate.Exists ? certificate.Length : -1,
                key?.LastWriteTimeUtc ?? default,
                key is { Exists: true } ? key.Length : -1);
        }
    }
}
