using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using ConnMgr.Edge.Tls;
using ConnMgr.Edge.Transport;
using NUnit.Framework;

namespace ConnMgr.Tests.Edge.Transport;

public class TlsTransportTests
{
    private TemporaryDirectory _directory = null!;
    private CertificateProvider _certificates = null!;

    [SetUp]
    public void SetUp()
    {
        _directory = new TemporaryDirectory();
        _certificates = Kit.Certificates(_directory);
    }

    [TearDown]
    public void TearDown() => _directory.Dispose();

    /// <summary>Echoes lines; on "STARTTLS" upgrades (sending "PROCEED") and reports the outcome.</summary>
    private static async Task StartTlsEchoAsync(ClientConnection connection, CancellationToken stopping)
    {
        while (await Kit.ReadLineAsync(connection.Input) is { } line)
        {
            if (line == "STARTTLS")
            {
                if (!await connection.UpgradeToTlsAsync(Kit.Ascii("PROCEED\n")))
                {
                    return;
                }
                continue;
            }
            await connection.Output.WriteAsync(Kit.Ascii($"{line} secure={connection.IsSecure}\n"));
        }
    }

    [Test]
    public async Task StartTls_upgrades_mid_stream_on_the_same_pipes()
    {
        await using var host = TransportHost.Start(StartTlsEchoAsync, certificates: _certificates);
        using var client = await host.ConnectAsync();
        var plain = new NetworkStream(client);

        await plain.WriteAsync(Kit.Ascii("hello\n"));
        Assert.That(await Kit.ReadLineAsync(plain), Is.EqualTo("hello secure=False"));
        await plain.WriteAsync(Kit.Ascii("STARTTLS\n"));
        Assert.That(await Kit.ReadLineAsync(plain), Is.EqualTo("PROCEED"));

        await using var tls = new SslStream(plain, leaveInnerStreamOpen: false);
        await tls.AuthenticateAsClientAsync(ClientOptions(_certificates.Current.Certificate)).WaitAsync(Kit.Timeout);
        await tls.WriteAsync(Kit.Ascii("secret\n"));

        Assert.That(await Kit.ReadLineAsync(tls), Is.EqualTo("secret secure=True"));
        var connection = await host.Handler.NextStartedAsync();
        Assert.That(connection.IsSecure, Is.True);
        Assert.That(connection.CanStartTls, Is.False);
        Assert.That(connection.TlsProtocol, Is.EqualTo(SslProtocols.Tls13).Or.EqualTo(SslProtocols.Tls12));
        Assert.That(connection.NegotiatedApplicationProtocol, Is.EqualTo(default(SslApplicationProtocol)), "no ALPN after STARTTLS");
    }

    [Test]
    public async Task Plaintext_sent_with_starttls_is_refused_not_read_as_encrypted()
    {
        await using var host = TransportHost.Start(StartTlsEchoAsync, certificates: _certificates);
        using var client = await host.ConnectAsync();

        // One write: the injected line sits in the input pipe when the upgrade is asked for.
        await client.SendAsync(Kit.Ascii("STARTTLS\ninjected\n"));
        var received = await Kit.ReadToEndAsync(client);
        var connection = await host.Handler.NextFinishedAsync();

        Assert.That(received, Is.Empty, "no <proceed/> was sent");
        Assert.That(connection.CloseReason, Is.EqualTo(CloseReason.ProtocolError));
        Assert.That(connection.IsSecure, Is.False);
    }

    [Test]
    public async Task Garbage_instead_of_a_ClientHello_fails_the_upgrade()
    {
        await using var host = TransportHost.Start(StartTlsEchoAsync, certificates: _certificates);
        using var client = await host.ConnectAsync();
        var plain = new NetworkStream(client);
        await plain.WriteAsync(Kit.Ascii("STARTTLS\n"));
        Assert.That(await Kit.ReadLineAsync(plain), Is.EqualTo("PROCEED"));

        await plain.WriteAsync(Kit.Ascii("<iq type='get'/>\n"));
        var connection = await host.Handler.NextFinishedAsync();

        Assert.That(connection.CloseReason, Is.EqualTo(CloseReason.TlsFailed));
    }

