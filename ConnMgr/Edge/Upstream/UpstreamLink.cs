using ConnMgr.Buffers;
using System.Buffers;
using System.IO.Pipelines;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using ConnMgr.Protocol;
using ConnMgr.Protocol.Link;
using ConnMgr.Protocol.Xml;

namespace ConnMgr.Edge.Upstream;

/// <summary>Why a link ended, recorded once (the first cause wins) for the log line.</summary>
internal enum LinkCloseReason : byte
{
    None,
    ConnectFailed,
    TlsFailed,
    TlsUnavailable,
    HandshakeRefused,
    Conflict,
    NegotiationTimeout,
    ServerStreamError,
    ServerShutdown,
    ServerClosed,
    ReadFailed,
    WriteFailed,
    ProtocolError,
    Dead,
    Stalled,
    Stopping,
}

/// <summary>How one connection attempt ended, for the pool's reconnect decision.</summary>
internal readonly record struct LinkOutcome(LinkCloseReason Reason, bool WasReady);

/// <summary>
/// One TCP connection to the server's connection-manager listener: connect, optional TLS,
/// stream header, handshake, then elements in both directions until it dies. Two tracked
/// loops: the read loop (this class, which also negotiates) and the sender of
/// <see cref="LinkOutput"/>, started once the handshake is written. A new object is made for
/// every connection attempt.
/// </summary>
internal sealed class UpstreamLink
{
    private const int StateConnecting = 0;
    private const int StateNegotiating = 1;
    private const int StateReady = 2;
    private const int StateClosed = 3;

    // 16 KiB buffers hold a full TLS record; zero-byte reads keep an idle link from holding one.
    private static readonly StreamPipeReaderOptions s_readerOptions = new(
        bufferSize: 16 * 1024, minimumReadSize: 4 * 1024, leaveOpen: true, useZeroByteReads: true);

    private readonly UpstreamPool _pool;
    private readonly UpstreamSettings _settings;
    private readonly byte[] _header;
    private readonly CancellationTokenSource _abort = new();
    private readonly Lock _reasonLock = new();
    private readonly PooledBufferWriter _contiguous = new();
    private readonly long _startedTicks;
    private LinkCloseReason _reason;
    private int _state;
    private int _down;
    private long _lastReadTicks;
    private Socket? _socket;
    private Stream? _stream;
    private Task? _senderTask;
    private string? _serverStreamId;
    private bool _tlsActive;
    private bool _handshakeSent;
    private bool _wasReady;
    private XmppStreamScanner _rawTextScanner = new(UpstreamPool.RawTextScannerOptions);

    public UpstreamLink(UpstreamPool pool, UpstreamSettings settings, string jid)
    {
        _pool = pool;
        _settings = settings;
        Jid = jid;
        _header = LinkWire.StreamHeader(jid);
        Output = new LinkOutput(settings.LinkOutputPauseBytes);
        _startedTicks = _lastReadTicks = Environment.TickCount64;
    }

    /// <summary>The link JID, <c>NAME/link-N</c> (spec 3.2).</summary>
    public string Jid { get; }

    public LinkOutput Output { get; }

    /// <summary>Authenticated: sessions may be pinned to it.</summary>
    public bool IsReady => Volatile.Read(ref _state) == StateReady;

    /// <summary>Set as the link starts going down, before the pool moves its sessions away.</summary>
    public bool IsDown => Volatile.Read(ref _down) != 0;

    /// <summary>Namespace bindings of the server's stream header, for reading its elements.</summary>
    public XmlNamespaceScope Scope { get; private set; }

    /// <summary>Scratch space for the read loop (raw-text route bodies, spec 6.2); one user at a time.</summary>
    internal PooledBufferWriter Scratch { get; } = new();

    /// <summary>
    /// A scanner for one raw-text route body (elements, no stream header), ready to start. A
    /// scanner keeps its error for good (a broken stream stays broken), so a body that failed
    /// gets the next one a new scanner.
    /// </summary>
    internal XmppStreamScanner RestartRawTextScanner()
    {
        if (_rawTextScanner.ErrorCondition != StreamErrorCondition.None)
        {
            _rawTextScanner = new XmppStreamScanner(UpstreamPool.RawTextScannerOptions);
        }
        else
        {
            _rawTextScanner.Restart();
        }
        return _rawTextScanner;
    }

