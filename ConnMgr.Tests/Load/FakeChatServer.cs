using System.Buffers;
using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using ConnMgr.Protocol;
using ConnMgr.Protocol.Sasl;
using ConnMgr.Protocol.Xml;
using ConnMgr.Tests.OpenfireDouble;

namespace ConnMgr.Tests.Load;

/// <summary>
/// Just enough of an XMPP server on loopback to drive the load generator end to end: STARTTLS (required),
/// SCRAM-SHA-1 with one password for every user, bind, and chat messages relayed to the bound user named in
/// <c>to</c>. Not a model of a real server: no roster, presence is ignored, unknown targets are dropped.
/// </summary>
internal sealed class FakeChatServer : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly ScramCredential _credential;
    private readonly ConcurrentDictionary<string, Session> _sessions = new();
    private readonly ConcurrentBag<Task> _connections = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;

    public FakeChatServer(string password)
    {
        // 4096 iterations: the RFC 7677 minimum, cheap enough for a test.
        _credential = ScramCredential.Derive(password, ScramHash.Sha1, 4096);
        _listener.Start();
        _accepting = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Messages relayed to a bound recipient.</summary>
    public int Relayed;

    /// <summary>The client address of every connection accepted.</summary>
    public ConcurrentBag<IPAddress> ClientAddresses { get; } = [];

    private async Task AcceptAsync()
    {
        try
        {
            while (true)
            {
                var socket = await _listener.AcceptSocketAsync(_stop.Token);
                ClientAddresses.Add(((IPEndPoint)socket.RemoteEndPoint!).Address);
                _connections.Add(ServeAsync(socket));
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // Stopped.
        }
    }

    private async Task ServeAsync(Socket socket)
    {
        var network = new NetworkStream(socket, ownsSocket: true);
        Session? session = null;
        try
        {
            var scanner = new XmppStreamScanner(XmlScannerOptions.Client);
            var reader = PipeReader.Create(network, new StreamPipeReaderOptions(leaveOpen: true));
            await ExpectAsync(reader, scanner, XmlFrameKind.StreamHeader);
            await WriteAsync(network, Header() + $"<stream:features><starttls xmlns='{XmppNamespaces.Tls}'><required/></starttls></stream:features>");
            await ExpectAsync(reader, scanner, XmlFrameKind.Element);
            await WriteAsync(network, $"<proceed xmlns='{XmppNamespaces.Tls}'/>");
            await reader.CompleteAsync();

            var tls = new SslStream(network);
            await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = DoubleCertificate.For("localhost") });
            scanner.Restart();
            reader = PipeReader.Create(tls);
            await ExpectAsync(reader, scanner, XmlFrameKind.StreamHeader);
            await WriteAsync(tls, Header() + $"<stream:features><mechanisms xmlns='{XmppNamespaces.Sasl}'><mechanism>SCRAM-SHA-1</mechanism></mechanisms></stream:features>");

            var scram = new ScramServer(ScramHash.Sha1);
            var auth = await ExpectAsync(reader, scanner, XmlFrameKind.Element);
            scram.ReceiveClientFirst(Base64Text(auth), out var user);
            await WriteAsync(tls, $"<challenge xmlns='{XmppNamespaces.Sasl}'>{Convert.ToBase64String(scram.CreateServerFirst(_credential))}</challenge>");
            var response = await ExpectAsync(reader, scanner, XmlFrameKind.Element);
            if (scram.ReceiveClientFinal(Base64Text(response), out var serverFinal) != SaslResult.Success)
            {
                await WriteAsync(tls, $"<failure xmlns='{XmppNamespaces.Sasl}'><not-authorized/></failure></stream:stream>");
                return;
            }
            await WriteAsync(tls, $"<success xmlns='{XmppNamespaces.Sasl}'>{Convert.ToBase64String(serverFinal!)}</success>");

            scanner.Restart();
            await ExpectAsync(reader, scanner, XmlFrameKind.StreamHeader);
            await WriteAsync(tls, Header() + $"<stream:features><bind xmlns='{XmppNamespaces.Bind}'/></stream:features>");
            await ExpectAsync(reader, scanner, XmlFrameKind.Element);
            await WriteAsync(tls, $"<iq type='result' id='bind1'><bind xmlns='{XmppNamespaces.Bind}'><jid>{user}@localhost/load</jid></bind></iq>");
            session = new Session(tls);
            _sessions[user!] = session;

            while (true)
            {
                var (kind, bytes) = await NextFrameAsync(reader, scanner);
                if (kind == XmlFrameKind.StreamEnd)
                {
                    await session.SendAsync(Encoding.UTF8.GetBytes("</stream:stream>"));
                    return;
                }
                if (kind == XmlFrameKind.Element && TryGetRecipient(bytes, out var to) && _sessions.TryGetValue(to, out var target))
                {
                    await target.SendAsync(bytes);
                    Interlocked.Increment(ref Relayed);
                }
            }
        }
        catch (Exception e) when (e is IOException or EndOfStreamException or ObjectDisposedException or OperationCanceledException or System.Security.Authentication.AuthenticationException)
        {
            // The client went away.
        }
        finally
        {
            if (session is not null)
            {
                foreach (var entry in _sessions)
                {
                    if (entry.Value == session)
                        _sessions.TryRemove(entry);
                }
            }
            await network.DisposeAsync();
        }
    }

    private static string Header()
        => $"<?xml version='1.0'?><stream:stream xmlns='{XmppNamespaces.Client}' xmlns:stream='{XmppNamespaces.Stream}' from='localhost' id='{Guid.NewGuid():N}' version='1.0'>";

    private static bool TryGetRecipient(byte[] stanza, out string localpart)
    {
        var reader = new XmlElementReader(stanza, XmlNamespaceScope.Create(XmppNamespaces.Client));
        localpart = "";
        if (!reader.LocalName.SequenceEqual("message"u8) || reader.GetAttribute("to"u8) is not { } to)
            return false;
        localpart = to[..to.IndexOf('@', StringComparison.Ordinal)];
        return true;
    }

    private static byte[] Base64Text(byte[] element)
        => Convert.FromBase64String(new XmlElementReader(element, XmlNamespaceScope.Create(XmppNamespaces.Client)).GetText());

    private static async Task<byte[]> ExpectAsync(PipeReader reader, XmppStreamScanner scanner, XmlFrameKind expected)
    {
        while (true)
        {
            var (kind, bytes) = await NextFrameAsync(reader, scanner);
            if (kind == expected)
                return bytes;
            if (kind != XmlFrameKind.Whitespace)
                throw new IOException($"expected {expected}, got {kind}");
        }
    }

    private static async Task<(XmlFrameKind, byte[])> NextFrameAsync(PipeReader reader, XmppStreamScanner scanner)
    {
        while (true)
        {
            var result = await reader.ReadAsync();
            var status = scanner.Scan(result.Buffer, out var consumed, out var examined, out var frame);
            var bytes = status == ScanStatus.Frame ? frame.Bytes.ToArray() : [];
            reader.AdvanceTo(consumed, examined);
            if (status == ScanStatus.Frame)
                return (frame.Kind, bytes);
            if (status == ScanStatus.Error)
                throw new IOException($"client XML: {scanner.ErrorText}");
            if (result.IsCompleted)
                throw new EndOfStreamException();
        }
    }

    private static async Task WriteAsync(Stream stream, string xml)
    {
        await stream.WriteAsync(Encoding.UTF8.GetBytes(xml));
        await stream.FlushAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _accepting;
        await Task.WhenAll(_connections);
        _stop.Dispose();
    }

    /// <summary>A bound client; writes to it are serialized, as relayed messages come from other connections.</summary>
    private sealed class Session(Stream stream)
    {
        private readonly SemaphoreSlim _write = new(1, 1);

        public async Task SendAsync(byte[] bytes)
        {
            await _write.WaitAsync();
            try
            {
                await stream.WriteAsync(bytes);
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException)
            {
                // The recipient is gone; a real server would store the message.
            }
            finally
            {
                _write.Release();
            }
        }
    }
}