    [Test]
    public async Task A_client_silent_after_proceed_is_cut_by_the_handshake_timeout()
    {
        await using var host = TransportHost.Start(StartTlsEchoAsync, certificates: _certificates);
        using var client = await host.ConnectAsync();
        var plain = new NetworkStream(client);
        await plain.WriteAsync(Kit.Ascii("STARTTLS\n"));
        Assert.That(await Kit.ReadLineAsync(plain), Is.EqualTo("PROCEED"));

        host.Tick(TimeSpan.FromSeconds(11));
        var connection = await host.Handler.NextFinishedAsync();

        Assert.That(connection.CloseReason, Is.EqualTo(CloseReason.HandshakeTimeout));
    }

    [Test]
    public async Task DirectTls_negotiates_alpn_xmpp_client_before_the_handler_runs()
    {
        await using var host = TransportHost.Start(StartTlsEchoAsync, kind: TransportKind.DirectTls, certificates: _certificates);
        using var client = await host.ConnectAsync();
        await using var tls = new SslStream(new NetworkStream(client), leaveInnerStreamOpen: false);
        var options = ClientOptions(_certificates.Current.Certificate);
        options.ApplicationProtocols = [TlsServerContext.XmppClient];

        await tls.AuthenticateAsClientAsync(options).WaitAsync(Kit.Timeout);
        await tls.WriteAsync(Kit.Ascii("hi\n"));

        Assert.That(await Kit.ReadLineAsync(tls), Is.EqualTo("hi secure=True"));
        Assert.That(tls.NegotiatedApplicationProtocol, Is.EqualTo(TlsServerContext.XmppClient));
        var connection = await host.Handler.NextStartedAsync();
        Assert.That(connection.Transport, Is.EqualTo(TransportKind.DirectTls));
        Assert.That(connection.NegotiatedApplicationProtocol, Is.EqualTo(TlsServerContext.XmppClient));
        Assert.That(connection.CanStartTls, Is.False);
    }

    [TestCase(0x0301, TestName = "TLS 1.0 is refused")]
    [TestCase(0x0302, TestName = "TLS 1.1 is refused")]
    public async Task Old_protocol_versions_are_refused(int version)
    {
        await using var host = TransportHost.Start(StartTlsEchoAsync, kind: TransportKind.DirectTls, certificates: _certificates);

        var refused = await HandshakeReplyAsync(host, ClientHello((ushort)version));
        var accepted = await HandshakeReplyAsync(host, ClientHello(0x0303));

        Assert.That(accepted[0], Is.EqualTo(0x16), "control: the same hello as TLS 1.2 gets a ServerHello");
        // Either an alert or a bare close; never a ServerHello.
        if (refused.Length > 0)
        {
            Assert.That(refused[0], Is.EqualTo(0x15), "an alert, not a ServerHello");
            Assert.That(refused[^1], Is.EqualTo(70), "protocol_version alert (RFC 8446 section 6)");
        }
        Assert.That(host.Handler.StartedCount, Is.Zero);
    }

    [Test]
    public async Task A_silent_DirectTls_client_is_cut_by_the_handshake_timeout()
    {
        await using var host = TransportHost.Start(StartTlsEchoAsync, kind: TransportKind.DirectTls, certificates: _certificates);
        using var client = await host.ConnectAsync();
        Assert.That(await Kit.EventuallyAsync(() => host.Transport.GetConnections() is [{ HasDeadline: true }]), Is.True, "handshake under way");
        var connection = host.Transport.GetConnections()[0];

        host.Tick(TimeSpan.FromSeconds(5));
        Assert.That(connection.CloseReason, Is.EqualTo(CloseReason.None), "within the 10 s allowed");
        host.Tick(TimeSpan.FromSeconds(11));

        Assert.That(await Kit.ReadToEndAsync(client), Is.Empty);
        Assert.That(connection.CloseReason, Is.EqualTo(CloseReason.HandshakeTimeout));
        Assert.That(host.Handler.StartedCount, Is.Zero);
    }

