using System.Buffers;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Security.Cryptography;
using ConnMgr.Edge.Streams;
using ConnMgr.Edge.Transport;
using ConnMgr.Protocol.Xml;

namespace ConnMgr.Edge.Web;

/// <summary>
/// One BOSH session (XEP-0124, XMPP over it per XEP-0206): a <see cref="ClientStream"/> on a
/// <see cref="WebStreamConnection"/>, fed by the payloads of the client's requests and drained by
/// their responses.
/// </summary>
/// <remarks>
/// <para>Requests are taken one at a time, in <c>rid</c> order: a request that arrives early (a
/// client with two connections) waits for the ones before it, within the window of
/// <see cref="Requests"/>; a repeated <c>rid</c> gets its response again from the replay cache
/// (XEP-0124 14.3). The request taken last is the one held (<see cref="Hold"/> is 1): when a new
/// request comes, the held one is answered at once, with what is there or empty.</para>
/// <para>Memory: the output waits in the connection's pipe, counted against
/// <c>Edge:MaxPendingOutputBytes</c> until a response carries it; a client that stops polling is
/// dropped after <see cref="Inactivity"/>. The replay cache holds the last two responses.</para>
/// </remarks>
internal sealed class BoshSession
{
    /// <summary>XEP-0124 7.1: at most one request held; the client may then have two open.</summary>
    public const int Hold = 1;

    public const int Requests = Hold + 1;

    private readonly WebStreamConnection _connection;
    private readonly ClientStream _stream;
    private readonly WebOutputFramer _framer = new();
    private readonly SemaphoreSlim _turn = new(1, 1);
    private readonly (long Rid, byte[] Body)[] _replay = new (long, byte[])[Requests];
    private TaskCompletionSource _ridAdvanced = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task _run = Task.CompletedTask;
    private long _nextRid;
    private long _holdDeadline;
    private long _lastActivity;
    private long _pauseUntil;
    private int _activeRequests;
    private int _waiting;
    private bool _ended;
    private bool _created;
    private byte[] _version = [];

    public BoshSession(string sid, long firstRid, TimeSpan wait, WebSettings settings, WebStreamConnection connection, ClientStream stream)
    {
        Sid = sid;
        _nextRid = firstRid;
        Wait = wait;
        Settings = settings;
        _connection = connection;
        _stream = stream;
        _lastActivity = Stopwatch.GetTimestamp();
    }

    public string Sid { get; }

    /// <summary>The longest a request is held (the client's <c>wait</c>, capped by the server).</summary>
    public TimeSpan Wait { get; }

    public WebSettings Settings { get; }

    public WebStreamConnection Connection => _connection;

    /// <summary>The stream's output has ended and a response said so: the session can go.</summary>
    public bool IsOver { get; private set; }

    public Task Completion => _run;

    /// <summary>The session in the web transport's registry, until its stream is done (held for the transport's disposal).</summary>
    public Task? Lifetime { get; set; }

