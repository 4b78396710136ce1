using System.Buffers;
using System.Diagnostics;
using ConnMgr.Diagnostics;
using ConnMgr.Edge.Transport;
using ConnMgr.Edge.Upstream;
using ConnMgr.Protocol;
using ConnMgr.Protocol.Xml;

namespace ConnMgr.Edge.Streams;

/// <summary>
/// One client's XMPP stream, between its transport connection and its session on the core: the
/// inbound stream state machine of ejabberd's <c>xmpp_stream_in</c>, reduced to what a connection
/// manager does itself (spec 7.1): wait for the stream header, negotiate TLS, relay SASL, wait
/// for the resource binding, then relay stanzas both ways until the stream ends.
/// </summary>
/// <remarks>
/// <para>Threads. The receive loop (<see cref="RunAsync"/>) owns the scanner, the phase and the
/// <see cref="ClientConnection.Output"/> writer. Three other threads touch the stream, each only
/// through thread-safe members: upstream links deliver stanzas with
/// <see cref="ClientConnection.TryWrite(ReadOnlySpan{byte})"/> and raise signals (SASL success,
/// resource bound) that the loop applies before its next element; the transport's heartbeat
/// checks deadlines and writes idle pings; shutdown and the links ask for a close. A close asked
/// from outside is a <see cref="CloseRequest"/> published once, after which the loop is woken
/// (its pending read or flush is cancelled) and writes the last words itself, so nothing it has
/// staged can follow <c>&lt;/stream:stream&gt;</c>.</para>
/// <para>Memory. Idle clients are the common case: an idle stream holds this object, its scanner
/// (which keeps the client's header) and the loop's state machine; no buffer, no timer, no
/// cancellation registration (shutdown reaches it through the heartbeat). Per-stanza work
/// allocates nothing.</para>
/// </remarks>
internal sealed partial class ClientStream : IUpstreamSessionOwner, IConnectionHeartbeatListener
{
    /// <summary>Signals from the upstream links to the loop, applied before the loop's next element.</summary>
    private const int SaslSucceededSignal = 1;
    private const int PendingIqDoneSignal = 2;

    /// <summary>The namespace context of a client header that declares nothing beyond the usual two.</summary>
    private static readonly XmlNamespaceScope s_clientScope = XmlNamespaceScope.Create(
        XmppNamespaces.Client, [new KeyValuePair<string, string>("stream", XmppNamespaces.Stream)]);

    private readonly ClientStreamHandler _handler;
    private readonly IClientStreamConnection _connection;
    private readonly XmppStreamScanner _scanner;
    private UpstreamSession? _session;
    private CloseRequest? _closeRequest;
    private XmlNamespaceScope _scope = s_clientScope;

    // The id of the client's bind (or iq-auth) request, while the core has not answered it.
    private string? _pendingIqId;

    private long _negotiationDeadline;
    private long _pingSentAt;
    private long _bytesAtPing;
    private long _reportedBytesIn;
    private long _reportedBytesOut;
    private long _reportedPending;
    private int _signals;
    private Phase _phase;
    private bool _awaitingHeader = true;
    private int _holdsIpSlot;
    private int _established;
    private bool _hasExtraPrefixes;

    public ClientStream(ClientStreamHandler handler, IClientStreamConnection connection)
    {
        _handler = handler;
        _connection = connection;
        _scanner = new XmppStreamScanner(handler.ScannerOptions);
    }

    private enum Phase : byte
    {
        /// <summary>Before SASL success: header, STARTTLS, SASL (wait_for_stream, wait_for_feature_request, wait_for_sasl_response).</summary>
        Unauthenticated,

        /// <summary>After SASL success, before the core bound a resource (wait_for_bind).</summary>
        Authenticated,

        /// <summary>Stanzas flow both ways (established).</summary>
        Established,
    }

    /// <summary>What the loop does after the element it has just handled.</summary>
    private enum Next : byte
    {
        Continue,
        Route,
        StartTls,
        Close,
    }

    public Task RunAsync(CancellationToken stopping)
    {
        _handler.Metrics?.ConnectionOpened(_connection.MetricsTransport);
        _handler.WatchStopping(stopping);
        if (!TryTakeIpSlot())
        {
            Finish();
            return Task.CompletedTask;
        }
        _negotiationDeadline = Heartbeat.After(Stopwatch.GetTimestamp(), _handler.Settings.NegotiationTimeout);
        _connection.HeartbeatListener = this;
        return ReceiveAsync(stopping);
    }

