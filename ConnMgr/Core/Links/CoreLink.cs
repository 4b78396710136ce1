using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using ConnMgr.Core.Sessions;
using ConnMgr.Protocol;
using ConnMgr.Protocol.Link;
using ConnMgr.Protocol.Xml;
using Microsoft.Extensions.Logging;

namespace ConnMgr.Core.Links;

/// <summary>
/// The server side of one connection-manager link (spec 3 to 8): stream header checks, handshake,
/// configuration IQ, the CM's session IQs and routes. Two loops, each a tracked task: receive
/// (scanner → dispatch; it never waits for storage, it only queues work on sessions) and send
/// (<see cref="LinkOutput"/> → socket).
/// </summary>
/// <remarks>
/// Differences from Openfire, all in the direction of safety, none visible to a correct CM:
/// a link joins its CM's routing pool only after the handshake (Openfire: at the stream header,
/// spec 0.1 point 3, which lets anyone who knows the CM name take a share of its traffic); the
/// link's STARTTLS policy is "disabled" (the listener is on loopback by default; a CM asking for
/// TLS is refused with <c>not-authorized</c>, spec 3.5); inputs that make Openfire drop the link
/// through an internal error (a route without <c>streamid</c>, an IQ or route without a child,
/// spec 2) get a clear answer instead: <c>bad-format</c> for the first, <c>bad-request</c> for the
/// others.
/// </remarks>
internal sealed class CoreLink
{
    private enum State : byte { AwaitingHeader, AwaitingHandshake, Authenticated, Closed }

    /// <summary>Base-36 characters of the link's stream ID, like Openfire's (spec 3.4).</summary>
    private const int LinkStreamIdLength = 10;

    private static readonly StreamPipeReaderOptions s_readerOptions = new(
        pool: MemoryPool<byte>.Shared, bufferSize: 16 * 1024, minimumReadSize: 4096, leaveOpen: true, useZeroByteReads: true);

    private readonly CoreServer _server;
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly XmppStreamScanner _scanner = new(XmlScannerOptions.UpstreamLink);
    private readonly CancellationTokenSource _receiveCancellation = new();
    private readonly CancellationTokenSource _sendCancellation = new();
    private readonly Lock _stateLock = new();
    private readonly ILogger _logger;
    private Task _completion = Task.CompletedTask;
    private State _state;
    private LinkCloseReason _closeReason;
    private bool _closed;
    private bool _headerSent;
    private XmlNamespaceScope _scope;
    private string? _linkStreamId;
    private readonly long _connectedAt = Environment.TickCount64;
    private long _lastRead = Environment.TickCount64;
    private long _lastKeepalive = Environment.TickCount64;