    /// <summary>Runs the connection to its end and never throws; the pool reconnects.</summary>
    public async Task<LinkOutcome> RunAsync()
    {
        try
        {
            UpstreamLog.LinkConnecting(_pool.Logger, Jid, _settings.Host, _settings.Port);
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            _socket = socket;
            await socket.ConnectAsync(_settings.Host, _settings.Port, _abort.Token).ConfigureAwait(false);
            Stream stream = new NetworkStream(socket, ownsSocket: true);
            _stream = stream;
            if (_settings.DirectTls)
            {
                _stream = await AuthenticateTlsAsync(stream).ConfigureAwait(false);
            }
            Volatile.Write(ref _state, StateNegotiating);
            await WriteDirectAsync(_header).ConfigureAwait(false);
            await ReadLoopAsync().ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_abort.IsCancellationRequested)
        {
            // Aborted: the reason is already recorded.
        }
        catch (AuthenticationException e)
        {
            SetReason(LinkCloseReason.TlsFailed);
            UpstreamLog.LinkTlsFailed(_pool.Logger, Jid, e);
        }
        catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException)
        {
            var reason = Volatile.Read(ref _state) == StateConnecting ? LinkCloseReason.ConnectFailed : LinkCloseReason.ReadFailed;
            if (SetReason(reason))
            {
                UpstreamLog.LinkIoFailed(_pool.Logger, Jid, reason, e.Message);
            }
        }
        catch (Exception e)
        {
            SetReason(LinkCloseReason.ProtocolError);
            UpstreamLog.LinkFailed(_pool.Logger, Jid, e);
        }
        await TearDownAsync().ConfigureAwait(false);
        return new LinkOutcome(Reason, _wasReady);
    }

    public LinkCloseReason Reason
    {
        get
        {
            lock (_reasonLock)
            {
                return _reason;
            }
        }
    }

    /// <summary>Ends the link now: the socket is closed and both loops stop. Any thread.</summary>
    public void Abort(LinkCloseReason reason)
    {
        SetReason(reason);
        _abort.Cancel();
        _socket?.Dispose();
    }

    /// <summary>
    /// Ends the stream on purpose (spec 8.5): <c>&lt;/stream:stream&gt;</c> after whatever is
    /// queued, then waits for the server to close its side. A link not yet authenticated is aborted.
    /// </summary>
    public void BeginGracefulClose()
    {
        SetReason(LinkCloseReason.Stopping);
        if (!IsReady)
        {
            Abort(LinkCloseReason.Stopping);
            return;
        }
        using (var scope = Output.Begin())
        {
            scope.Write(LinkWire.StreamEnd);
        }
        Output.Complete();
    }

    /// <summary>Timeouts and keepalive, from the pool's single heartbeat (spec 8.3).</summary>
    public void OnHeartbeat(long now)
    {
        var state = Volatile.Read(ref _state);
        if (state == StateClosed)
        {
            return;
        }
        var deadAfterMs = (long)_settings.DeadAfter.TotalMilliseconds;
        if (state != StateReady && now - _startedTicks > (long)_settings.ConnectTimeout.TotalMilliseconds)
        {
            if (SetReason(LinkCloseReason.NegotiationTimeout))
            {
                UpstreamLog.LinkNegotiationTimeout(_pool.Logger, Jid, _settings.ConnectTimeout.TotalSeconds);
            }
            Abort(LinkCloseReason.NegotiationTimeout);
        }
        else if (now - Volatile.Read(ref _lastReadTicks) > deadAfterMs)
        {
            if (SetReason(LinkCloseReason.Dead))
            {
                UpstreamLog.LinkSilent(_pool.Logger, Jid, _settings.DeadAfter.TotalSeconds);
            }
            Abort(LinkCloseReason.Dead);
        }
        else if (state == StateReady && Output.IsStalled(now, deadAfterMs))
        {
            if (SetReason(LinkCloseReason.Stalled))
            {
                UpstreamLog.LinkStalled(_pool.Logger, Jid, Output.PendingBytes, _settings.DeadAfter.TotalSeconds);
            }
            Abort(LinkCloseReason.Stalled);
        }
        else if (state == StateReady && now - Output.LastWriteTicks >= (long)_settings.Keepalive.TotalMilliseconds)
        {
            using var scope = Output.Begin();
            scope.Write(LinkWire.Keepalive);
        }
    }

    private bool SetReason(LinkCloseReason reason)
    {
        lock (_reasonLock)
        {
            if (_reason != LinkCloseReason.None)
            {
                return false;
            }
            _reason = reason;
            return true;
        }
    }

    private async Task ReadLoopAsync()
    {
        var scanner = new XmppStreamScanner(XmlScannerOptions.UpstreamLink);
        while (true)
        {
            var reader = PipeReader.Create(_stream!, s_readerOptions);
            var upgrade = false;
            try
            {
                upgrade = await ReadFramesAsync(reader, scanner).ConfigureAwait(false);
            }
            finally
            {
                await reader.CompleteAsync().ConfigureAwait(false);
            }
            if (!upgrade)
            {
                return;
            }
            // STARTTLS (spec 3.5): the server sent <proceed/> and nothing after it.
            _stream = await AuthenticateTlsAsync(_stream!).ConfigureAwait(false);
            scanner.Restart();
            await WriteDirectAsync(_header).ConfigureAwait(false);
        }
    }

    /// <summary>Reads and handles frames until the stream ends (false) or TLS must start (true).</summary>
    private async Task<bool> ReadFramesAsync(PipeReader reader, XmppStreamScanner scanner)
    {
        while (true)
        {
            var result = await reader.ReadAsync(_abort.Token).ConfigureAwait(false);
            Volatile.Write(ref _lastReadTicks, Environment.TickCount64);
            var buffer = result.Buffer;
            var consumed = buffer.Start;
            var examined = buffer.Start;
            var action = FrameAction.Continue;
            var needMore = false;
            try
            {
                while (action == FrameAction.Continue)
                {
                    var status = scanner.Scan(buffer.Slice(consumed), out var frameEnd, out var scanned, out var frame);
                    if (status == ScanStatus.NeedMoreData)
                    {
                        examined = scanned;
                        needMore = true;
                        break;
                    }
                    if (status == ScanStatus.Error)
                    {
                        UpstreamLog.LinkUnreadable(_pool.Logger, Jid, scanner.ErrorCondition.ToElementName(), scanner.ErrorText ?? "");
                        SetReason(LinkCloseReason.ProtocolError);
                        return false;
                    }
                    action = HandleFrame(frame);
                    consumed = examined = frameEnd;
                }
            }
            finally
            {
                reader.AdvanceTo(consumed, examined);
            }

            switch (action)
            {
                case FrameAction.Close:
                    return false;
                case FrameAction.SendStartTls:
                    await WriteDirectAsync(LinkWire.StartTls.ToArray()).ConfigureAwait(false);
                    break;
                case FrameAction.SendHandshake:
                    await WriteDirectAsync(LinkWire.Handshake(HandshakeDigest.Compute(_serverStreamId!, _settings.Secret)))
                        .ConfigureAwait(false);
                    // From here on every write goes through the output and its sender loop.
                    _senderTask = RunSenderAsync(_stream!);
                    break;
                case FrameAction.UpgradeTls:
                    return true;
            }
            if (needMore && result.IsCompleted)
            {
                SetReason(LinkCloseReason.ServerClosed);
                UpstreamLog.LinkEndedByServer(_pool.Logger, Jid);
                return false;
            }
        }
    }

    private FrameAction HandleFrame(in XmlFrame frame)
    {
        switch (frame.Kind)
        {
            case XmlFrameKind.StreamHeader:
                OnStreamHeader(frame.Header!);
                return FrameAction.Continue;
            case XmlFrameKind.StreamEnd:
                SetReason(LinkCloseReason.ServerClosed);
                UpstreamLog.LinkEndedByServer(_pool.Logger, Jid);
                return FrameAction.Close;
            case XmlFrameKind.Element:
                return HandleElement(Contiguous(frame.Bytes));
            default:
                return FrameAction.Continue;
        }
    }

    private void OnStreamHeader(StreamHeader header)
    {
        var prefixes = new List<KeyValuePair<string, string>>();
        foreach (var declaration in header.NamespaceDeclarations)
        {
            if (declaration.Key.Length > 0)
            {
                prefixes.Add(declaration);
            }
        }
        Scope = XmlNamespaceScope.Create(header.DefaultNamespace, prefixes);
        // The id stays the same across the TLS restart (spec 3.5); it salts the handshake.
        _serverStreamId ??= header.Id;
    }

    private FrameAction HandleElement(ReadOnlySpan<byte> bytes)
    {
        try
        {
            var element = new XmlElementReader(bytes, Scope);
            var local = element.LocalName;
            // Routes and IQs may come from the moment the server's header arrived, even before
            // the handshake (spec 0.1 point 3).
            if (local.SequenceEqual("route"u8))
            {
                _pool.HandleRoute(this, element);
                return FrameAction.Continue;
            }
            if (local.SequenceEqual("iq"u8))
            {
                _pool.HandleIq(this, element);
                return FrameAction.Continue;
            }
            if (element.NameIs("features"u8, XmppNamespaces.Stream))
            {
                return OnFeatures(element);
            }
            if (element.NameIs("error"u8, XmppNamespaces.Stream))
            {
                OnLinkStreamError(element);
                return FrameAction.Close;
            }
            if (local.SequenceEqual("handshake"u8))
            {
                OnHandshakeAccepted();
                return FrameAction.Continue;
            }
            if (element.NameIs("proceed"u8, XmppNamespaces.Tls))
            {
                return FrameAction.UpgradeTls;
            }
            if (element.NameIs("failure"u8, XmppNamespaces.Tls))
            {
                SetReason(LinkCloseReason.TlsFailed);
                UpstreamLog.LinkTlsRefused(_pool.Logger, Jid);
                return FrameAction.Close;
            }
            UpstreamLog.LinkUnexpectedElement(_pool.Logger, Jid, UpstreamLog.Excerpt(element.Raw));
        }
        catch (FormatException e)
        {
            UpstreamLog.LinkMalformedElement(_pool.Logger, Jid, e.Message);
        }
        return FrameAction.Continue;
    }

    private FrameAction OnFeatures(scoped in XmlElementReader features)
    {
        if (_handshakeSent)
        {
            return FrameAction.Continue;
        }
        if (_serverStreamId is null)
        {
            SetReason(LinkCloseReason.ProtocolError);
            UpstreamLog.LinkNoStreamId(_pool.Logger, Jid);
            return FrameAction.Close;
        }
        // On the Direct-TLS port Openfire advertises STARTTLS anyway (spec 3.4): only a plain
        // link looks at it.
        if (!_tlsActive)
        {
            var offered = features.TryGetChild("starttls"u8, XmppNamespaces.Tls, out var starttls);
            var required = offered && starttls.TryGetChild("required"u8, XmppNamespaces.Tls, out _);
            if (offered && _settings.LinkTls != LinkTlsMode.Never)
            {
                return FrameAction.SendStartTls;
            }
            if (_settings.LinkTls == LinkTlsMode.Required)
            {
                SetReason(LinkCloseReason.TlsUnavailable);
                UpstreamLog.LinkTlsNotOffered(_pool.Logger, Jid);
                return FrameAction.Close;
            }
            if (required)
            {
                SetReason(LinkCloseReason.TlsUnavailable);
                UpstreamLog.LinkTlsRequiredByServer(_pool.Logger, Jid);
                return FrameAction.Close;
            }
        }
        _handshakeSent = true;
        return FrameAction.SendHandshake;
    }

    private void OnHandshakeAccepted()
    {
        if (!_handshakeSent || IsReady)
        {
            return;
        }
        _wasReady = true;
        Volatile.Write(ref _state, StateReady);
        _pool.OnLinkReady(this);
    }

    private void OnLinkStreamError(scoped in XmlElementReader error)
    {
        var condition = UpstreamPool.ReadStreamError(error, out var text);
        if (condition == StreamErrorCondition.SystemShutdown)
        {
            SetReason(LinkCloseReason.ServerShutdown);
            _pool.OnServerShutdown(this);
            return;
        }
        if (!IsReady)
        {
            // Errors before the handshake is accepted are the server refusing the link (spec
            // 3.3, 3.6): tell the operator what to fix.
            SetReason(condition == StreamErrorCondition.Conflict ? LinkCloseReason.Conflict : LinkCloseReason.HandshakeRefused);
            switch (condition)
            {
                case StreamErrorCondition.NotAuthorized:
                    UpstreamLog.HandshakeNotAuthorized(_pool.Logger, Jid, Detail(text));
                    break;
                case StreamErrorCondition.Conflict:
                    UpstreamLog.LinkJidConflict(_pool.Logger, Jid, Detail(text));
                    break;
                case StreamErrorCondition.InternalServerError:
                    UpstreamLog.ServerHasNoSecret(_pool.Logger, Jid, Detail(text));
                    break;
                case StreamErrorCondition.BadFormat:
                    UpstreamLog.LinkJidRefused(_pool.Logger, Jid, Detail(text));
                    break;
                case StreamErrorCondition.InvalidNamespace:
                    UpstreamLog.LinkNamespaceRefused(_pool.Logger, Jid, _settings.Host, _settings.Port, Detail(text));
                    break;
                default:
                    UpstreamLog.LinkRefused(_pool.Logger, Jid, condition.ToElementName(), Detail(text));
                    break;
            }
            return;
        }
        SetReason(LinkCloseReason.ServerStreamError);
        UpstreamLog.LinkStreamError(_pool.Logger, Jid, condition.ToElementName(), Detail(text));
    }

    private static string Detail(string? text) => string.IsNullOrEmpty(text) ? "" : ": " + text;

    private async Task<Stream> AuthenticateTlsAsync(Stream inner)
    {
        var tls = new SslStream(inner, leaveInnerStreamOpen: false);
        _stream = tls;
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = _settings.TlsServerName ?? _settings.Host,
            RemoteCertificateValidationCallback = _settings.ServerCertificateValidation,
        }, _abort.Token).ConfigureAwait(false);
        _tlsActive = true;
        UpstreamLog.LinkTlsEstablished(_pool.Logger, Jid, tls.SslProtocol.ToString(), tls.NegotiatedCipherSuite.ToString());
        return tls;
    }

    /// <summary>Negotiation writes, before the sender loop exists; only the read loop writes then.</summary>
    private async Task WriteDirectAsync(byte[] bytes)
    {
        await _stream!.WriteAsync(bytes, _abort.Token).ConfigureAwait(false);
        await _stream.FlushAsync(_abort.Token).ConfigureAwait(false);
    }

    private async Task RunSenderAsync(Stream stream)
    {
        try
        {
            await Output.RunSenderAsync(stream, _abort.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException)
        {
            if (SetReason(LinkCloseReason.WriteFailed))
            {
                UpstreamLog.LinkIoFailed(_pool.Logger, Jid, LinkCloseReason.WriteFailed, e.Message);
            }
            Abort(LinkCloseReason.WriteFailed);
        }
    }

    private ReadOnlySpan<byte> Contiguous(in ReadOnlySequence<byte> bytes)
    {
        if (bytes.IsSingleSegment)
        {
            return bytes.FirstSpan;
        }
        _contiguous.Reset();
        foreach (var segment in bytes)
        {
            _contiguous.Write(segment.Span);
        }
        return _contiguous.WrittenSpan;
    }

    /// <summary>
    /// Order matters here (spec 8.1, no reordering): leave the ready set and mark the link down,
    /// close the socket so nothing queued can still reach the server, then stop the sender.
    /// Only then may the pool move sessions to other links.
    /// </summary>
    private async Task TearDownAsync()
    {
        Volatile.Write(ref _state, StateClosed);
        Interlocked.Exchange(ref _down, 1);
        _pool.OnLinkGoingDown(this);
        if (Reason == LinkCloseReason.Stopping && _senderTask is not null)
        {
            // A graceful close: let the sender finish writing </stream:stream> before the socket goes.
            await _senderTask.WaitAsync(_settings.StopDrainTimeout).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
        SetReason(LinkCloseReason.ServerClosed);
        _abort.Cancel();
        _socket?.Dispose();
        if (_stream is not null)
        {
            await _stream.DisposeAsync().ConfigureAwait(false);
        }
        Output.Complete();
        if (_senderTask is not null)
        {
            await _senderTask.ConfigureAwait(false);
        }
        Scratch.Reset();
        _contiguous.Reset();
    }

    private enum FrameAction : byte
    {
        Continue,
        SendStartTls,
        SendHandshake,
        UpgradeTls,
        Close,
    }
}