    /// <summary>
    /// The receive loop: frames out of the input pipe, each handled before the next is scanned.
    /// A relayed stanza goes to the core as the bytes the client sent (spec 6.1), straight from the
    /// pipe's buffer, which is not released until the route is written. One async method for the
    /// stream's whole life: an idle client costs one state machine, parked in its read.
    /// </summary>
    private async Task ReceiveAsync(CancellationToken stopping)
    {
        try
        {
            while (true)
            {
                var read = _connection.Input.ReadAsync();
                var result = read.IsCompletedSuccessfully ? read.Result : await read;
                var buffer = result.Buffer;
                if (Volatile.Read(ref _closeRequest) is { } request)
                {
                    _connection.Input.AdvanceTo(buffer.Start);
                    WriteClosing(request);
                    return;
                }

                var consumed = buffer.Start;
                var examined = buffer.End;
                var next = Next.Continue;
                while (true)
                {
                    if (Volatile.Read(ref _closeRequest) is not null)
                    {
                        next = Next.Close;
                        consumed = examined = buffer.Start;
                        break;
                    }
                    ApplySignals();
                    var status = _scanner.Scan(buffer, out var frameEnd, out var scanExamined, out var frame);
                    if (status == ScanStatus.NeedMoreData)
                    {
                        consumed = buffer.Start;
                        examined = scanExamined;
                        break;
                    }
                    if (status == ScanStatus.Error)
                    {
                        StreamLog.BadXml(_handler.Logger, _connection.Id, _scanner.ErrorCondition.ToElementName(), _scanner.ErrorText);
                        Close(new CloseRequest(_scanner.ErrorCondition, CloseReason.ProtocolError, _scanner.ErrorText));
                        next = Next.Close;
                        consumed = examined = buffer.Start;
                        break;
                    }

                    next = OnFrame(frame);
                    if (next == Next.Route)
                    {
                        var route = _session!.RouteAsync(frame.Bytes, stopping);
                        if (!route.IsCompletedSuccessfully)
                        {
                            await route;
                        }
                        _handler.Metrics?.StanzaReceived();
                        next = Next.Continue;
                    }
                    buffer = buffer.Slice(frameEnd);
                    consumed = examined = buffer.Start;
                    if (next != Next.Continue)
                    {
                        break;
                    }
                }
                // Read before AdvanceTo releases the segments.
                var pipelined = next == Next.StartTls && !buffer.IsEmpty;
                _connection.Input.AdvanceTo(consumed, examined);

                if (_connection.Output.UnflushedBytes > 0 && next != Next.Close)
                {
                    var flush = await _connection.Output.FlushAsync();
                    if (flush.IsCompleted)
                    {
                        return;
                    }
                }

                switch (next)
                {
                    case Next.Close:
                        WriteClosing(Volatile.Read(ref _closeRequest)!);
                        return;
                    case Next.StartTls:
                        if (pipelined)
                        {
                            // Bytes sent with <starttls/> would pass as if they had come over TLS
                            // (CVE-2011-0411); the transport refuses those that arrive later.
                            Close(new CloseRequest(StreamErrorCondition.PolicyViolation, CloseReason.ProtocolError, "data sent after <starttls/> before the TLS handshake"));
                            WriteClosing(Volatile.Read(ref _closeRequest)!);
                            return;
                        }
                        if (!await _connection.UpgradeToTlsAsync(StreamWire.Proceed, stopping))
                        {
                            return;
                        }
                        StreamLog.TlsEstablished(_handler.Logger, _connection.Id, _connection.TlsProtocol);
                        _scanner.Restart();
                        _awaitingHeader = true;
                        continue;
                }

                if (result.IsCompleted)
                {
                    // The client closed its side without </stream:stream>, or mid-element.
                    Close(CloseRequest.ClientGone);
                    WriteClosing(Volatile.Read(ref _closeRequest)!);
                    return;
                }
            }
    
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            // Shutdown caught the loop waiting on the upstream link or a TLS handshake.
            Close(CloseRequest.Shutdown);
            WriteClosing(Volatile.Read(ref _closeRequest)!);
        }
        catch (Exception e)
        {
            // A bug of ours; the client still gets a clear answer and the core its <close/>.
            StreamLog.StreamFailed(_handler.Logger, e, _connection.Id);
            Close(new CloseRequest(StreamErrorCondition.InternalServerError, CloseReason.InternalError, null));
            WriteClosing(Volatile.Read(ref _closeRequest)!);
        }
        finally
        {
            Finish();
        }
    }