    /// <summary>XEP-0124 7.1: a session id the client cannot guess (it is the only credential of later requests).</summary>
    public static string NewSid() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));

    public void Start(CancellationToken stopping) => _run = RunStreamAsync(stopping);

    private async Task RunStreamAsync(CancellationToken stopping)
    {
        await _stream.RunAsync(stopping);
        _connection.CompleteOutput();
        // Nobody may come for the last words: the heartbeat drops the session after the close timeout.
        Volatile.Write(ref _lastActivity, Stopwatch.GetTimestamp());
    }

    /// <summary>
    /// One request: waits for its turn in <c>rid</c> order, feeds its payload to the stream, then
    /// collects the stream's output into <paramref name="response"/>. Returns the response's kind.
    /// </summary>
    public async Task<BoshOutcome> HandleAsync(BoshRequest request, PooledMessageBuffer response, CancellationToken aborted)
    {
        Interlocked.Increment(ref _activeRequests);
        try
        {
            while (true)
            {
                // Whoever holds the turn waiting for output answers now (XEP-0124 7.1, hold).
                Interlocked.Increment(ref _waiting);
                _connection.OutputReader.CancelPendingRead();
                await _turn.WaitAsync(aborted);
                Interlocked.Decrement(ref _waiting);
                TaskCompletionSource advanced;
                try
                {
                    if (request.Rid < _nextRid)
                    {
                        return Replay(request.Rid, response);
                    }
                    if (request.Rid >= _nextRid + Requests)
                    {
                        return BoshOutcome.ItemNotFound;
                    }
                    if (request.Rid == _nextRid)
                    {
                        return await TakeAsync(request, response);
                    }
                    advanced = _ridAdvanced;
                }
                finally
                {
                    _turn.Release();
                }
                // An early request waits for the one before it (XEP-0124 14.2).
                await advanced.Task.WaitAsync(Wait, aborted);
            }
        }
        catch (TimeoutException)
        {
            return BoshOutcome.ItemNotFound;
        }
        finally
        {
            Interlocked.Decrement(ref _activeRequests);
            Volatile.Write(ref _lastActivity, Stopwatch.GetTimestamp());
        }
    }

    /// <summary>The request in turn (the caller holds the turn).</summary>
    private async Task<BoshOutcome> TakeAsync(BoshRequest request, PooledMessageBuffer response)
    {
        _nextRid = request.Rid + 1;
        Interlocked.Exchange(ref _ridAdvanced, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
        if (request.Pause > TimeSpan.Zero)
        {
            Volatile.Write(ref _pauseUntil, Heartbeat.After(Stopwatch.GetTimestamp(), request.Pause));
        }
        if (!request.Payload.IsEmpty || request.Restart || request.Terminate)
        {
            _connection.OnReceived(request.Payload.Length);
            var input = _connection.InputWriter;
            if (request.Restart)
            {
                // XEP-0206 5: a restart stands for a new stream header.
                // A restart carries no xmpp:version (XEP-0206 5): the session's, from its creation request.
                if (request.Version.Length > 0)
                {
                    _version = request.Version;
                }
                WebSocketSession.WriteStreamHeader(input, request.To, _version, request.Lang);
            }
            input.Write(request.Payload.Span);
            if (request.Terminate)
            {
                input.Write("</stream:stream>"u8);
            }
            var flush = await input.FlushAsync();
            if (flush.IsCompleted)
            {
                _ended = true;
            }
        }
        else
        {
            _connection.OnReceived(1);
        }
        var payload = new PooledMessageBuffer();
        try
        {
            var (outcome, streamError) = await CollectAsync(payload, hold: request.Pause == TimeSpan.Zero);
            if (request.Terminate)
            {
                // XEP-0124 14.4: the client ends the session; what the stream said last is not awaited.
                IsOver = true;
                outcome = BoshOutcome.Terminate;
            }
            WriteBody(response, outcome, streamError, payload);
            Remember(request.Rid, response);
            return outcome;
        }
        finally
        {
            payload.Reset();
        }
    }

    /// <summary>
    /// The response: the first one carries the session's parameters (XEP-0124 7.1, XEP-0206 5 and 8),
    /// a last one <c>type='terminate'</c>, with <c>remote-stream-error</c> when it holds the stream
    /// error that ended the stream (XEP-0206 7).
    /// </summary>
    private void WriteBody(PooledMessageBuffer response, BoshOutcome outcome, bool streamError, PooledMessageBuffer payload)
    {
        var body = new XmlBufferWriter(response);
        body.StartElement("body"u8, BoshEndpoint.HttpBindNamespace);
        if (!_created && StreamId is not null)
        {
            _created = true;
            body.NamespaceDeclaration("xmpp"u8, BoshEndpoint.XboshNamespace);
            body.NamespaceDeclaration("stream"u8, Protocol.XmppNamespaces.Stream);
            body.Attribute("sid"u8, Sid);
            body.Attribute("wait"u8, (long)Wait.TotalSeconds);
            body.Attribute("requests"u8, Requests);
            body.Attribute("hold"u8, Hold);
            body.Attribute("inactivity"u8, (long)Settings.BoshInactivity.TotalSeconds);
            body.Attribute("maxpause"u8, (long)Settings.BoshMaxPause.TotalSeconds);
            body.Attribute("polling"u8, 2);
            body.Attribute("ver"u8, "1.11");
            body.Attribute("from"u8, Settings.Domain);
            body.Attribute("authid"u8, StreamId);
            body.Attribute("secure"u8, _connection.IsSecure ? "true" : "false");
            body.Attribute("xmpp:version"u8, "1.0");
            body.Attribute("xmpp:restartlogic"u8, "true");
        }
        if (outcome == BoshOutcome.Terminate)
        {
            body.Attribute("type"u8, "terminate");
            if (streamError)
            {
                body.Attribute("condition"u8, "remote-stream-error");
            }
        }
        if (payload.WrittenCount > 0)
        {
            body.Raw(payload.WrittenMemory.Span);
        }
        body.EndElement();
    }

    /// <summary>
    /// Moves framed output into the response. Returns once there is something to say, the stream
    /// has ended, a newer request came, or <see cref="Wait"/> passed (empty response).
    /// </summary>
    private async Task<(BoshOutcome Outcome, bool StreamError)> CollectAsync(PooledMessageBuffer response, bool hold)
    {
        var streamError = false;
        var reader = _connection.OutputReader;
        var elements = 0;
        var deadline = Heartbeat.After(Stopwatch.GetTimestamp(), Wait);
        Volatile.Write(ref _holdDeadline, deadline);
        try
        {
            while (!_ended)
            {
                ReadResult result;
                if (!reader.TryRead(out result))
                {
                    if (elements > 0 || !hold || Volatile.Read(ref _waiting) > 0 || Stopwatch.GetTimestamp() >= deadline)
                    {
                        break;
                    }
                    result = await reader.ReadAsync();
                }
                var buffer = result.Buffer;
                var consumed = buffer.Start;
                var examined = buffer.End;
                while (true)
                {
                    var status = _framer.Next(buffer, out var frameEnd, out var scanExamined, out var frame);
                    if (status == ScanStatus.NeedMoreData)
                    {
                        consumed = buffer.Start;
                        examined = scanExamined;
                        break;
                    }
                    if (status == ScanStatus.Error)
                    {
                        _connection.Abort(CloseReason.InternalError);
                        _ended = true;
                        break;
                    }
                    switch (frame.Kind)
                    {
                        case XmlFrameKind.StreamHeader:
                            StreamId ??= frame.Header!.Id;
                            break;
                        case XmlFrameKind.Element:
                            streamError |= IsStreamError(frame.Bytes);
                            WebOutputFramer.WriteElement(frame.Bytes, response);
                            elements++;
                            break;
                        case XmlFrameKind.StreamEnd:
                            _ended = true;
                            break;
                    }
                    _connection.OnSent(frame.Bytes.Length);
                    buffer = buffer.Slice(frameEnd);
                    consumed = examined = buffer.Start;
                }
                reader.AdvanceTo(consumed, examined);
                if (result.IsCompleted && buffer.IsEmpty)
                {
                    _ended = true;
                }
                // A cancellation left over from a request that has since had its turn is not for us.
                if (result.IsCanceled && elements == 0 && !_ended && Volatile.Read(ref _waiting) == 0 && Stopwatch.GetTimestamp() < deadline)
                {
                    continue;
                }
                if (result.IsCanceled)
                {
                    break;
                }
            }
        }
        finally
        {
            Volatile.Write(ref _holdDeadline, 0);
        }
        if (_ended)
        {
            IsOver = true;
            return (BoshOutcome.Terminate, streamError);
        }
        return (BoshOutcome.Data, streamError);
    }

    private static bool IsStreamError(in ReadOnlySequence<byte> element)
    {
        ReadOnlySpan<byte> prefix = "<stream:error"u8;
        if (element.Length < prefix.Length)
        {
            return false;
        }
        Span<byte> start = stackalloc byte[13];
        element.Slice(0, start.Length).CopyTo(start);
        return start.SequenceEqual(prefix);
    }

    /// <summary>The stream ID of the core session (the header's <c>id</c>), once the stream has answered.</summary>
    public string? StreamId { get; private set; }

    private BoshOutcome Replay(long rid, PooledMessageBuffer response)
    {
        foreach (var (cachedRid, body) in _replay)
        {
            if (cachedRid == rid && body is not null)
            {
                response.Write(body);
                return BoshOutcome.Replayed;
            }
        }
        return BoshOutcome.ItemNotFound;
    }

    private void Remember(long rid, PooledMessageBuffer response)
        => _replay[rid % Requests] = (rid, response.WrittenMemory.ToArray());

    /// <summary>
    /// Once a second: ends a held request at its <c>wait</c>, and drops a session its client left
    /// (no request for <see cref="WebSettings.BoshInactivity"/>, or past its pause).
    /// </summary>
    public bool OnHeartbeat(long timestamp)
    {
        var deadline = Volatile.Read(ref _holdDeadline);
        if (deadline != 0 && timestamp >= deadline)
        {
            _connection.OutputReader.CancelPendingRead();
        }
        if (Volatile.Read(ref _activeRequests) > 0)
        {
            return false;
        }
        var idleSince = Volatile.Read(ref _lastActivity);
        var limit = Math.Max(Heartbeat.After(idleSince, Settings.BoshInactivity), Volatile.Read(ref _pauseUntil));
        if (_run.IsCompleted && timestamp >= Heartbeat.After(idleSince, Settings.CloseTimeout))
        {
            return true;
        }
        if (timestamp >= limit)
        {
            _stream.RequestClose(new CloseRequest(StreamErrorCondition.None, CloseReason.IdleTimeout, null, writeStreamEnd: false));
        }
        return false;
    }
}

/// <summary>What a BOSH response says besides its payload.</summary>
internal enum BoshOutcome : byte
{
    Data,
    Terminate,
    Replayed,
    ItemNotFound,
}

/// <summary>The parts of a client's <c>&lt;body/&gt;</c> the session needs, as raw (escaped) attribute bytes.</summary>
internal sealed record BoshRequest(long Rid, ReadOnlyMemory<byte> Payload, bool Restart, bool Terminate, TimeSpan Pause, byte[] To, byte[] Version, byte[] Lang);
