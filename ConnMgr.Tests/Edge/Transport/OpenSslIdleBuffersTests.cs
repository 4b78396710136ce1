using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using ConnMgr.Edge.Tls;
using ConnMgr.Edge.Transport;
using Microsoft.Extensions.Logging.Abstractions;
using NUnit.Framework;

namespace ConnMgr.Tests.Edge.Transport;

/// <summary>
/// SSL_MODE_RELEASE_BUFFERS reaches OpenSSL on this runtime (see <see cref="OpenSslIdleBuffers"/>),
/// and TLS still carries data, records of every size, once the buffers come and go.
/// </summary>
[Platform("Linux")]
public class OpenSslIdleBuffersTests
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

    [Test]
    public async Task The_mode_is_off_after_a_plain_handshake_and_on_after_TryEnable()
    {
        var (server, client) = await HandshakeAsync();
        await using (server)
        await using (client)
        {
            Assert.That(OpenSslIdleBuffers.IsEnabled(server, NullLogger.Instance), Is.False, ".NET does not set it by itself");
            Assert.That(OpenSslIdleBuffers.TryEnable(server, NullLogger.Instance), Is.True, OpenSslIdleBuffers.Unavailable);
            Assert.That(OpenSslIdleBuffers.IsEnabled(server, NullLogger.Instance), Is.True);
            Assert.That(OpenSslIdleBuffers.IsEnabled(client, NullLogger.Instance), Is.False, "only the stream it was set on");

            // Both directions, past one 16 KiB record, then small again: buffers freed and re-allocated.
            foreach (var size in new[] { 1, 70_000, 5 })
            {
                var payload = Payload(size);
                var toServer = client.WriteAsync(payload).AsTask();
                Assert.That(await ReadExactlyAsync(server, size), Is.EqualTo(payload));
                await toServer;
                await server.WriteAsync(payload);
                Assert.That(await ReadExactlyAsync(client, size), Is.EqualTo(payload));
            }
        }
    }

    [Test]
    public async Task A_stream_without_a_live_ssl_is_skipped_without_turning_the_feature_off()
    {
        await using var unauthenticated = new SslStream(new MemoryStream());
        var (server, client) = await HandshakeAsync();
        await client.DisposeAsync();
        await server.DisposeAsync();

        Assert.That(OpenSslIdleBuffers.TryEnable(unauthenticated, NullLogger.Instance), Is.False);
        Assert.That(OpenSslIdleBuffers.TryEnable(server, NullLogger.Instance), Is.False, "closed after its handshake");
        Assert.That(OpenSslIdleBuffers.Unavailable, Is.Null);

        var (next, nextClient) = await HandshakeAsync();
        await using (next)
        await using (nextClient)
        {
            Assert.That(OpenSslIdleBuffers.TryEnable(next, NullLogger.Instance), Is.True, OpenSslIdleBuffers.Unavailable);
        }
    }

    [Test]
    public async Task A_DirectTls_connection_gets_the_mode_and_echoes_large_writes()
    {
        await using var host = TransportHost.Start(EchoAsync, kind: TransportKind.DirectTls, certificates: _certificates);
        var socket = await host.ConnectAsync();
        await using var tls = new SslStream(new NetworkStream(socket, ownsSocket: true), leaveInnerStreamOpen: false);
        await tls.AuthenticateAsClientAsync(ClientOptions(_certificates.Current.Certificate)).WaitAsync(Kit.Timeout);
        var connection = await host.Handler.NextStartedAsync();

        Assert.That(connection.IdleTlsBuffersReleased, Is.True, OpenSslIdleBuffers.Unavailable);
        foreach (var size in new[] { 40_000, 3 })
        {
            var payload = Payload(size);
            await tls.WriteAsync(payload);
            Assert.That(await ReadExactlyAsync(tls, size), Is.EqualTo(payload));
        }
    }

    [Test]
    public async Task A_StartTls_connection_gets_the_mode_too()
    {
        await using var host = TransportHost.Start(StartTlsThenEchoAsync, certificates: _certificates);
        var socket = await host.ConnectAsync();
        var plain = new NetworkStream(socket, ownsSocket: true);
        await plain.WriteAsync(Kit.Ascii("STARTTLS\n"));
        Assert.That(await Kit.ReadLineAsync(plain), Is.EqualTo("PROCEED"));
        await using var tls = new SslStream(plain, leaveInnerStreamOpen: false);
        await tls.AuthenticateAsClientAsync(ClientOptions(_certificates.Current.Certificate)).WaitAsync(Kit.Timeout);
        var connection = await host.Handler.NextStartedAsync();

        var payload = Payload(20_000);
        await tls.WriteAsync(payload);
        Assert.That(await ReadExactlyAsync(tls, payload.Length), Is.EqualTo(payload));
        Assert.That(connection.IsSecure, Is.True);
        Assert.That(connection.IdleTlsBuffersReleased, Is.True, OpenSslIdleBuffers.Unavailable);
    }

    private static async Task EchoAsync(ClientConnection connection, CancellationToken stopping)
    {
        while (true)
        {
            var result = await connection.Input.ReadAsync(stopping);
            foreach (var segment in result.Buffer)
            {
                await connection.Output.WriteAsync(segment, stopping);
            }
            connection.Input.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted)
            {
                return;
            }
        }
    }

    private static async Task StartTlsThenEchoAsync(ClientConnection connection, CancellationToken stopping)
    {
        if (await Kit.ReadLineAsync(connection.Input) == "STARTTLS" && await connection.UpgradeToTlsAsync(Kit.Ascii("PROCEED\n"), stopping))
        {
            await EchoAsync(connection, stopping);
        }
    }

    private async Task<(SslStream Server, SslStream Client)> HandshakeAsync()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var clientSocket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await clientSocket.ConnectAsync(listener.LocalEndPoint!).WaitAsync(Kit.Timeout);
        var serverSocket = await listener.AcceptAsync().WaitAsync(Kit.Timeout);

        var server = new SslStream(new NetworkStream(serverSocket, ownsSocket: true), leaveInnerStreamOpen: false);
        var client = new SslStream(new NetworkStream(clientSocket, ownsSocket: true), leaveInnerStreamOpen: false);
        await Task.WhenAll(
            server.AuthenticateAsServerAsync(_certificates.Current.DirectTls, CancellationToken.None),
            client.AuthenticateAsClientAsync(ClientOptions(_certificates.Current.Certificate))).WaitAsync(Kit.Timeout);
        return (server, client);
    }

    private static byte[] Payload(int size)
    {
        var payload = new byte[size];
        for (var i = 0; i < size; i++)
        {
            payload[i] = (byte)('a' + (i % 26));
        }
        return payload;
    }

    private static async Task<byte[]> ReadExactlyAsync(Stream stream, int size)
    {
        var buffer = new byte[size];
        await stream.ReadExactlyAsync(buffer).AsTask().WaitAsync(Kit.Timeout);
        return buffer;
    }

    /// <summary>Trusts exactly the expected certificate (it is self-signed).</summary>
    private static SslClientAuthenticationOptions ClientOptions(X509Certificate2 expected) => new()
    {
        TargetHost = "localhost",
        ApplicationProtocols = [TlsServerContext.XmppClient],
        RemoteCertificateValidationCallback = (_, certificate, _, _) => certificate?.GetCertHashString() == expected.Thumbprint,
    };
}
