using System.Security.Cryptography.X509Certificates;
using ConnMgr.Edge.Tls;
using Microsoft.Extensions.Logging.Abstractions;
using NUnit.Framework;

namespace ConnMgr.Tests.Edge.Transport;

public class CertificateProviderTests
{
    [Test]
    public void Generates_a_certificate_once_and_reuses_it_on_the_next_start()
    {
        using var directory = new TemporaryDirectory();

        var first = Kit.Certificates(directory).Current.Certificate;
        var second = Kit.Certificates(directory).Current.Certificate;

        Assert.That(second.Thumbprint, Is.EqualTo(first.Thumbprint));
        Assert.That(File.Exists(Path.Combine(directory.Path, "tls", "cert.pem")), Is.True);
        Assert.That(first.HasPrivateKey, Is.True);
    }

    [Test]
    public void The_generated_certificate_covers_the_domain_and_its_subdomains_and_its_key_is_private()
    {
        using var directory = new TemporaryDirectory();
        var certificate = new CertificateProvider(new CertificateSettings("chat.example", directory.Path), NullLogger<CertificateProvider>.Instance)
            .Current.Certificate;

        Assert.That(certificate.MatchesHostname("chat.example"), Is.True);
        Assert.That(certificate.MatchesHostname("conference.chat.example"), Is.True);
        Assert.That(certificate.MatchesHostname("other.example"), Is.False);
        Assert.That(certificate.NotAfter - certificate.NotBefore, Is.GreaterThan(TimeSpan.FromDays(365)).And.LessThan(TimeSpan.FromDays(3650)));
        Assert.That(certificate.Extensions.OfType<X509EnhancedKeyUsageExtension>().Single().EnhancedKeyUsages[0].Value, Is.EqualTo("1.3.6.1.5.5.7.3.1"));
        if (!OperatingSystem.IsWindows())
        {
            Assert.That(File.GetUnixFileMode(Path.Combine(directory.Path, "tls", "key.pem")), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite));
        }
    }

    [Test]
    public void Picks_up_a_replaced_certificate_from_the_heartbeat()
    {
        using var directory = new TemporaryDirectory();
        var provider = Kit.Certificates(directory);
        var original = provider.Current;

        provider.OnHeartbeat(1);
        Assert.That(provider.Current, Is.SameAs(original), "files unchanged");

        SelfSignedCertificate.Generate("localhost", TimeSpan.FromDays(90), provider.CertificatePath, provider.KeyPath!);
        provider.OnHeartbeat(2);
        Assert.That(provider.Current, Is.SameAs(original), "the next check is a whole interval later");

        provider.OnHeartbeat(2 + (long)(11 * System.Diagnostics.Stopwatch.Frequency));
        Assert.That(provider.Current.Certificate.Thumbprint, Is.Not.EqualTo(original.Certificate.Thumbprint));
        Assert.That(provider.Current.Version, Is.EqualTo(original.Version + 1));
    }

    [Test]
    public void A_half_replaced_pair_keeps_the_previous_certificate()
    {
        using var directory = new TemporaryDirectory();
        using var other = new TemporaryDirectory();
        var provider = Kit.Certificates(directory);
        var original = provider.Current;

        // A renewal caught halfway: the new certificate is in place, its key is not yet.
        var elsewhere = Kit.Certificates(other);
        File.Copy(elsewhere.CertificatePath, provider.CertificatePath, overwrite: true);

        Assert.That(provider.ReloadIfChanged(), Is.False);
        Assert.That(provider.Current, Is.SameAs(original));

        File.Copy(elsewhere.KeyPath!, provider.KeyPath!, overwrite: true);
        Assert.That(provider.ReloadIfChanged(), Is.True, "the renewal completes");
        Assert.That(provider.Current.Certificate.Thumbprint, Is.EqualTo(elsewhere.Current.Certificate.Thumbprint));
    }

    [Test]
    public void Loads_configured_pem_files_with_the_key_in_the_certificate_file()
    {
        using var directory = new TemporaryDirectory();
        var generated = Kit.Certificates(directory);
        var combined = Path.Combine(directory.Path, "combined.pem");
        File.WriteAllText(combined, File.ReadAllText(generated.CertificatePath) + File.ReadAllText(generated.KeyPath!));

        var provider = new CertificateProvider(
            new CertificateSettings("localhost", directory.Path) { CertificatePath = combined },
            NullLogger<CertificateProvider>.Instance);

        Assert.That(provider.Current.Certificate.Thumbprint, Is.EqualTo(generated.Current.Certificate.Thumbprint));
        Assert.That(provider.Current.Certificate.HasPrivateKey, Is.True);
    }

    [Test]
    public void A_missing_configured_file_fails_with_a_message_naming_the_keys()
    {
        using var directory = new TemporaryDirectory();
        var settings = new CertificateSettings("localhost", directory.Path)
        {
            CertificatePath = Path.Combine(directory.Path, "missing.pem"),
            KeyPath = Path.Combine(directory.Path, "missing.key"),
        };

        var error = Assert.Throws<InvalidOperationException>(() => new CertificateProvider(settings, NullLogger<CertificateProvider>.Instance));

        Assert.That(error!.Message, Does.Contain("Tls:CertificatePath").And.Contain("missing.pem"));
    }

    [Test]
    public void A_key_path_without_a_certificate_path_is_refused()
    {
        using var directory = new TemporaryDirectory();
        var settings = new CertificateSettings("localhost", directory.Path) { KeyPath = "key.pem" };

        var error = Assert.Throws<InvalidOperationException>(() => new CertificateProvider(settings, NullLogger<CertificateProvider>.Instance));

        Assert.That(error!.Message, Does.Contain("Tls:KeyPath"));
    }
}
