using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using ConnMgr.Tests.OpenfireDouble;
using NUnit.Framework;

namespace ConnMgr.Tests.EndToEnd;

/// <summary>
/// A raw XMPP client written for the tests from RFC 6120: it sends exactly the text a test gives it
/// and returns the edge's output frame by frame (split like Openfire splits a stream,
/// <see cref="XmlFrameSplitter"/>), so assertions are on the exact bytes the edge wrote.
/// </summary>
internal sealed partial class XmppTestClient : IAsyncDisposable
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(15);

    private readonly Socket _socket;
    private readonly byte[] _readBuffer = new byte[16 * 1024];
    private Stream _stream;
    private XmlFrameSplitter _splitter = new(int.MaxValue);
    private Decoder _decoder = Encoding.UTF8.GetDecoder();
    private bool _ended;

    private XmppTestClient(Socket socket, Stream stream)
    {
        _socket = socket;
        _stream = stream;
    }

    public string Domain { get; private set; } = "example.com";

    /// <summary>The id of the edge's last stream header.</summary>
    public string? StreamId { get; private set; }

    /// <summary>The full JID the core bound, after <see cref="LoginAsync"/>.</summary>
    public string? Jid { get; private set; }

    public bool IsSecure => _stream is SslStream;

    /// <param name="receiveBufferSize">A small kernel receive buffer, for a client that stops reading (0 = the default).</param>
    public static async Task<XmppTestClient> ConnectAsync(
        IPEndPoint endPoint, bool directTls = false, byte[]? proxyHeader = null, string domain = "example.com", int receiveBufferSize = 0)
    {
        var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        if (receiveBufferSize > 0)
        {
            socket.ReceiveBufferSize = receiveBufferSize;
        }
        await socket.ConnectAsync(endPoint).WaitAsync(Timeout);
        var client = new XmppTestClient(socket, new NetworkStream(socket, ownsSocket: false)) { Domain = domain };
        if (proxyHeader is not null)
        {
            await client.SendAsync(proxyHeader);
        }
        if (directTls)
        {
            await client.WrapInTlsAsync(alpn: true);
        }
        return client;
    }

    public static string Header(string to, string extra = "") =>
        $"<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='{to}' version='1.0'{extra}>";

    public Task SendAsync(string text) => SendAsync(Encoding.UTF8.GetBytes(text));

    public async Task SendAsync(byte[] bytes)
    {
        await _stream.WriteAsync(bytes).AsTask().WaitAsync(Timeout);
        await _stream.FlushAsync().WaitAsync(Timeout);
    }

    /// <summary>The next frame (whitespace skipped), or null once the edge closed the connection.</summary>
    public async Task<string?> NextAsync()
    {
        while (true)
        {
            while (_splitter.TryRead(out var frame))
            {
                if (frame.Kind != FrameKind.Whitespace)
                {
                    if (frame.Kind == FrameKind.Header)
                    {
                        StreamId = IdOf(frame.Text);
                    }
                    return frame.Text;
                }
            }
            if (_ended)
            {
                return null;
            }
            int read;
            try
            {
                read = await _stream.ReadAsync(_readBuffer).AsTask().WaitAsync(Timeout);
            }
            catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
            {
                read = 0;
            }
            if (read == 0)
            {
                _ended = true;
                continue;
            }
            var chars = new char[_decoder.GetCharCount(_readBuffer, 0, read)];
            _decoder.GetChars(_readBuffer, 0, read, chars, 0);
            _splitter.Append(chars);
        }
    }

    /// <summary>The next frame, which must exist.</summary>
    public async Task<string> ExpectAsync(string? startsWith = null)
    {
        var frame = await NextAsync();
        Assert.That(frame, Is.Not.Null, $"the edge closed the stream instead of sending {startsWith ?? "a frame"}");
        if (startsWith is not null)
        {
            Assert.That(frame, Does.StartWith(startsWith));
        }
        return frame!;
    }

    /// <summary>Every frame until the edge closes the connection.</summary>
    public async Task<List<string>> ReadToEndAsync()
    {
        var frames = new List<string>();
        while (await NextAsync() is { } frame)
        {
            frames.Add(frame);
        }
        return frames;
    }

    /// <summary>
    /// Reads to the end and asserts the stream closed with exactly this stream error (RFC 6120 4.9):
    /// <c>&lt;stream:error&gt;&lt;condition xmlns=…/&gt;…&lt;/stream:error&gt;</c> then <c>&lt;/stream:stream&gt;</c>.
    /// </summary>
    public async Task<List<string>> ExpectStreamErrorAsync(string condition)
    {
        var frames = await ReadToEndAsync();
        var error = frames.FirstOrDefault(f => f.StartsWith("<stream:error", StringComparison.Ordinal));
        Assert.That(error, Does.StartWith($"<stream:error><{condition} xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"),
            $"frames: {string.Join(" | ", frames)}");
        Assert.That(frames[^1], Is.EqualTo("</stream:stream>"), "the stream ends after the error");
        return frames;
    }

    /// <summary>Opens a stream and returns the features (the header is checked and remembered).</summary>
    public async Task<string> OpenStreamAsync(string? to = null)
    {
        await SendAsync(Header(to ?? Domain));
        Assert.That(await ExpectAsync("<stream:stream"), Does.Contain($"from='{Domain}'"));
        return await ExpectAsync("<stream:features");
    }

    public async Task StartTlsAsync()
    {
        await SendAsync("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        Assert.That(await ExpectAsync(), Is.EqualTo("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"));
        await WrapInTlsAsync(alpn: false);
    }

    /// <summary>SASL PLAIN (RFC 4616) and the stream restart; returns the features of the restarted stream.</summary>
    public async Task<string> AuthenticateAsync(string user, string password)
    {
        var response = Convert.ToBase64String(Encoding.UTF8.GetBytes($"\0{user}\0{password}"));
        await SendAsync($"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{response}</auth>");
        Assert.That(await ExpectAsync(), Does.StartWith("<success xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\""));
        _splitter = new XmlFrameSplitter(int.MaxValue);
        return await OpenStreamAsync();
    }

    /// <summary>RFC 6120 7: binds a resource and returns the full JID.</summary>
    public async Task<string> BindAsync(string resource)
    {
        await SendAsync($"<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{resource}</resource></bind></iq>");
        var result = await ExpectAsync("<iq");
        var jid = JidPattern().Match(result);
        Assert.That(jid.Success, Is.True, $"bind result: {result}");
        Jid = jid.Groups[1].Value;
        return Jid;
    }

    /// <summary>A whole login: stream, STARTTLS unless already secure, PLAIN, bind.</summary>
    public async Task<string> LoginAsync(string user, string password = "secret", string resource = "test")
    {
        var features = await OpenStreamAsync();
        if (!IsSecure)
        {
            Assert.That(features, Does.Contain("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'"));
            await StartTlsAsync();
            features = await OpenStreamAsync();
        }
        Assert.That(features, Does.Contain("<mechanism>PLAIN</mechanism>"));
        Assert.That(await AuthenticateAsync(user, password), Does.Contain("<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"));
        return await BindAsync(resource);
    }

    /// <summary>The next message containing <paramref name="text"/>; other frames before it are skipped.</summary>
    public async Task<string> NextMessageAsync(string text)
    {
        while (true)
        {
            var frame = await ExpectAsync();
            if (frame.StartsWith("<message", StringComparison.Ordinal) && frame.Contains(text, StringComparison.Ordinal))
            {
                return frame;
            }
        }
    }

    /// <summary>Closes the TCP connection without a stream end (a client that vanishes).</summary>
    public void Drop() => _socket.Close(0);

    public async ValueTask DisposeAsync()
    {
        try
        {
            await _stream.DisposeAsync();
        }
        catch (IOException)
        {
        }
        _socket.Dispose();
    }

    private async Task WrapInTlsAsync(bool alpn)
    {
        var tls = new SslStream(new NetworkStream(_socket, ownsSocket: false), leaveInnerStreamOpen: false, (_, _, _, _) => true);
        var options = new SslClientAuthenticationOptions { TargetHost = Domain };
        if (alpn)
        {
            options.ApplicationProtocols = [new SslApplicationProtocol("xmpp-client")];
        }
        await tls.AuthenticateAsClientAsync(options).WaitAsync(Timeout);
        _stream = tls;
        _splitter = new XmlFrameSplitter(int.MaxValue);
        _decoder = Encoding.UTF8.GetDecoder();
    }

    private static string? IdOf(string header)
    {
        var match = IdPattern().Match(header);
        return match.Success ? match.Groups[1].Value : null;
    }

    [GeneratedRegex("<jid>([^<]+)</jid>")]
    private static partial Regex JidPattern();

    [GeneratedRegex(" id='([^']+)'")]
    private static partial Regex IdPattern();
}
