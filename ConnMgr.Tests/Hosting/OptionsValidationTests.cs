using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using ConnMgr.Hosting;
using ConnMgr.Options;
using NUnit.Framework;

namespace ConnMgr.Tests.Hosting;

public class OptionsValidationTests
{
    private TempDirectory _dir = null!;

    [SetUp]
    public void SetUp() => _dir = new TempDirectory();

    [TearDown]
    public void TearDown() => _dir.Dispose();

    [TestCase("Xmpp:Domain", "Example.com", "Xmpp:Domain must be a lowercase domain name")]
    [TestCase("Xmpp:Domain", "a..b", "(got \"a..b\")")]
    [TestCase("Xmpp:Domain", "-a.example", "Xmpp:Domain must be a lowercase domain name")]
    [TestCase("Xmpp:Domain", "a_b.example", "Xmpp:Domain must be a lowercase domain name")]
    [TestCase("Xmpp:Domain", "", "Xmpp:Domain must be a lowercase domain name")]
    [TestCase("Xmpp:Domain", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example", "Xmpp:Domain must be a lowercase domain name")]
    [TestCase("DataDirectory", " ", "DataDirectory must be a directory path")]
    [TestCase("DataDirectory", "\0x", "DataDirectory contains a character not allowed in a path")]
    [TestCase("Edge:Enabled", "yes", "Edge:Enabled must be true or false (got \"yes\")")]
    [TestCase("Edge:Name", "Bad_Name", "Edge:Name must be 1 to 40 characters of a-z, 0-9, '.' and '-', in dot-separated labels that neither are empty nor start or end with '-' (got \"Bad_Name\")")]
    [TestCase("Edge:Name", "", "Edge:Name must be 1 to 40 characters")]
    [TestCase("Edge:Name", "edge-", "Edge:Name must be 1 to 40 characters")]
    [TestCase("Edge:Name", "edge..one", "Edge:Name must be 1 to 40 characters")]
    [TestCase("Edge:Name", "a-name-of-forty-one-characters-is-too-lon", "Edge:Name must be 1 to 40 characters")]
    [TestCase("Edge:ListenAddress", "localhost", "Edge:ListenAddress must be an IPv4 or IPv6 address")]
    [TestCase("Edge:ClientPort", "0", "Edge:ClientPort must be between 1 and 65535 (got 0)")]
    [TestCase("Edge:ClientPort", "65536", "Edge:ClientPort must be between 1 and 65535 (got 65536)")]
    [TestCase("Edge:ClientPort", "abc", "Edge:ClientPort must be an integer (got \"abc\")")]
    [TestCase("Edge:DirectTlsPort", "-1", "Edge:DirectTlsPort must be between 1 and 65535, or 0 to turn it off (got -1)")]
    [TestCase("Edge:HttpPort", "70000", "Edge:HttpPort must be between 1 and 65535, or 0 to turn it off (got 70000)")]
    [TestCase("Edge:HttpsPort", "-5", "Edge:HttpsPort must be between 1 and 65535, or 0 to turn it off (got -5)")]
    [TestCase("Edge:HttpsPort", "5280", "Edge:HttpsPort must differ from Edge:HttpPort (both are 5280)")]
    [TestCase("Edge:MaxStanzaBytes", "1023", "Edge:MaxStanzaBytes must be between 1024 and 1000000 (got 1023)")]
    [TestCase("Edge:MaxStanzaBytes", "1048576", "Edge:MaxStanzaBytes must be between 1024 and 1000000 (got 1048576)")]
    [TestCase("Edge:NegotiationTimeoutSeconds", "0", "Edge:NegotiationTimeoutSeconds must be between 1 and 3600 (got 0)")]
    [TestCase("Edge:IdleTimeoutSeconds", "5", "Edge:IdleTimeoutSeconds must be between 10 and 86400, or 0 for never (got 5)")]
    [TestCase("Edge:MaxConnections", "0", "Edge:MaxConnections must be between 1 and 10000000 (got 0)")]
    [TestCase("Edge:MaxUnauthenticatedPerIp", "-1", "Edge:MaxUnauthenticatedPerIp must be between 0 and 10000000 (got -1)")]
    [TestCase("Edge:ClientRateBytesPerSecond", "100", "Edge:ClientRateBytesPerSecond must be at least 1024, or 0 for no limit (got 100)")]
    [TestCase("Edge:MaxPendingOutputBytes", "65536", "Edge:MaxPendingOutputBytes must be between 1048576 and 1073741824 (got 65536)")]
    [TestCase("Edge:ProxyProtocol", "maybe", "Edge:ProxyProtocol must be true or false (got \"maybe\")")]
    [TestCase("Edge:ShutdownDrainSeconds", "301", "Edge:ShutdownDrainSeconds must be between 0 and 300 (got 301)")]
    [TestCase("Upstream:Host", "bad host!", "Upstream:Host must be a host name or an IP address (got \"bad host!\")")]
    [TestCase("Upstream:Port", "0", "Upstream:Port must be between 1 and 65535 (got 0)")]
    [TestCase("Upstream:Links", "0", "Upstream:Links must be between 1 and 64 (got 0)")]
    [TestCase("Upstream:Links", "65", "Upstream:Links must be between 1 and 64 (got 65)")]
    [TestCase("Upstream:Links", "four", "Upstream:Links must be an integer (got \"four\")")]
    [TestCase("Upstream:KeepaliveSeconds", "121", "Upstream:KeepaliveSeconds must be between 1 and 120 (got 121)")]
    [TestCase("Upstream:DeadAfterSeconds", "59", "Upstream:DeadAfterSeconds must be between 60 and 3600 (got 59)")]
    [TestCase("Upstream:Secret", "caf\u00e9", "Upstream:Secret must be printable ASCII")]
    [TestCase("Core:Enabled", "no", "Core:Enabled must be true or false (got \"no\")")]
    [TestCase("Core:Port", "0", "Core:Port must be between 1 and 65535 (got 0)")]
    [TestCase("Core:ListenAddress", "127.0.0", "Core:ListenAddress must be an IPv4 or IPv6 address")]
    [TestCase("Logging:Format", "xml", "Logging:Format must be one of: text, json (got \"xml\")")]
    [TestCase("Logging:Level", "Verbose", "Logging:Level must be one of: trace, debug, information, warning, error, critical, none (got \"Verbose\")")]
    [TestCase("Logging:Level", "7", "Logging:Level must be one of")]
    [TestCase("Testing:EphemeralPorts", "sometimes", "Testing:EphemeralPorts must be true or false (got \"sometimes\")")]
    [TestCase("Tls:CertificatePath", "cert.pem", "Tls:KeyPath must be set when Tls:CertificatePath is set (both or neither)")]
    [TestCase("Tls:KeyPath", "key.pem", "Tls:CertificatePath must be set when Tls:KeyPath is set (both or neither)")]
    public void Bad_value_is_reported_with_its_key(string key, string value, string expected)
    {
        IReadOnlyList<string> failures = Validate($"--{key}={value}");
        Assert.That(failures, Has.Some.Contains(expected));
        Assert.That(failures, Has.Count.EqualTo(1), string.Join("\n", failures));
    }

    [TestCase("Xmpp:Domain", "chat.example.com")]
    [TestCase("Xmpp:Domain", "192.0.2.1")]
    [TestCase("Xmpp:Domain", "xn--bcher-kva.example")]
    [TestCase("Edge:Name", "edge-1.dc2")]
    [TestCase("Edge:ListenAddress", "0.0.0.0")]
    [TestCase("Edge:DirectTlsPort", "0")]
    [TestCase("Edge:HttpPort", "0")]
    [TestCase("Edge:IdleTimeoutSeconds", "0")]
    [TestCase("Edge:ClientRateBytesPerSecond", "0")]
    [TestCase("Edge:MaxUnauthenticatedPerIp", "0")]
    [TestCase("Edge:Enabled", "False")]
    [TestCase("Upstream:Host", "core.internal")]
    [TestCase("Upstream:Host", "::1")]
    [TestCase("Upstream:Secret", "s3cret with spaces")]
    [TestCase("Logging:Format", "JSON")]
    [TestCase("Logging:Level", "debug")]
    public void Good_value_passes(string key, string value)
    {
        Assert.That(Validate($"--{key}={value}"), Is.Empty);
    }

    [Test]
    public void Defaults_are_valid()
    {
        Assert.That(Validate(), Is.Empty);
    }

    [Test]
    public void Every_failure_is_reported_at_once()
    {
        IReadOnlyList<string> failures = Validate("--Upstream:Links=0", "--Edge:ClientPort=x", "--Xmpp:Domain=A", "--Logging:Format=xml", "--Core:Port=0");
        Assert.That(failures, Has.Count.EqualTo(5), string.Join("\n", failures));
    }

    [Test]
    public void Edge_ports_must_differ()
    {
        Assert.That(Validate("--Edge:DirectTlsPort=5222"), Is.EqualTo(new[] { "Edge:DirectTlsPort must differ from Edge:ClientPort (both are 5222)" }));
        Assert.That(Validate("--Edge:HttpPort=5223"), Is.EqualTo(new[] { "Edge:HttpPort must differ from Edge:DirectTlsPort (both are 5223)" }));
    }

    [Test]
    public void Core_port_must_not_clash_with_an_edge_port_when_both_run()
    {
        Assert.That(Validate("--Core:Port=5280"), Is.EqualTo(new[] { "Core:Port must differ from Edge:HttpPort (both are 5280)" }));
        Assert.That(Validate("--Core:Port=5280", "--Edge:HttpPort=0"), Is.Empty, "HTTP off");
        Assert.That(Validate("--Core:Port=5222", "--Edge:Enabled=false"), Is.Empty, "edge off");
        Assert.That(Validate("--Core:Port=5222", "--Core:Enabled=false", "--Upstream:Secret=s"), Is.Empty, "core off");
    }

    [Test]
    public void Secret_is_required_without_the_embedded_core()
    {
        Assert.That(Validate("--Core:Enabled=false"),
            Is.EqualTo(new[] { "Upstream:Secret is required when Core:Enabled is false (use the core's xmpp.multiplex.defaultSecret)" }));
        Assert.That(Validate("--Core:Enabled=false", "--Upstream:Secret=s3cret"), Is.Empty);
    }

    [Test]
    public void Something_must_run()
    {
        Assert.That(Validate("--Core:Enabled=false", "--Edge:Enabled=false"),
            Is.EqualTo(new[] { "Core:Enabled and Edge:Enabled are both false: nothing to run" }));
    }

    [Test]
    public void Data_directory_must_not_be_a_file()
    {
        string file = _dir.File("plain-file");
        File.WriteAllText(file, "");
        Assert.That(Validate("--DataDirectory=" + file), Is.EqualTo(new[] { $"DataDirectory must be a directory, but {file} is a file" }));
    }

    [Test]
    public void Tls_files_must_exist()
    {
        string cert = _dir.File("cert.pem");
        string key = _dir.File("key.pem");
        Assert.That(Validate("--Tls:CertificatePath=" + cert, "--Tls:KeyPath=" + key), Is.EqualTo(new[]
        {
            $"Tls:CertificatePath must name an existing file ({cert} not found)",
            $"Tls:KeyPath must name an existing file ({key} not found)",
        }));
    }

    [Test]
    public void Tls_files_must_hold_a_matching_certificate_and_key()
    {
        (string cert, string key) = WriteCertificate();
        string otherKey = _dir.File("other-key.pem");
        using (RSA other = RSA.Create(2048))
        {
            File.WriteAllText(otherKey, other.ExportPkcs8PrivateKeyPem());
        }
        string garbage = _dir.File("garbage.pem");
        File.WriteAllText(garbage, "not a certificate");

        Assert.That(Validate("--Tls:CertificatePath=" + cert, "--Tls:KeyPath=" + key), Is.Empty);
        Assert.That(Validate("--Tls:CertificatePath=" + cert, "--Tls:KeyPath=" + otherKey),
            Has.One.StartsWith("Tls:CertificatePath and Tls:KeyPath must be a PEM certificate and its unencrypted private key"));
        Assert.That(Validate("--Tls:CertificatePath=" + garbage, "--Tls:KeyPath=" + key),
            Has.One.StartsWith("Tls:CertificatePath and Tls:KeyPath must be a PEM certificate"));
    }

    private (string Cert, string Key) WriteCertificate()
    {
        using RSA rsa = RSA.Create(2048);
        var request = new CertificateRequest("CN=localhost", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        using X509Certificate2 certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        string cert = _dir.File("cert.pem");
        string key = _dir.File("key.pem");
        File.WriteAllText(cert, certificate.ExportCertificatePem());
        File.WriteAllText(key, rsa.ExportPkcs8PrivateKeyPem());
        return (cert, key);
    }

    private IReadOnlyList<string> Validate(params string[] args)
    {
        using var host = DaemonHost.Build(["--DataDirectory=" + _dir.Path, .. args]);
        return StartupValidation.Validate(host.Services);
    }
}