    public CoreLink(CoreServer server, Socket socket)
    {
        _server = server;
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: true);
        _logger = server.Logger;
        RemoteEndPoint = socket.RemoteEndPoint;
        Output = new LinkOutput(server.Options.MaxLinkOutputBytes, (_, why) => OnOutputFault(why));
    }

    public EndPoint? RemoteEndPoint { get; }

    public LinkOutput Output { get; }

    /// <summary>The CM's <c>to</c>, prepared: <c>cm1/link-1</c>. Null until the header arrived.</summary>
    public string? LinkJid { get; private set; }

    /// <summary>The CM's name: the domain of <see cref="LinkJid"/> (spec 1).</summary>
    public string? CmDomain { get; private set; }

    /// <summary>The CM this link belongs to, once the handshake succeeded.</summary>
    public ConnectionManagerGroup? Group { get; private set; }

    public bool IsClosed => Volatile.Read(ref _closed);

    /// <summary>Completes when both loops have ended and the socket is closed.</summary>
    public Task Completion => _completion;

    public void Start() => _completion = Task.WhenAll(SendLoopAsync(), ReceiveLoopAsync());

    /// <summary>Called by the heartbeat: keepalive, idle and stall checks (spec 8.3, spec 2).</summary>
    public void OnTimer(long now)
    {
        if (IsClosed)
        {
            return;
        }
        var options = _server.Options;
        if (now - Volatile.Read(ref _lastRead) > (long)options.LinkIdleTimeout.TotalMilliseconds)
        {
            Close(LinkCloseReason.IdleTimeout, StreamErrorCondition.ConnectionTimeout, null);
            return;
        }
        if (_state != State.Authenticated && now - _connectedAt > (long)options.HandshakeTimeout.TotalMilliseconds)
        {
            Close(LinkCloseReason.HandshakeFailed, StreamErrorCondition.ConnectionTimeout, "no handshake in time (HandshakeTimeout)");
            return;
        }
        if (Output.IsStalled(options.LinkWriteTimeout))
        {
            Abort(LinkCloseReason.OutputOverflow, $"no output accepted for {options.LinkWriteTimeout.TotalSeconds:0} s (LinkWriteTimeout)");
            return;
        }
        if (now - _lastKeepalive >= (long)options.KeepaliveInterval.TotalMilliseconds)
        {
            _lastKeepalive = now;
            using var scope = Output.Begin();
            scope.Output.Write(" "u8);
            scope.Complete();
        }
    }

    /// <summary>
    /// Ends the link: writes the stream error (if any) and the stream's end after whatever is
    /// queued, stops reading, and lets the send loop drain for at most the write timeout. The
    /// first reason wins; later calls do nothing.
    /// </summary>
    public void Close(LinkCloseReason reason, StreamErrorCondition? error, string? text)
    {
        if (!TryMarkClosed(reason))
        {
            return;
        }
        using (var scope = Output.Begin())
        {
            if (!_headerSent)
            {
                LinkWriting.WriteStreamHeader(scope.Output, LinkJid, id: null);
                _headerSent = true;
            }
            if (error is { } condition)
            {
                LinkWriting.WriteStreamErrorAndEnd(scope.Output, condition, text);
            }
            else
            {
                XmppElements.WriteStreamEnd(scope.Output);
            }
            scope.Complete();
        }
        Shutdown(reason, text);
    }

    /// <summary>Ends the link at once, dropping queued output: for a CM that stopped reading.</summary>
    public void Abort(LinkCloseReason reason, string? why)
    {
        if (!TryMarkClosed(reason))
        {
            return;
        }
        _sendCancellation.Cancel();
        Shutdown(reason, why);
    }

    private bool TryMarkClosed(LinkCloseReason reason)
    {
        lock (_stateLock)
        {
            if (_closeReason != LinkCloseReason.None)
            {
                return false;
            }
            _closeReason = reason;
            _state = State.Closed;
            Volatile.Write(ref _closed, true);
            return true;
        }
    }

    private void Shutdown(LinkCloseReason reason, string? why)
    {
        Output.Close();
        _receiveCancellation.Cancel();
        _sendCancellation.CancelAfter(_server.Options.LinkWriteTimeout);
        CoreLog.LinkClosed(_logger, LinkJid ?? "(no header)", RemoteEndPoint, reason, why ?? "");
        _server.OnLinkClosed(this);
    }

    private void OnOutputFault(string why) => Abort(LinkCloseReason.OutputOverflow, why);

    private async Task SendLoopAsync()
    {
        await Task.Yield();
        try
        {
            await Output.SendAsync(_stream, _sendCancellation.Token);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or SocketException or ObjectDisposedException)
        {
            Abort(LinkCloseReason.TransportError, e.Message);
        }
        finally
        {
            try
            {
                _socket.Shutdown(SocketShutdown.Both);
            }
            catch (SocketException)
            {
            }
            catch (ObjectDisposedException)
            {
            }
            await _stream.DisposeAsync();
        }
    }

    private async Task ReceiveLoopAsync()
    {
        await Task.Yield();
        var reader = PipeReader.Create(_stream, s_readerOptions);
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync(_receiveCancellation.Token);
                var buffer = result.Buffer;
                if (!buffer.IsEmpty)
                {
                    Volatile.Write(ref _lastRead, Environment.TickCount64);
                }
                var consumed = buffer.Start;
                var examined = buffer.End;
                var keepReading = true;
                while (keepReading)
                {
                    var status = _scanner.Scan(buffer, out consumed, out examined, out var frame);
                    if (status == ScanStatus.NeedMoreData)
                    {
                        break;
                    }
                    if (status == ScanStatus.Error)
                    {
                        Close(LinkCloseReason.InvalidXml, _scanner.ErrorCondition, _scanner.ErrorText);
                        keepReading = false;
                        break;
                    }
                    keepReading = HandleFrame(frame);
                    buffer = buffer.Slice(consumed);
                }
                reader.AdvanceTo(consumed, examined);
                if (!keepReading)
                {
                    return;
                }
                if (result.IsCompleted)
                {
                    Close(LinkCloseReason.PeerClosed, null, null);
                    return;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            Close(LinkCloseReason.TransportError, null, e.Message);
        }
        catch (Exception e)
        {
            CoreLog.LinkFailed(_logger, LinkJid ?? "(no header)", e);
            Close(LinkCloseReason.ProtocolViolation, StreamErrorCondition.InternalServerError, null);
        }
        finally
        {
            await reader.CompleteAsync();
        }
    }

    /// <summary>False when the link is closing and nothing more should be read.</summary>
    private bool HandleFrame(in XmlFrame frame)
    {
        switch (frame.Kind)
        {
            case XmlFrameKind.Whitespace:
                return true;
            case XmlFrameKind.StreamEnd:
                Close(LinkCloseReason.PeerClosed, null, null);
                return false;
            case XmlFrameKind.StreamHeader:
                return HandleHeader(frame.Header!);
            default:
                return HandleElement(frame.Bytes);
        }
    }

    private bool HandleHeader(StreamHeader header)
    {
        if (_state != State.AwaitingHeader)
        {
            // Only a STARTTLS restart allows a second header, and link TLS is off.
            Close(LinkCloseReason.ProtocolViolation, StreamErrorCondition.InvalidXml, "unexpected stream header");
            return false;
        }
        var to = header.To;
        if (to is null)
        {
            Close(LinkCloseReason.HeaderRefused, StreamErrorCondition.BadFormat, "Missing 'to' attribute value.");
            return false;
        }
        if (!Jid.TryParse(to, out var linkJid))
        {
            // Openfire drops the TCP connection without a word (spec 0.1 point 6).
            Abort(LinkCloseReason.HeaderRefused, $"'to' is not a JID: {to}");
            return false;
        }
        LinkJid = linkJid.ToString();
        CmDomain = linkJid.Domain;
        if (_server.Options.Secret.Length == 0)
        {
            Close(LinkCloseReason.HeaderRefused, StreamErrorCondition.InternalServerError, "no link secret is configured");
            return false;
        }
        if (!_server.TryReserveLinkJid(LinkJid, this))
        {
            Close(LinkCloseReason.HeaderRefused, StreamErrorCondition.Conflict, $"a link named {LinkJid} is already connected");
            return false;
        }

        var prefixes = new List<KeyValuePair<string, string>>();
        foreach (var declaration in header.NamespaceDeclarations)
        {
            if (declaration.Key.Length > 0)
            {
                prefixes.Add(declaration);
            }
        }
        // Prefixes the CM declared on its header apply to its later elements (spec 3.2).
        _scope = XmlNamespaceScope.Create(header.DefaultNamespace, prefixes);
        _linkStreamId = NewLinkStreamId();
        using (var scope = Output.Begin())
        {
            LinkWriting.WriteStreamHeader(scope.Output, to, _linkStreamId);
            LinkWriting.WriteFeatures(scope.Output);
            _headerSent = true;
            scope.Complete();
        }
        _state = State.AwaitingHandshake;
        return true;
    }

    private bool HandleElement(ReadOnlySequence<byte> bytes)
    {
        if (bytes.IsSingleSegment)
        {
            return HandleElement(bytes.FirstSpan);
        }
        var length = (int)bytes.Length;
        var rented = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            bytes.CopyTo(rented);
            return HandleElement(rented.AsSpan(0, length));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    private bool HandleElement(ReadOnlySpan<byte> bytes)
    {
        var element = new XmlElementReader(bytes, _scope);
        var name = element.LocalName;
        if (name.SequenceEqual("route"u8))
        {
            return _state == State.Authenticated ? HandleRoute(element) : RefuseRoute(element);
        }
        if (name.SequenceEqual("iq"u8))
        {
            return HandleIq(element);
        }
        if (name.SequenceEqual("handshake"u8))
        {
            // A repeated handshake on an authenticated link changes nothing.
            return _state != State.AwaitingHandshake || HandleHandshake(element);
        }
        if (name.SequenceEqual("error"u8) && element.NamespaceIs(XmppNamespaces.Stream))
        {
            Close(LinkCloseReason.PeerStreamError, null, "the CM sent a stream error");
            return false;
        }
        if (name.SequenceEqual("starttls"u8))
        {
            // Link TLS policy "disabled" (spec 3.5).
            Close(LinkCloseReason.ProtocolViolation, StreamErrorCondition.NotAuthorized, "TLS is not available on this link");
            return false;
        }
        if (name.SequenceEqual("message"u8) || name.SequenceEqual("presence"u8))
        {
            // Openfire closes the link with internal-server-error (spec 2); say why.
            Close(LinkCloseReason.ProtocolViolation, StreamErrorCondition.InternalServerError, "message and presence must be wrapped in a route");
            return false;
        }
        Close(LinkCloseReason.ProtocolViolation, StreamErrorCondition.UnsupportedStanzaType, "unknown element on the link");
        return false;
    }

    private bool HandleHandshake(scoped in XmlElementReader element)
    {
        Span<char> digest = stackalloc char[HandshakeDigest.Length];
        var text = element.InnerRaw;
        var valid = text.Length == HandshakeDigest.Length
            && Encoding.ASCII.GetChars(text, digest) == digest.Length
            && HandshakeDigest.Verify(_linkStreamId!, _server.Options.Secret, digest);
        if (!valid)
        {
            Close(LinkCloseReason.HandshakeFailed, StreamErrorCondition.NotAuthorized, null);
            return false;
        }
        var group = _server.JoinGroup(this, out var linkCount);
        Group = group;
        _state = State.Authenticated;
        using (var scope = Output.Begin())
        {
            scope.Output.Write("<handshake></handshake>"u8);
            LinkWriting.WriteConfiguration(scope.Output, _server.NextIqId(), _server.Options.RequireClientTls);
            scope.Complete();
        }
        CoreLog.LinkAuthenticated(_logger, LinkJid!, RemoteEndPoint, linkCount);
        return true;
    }

    private bool RefuseRoute(scoped in XmlElementReader route)
    {
        if (!HasStreamId(route))
        {
            return false;
        }
        // Before the handshake: a route error on this same link; the link stays (spec 3.6).
        using var scope = Output.Begin();
        LinkWriting.WriteRouteError(scope.Output, route, StanzaErrorCondition.NotAuthorized);
        scope.Complete();
        return true;
    }

    private bool HasStreamId(scoped in XmlElementReader route)
    {
        if (route.TryGetAttribute("streamid"u8, out var raw) && !raw.IsEmpty)
        {
            return true;
        }
        // Openfire dies on this with an internal error (spec 2, 0.1 point 6); the CM gets a reason.
        Close(LinkCloseReason.ProtocolViolation, StreamErrorCondition.BadFormat, "a route needs a non-empty streamid");
        return false;
    }

    private bool HandleRoute(scoped in XmlElementReader route)
    {
        if (!HasStreamId(route))
        {
            return false;
        }
        if (route.AttributeEquals("type"u8, "error"u8))
        {
            // The core never sends the CM anything it could reject this way; note it and go on.
            CoreLog.RouteErrorReceived(_logger, LinkJid!, route.GetAttribute("streamid"u8)!);
            return true;
        }
        if (!TryFindSession(route, "streamid"u8, out var session))
        {
            WriteRouteError(route, StanzaErrorCondition.ItemNotFound, default);
            return true;
        }
        if (!route.TryGetFirstChild(out var child))
        {
            WriteRouteError(route, StanzaErrorCondition.BadRequest, default);
            return true;
        }
        // Dispatch by local name only (spec 6.1.1, 0.1 point 4).
        var kind = StanzaKinds.FromLocalName(child.LocalName);
        if (kind == StanzaKind.Unknown)
        {
            WriteRouteError(route, StanzaErrorCondition.BadRequest, "unknown-stanza"u8);
            return true;
        }
        session.EnqueueStanza(kind, child.Raw);
        return true;
    }

    private void WriteRouteError(scoped in XmlElementReader route, StanzaErrorCondition condition, ReadOnlySpan<byte> appCondition)
    {
        using var scope = Output.Begin();
        LinkWriting.WriteRouteError(scope.Output, route, condition, appCondition);
        scope.Complete();
    }

    private bool HandleIq(scoped in XmlElementReader iq)
    {
        if (iq.AttributeEquals("type"u8, "result"u8))
        {
            return true;
        }
        if (iq.AttributeEquals("type"u8, "error"u8))
        {
            CoreLog.IqErrorReceived(_logger, LinkJid ?? "(no header)", iq.ToString());
            return true;
        }
        var isSet = iq.AttributeEquals("type"u8, "set"u8);
        if (!isSet && !iq.AttributeEquals("type"u8, "get"u8))
        {
            // Openfire drops the link on an unknown type (spec 0.1 point 6); say why.
            Close(LinkCloseReason.ProtocolViolation, StreamErrorCondition.BadFormat, "an iq type must be get, set, result or error");
            return false;
        }
        if (_state != State.Authenticated)
        {
            WriteIqReply(iq, StanzaErrorCondition.NotAuthorized);
            return true;
        }
        if (!isSet || !iq.TryGetFirstChild(out var child))
        {
            // No IQ from the CM reaches the IQ router: a get is always bad-request (spec 4).
            WriteIqReply(iq, StanzaErrorCondition.BadRequest);
            return true;
        }
        // The id is checked before the element's name, as Openfire does (spec 5.6).
        if (!child.TryGetAttribute("id"u8, out _))
        {
            WriteIqReply(iq, StanzaErrorCondition.BadRequest, "id-required"u8);
            return true;
        }
        if (!child.LocalName.SequenceEqual("session"u8))
        {
            WriteIqReply(iq, StanzaErrorCondition.BadRequest);
            return true;
        }
        foreach (var action in child.Children)
        {
            var name = action.LocalName;
            if (name.SequenceEqual("create"u8))
            {
                CreateSession(iq, child, action);
                return true;
            }
            if (name.SequenceEqual("close"u8))
            {
                CloseSession(iq, child);
                return true;
            }
            if (name.SequenceEqual("failed"u8))
            {
                Failed(iq, child, action);
                return true;
            }
        }
        WriteIqReply(iq, StanzaErrorCondition.BadRequest);
        return true;
    }

    private void CreateSession(scoped in XmlElementReader iq, scoped in XmlElementReader session, scoped in XmlElementReader create)
    {
        var streamId = session.GetAttribute("id"u8)!;
        if (!StreamIdGenerator.IsSafe(streamId))
        {
            // Only [A-Za-z0-9._-] survive Openfire's escaping of IDs (spec 5.1); refuse the rest.
            WriteIqReply(iq, StanzaErrorCondition.BadRequest);
            return;
        }
        string? address = null;
        if (create.TryGetChild("host"u8, XmppNamespaces.ConnectionManager, out var host) || TryGetChildByName(create, "host"u8, out host))
        {
            address = host.GetAttribute("address"u8);
        }
        var created = _server.TryCreateSession(Group!, this, streamId, address);
        // An ID still in use is refused instead of silently orphaning the live session (spec 5.1).
        WriteIqReply(iq, created ? null : StanzaErrorCondition.Conflict);
    }

    private static bool TryGetChildByName(scoped in XmlElementReader parent, ReadOnlySpan<byte> localName, out XmlElementReader child)
    {
        foreach (var c in parent.Children)
        {
            if (c.LocalName.SequenceEqual(localName))
            {
                child = c;
                return true;
            }
        }
        child = default;
        return false;
    }

    private void CloseSession(scoped in XmlElementReader iq, scoped in XmlElementReader session)
    {
        if (!TryFindSession(session, "id"u8, out var client))
        {
            WriteIqReply(iq, StanzaErrorCondition.ItemNotFound);
            return;
        }
        // Queued behind the session's stanzas, so it ends after them; it answers when done.
        client.EnqueueCmClose(this, iq.Raw);
    }

    private void Failed(scoped in XmlElementReader iq, scoped in XmlElementReader session, scoped in XmlElementReader failed)
    {
        if (!TryFindSession(session, "id"u8, out var client))
        {
            WriteIqReply(iq, StanzaErrorCondition.ItemNotFound);
            return;
        }
        var count = 0;
        var isMessage = false;
        foreach (var child in failed.Children)
        {
            count++;
            isMessage = child.LocalName.SequenceEqual("message"u8);
        }
        if (count != 1)
        {
            WriteIqReply(iq, StanzaErrorCondition.BadRequest, "invalid-payload"u8);
            return;
        }
        if (!isMessage)
        {
            WriteIqReply(iq, StanzaErrorCondition.BadRequest, "unknown-stanza"u8);
            return;
        }
        client.EnqueueCmFailed(this, iq.Raw);
    }

    /// <summary>Finds the session named by an attribute, if it belongs to this link's CM. Allocation-free for plain IDs.</summary>
    private bool TryFindSession(scoped in XmlElementReader element, ReadOnlySpan<byte> attribute, out ClientSession session)
    {
        session = null!;
        if (!element.TryGetAttribute(attribute, out var raw))
        {
            return false;
        }
        ClientSession? found;
        if (raw.Length <= StreamIdGenerator.MaxLength && raw.IndexOf((byte)'&') < 0)
        {
            Span<char> chars = stackalloc char[StreamIdGenerator.MaxLength * 4];
            var length = Encoding.UTF8.GetChars(raw, chars);
            found = _server.FindSession(chars[..length]);
        }
        else
        {
            found = _server.FindSession(element.GetAttribute(attribute)!);
        }
        if (found is null || found.Group != Group)
        {
            return false;
        }
        session = found;
        return true;
    }

    /// <summary>Answers a CM IQ on this link; the spec allows any link of the CM (spec 8.2), this one keeps order.</summary>
    internal void WriteIqReply(scoped in XmlElementReader iq, StanzaErrorCondition? condition, ReadOnlySpan<byte> appCondition = default)
    {
        using var scope = Output.Begin();
        LinkWriting.WriteIqReply(scope.Output, iq, condition, appCondition);
        scope.Complete();
    }

    private static string NewLinkStreamId()
    {
        Span<char> id = stackalloc char[LinkStreamIdLength];
        RandomNumberGenerator.GetItems("0123456789abcdefghijklmnopqrstuvwxyz", id);
        return new string(id);
    }
}
