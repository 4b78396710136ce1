using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Xml.Linq;
using NUnit.Framework;

namespace ConnMgr.Tests.OpenfireDouble;

/// <summary>
/// The CM side of one link, spoken by hand over a raw TcpClient from the spec's examples. Frames are
/// split with the same rules as the double (<see cref="XmlFrameSplitter"/>), but every assertion in the
/// tests is on the exact text the double wrote.
/// </summary>
internal sealed class RawCmLink : IAsyncDisposable
{
    public const string Header = "<?xml version='1.0' encoding='UTF-8'?><stream:stream xmlns:stream=\"http://etherx.jabber.org/streams\" xmlns=\"jabber:connectionmanager\" to=\"{0}\" version=\"1.0\">";

    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(5);

    private readonly TcpClient _client;
    private readonly XmlFrameSplitter _splitter = new(int.MaxValue);
    private readonly Queue<XmlFrame> _frames = new();
    private Stream _stream;
    private Decoder _decoder = Encoding.UTF8.GetDecoder();
    private bool _ended;

    private RawCmLink(TcpClient client)
    {
        _client = client;
        _stream = client.GetStream();
    }

    /// <summary>The id of the server's stream header (the handshake salt), once read.</summary>
    public string? StreamId { get; private set; }

    public static async Task<RawCmLink> ConnectAsync(OpenfireDoubleServer server)
    {
        var client = new TcpClient { NoDelay = true };
        await client.ConnectAsync(server.EndPoint);
        var link = new RawCmLink(client);
        if (server.Options.DirectTls)
        {
            await link.WrapInTlsAsync();
        }

        return link;
    }

    /// <summary>Connects, sends the header for <paramref name="linkJid"/>, handshakes and reads the configuration IQ.</summary>
    public static async Task<RawCmLink> OpenAsync(OpenfireDoubleServer server, string linkJid, bool readConfiguration = true)
    {
        RawCmLink link = await ConnectAsync(server);
        await link.SendHeaderAsync(linkJid);
        await link.ReadHeaderAsync();
        Assert.That(await link.NextAsync(), Does.StartWith("<stream:features"));
        await link.SendAsync($"<handshake>{Digest(link.StreamId!, server.Options.Secret!)}</handshake>");
        Assert.That(await link.NextAsync(), Is.EqualTo("<handshake></handshake>"));
        if (readConfiguration)
        {
            Assert.That(await link.NextAsync(), Does.StartWith("<iq type=\"set\" id=\"").And.Contains("<configuration"));
        }

        return link;
    }

    /// <summary>Spec 3.6, computed here independently of the double.</summary>
    public static string Digest(string streamId, string secret) =>
        Convert.ToHexStringLower(SHA1.HashData(Encoding.ASCII.GetBytes(streamId + secret)));

    public Task SendHeaderAsync(string linkJid) => SendAsync(string.Format(Header, linkJid));

    public async Task SendAsync(string text)
    {
        await _stream.WriteAsync(Encoding.UTF8.GetBytes(text));
        await _stream.FlushAsync();
    }

    /// <summary>Reads the server's stream header and remembers its id.</summary>
    public async Task<string> ReadHeaderAsync()
    {
        XmlFrame frame = await NextFrameAsync(skipWhitespace: true);
        Assert.That(frame.Kind, Is.EqualTo(FrameKind.Header), frame.Text);
        StreamId = (string?)XElement.Parse(frame.Text + "</stream:stream>").Attribute("id");
        return frame.Text;
    }

    /// <summary>The next frame's text, heartbeats skipped.</summary>
    public async Task<string> NextAsync() => (await NextFrameAsync(skipWhitespace: true)).Text;

    /// <summary>The next element, parsed with the stream prefix declared.</summary>
    public async Task<XElement> NextElementAsync() => Parse(await NextAsync());

    public static XElement Parse(string frame) =>
        XElement.Parse(frame.StartsWith("<stream:", StringComparison.Ordinal) && !frame.Contains("xmlns:stream", StringComparison.Ordinal)
            ? frame.Insert(frame.IndexOfAny([' ', '>', '/']), " xmlns:stream=\"http://etherx.jabber.org/streams\"")
            : frame);

    public async Task<XmlFrame> NextFrameAsync(bool skipWhitespace = false, TimeSpan? timeout = null)
    {
        using var deadline = new CancellationTokenSource(timeout ?? s_timeout);
        while (true)
        {
            while (_frames.TryDequeue(out XmlFrame frame))
            {
                if (!(skipWhitespace && frame.Kind == FrameKind.Whitespace))
                {
                    return frame;
                }
            }

            if (_ended)
            {
                throw new EndOfStreamException("the double closed the link");
            }

            await FillAsync(deadline.Token);
        }
    }

    /// <summary>Everything the double writes until it closes the connection (heartbeats skipped), concatenated.</summary>
    public async Task<string> ReadUntilClosedAsync()
    {
        var text = new StringBuilder();
        using var deadline = new CancellationTokenSource(s_timeout);
        while (true)
        {
            while (_frames.TryDequeue(out XmlFrame frame))
            {
                if (frame.Kind != FrameKind.Whitespace)
                {
                    text.Append(frame.Text);
                }
            }

            if (_ended)
            {
                return text.ToString();
            }

            await FillAsync(deadline.Token);
        }
    }

    /// <summary>Asserts that nothing but heartbeats arrives for <paramref name="quiet"/>.</summary>
    public async Task ExpectSilenceAsync(TimeSpan quiet)
    {
        try
        {
            XmlFrame frame = await NextFrameAsync(skipWhitespace: true, quiet);
            Assert.Fail($"expected nothing, got {frame.Text}");
        }
        catch (OperationCanceledException)
        {
            // Quiet, as expected.
        }
    }

    /// <summary>STARTTLS on the link (spec 3.5): starttls, proceed, TLS client handshake (any certificate accepted).</summary>
    public async Task StartTlsAsync()
    {
        await SendAsync("<starttls xmlns=\"urn:ietf:params:xml:ns:xmpp-tls\"/>");
        Assert.That(await NextAsync(), Is.EqualTo("<proceed xmlns=\"urn:ietf:params:xml:ns:xmpp-tls\"/>"));
        await WrapInTlsAsync();
        _splitter.Reset();
        _decoder = Encoding.UTF8.GetDecoder();
    }

    public bool IsEncrypted => _stream is SslStream;

    private async Task WrapInTlsAsync()
    {
        var tls = new SslStream(_stream, leaveInnerStreamOpen: false, (_, _, _, _) => true);
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "example.com" });
        _stream = tls;
    }

    public async ValueTask DisposeAsync()
    {
        await _stream.DisposeAsync();
        _client.Dispose();
    }

    private async Task FillAsync(CancellationToken cancel)
    {
        byte[] bytes = new byte[8192];
        int read;
        try
        {
            read = await _stream.ReadAsync(bytes, cancel);
        }
        catch (IOException)
        {
            // A reset after the double's close counts as the end too.
            read = 0;
        }

        if (read == 0)
        {
            _ended = true;
            return;
        }

        char[] chars = new char[Encoding.UTF8.GetMaxCharCount(read)];
        _splitter.Append(chars.AsSpan(0, _decoder.GetChars(bytes, 0, read, chars, 0)));
        while (_splitter.TryRead(out XmlFrame frame))
        {
            _frames.Enqueue(frame);
        }
    }
}