    /// <summary>
    /// Asks the stream to close, from any thread; the first request wins. The loop is woken and
    /// writes the stream error itself; the transport's deadline cuts the connection if the loop
    /// cannot (it waits on a congested upstream link).
    /// </summary>
    internal void RequestClose(CloseRequest request)
    {
        if (Interlocked.CompareExchange(ref _closeRequest, request, null) is not null)
        {
            return;
        }
        _connection.TrySetCloseReason(request.Reason);
        _connection.SetDeadline(_handler.Settings.CloseGrace, request.Reason);
        _connection.Input.CancelPendingRead();
        _connection.Output.CancelPendingFlush();
    }

    /// <summary>The loop's own decision to close: recorded like a request (one may have won already).</summary>
    private void Close(CloseRequest request)
    {
        if (Interlocked.CompareExchange(ref _closeRequest, request, null) is null)
        {
            _connection.TrySetCloseReason(request.Reason);
        }
    }

    /// <summary>
    /// The last words, staged in <see cref="ClientConnection.Output"/>: the transport flushes them
    /// within its close timeout once the handler returns. Before the stream is opened the header
    /// comes first (RFC 6120 4.9.1.2).
    /// </summary>
    private void WriteClosing(CloseRequest request)
    {
        // Without an error there is nothing to say on a stream we have not opened (none yet, or a
        // restart the client has not followed with its header).
        if (request.Condition == StreamErrorCondition.None && (!request.WriteStreamEnd || _awaitingHeader))
        {
            return;
        }
        var output = _connection.Output;
        if (_awaitingHeader)
        {
            WriteHeader(output, _session?.StreamId ?? _handler.Pool.NewStreamId(), lang: null);
        }
        if (request.Condition != StreamErrorCondition.None)
        {
            XmppElements.WriteStreamError(output, request.Condition, request.Text);
            StreamLog.StreamError(_handler.Logger, _connection.Id, request.Condition.ToElementName(), request.Text);
        }
        XmppElements.WriteStreamEnd(output);
    }

    /// <summary>Writes a stream header, an error and the stream end to a client turned away before its stream began.</summary>
    internal static void WriteRefusal(ClientStreamHandler handler, IClientStreamConnection connection, StreamErrorCondition condition, string text)
    {
        var output = connection.Output;
        WriteHeader(handler, output, handler.Pool.NewStreamId(), lang: null);
        XmppElements.WriteStreamError(output, condition, text);
        XmppElements.WriteStreamEnd(output);
    }

    private void WriteHeader(IBufferWriter<byte> output, string streamId, string? lang) => WriteHeader(_handler, output, streamId, lang);

    /// <summary>
    /// RFC 6120 4.7: <c>from</c> the domain, <c>id</c> the core session's stream ID (also the salt
    /// of XEP-0078 digests, which the core computes with it), <c>xml:lang</c> echoed or <c>en</c>.
    /// </summary>
    private static void WriteHeader(ClientStreamHandler handler, IBufferWriter<byte> output, string streamId, string? lang)
        => XmppElements.WriteStreamHeader(output, from: handler.Settings.Domain, to: null, id: streamId, version: "1.0",
            lang: lang ?? "en", includeXmlDeclaration: true);

    /// <summary>Per-address limit on unauthenticated connections: over it, <c>policy-violation</c>.</summary>
    private bool TryTakeIpSlot()
    {
        var tracker = _handler.Tracker;
        if (tracker is null)
        {
            return true;
        }
        if (tracker.TryAcquireUnauthenticated(_connection.RemoteEndPoint.Address))
        {
            _holdsIpSlot = 1;
            return true;
        }
        StreamLog.PerIpLimit(_handler.Logger, _connection.Id, _connection.RemoteEndPoint.Address, tracker.MaxUnauthenticatedPerIp);
        _connection.TrySetCloseReason(CloseReason.PerIpCap);
        Close(new CloseRequest(StreamErrorCondition.PolicyViolation, CloseReason.PerIpCap,
            "too many unauthenticated connections from your address (Edge:MaxUnauthenticatedPerIp)"));
        WriteClosing(Volatile.Read(ref _closeRequest)!);
        return false;
    }

