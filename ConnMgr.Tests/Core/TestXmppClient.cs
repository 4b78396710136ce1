using System.Buffers;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using System.Xml.Linq;
using ConnMgr.Protocol;
using ConnMgr.Protocol.Sasl;
using ConnMgr.Protocol.Xml;
using NUnit.Framework;

namespace ConnMgr.Tests.Core;

/// <summary>
/// A raw XMPP client (RFC 6120) for end-to-end tests through the real edge: TCP, STARTTLS with
/// <see cref="SslStream"/> (any certificate), SASL, bind. Elements are framed with the protocol
/// library's scanner and parsed with LINQ to XML; expectations keep unrelated elements for later.
/// </summary>
internal sealed class TestXmppClient : IAsyncDisposable
{
    public static readonly XNamespace Client = XmppNamespaces.Client;
    public static readonly XNamespace Sasl = XmppNamespaces.Sasl;
    public static readonly XNamespace Tls = XmppNamespaces.Tls;
    public static readonly XNamespace Bind = XmppNamespaces.Bind;

    private readonly TcpClient _tcp;
    private readonly XmppStreamScanner _scanner = new(XmlScannerOptions.Client);
    private readonly List<XElement> _unmatched = [];
    private Stream _stream;
    private byte[] _data = new byte[64 * 1024];
    private int _start;
    private int _end;
    private int _ids;

    private TestXmppClient(TcpClient tcp)
    {
        _tcp = tcp;
        _stream = tcp.GetStream();
    }

    public string? Jid { get; private set; }

    public string Bare => Jid!.Split('/')[0];

    /// <summary>The features of the current stream.</summary>
    public XElement Features { get; private set; } = null!;

    public static async Task<TestXmppClient> ConnectAsync(IPEndPoint endPoint, string domain = "localhost")
    {
        var tcp = new TcpClient(AddressFamily.InterNetwork) { NoDelay = true };
        await tcp.ConnectAsync(endPoint);
        var client = new TestXmppClient(tcp);
        await client.OpenStreamAsync(domain);
        return client;
    }

    /// <summary>Connect, STARTTLS, SASL with <paramref name="mechanism"/>, bind, initial presence.</summary>
    public static async Task<TestXmppClient> LoginAsync(IPEndPoint endPoint, string user, string password, string resource, string mechanism = "SCRAM-SHA-256")
    {
        var client = await ConnectAsync(endPoint);
        await client.StartTlsAsync();
        await client.AuthenticateAsync(mechanism, user, password);
        await client.BindAsync(resource);
        await client.SendAsync("<presence/>");
        await client.ExpectAsync(e => e.Name.LocalName == "presence" && (string?)e.Attribute("from") == client.Jid, "own presence");
        return client;
    }

    public async Task OpenStreamAsync(string domain = "localhost")
    {
        await SendAsync($"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='{domain}' version='1.0'>");
        var header = await NextFrameAsync();
        Assert.That(header.Kind, Is.EqualTo(XmlFrameKind.StreamHeader), "a stream header");
        Features = await NextAsync();
        Assert.That(Features.Name.LocalName, Is.EqualTo("features"), Features.ToString());
    }

