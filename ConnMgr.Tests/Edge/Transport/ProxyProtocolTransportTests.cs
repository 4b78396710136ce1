using System.Buffers.Binary;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using ConnMgr.Edge.Tls;
using ConnMgr.Edge.Transport;
using NUnit.Framework;

namespace ConnMgr.Tests.Edge.Transport;

public class ProxyProtocolTransportTests
{
    private static readonly TransportSettings WithProxy = new() { ProxyProtocol = true };

    /// <summary>Answers the first line with the client address the connection reports.</summary>
    private static async Task ReportAddressAsync(ClientConnection connection, CancellationToken stopping)
    {
        var line = await Kit.ReadLineAsync(connection.Input);
        await connection.Output.WriteAsync(Kit.Ascii($"{line} from {connection.RemoteEndPoint}\n"));
        await Kit.DrainInputAsync(connection);
    }

    [Test]
    public async Task A_v1_header_and_client_bytes_in_one_segment()
    {
        await using var host = TransportHost.Start(ReportAddressAsync, WithProxy);
        using var client = await host.ConnectAsync();

        await client.SendAsync(Kit.Ascii("PROXY TCP4 203.0.113.7 192.0.2.1 51000 5222\r\nhello\n"));

        Assert.That(await Kit.ReadLineAsync(new NetworkStream(client)), Is.EqualTo("hello from 203.0.113.7:51000"));
    }

    [Test]
    public async Task A_v2_header_then_client_bytes_separately()
    {
        await using var host = TransportHost.Start(ReportAddressAsync, WithProxy);
        using var client = await host.ConnectAsync();

        await client.SendAsync(V2Inet6("2001:db8::7", 40000));
        await Task.Delay(20);
        await client.SendAsync(Kit.Ascii("hello\n"));

        Assert.That(await Kit.ReadLineAsync(new NetworkStream(client)), Is.EqualTo("hello from [2001:db8::7]:40000"));
    }

    [Test]
    public async Task A_v2_LOCAL_header_keeps_the_real_address()
    {
        await using var host = TransportHost.Start(ReportAddressAsync, WithProxy);
        using var client = await host.ConnectAsync();

        await client.SendAsync((byte[])[.. V2Signature, 0x20, 0x00, 0x00, 0x00, .. Kit.Ascii("health\n")]);

        Assert.That(await Kit.ReadLineAsync(new NetworkStream(client)), Is.EqualTo($"health from {client.LocalEndPoint}"));
    }

    [Test]
    public async Task A_malformed_header_closes_the_connection_before_the_handler()
    {
        await using var host = TransportHost.Start(ReportAddressAsync, WithProxy);
        using var client = await host.ConnectAsync();
        Assert.That(await Kit.EventuallyAsync(() => host.Transport.GetConnections().Count == 1), Is.True);
        var connection = host.Transport.GetConnections()[0];

        await client.SendAsync(Kit.Ascii("<?xml version='1.0'?><stream:stream to='localhost'>"));

        Assert.That(await Kit.ReadToEndAsync(client), Is.Empty);
        Assert.That(connection.CloseReason, Is.EqualTo(CloseReason.ProtocolError));
        Assert.That(host.Handler.StartedCount, Is.Zero);
    }

    [Test]
    public async Task A_missing_header_times_out()
    {
        await using var host = TransportHost.Start(ReportAddressAsync, WithProxy);
        using var client = await host.ConnectAsync();
        Assert.That(await Kit.EventuallyAsync(() => host.Transport.GetConnections() is [{ HasDeadline: true }]), Is.True);
        var connection = host.Transport.GetConnections()[0];

        host.Tick(TimeSpan.FromSeconds(6));

        Assert.That(await Kit.ReadToEndAsync(client), Is.Empty);
        Assert.That(connection.CloseReason, Is.EqualTo(CloseReason.HandshakeTimeout));
    }

    [Test]
    public async Task Without_the_setting_a_header_is_just_client_bytes()
    {
        await using var host = TransportHost.Start(ReportAddressAsync);
        using var client = await host.ConnectAsync();

        await client.SendAsync(Kit.Ascii("PROXY TCP4 203.0.113.7 192.0.2.1 51000 5222\r\n"));

        Assert.That(await Kit.ReadLineAsync(new NetworkStream(client)),
            Is.EqualTo($"PROXY TCP4 203.0.113.7 192.0.2.1 51000 5222\r from {client.LocalEndPoint}"));
    }

    [Test]
    public async Task DirectTls_behind_a_proxy_whose_header_shares_a_segment_with_the_ClientHello()
    {
        using var directory = new TemporaryDirectory();
        var certificates = Kit.Certificates(directory);
        await using var host = TransportHost.Start(ReportAddressAsync, WithProxy, TransportKind.DirectTls, certificates);
        using var client = await host.ConnectAsync();
        var header = V2Inet6("2001:db8::9", 41000);
        await using var tls = new SslStream(new FirstWritePrefixStream(new NetworkStream(client), header));

        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            ApplicationProtocols = [TlsServerContext.XmppClient],
            RemoteCertificateValidationCallback = (_, certificate, _, _) =>
                certificate?.GetCertHashString() == certificates.Current.Certificate.Thumbprint,
        }).WaitAsync(Kit.Timeout);
        await tls.WriteAsync(Kit.Ascii("hello\n"));

        Assert.That(await Kit.ReadLineAsync(tls), Is.EqualTo("hello from [2001:db8::9]:41000"));
    }

    private static readonly byte[] V2Signature = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A];

    private static byte[] V2Inet6(string source, ushort port)
    {
        var ports = new byte[4];
        BinaryPrimitives.WriteUInt16BigEndian(ports, port);
        BinaryPrimitives.WriteUInt16BigEndian(ports.AsSpan(2), 5223);
        byte[] block = [.. IPAddress.Parse(source).GetAddressBytes(), .. IPAddress.Parse("2001:db8::1").GetAddressBytes(), .. ports];
        return [.. V2Signature, 0x21, 0x21, 0x00, (byte)block.Length, .. block];
    }

    /// <summary>Puts the PROXY header in front of the first write (the ClientHello), in one send.</summary>
    private sealed class FirstWritePrefixStream(Stream inner, byte[] prefix) : Stream
    {
        private byte[]? _prefix = prefix;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (_prefix is { } prefixBytes)
            {
                _prefix = null;
                return inner.WriteAsync((byte[])[.. prefixBytes, .. buffer.Span], cancellationToken);
            }
            return inner.WriteAsync(buffer, cancellationToken);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            inner.ReadAsync(buffer, cancellationToken);

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            inner.ReadAsync(buffer, offset, count, cancellationToken);

        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

        public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer, offset, count, default).GetAwaiter().GetResult();

        public override void Flush() => inner.Flush();

        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}