    /// <summary>From any thread (authentication is learnt on a link's thread), exactly once.</summary>
    private void ReleaseIpSlot()
    {
        if (Interlocked.Exchange(ref _holdsIpSlot, 0) == 1)
        {
            _handler.Tracker!.ReleaseUnauthenticated(_connection.RemoteEndPoint.Address);
        }
    }

    /// <summary>Applies what the upstream links signalled since the last element (see the class remarks).</summary>
    private void ApplySignals()
    {
        if (Volatile.Read(ref _signals) == 0)
        {
            return;
        }
        var signals = Interlocked.Exchange(ref _signals, 0);
        if ((signals & SaslSucceededSignal) != 0 && _phase == Phase.Unauthenticated)
        {
            // RFC 6120 6.4.6: the client restarts the stream at once; the next bytes are a new header.
            _phase = Phase.Authenticated;
            _awaitingHeader = true;
            _scanner.Restart();
        }
        if ((signals & PendingIqDoneSignal) != 0)
        {
            _phase = Phase.Established;
        }
    }

    /// <summary>After the loop: the core session, the per-IP slot, the metrics.</summary>
    private void Finish()
    {
        _connection.HeartbeatListener = null;
        _session?.Close();
        ReleaseIpSlot();
        var reason = _connection.CloseReason;
        if (reason == CloseReason.None)
        {
            reason = CloseReason.ServerClosed;
            _connection.TrySetCloseReason(reason);
        }
        if (_handler.Metrics is { } metrics)
        {
            ReportCounters(metrics, final: true);
            metrics.ConnectionClosed(_connection.MetricsTransport, Volatile.Read(ref _established) != 0 ? ClientConnectionState.Established : ClientConnectionState.Negotiating,
                ClientStreamHandler.ReasonName(reason));
        }
    }

    /// <summary>Byte counters and pending output as deltas since the last report, so the metrics stay current for long streams.</summary>
    private void ReportCounters(ConnMgrMetrics metrics, bool final)
    {
        var received = _connection.BytesReceived;
        metrics.BytesReceived(received - Interlocked.Exchange(ref _reportedBytesIn, received));
        var sent = _connection.BytesSent;
        metrics.BytesSent(sent - Interlocked.Exchange(ref _reportedBytesOut, sent));
        var pending = final ? 0 : _connection.PendingOutputBytes;
        metrics.PendingOutputChanged(pending - Interlocked.Exchange(ref _reportedPending, pending));
    }
}

/// <summary>Why and how a stream ends: the stream error to send (if any) and the close reason to record.</summary>
internal sealed class CloseRequest(StreamErrorCondition condition, CloseReason reason, string? text, bool writeStreamEnd = true)
{
    /// <summary>RFC 6120 4.9.3.20: the edge is stopping.</summary>
    public static readonly CloseRequest Shutdown = new(StreamErrorCondition.SystemShutdown, CloseReason.ServerShutdown, null);

    /// <summary>
    /// No link to the core: RFC 6120 4.9.3.15 <c>remote-connection-failed</c>, "unable to properly
    /// connect to a remote entity that is needed for authentication or authorization", which the core
    /// is. (Jive's CM said <c>system-shutdown</c>, which tells the client the whole service is going
    /// away, when only the edge's upstream is.)
    /// </summary>
    public static readonly CloseRequest UpstreamLost = new(StreamErrorCondition.RemoteConnectionFailed, CloseReason.UpstreamLost,
        "the connection manager lost its link to the server");

    public static readonly CloseRequest NegotiationTimeout = new(StreamErrorCondition.ConnectionTimeout, CloseReason.NegotiationTimeout,
        "stream negotiation took too long (Edge:NegotiationTimeoutSeconds)");

    public static readonly CloseRequest IdleTimeout = new(StreamErrorCondition.ConnectionTimeout, CloseReason.IdleTimeout,
        "no answer to a ping (Edge:IdleTimeoutSeconds)");

    /// <summary>The client closed its side; ours follows with a bare stream end (RFC 6120 4.4).</summary>
    public static readonly CloseRequest ClientGone = new(StreamErrorCondition.None, CloseReason.ClientClosed, null);

    public StreamErrorCondition Condition { get; } = condition;

    public CloseReason Reason { get; } = reason;

    public string? Text { get; } = text;

    /// <summary>Whether <c>&lt;/stream:stream&gt;</c> is written (also without a stream error).</summary>
    public bool WriteStreamEnd { get; } = writeStreamEnd;
}