    public async Task StartTlsAsync()
    {
        Assert.That(Features.Element(Tls + "starttls"), Is.Not.Null, $"STARTTLS offered: {Features}");
        await SendAsync("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        var proceed = await NextAsync();
        Assert.That(proceed.Name, Is.EqualTo(Tls + "proceed"), proceed.ToString());
        Assert.That(_end, Is.EqualTo(_start), "nothing after <proceed/> before the handshake");
        var tls = new SslStream(_stream, leaveInnerStreamOpen: false, (_, _, _, _) => true);
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "localhost" });
        _stream = tls;
        _scanner.Restart();
        await OpenStreamAsync();
    }

    public async Task<XElement> TryAuthenticateAsync(string mechanism, string user, string password)
    {
        if (mechanism == "PLAIN")
        {
            await SendAsync($"<auth xmlns='{Sasl}' mechanism='PLAIN'>{Convert.ToBase64String(SaslPlain.Encode(null, user, password))}</auth>");
            return await ExpectAsync(e => e.Name.Namespace == Sasl, "SASL answer");
        }
        var hash = mechanism == "SCRAM-SHA-1" ? ScramHash.Sha1 : ScramHash.Sha256;
        var scram = new ScramClient(hash, user, password);
        await SendAsync($"<auth xmlns='{Sasl}' mechanism='{mechanism}'>{Convert.ToBase64String(scram.ClientFirst())}</auth>");
        var challenge = await ExpectAsync(e => e.Name.Namespace == Sasl, "SASL challenge");
        if (challenge.Name != Sasl + "challenge")
        {
            return challenge;
        }
        if (scram.ReceiveServerFirst(Convert.FromBase64String(challenge.Value), out var final) != SaslResult.Continue)
        {
            Assert.Fail($"bad challenge: {scram.Error}");
        }
        await SendAsync($"<response xmlns='{Sasl}'>{Convert.ToBase64String(final!)}</response>");
        var outcome = await ExpectAsync(e => e.Name.Namespace == Sasl, "SASL outcome");
        if (outcome.Name == Sasl + "success")
        {
            Assert.That(scram.VerifyServerFinal(Convert.FromBase64String(outcome.Value)), Is.True, "server signature");
        }
        return outcome;
    }

    public async Task AuthenticateAsync(string mechanism, string user, string password)
    {
        var outcome = await TryAuthenticateAsync(mechanism, user, password);
        Assert.That(outcome.Name, Is.EqualTo(Sasl + "success"), outcome.ToString());
        _scanner.Restart();
        await OpenStreamAsync();
        Assert.That(Features.Element(Bind + "bind"), Is.Not.Null, $"bind offered after SASL: {Features}");
    }

    public async Task BindAsync(string resource)
    {
        var result = await IqAsync($"<iq type='set' id='{{id}}'><bind xmlns='{Bind}'><resource>{resource}</resource></bind></iq>");
        Assert.That((string?)result.Attribute("type"), Is.EqualTo("result"), result.ToString());
        Jid = result.Descendants().First(d => d.Name.LocalName == "jid").Value;
    }

    public async Task<XElement> IqAsync(string iq)
    {
        var id = $"c{++_ids}";
        await SendAsync(iq.Replace("{id}", id));
        return await ExpectAsync(e => e.Name.LocalName == "iq" && (string?)e.Attribute("id") == id, $"answer to {id}");
    }

    public async Task SendAsync(string xml)
    {
        await _stream.WriteAsync(Encoding.UTF8.GetBytes(xml));
        await _stream.FlushAsync();
    }

    public async Task<XElement> ExpectAsync(Func<XElement, bool> predicate, string what)
    {
        for (var i = 0; i < _unmatched.Count; i++)
        {
            if (predicate(_unmatched[i]))
            {
                var found = _unmatched[i];
                _unmatched.RemoveAt(i);
                return found;
            }
        }
        try
        {
            while (true)
            {
                var element = await NextAsync();
                if (predicate(element))
                {
                    return element;
                }
                _unmatched.Add(element);
            }
        }
        catch (TimeoutException)
        {
            Assert.Fail($"timed out waiting for {what}; got instead: {string.Join(" | ", _unmatched)}");
            throw;
        }
    }

    public Task<XElement> ExpectMessageAsync(string body)
        => ExpectAsync(e => e.Name.LocalName == "message" && e.Elements().Any(c => c.Name.LocalName == "body" && c.Value == body), $"message '{body}'");

    /// <summary>The next top-level element; <see cref="EndOfStreamException"/> when the stream ends.</summary>
    public async Task<XElement> NextAsync()
    {
        while (true)
        {
            var frame = await NextFrameAsync();
            if (frame.Kind == XmlFrameKind.Element)
            {
                return TestCmLink.Parse(frame.Text);
            }
            if (frame.Kind == XmlFrameKind.StreamEnd)
            {
                throw new EndOfStreamException("the server closed the stream");
            }
        }
    }

    private async Task<(XmlFrameKind Kind, string Text)> NextFrameAsync()
    {
        using var timeout = new CancellationTokenSource(TestCmLink.Timeout);
        while (true)
        {
            var buffered = new ReadOnlySequence<byte>(_data, _start, _end - _start);
            var status = _scanner.Scan(buffered, out var consumed, out _, out var frame);
            if (status == ScanStatus.Error)
            {
                throw new InvalidDataException($"the server sent bad XML: {_scanner.ErrorCondition} {_scanner.ErrorText}");
            }
            if (status == ScanStatus.Frame)
            {
                var text = Encoding.UTF8.GetString(frame.Bytes);
                _start += (int)buffered.Slice(0, consumed).Length;
                return (frame.Kind, text);
            }
            if (_start > 0)
            {
                Buffer.BlockCopy(_data, _start, _data, 0, _end - _start);
                _end -= _start;
                _start = 0;
            }
            if (_end == _data.Length)
            {
                Array.Resize(ref _data, _data.Length * 2);
            }
            int read;
            try
            {
                read = await _stream.ReadAsync(_data.AsMemory(_end), timeout.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException("no data from the server");
            }
            if (read == 0)
            {
                throw new EndOfStreamException("the server closed the connection");
            }
            _end += read;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stream.DisposeAsync();
        _tcp.Dispose();
    }
}