    [Test]
    public async Task A_replaced_certificate_serves_new_handshakes_while_open_connections_keep_theirs()
    {
        await using var host = TransportHost.Start(StartTlsEchoAsync, kind: TransportKind.DirectTls, certificates: _certificates);
        var original = _certificates.Current.Certificate;
        await using var before = await ConnectTlsAsync(host, original);

        SelfSignedCertificate.Generate("localhost", TimeSpan.FromDays(30), _certificates.CertificatePath, _certificates.KeyPath!);
        Assert.That(_certificates.ReloadIfChanged(), Is.True);
        var replacement = _certificates.Current.Certificate;
        await using var after = await ConnectTlsAsync(host, replacement);

        Assert.That(replacement.Thumbprint, Is.Not.EqualTo(original.Thumbprint));
        await before.WriteAsync(Kit.Ascii("old\n"));
        Assert.That(await Kit.ReadLineAsync(before), Is.EqualTo("old secure=True"));
        Assert.That(before.RemoteCertificate!.GetCertHashString(), Is.EqualTo(original.Thumbprint));
        Assert.That(after.RemoteCertificate!.GetCertHashString(), Is.EqualTo(replacement.Thumbprint));
    }

    private static async Task<SslStream> ConnectTlsAsync(TransportHost host, X509Certificate2 expected)
    {
        var client = await host.ConnectAsync();
        var tls = new SslStream(new NetworkStream(client, ownsSocket: true), leaveInnerStreamOpen: false);
        await tls.AuthenticateAsClientAsync(ClientOptions(expected)).WaitAsync(Kit.Timeout);
        return tls;
    }

    /// <summary>Trusts exactly the expected certificate (it is self-signed).</summary>
    private static SslClientAuthenticationOptions ClientOptions(X509Certificate2 expected) => new()
    {
        TargetHost = "localhost",
        RemoteCertificateValidationCallback = (_, certificate, _, _) => certificate?.GetCertHashString() == expected.Thumbprint,
    };

    private static async Task<byte[]> HandshakeReplyAsync(TransportHost host, byte[] clientHello)
    {
        using var client = await host.ConnectAsync();
        await client.SendAsync(clientHello);
        var reply = new byte[5];
        var header = await client.ReceiveAsync(reply.AsMemory()).AsTask().WaitAsync(Kit.Timeout);
        if (header == 0)
        {
            return [];
        }
        // First record only: header (5 bytes) and its body.
        while (header < 5)
        {
            header += await client.ReceiveAsync(reply.AsMemory(header)).AsTask().WaitAsync(Kit.Timeout);
        }
        var body = new byte[(reply[3] << 8) | reply[4]];
        var read = 0;
        while (read < body.Length)
        {
            var count = await client.ReceiveAsync(body.AsMemory(read)).AsTask().WaitAsync(Kit.Timeout);
            if (count == 0)
            {
                break;
            }
            read += count;
        }
        return [.. reply, .. body[..read]];
    }

    /// <summary>
    /// A minimal ClientHello (RFC 5246 section 7.4.1.2) offering ECDHE-ECDSA suites on P-256 and
    /// no supported_versions extension, so <paramref name="version"/> is the only version offered.
    /// </summary>
    private static byte[] ClientHello(ushort version)
    {
        byte[] extensions =
        [
            0x00, 0x0a, 0x00, 0x04, 0x00, 0x02, 0x00, 0x17,   // supported_groups: secp256r1
            0x00, 0x0b, 0x00, 0x02, 0x01, 0x00,               // ec_point_formats: uncompressed
            0x00, 0x0d, 0x00, 0x04, 0x00, 0x02, 0x04, 0x03,   // signature_algorithms: ecdsa_secp256r1_sha256
        ];
        byte[] suites = [0xc0, 0x2b, 0xc0, 0x09, 0xc0, 0x0a]; // ECDHE_ECDSA with AES_128_GCM_SHA256, AES_128_CBC_SHA, AES_256_CBC_SHA
        byte[] body =
        [
            (byte)(version >> 8), (byte)version,
            .. RandomNumberGenerator.GetBytes(32),
            0x00,                                               // no session id
            0x00, (byte)suites.Length, .. suites,
            0x01, 0x00,                                         // null compression
            0x00, (byte)extensions.Length, .. extensions,
        ];
        byte[] handshake = [0x01, 0x00, (byte)(body.Length >> 8), (byte)body.Length, .. body];
        return [0x16, 0x03, 0x01, (byte)(handshake.Length >> 8), (byte)handshake.Length, .. handshake];
    }
}
