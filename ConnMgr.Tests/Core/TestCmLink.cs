using System.Buffers;
using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading.Channels;
using System.Xml;
using System.Xml.Linq;
using ConnMgr.Protocol;
using ConnMgr.Protocol.Link;
using ConnMgr.Protocol.Xml;
using NUnit.Framework;

namespace ConnMgr.Tests.Core;

/// <summary>
/// The connection-manager side of one link, written from the spec for the tests: raw header,
/// handshake, session IQs and routes (spec 3, 5, 6). Elements from the core are parsed with
/// LINQ to XML and sorted: routes and close IQs by stream ID, answers to our IQs by id, the
/// rest (handshake, configuration, stream errors) into <see cref="NextAsync"/>.
/// </summary>
internal sealed class TestCmLink : IAsyncDisposable
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    public static readonly XNamespace Cm = XmppNamespaces.ConnectionManager;
    public static readonly XNamespace Streams = XmppNamespaces.Stream;

    private readonly TcpClient _client;
    private readonly NetworkStream _stream;
    private readonly Channel<XElement> _linkElements = Channel.CreateUnbounded<XElement>();
    private readonly ConcurrentDictionary<string, Channel<XElement>> _sessions = new();
    private readonly ConcurrentDictionary<string, TaskCompletionSource<XElement>> _pendingIqs = new();
    private readonly TaskCompletionSource<StreamHeader> _header = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly Task _readLoop;
    private volatile TaskCompletionSource _resume = Completed();
    private int _iqCounter;

    private TestCmLink(TcpClient client, string linkJid)
    {
        _client = client;
        _stream = client.GetStream();
        LinkJid = linkJid;
        CmDomain = linkJid.Split('/')[0];
        _readLoop = ReadLoopAsync();
    }

    public string LinkJid { get; }

    public string CmDomain { get; }

    /// <summary>The core's stream header, once received.</summary>
    public StreamHeader? Header { get; private set; }

    /// <summary>Completes when the core closed the stream or the connection.</summary>
    public Task Closed => _readLoop;

    /// <summary>The features that followed the core's header (spec 3.4).</summary>
    public XElement? Features { get; private set; }

    /// <summary>Whitespace keepalives received.</summary>
    public int Keepalives;

    /// <summary>Connects and sends the header (spec 3.2); waits for the core's header.</summary>
    public static async Task<TestCmLink> ConnectAsync(IPEndPoint endPoint, string? linkJid = "cm1/link-1", bool sendHeader = true)
    {
        var client = new TcpClient(AddressFamily.InterNetwork) { NoDelay = true };
        await client.ConnectAsync(endPoint);
        var link = new TestCmLink(client, linkJid ?? "");
        if (sendHeader)
        {
            var to = linkJid is null ? "" : $" to='{linkJid}'";
            await link.SendAsync($"<?xml version='1.0' encoding='UTF-8'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:connectionmanager'{to} version='1.0'>");
            await link.WaitForHeaderAsync();
        }
        return link;
    }

    /// <summary>Connects, handshakes, and consumes the configuration IQ.</summary>
    public static async Task<TestCmLink> OpenAsync(IPEndPoint endPoint, string secret, string linkJid = "cm1/link-1")
    {
        var link = await ConnectAsync(endPoint, linkJid);
        await link.HandshakeAsync(secret);
        return link;
    }

    public async Task<StreamHeader> WaitForHeaderAsync()
        => Header = await _header.Task.WaitAsync(Timeout);

    /// <summary>Sends the digest (spec 3.6); on success returns the configuration IQ that follows it.</summary>
    public async Task<XElement> HandshakeAsync(string secret)
    {
        await SendAsync($"<handshake>{HandshakeDigest.Compute(Header!.Id!, secret)}</handshake>");
        var reply = await NextAsync();
        Assert.That(reply.Name.LocalName, Is.EqualTo("handshake"), $"expected <handshake/>, got {reply}");
        Assert.That(reply.IsEmpty || reply.Value.Length == 0, Is.True);
        var configuration = await NextAsync();
        Assert.That(configuration.Name.LocalName, Is.EqualTo("iq"), $"expected the configuration IQ, got {configuration}");
        return configuration;
    }

    public async Task SendAsync(string xml)
    {
        var bytes = Encoding.UTF8.GetBytes(xml);
        await _writeLock.WaitAsync();
        try
        {
            await _stream.WriteAsync(bytes);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    /// <summary>Sends an IQ with a fresh id (replacing <c>{id}</c>) and waits for its answer.</summary>
    public async Task<XElement> IqAsync(string xmlWithIdPlaceholder)
    {
        var id = "t" + Interlocked.Increment(ref _iqCounter);
        var pending = new TaskCompletionSource<XElement>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pendingIqs[id] = pending;
        await SendAsync(xmlWithIdPlaceholder.Replace("{id}", id));
        return await pending.Task.WaitAsync(Timeout);
    }

    /// <summary>Spec 5.2: create a session; returns the core's answer.</summary>
    public Task<XElement> CreateAsync(string streamId, string address = "127.0.0.1")
        => IqAsync($"<iq type='set' to='localhost' from='{LinkJid}' id='{{id}}'><session xmlns='{Cm}' id='{streamId}'><create><host name='{address}' address='{address}'/></create></session></iq>");

    /// <summary>Spec 5.3.</summary>
    public Task<XElement> CloseSessionAsync(string streamId)
        => IqAsync($"<iq type='set' id='{{id}}'><session xmlns='{Cm}' id='{streamId}'><close/></session></iq>");

    public Task RouteAsync(string streamId, string stanza) => SendAsync($"<route streamid='{streamId}'>{stanza}</route>");

    /// <summary>The next element that is neither a route nor an answer we wait for.</summary>
    public async Task<XElement> NextAsync() => await _linkElements.Reader.ReadAsync().AsTask().WaitAsync(Timeout);

    /// <summary>What the core sent for one client stream: routes (unwrapped, see <see cref="Unwrap"/>) and close IQs.</summary>
    public ChannelReader<XElement> Session(string streamId) => SessionChannel(streamId).Reader;

    private Channel<XElement> SessionChannel(string streamId) => _sessions.GetOrAdd(streamId, _ => Channel.CreateUnbounded<XElement>());

    /// <summary>Stops reading from the socket, as a CM whose host is overloaded: the core's output for this link piles up.</summary>
    public void PauseReading() => _resume = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

    private static TaskCompletionSource Completed()
    {
        var source = new TaskCompletionSource();
        source.SetResult();
        return source;
    }

    /// <summary>Closes the TCP connection without a word, as a crashed CM would.</summary>
    public void Abort() => _client.Client.Close(0);

    public async ValueTask DisposeAsync()
    {
        _client.Dispose();
        _resume.TrySetResult();
        try
        {
            await _readLoop.WaitAsync(Timeout);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or SocketException)
        {
        }
    }

    private async Task ReadLoopAsync()
    {
        await Task.Yield();
        var scanner = new XmppStreamScanner(XmlScannerOptions.UpstreamLink);
        var reader = PipeReader.Create(_stream);
        try
        {
            while (true)
            {
                ReadResult result;
                try
                {
                    await _resume.Task;
                    result = await reader.ReadAsync();
                }
                catch (Exception e) when (e is IOException or ObjectDisposedException or SocketException)
                {
                    return;
                }
                var buffer = result.Buffer;
                SequencePosition consumed = buffer.Start, examined = buffer.End;
                while (true)
                {
                    var status = scanner.Scan(buffer, out consumed, out examined, out var frame);
                    if (status == ScanStatus.NeedMoreData)
                    {
                        break;
                    }
                    if (status == ScanStatus.Error)
                    {
                        throw new InvalidDataException($"the core sent bad XML: {scanner.ErrorCondition} {scanner.ErrorText}");
                    }
                    switch (frame.Kind)
                    {
                        case XmlFrameKind.StreamHeader:
                            _header.TrySetResult(frame.Header!);
                            break;
                        case XmlFrameKind.Whitespace:
                            Interlocked.Increment(ref Keepalives);
                            break;
                        case XmlFrameKind.StreamEnd:
                            return;
                        default:
                            Dispatch(Parse(Encoding.UTF8.GetString(frame.Bytes)));
                            break;
                    }
                    buffer = buffer.Slice(consumed);
                }
                reader.AdvanceTo(consumed, examined);
                if (result.IsCompleted)
                {
                    return;
                }
            }
        }
        finally
        {
            _linkElements.Writer.TryComplete();
            foreach (var session in _sessions.Values)
            {
                session.Writer.TryComplete();
            }
            await reader.CompleteAsync();
        }
    }

    private void Dispatch(XElement element)
    {
        var name = element.Name.LocalName;
        if (element.Name == Streams + "features")
        {
            Features = element;
            return;
        }
        if (name == "route" && element.Attribute("streamid") is { } streamId && element.Attribute("type")?.Value != "error")
        {
            SessionChannel(streamId.Value).Writer.TryWrite(Unwrap(element));
            return;
        }
        if (name == "iq")
        {
            var id = element.Attribute("id")?.Value;
            if (id is not null && _pendingIqs.TryRemove(id, out var pending))
            {
                pending.TrySetResult(element);
                return;
            }
            if (element.Element(Cm + "session") is { } session && session.Element(Cm + "close") is not null)
            {
                SessionChannel(session.Attribute("id")!.Value).Writer.TryWrite(element);
                return;
            }
        }
        _linkElements.Writer.TryWrite(element);
    }

    /// <summary>
    /// The client-bound content of a route (spec 6.2): its child element, or for a raw-text route
    /// its text parsed as XML. Either way the result is marked with a <c>raw</c> annotation
    /// telling which form arrived.
    /// </summary>
    public static XElement Unwrap(XElement route)
    {
        var child = route.Elements().FirstOrDefault();
        if (child is not null)
        {
            child.AddAnnotation(new RouteFormAnnotation(RouteForm.Element));
            return child;
        }
        var parsed = Parse(route.Value);
        parsed.AddAnnotation(new RouteFormAnnotation(RouteForm.RawText));
        return parsed;
    }

    /// <summary>Parses one element with the link's prefixes in scope (stream:) and no default namespace, so unprefixed stanza names have none.</summary>
    public static XElement Parse(string xml)
    {
        var names = new NameTable();
        var namespaces = new XmlNamespaceManager(names);
        namespaces.AddNamespace("stream", XmppNamespaces.Stream);
        var context = new XmlParserContext(names, namespaces, null, XmlSpace.None);
        using var reader = XmlReader.Create(new StringReader(xml), new XmlReaderSettings { ConformanceLevel = ConformanceLevel.Fragment }, context);
        reader.MoveToContent();
        return (XElement)XNode.ReadFrom(reader);
    }
}

internal enum RouteForm { Element, RawText }

internal sealed record RouteFormAnnotation(RouteForm Form);

internal static class RouteFormExtensions
{
    /// <summary>How the core wrapped this element in its route.</summary>
    public static RouteForm? RouteForm(this XElement element) => element.Annotation<RouteFormAnnotation>()?.Form;
}
