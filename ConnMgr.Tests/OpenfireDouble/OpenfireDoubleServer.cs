using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;

namespace ConnMgr.Tests.OpenfireDouble;

/// <summary>
/// A test double of Openfire's side of the connection-manager link, written from
/// /work/shared/protocol/openfire-cm-protocol.md (cited as "spec N"; section 0.1 corrections win) and
/// from nothing in ConnMgr, so that the edge is tested against Openfire's behaviour rather than against
/// itself. It listens on 127.0.0.1 (ephemeral port) and implements the twelve points of spec 11 plus a
/// small c2s server behind the link (SASL PLAIN/SCRAM-SHA-1/ANONYMOUS, binding, message and presence
/// routing between its sessions, ping).
/// <para>
/// One task per link reads and handles that link's input in order (spec 2: Openfire processes one link
/// strictly in arrival order); one housekeeping task drives heartbeats, idle detection and the
/// pre-authentication timeout. Shared state sits behind one lock; every change wakes
/// <see cref="WaitForAsync"/>, so tests wait on conditions instead of sleeping.
/// </para>
/// </summary>
/// <example>
/// <code>
/// await using var openfire = OpenfireDoubleServer.Start(new() { Secret = "s3cret", LinkTlsPolicy = TlsPolicy.Disabled });
/// // point the edge at 127.0.0.1:openfire.Port with CM name "cm1", then:
/// await openfire.WaitForAsync(o => o.Links.Count(l => l.IsAuthenticated) == 4, description: "4 links up");
/// SessionInfo alice = await openfire.WaitForSessionAsync(streamId, s => s.State == ClientSessionState.Bound);
/// await openfire.KickSessionAsync(streamId);   // raw-text conflict, no close IQ (bound)
/// Assert.That(openfire.Faults, Is.Empty);
/// </code>
/// </example>
public sealed partial class OpenfireDoubleServer : IAsyncDisposable
{
    private static readonly TimeSpan s_defaultWait = TimeSpan.FromSeconds(5);

    private readonly OpenfireDoubleOptions _options;
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Lock _gate = new();
    private readonly List<DoubleLink> _links = [];
    private readonly Dictionary<string, List<DoubleLink>> _pool = new(StringComparer.Ordinal);
    private readonly Dictionary<string, DoubleSession> _sessions = new(StringComparer.Ordinal);
    private readonly List<ReceivedElement> _received = [];
    private readonly List<SentFrame> _sent = [];
    private readonly List<StoredMessage> _offline = [];
    private readonly List<EndedSession> _ended = [];
    private readonly List<string> _faults = [];
    private readonly long[] _counters = new long[Enum.GetValues<Counter>().Length];
    private readonly Random _random;
    private readonly UserTable _users;
    private readonly X509Certificate2? _certificate;
    private readonly string _domain;

    /// <summary>Tinder's generated IQ ids look like <c>&lt;0-999&gt;-&lt;sequence&gt;</c> (spec 3.7).</summary>
    private readonly int _iqIdPrefix = Random.Shared.Next(1000);

    private TaskCompletionSource _changed = NewSignal();
    private long _sequence;
    private long _iqSequence;
    private int _linkNumber;
    private bool _shuttingDown;
    private int _disposed;
    private Task _acceptLoop = Task.CompletedTask;
    private Task _housekeeping = Task.CompletedTask;

    private OpenfireDoubleServer(OpenfireDoubleOptions options)
    {
        if (string.IsNullOrWhiteSpace(options.Domain) || options.MaxElementSize <= 0 || options.AuthRetries < 1
            || options.HeartbeatInterval <= TimeSpan.Zero || options.PreAuthTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentException("OpenfireDoubleOptions: Domain must be set; MaxElementSize, AuthRetries, HeartbeatInterval and PreAuthTimeout must be positive.", nameof(options));
        }

        _options = options;
        _domain = options.Domain.ToLowerInvariant();
        _random = options.RandomSeed is int seed ? new Random(seed) : new Random();
        _users = new UserTable(_domain, options.Users);
        _certificate = options.LinkTlsPolicy == TlsPolicy.Disabled && !options.DirectTls ? null : options.ServerCertificate ?? DoubleCertificate.For(_domain);
        _listener = new TcpListener(IPAddress.Loopback, 0);
    }

    private enum Counter
    {
        ConnectionsAccepted,
        LinksJoinedPool,
        HandshakesSucceeded,
        HandshakesFailed,
        LinksClosed,
        SessionsCreated,
        SessionsRefused,
        SessionsEnded,
        RoutesReceived,
        ElementRoutesSent,
        RawRoutesSent,
        RouteErrorsSent,
        IqErrorsSent,
        CloseIqsSent,
        HeartbeatsSent,
        DeliveriesDropped,
        SaslSuccesses,
        SaslFailures,
    }

    public OpenfireDoubleOptions Options => _options;

    /// <summary>The loopback port the double listens on.</summary>
    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public IPEndPoint EndPoint => (IPEndPoint)_listener.LocalEndpoint;

    /// <summary>The certificate of link TLS; null when links have no TLS at all.</summary>
    public X509Certificate2? Certificate => _certificate;

    public IReadOnlyList<ReceivedElement> ReceivedElements
    {
        get
        {
            lock (_gate)
            {
                return [.. _received];
            }
        }
    }

    public IReadOnlyList<SentFrame> SentFrames
    {
        get
        {
            lock (_gate)
            {
                return [.. _sent];
            }
        }
    }

    /// <summary>Every link accepted so far, open or closed, in accept order.</summary>
    public IReadOnlyList<LinkInfo> Links
    {
        get
        {
            lock (_gate)
            {
                return [.. _links.Select(l => l.Snapshot())];
            }
        }
    }

    /// <summary>The server's client-session table.</summary>
    public IReadOnlyList<SessionInfo> Sessions
    {
        get
        {
            lock (_gate)
            {
                return [.. _sessions.Values.Select(s => s.Snapshot(!_pool.ContainsKey(s.CmDomain)))];
            }
        }
    }

    public IReadOnlyList<StoredMessage> OfflineMessages
    {
        get
        {
            lock (_gate)
            {
                return [.. _offline];
            }
        }
    }

    public IReadOnlyList<EndedSession> EndedSessions
    {
        get
        {
            lock (_gate)
            {
                return [.. _ended];
            }
        }
    }

    /// <summary>
    /// Exceptions inside the double itself (each also answered as Openfire would answer an exception:
    /// internal-server-error). Empty in a healthy run; edge tests can assert that.
    /// </summary>
    public IReadOnlyList<string> Faults
    {
        get
        {
            lock (_gate)
            {
                return [.. _faults];
            }
        }
    }

    public OpenfireDoubleCounters Counters
    {
        get
        {
            long C(Counter c) => Interlocked.Read(ref _counters[(int)c]);
            return new OpenfireDoubleCounters(
                C(Counter.ConnectionsAccepted), C(Counter.LinksJoinedPool), C(Counter.HandshakesSucceeded), C(Counter.HandshakesFailed),
                C(Counter.LinksClosed), C(Counter.SessionsCreated), C(Counter.SessionsRefused), C(Counter.SessionsEnded),
                C(Counter.RoutesReceived), C(Counter.ElementRoutesSent), C(Counter.RawRoutesSent), C(Counter.RouteErrorsSent),
                C(Counter.IqErrorsSent), C(Counter.CloseIqsSent), C(Counter.HeartbeatsSent), C(Counter.DeliveriesDropped),
                C(Counter.SaslSuccesses), C(Counter.SaslFailures));
        }
    }

    /// <summary>Starts listening on 127.0.0.1 with an ephemeral port.</summary>
    public static OpenfireDoubleServer Start(OpenfireDoubleOptions? options = null)
    {
        var server = new OpenfireDoubleServer(options ?? new OpenfireDoubleOptions());
        server._listener.Start();
        server._acceptLoop = server.AcceptLoopAsync();
        server._housekeeping = server.HousekeepingAsync();
        return server;
    }

    public SessionInfo? FindSession(string streamId)
    {
        lock (_gate)
        {
            return _sessions.TryGetValue(streamId, out DoubleSession? s) ? s.Snapshot(!_pool.ContainsKey(s.CmDomain)) : null;
        }
    }

    public IReadOnlyList<ReceivedElement> ReceivedOn(string link) => [.. ReceivedElements.Where(e => e.Link == link)];

    /// <summary>Waits until <paramref name="condition"/> holds, re-checking on every change of the double; throws <see cref="TimeoutException"/> (default 5 s).</summary>
    public async Task WaitForAsync(Func<OpenfireDoubleServer, bool> condition, TimeSpan? timeout = null, string? description = null)
    {
        using var deadline = new CancellationTokenSource(timeout ?? s_defaultWait);
        while (true)
        {
            // Take the signal before testing, so that a change between the test and the wait is not missed.
            Task changed = Volatile.Read(ref _changed).Task;
            if (condition(this))
            {
                return;
            }

            try
            {
                await changed.WaitAsync(deadline.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"OpenfireDouble: timed out waiting for {description ?? "a condition"}.");
            }
        }
    }

    /// <summary>The first received element (already received or still to come) that matches.</summary>
    public async Task<ReceivedElement> WaitForElementAsync(Func<ReceivedElement, bool> match, TimeSpan? timeout = null, string? description = null)
    {
        ReceivedElement? found = null;
        await WaitForAsync(_ => (found = ReceivedElements.FirstOrDefault(match)) is not null, timeout, description ?? "a received element");
        return found!;
    }

    public async Task<SessionInfo> WaitForSessionAsync(string streamId, Func<SessionInfo, bool>? condition = null, TimeSpan? timeout = null)
    {
        SessionInfo? found = null;
        await WaitForAsync(_ => (found = FindSession(streamId)) is not null && (condition is null || condition(found)), timeout, $"session {streamId}");
        return found!;
    }

    public async Task<LinkInfo> WaitForLinkAsync(string linkJid, Func<LinkInfo, bool> condition, TimeSpan? timeout = null)
    {
        LinkInfo? found = null;
        await WaitForAsync(_ => (found = Links.LastOrDefault(l => l.Jid == linkJid)) is not null && condition(found), timeout, $"link {linkJid}");
        return found!;
    }

    /// <summary>
    /// Ends a session "with" a stream error, as <c>Session.close(StreamError)</c> does (spec 5.4): the error
    /// goes out as a raw-text route, then a close IQ only if the session never bound a resource (0.1 point 1).
    /// </summary>
    public async Task<bool> KickSessionAsync(string streamId, string condition = "conflict")
    {
        DoubleSession? session = Lookup(streamId);
        return session is not null && await EndSessionAsync(session, "admin-kick", serverInitiated: true, streamError: condition);
    }

    /// <summary>Plain admin close: a close IQ for a session that never bound; nothing at all for a bound one (spec 0.1 point 1).</summary>
    public async Task<bool> CloseSessionAsync(string streamId)
    {
        DoubleSession? session = Lookup(streamId);
        return session is not null && await EndSessionAsync(session, "admin-close", serverInitiated: true);
    }

    /// <summary>Writes <paramref name="xml"/> as a raw-text route in the configured encoding (spec 6.2) on the stream's pinned link.</summary>
    /// <param name="cmDomain">CM to use when the stream ID is not in the session table (e.g. a stale ID); defaults to the only connected CM.</param>
    public Task<bool> DeliverRawAsync(string streamId, string xml, string? cmDomain = null) =>
        DeliverRawTextAsync(CmFor(streamId, cmDomain), streamId, xml);

    /// <summary>Writes <paramref name="xml"/> (a stanza, no <c>xmlns</c> needed) as an element-form route on the stream's pinned link.</summary>
    public Task<bool> DeliverStanzaAsync(string streamId, string xml, string? cmDomain = null) =>
        DeliverElementAsync(CmFor(streamId, cmDomain), streamId, xml);

    /// <summary>Sends a route error for <paramref name="streamId"/> on a random link of its CM (spec 6.1.3).</summary>
    public Task<bool> SendRouteErrorAsync(string streamId, string condition, string? cmDomain = null)
    {
        string cm = CmFor(streamId, cmDomain);
        Count(Counter.RouteErrorsSent);
        return SendAsync(RandomLink(cm), $"<route streamid=\"{DoubleWire.EscapeAttribute(streamId)}\" from=\"{_domain}\" to=\"{cm}\" type=\"error\">{DoubleWire.StanzaError(condition)}</route>");
    }

    /// <summary>
    /// Writes a server close IQ for <paramref name="streamId"/> on its pinned link whatever the session's
    /// state, optionally with a <c>&lt;stream:error&gt;</c> inside <c>&lt;session&gt;</c> next to
    /// <c>&lt;close/&gt;</c> (the OF-2414 form no Openfire caller uses, which a CM must accept anyway,
    /// spec 5.4). The session, if any, is forgotten.
    /// </summary>
    public async Task<bool> SendCloseIqAsync(string streamId, string? embeddedStreamError = null, string? cmDomain = null)
    {
        string cm = CmFor(streamId, cmDomain);
        lock (_gate)
        {
            if (_sessions.TryGetValue(streamId, out DoubleSession? session) && session.CmDomain == cm)
            {
                _sessions.Remove(streamId);
                _ended.Add(new EndedSession(streamId, cm, "admin-close-iq", CloseIqSent: true));
            }
        }

        return await WriteCloseIqAsync(cm, streamId, embeddedStreamError is null ? null : DoubleWire.StreamError(embeddedStreamError));
    }

    /// <summary>Aborts the TCP connection of the open link with this JID (RST, nothing written).</summary>
    public bool DropLink(string linkJid)
    {
        DoubleLink? link;
        lock (_gate)
        {
            link = _links.FirstOrDefault(l => l.Jid == linkJid && !l.IsClosing && !l.IsClosed);
        }

        if (link is null)
        {
            return false;
        }

        Trace($"{link.Label}: dropped by the test");
        link.Abort(LinkCloseReason.Dropped);
        return true;
    }

    /// <summary>
    /// Server stopping (spec 8.5): <c>system-shutdown</c> on every link, then close. Client sessions get no
    /// close IQ and are forgotten. The listener stops accepting.
    /// </summary>
    public async Task ShutdownAsync()
    {
        List<DoubleLink> open;
        lock (_gate)
        {
            _shuttingDown = true;
            open = [.. _links.Where(l => !l.IsClosing && !l.IsClosed)];
        }

        _listener.Stop();
        foreach (DoubleLink link in open)
        {
            await CloseLinkAsync(link, "system-shutdown");
        }

        lock (_gate)
        {
            _sessions.Clear();
        }

        try
        {
            await Task.WhenAll(open.Select(l => l.Completion)).WaitAsync(s_defaultWait);
        }
        catch (TimeoutException)
        {
            // A CM that never closes its side: disposal aborts it.
        }

        Notify();
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        List<DoubleLink> links;
        lock (_gate)
        {
            _shuttingDown = true;
            links = [.. _links];
        }

        _stopping.Cancel();
        _listener.Stop();
        foreach (DoubleLink link in links)
        {
            link.Abort(LinkCloseReason.Disposed);
        }

        try
        {
            await Task.WhenAll([_acceptLoop, _housekeeping, .. links.Select(l => l.Completion)]);
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
        {
            // Loops end by cancellation; nothing else to report.
        }

        _stopping.Dispose();
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private void Notify() => Interlocked.Exchange(ref _changed, NewSignal()).TrySetResult();

    private void Count(Counter counter) => Interlocked.Increment(ref _counters[(int)counter]);

    private void Trace(string message) => _options.Log?.Invoke($"[openfire-double] {message}");

    private DoubleSession? Lookup(string streamId)
    {
        lock (_gate)
        {
            return _sessions.GetValueOrDefault(streamId);
        }
    }

    private string CmFor(string streamId, string? cmDomain)
    {
        if (cmDomain is not null)
        {
            return cmDomain.ToLowerInvariant();
        }

        lock (_gate)
        {
            if (_sessions.TryGetValue(streamId, out DoubleSession? session))
            {
                return session.CmDomain;
            }

            return _pool.Count == 1 ? _pool.Keys.Single() : throw new InvalidOperationException($"Stream {streamId} is unknown and {_pool.Count} CMs are connected: pass cmDomain.");
        }
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptSocketAsync(_stopping.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException or InvalidOperationException)
            {
                return;
            }

            socket.NoDelay = true;
            lock (_gate)
            {
                if (_shuttingDown)
                {
                    socket.Dispose();
                    continue;
                }

                var link = new DoubleLink(++_linkNumber, socket, _options.WriteTimeout);
                _links.Add(link);
                link.Completion = RunLinkAsync(link);
            }

            Count(Counter.ConnectionsAccepted);
            Notify();
        }
    }

    /// <summary>Heartbeats, idle detection and the pre-authentication timeout, on one timer for all links.</summary>
    private async Task HousekeepingAsync()
    {
        TimeSpan shortest = _options.HeartbeatInterval;
        if (_options.IdleTimeout > TimeSpan.Zero && _options.IdleTimeout / 2 < shortest)
        {
            shortest = _options.IdleTimeout / 2;
        }

        if (_options.PreAuthTimeout < shortest)
        {
            shortest = _options.PreAuthTimeout;
        }

        TimeSpan tick = TimeSpan.FromMilliseconds(Math.Clamp(shortest.TotalMilliseconds / 4, 10, 500));
        long lastHeartbeat = Stopwatch.GetTimestamp();
        using var timer = new PeriodicTimer(tick);
        try
        {
            while (await timer.WaitForNextTickAsync(_stopping.Token))
            {
                long now = Stopwatch.GetTimestamp();
                if (Stopwatch.GetElapsedTime(lastHeartbeat, now) >= _options.HeartbeatInterval)
                {
                    lastHeartbeat = now;
                    await SendHeartbeatsAsync();
                }

                await CheckIdleLinksAsync(now);
                await ExpirePreAuthenticatedSessionsAsync(now);
            }
        }
        catch (OperationCanceledException)
        {
            // Disposal.
        }
    }

    /// <summary>A single space on every link of every CM (spec 8.3, [S1] constructor).</summary>
    private async Task SendHeartbeatsAsync()
    {
        List<DoubleLink> links;
        lock (_gate)
        {
            links = [.. _pool.Values.SelectMany(l => l)];
        }

        foreach (DoubleLink link in links)
        {
            if (await SendAsync(link, " "))
            {
                Count(Counter.HeartbeatsSent);
            }
        }
    }

    /// <summary>
    /// Spec 8.3: a read-idle event fires after half of <c>xmpp.multiplex.idle</c> without any byte; the
    /// first only sets a flag, a second consecutive one with no decoded element in between closes the
    /// link with <c>connection-timeout</c>. Whitespace restarts the timer but does not clear the flag.
    /// </summary>
    private async Task CheckIdleLinksAsync(long now)
    {
        if (_options.IdleTimeout <= TimeSpan.Zero)
        {
            return;
        }

        TimeSpan half = _options.IdleTimeout / 2;
        List<DoubleLink> links;
        lock (_gate)
        {
            links = [.. _links.Where(l => !l.IsClosing && !l.IsClosed)];
        }

        foreach (DoubleLink link in links)
        {
            long since = Math.Max(link.LastReadTimestamp, link.LastIdleEventTimestamp);
            if (Stopwatch.GetElapsedTime(since, now) < half)
            {
                continue;
            }

            link.LastIdleEventTimestamp = now;
            if (!link.IdleFlag)
            {
                link.IdleFlag = true;
                continue;
            }

            Trace($"{link.Label}: idle twice, closing");
            await CloseLinkAsync(link, "connection-timeout");
        }
    }

    /// <summary>Sessions not resource-bound within <c>xmpp.client.preauth.timeout</c> are closed (spec 5.4).</summary>
    private async Task ExpirePreAuthenticatedSessionsAsync(long now)
    {
        List<DoubleSession> expired;
        lock (_gate)
        {
            expired = [.. _sessions.Values.Where(s => s.State != ClientSessionState.Bound && Stopwatch.GetElapsedTime(s.CreatedTimestamp, now) >= _options.PreAuthTimeout)];
        }

        foreach (DoubleSession session in expired)
        {
            await EndSessionAsync(session, "pre-auth-timeout", serverInitiated: true);
        }
    }

    private void RecordFault(DoubleLink link, Exception e)
    {
        Trace($"{link.Label}: fault: {e}");
        lock (_gate)
        {
            _faults.Add($"{link.Label}: {e}");
        }
    }

    private void RecordReceived(DoubleLink link, string xml, System.Xml.Linq.XElement? element)
    {
        lock (_gate)
        {
            _received.Add(new ReceivedElement(++_sequence, link.Label, xml, element));
        }

        Notify();
    }

    /// <summary>Writes one frame on a link and logs it; a null or closed link counts as a dropped delivery.</summary>
    private async Task<bool> SendAsync(DoubleLink? link, string text)
    {
        SentFrame? logged = null;
        if (link is null || !await link.WriteAsync(text, () => logged = RecordSent(link, text)))
        {
            if (logged is not null)
            {
                lock (_gate)
                {
                    _sent.Remove(logged);
                }
            }

            Count(Counter.DeliveriesDropped);
            Trace($"{link?.Label ?? "(no link)"}: not delivered: {text}");
            return false;
        }

        Notify();
        return true;
    }

    private SentFrame RecordSent(DoubleLink link, string text)
    {
        lock (_gate)
        {
            var frame = new SentFrame(++_sequence, link.Label, text);
            _sent.Add(frame);
            return frame;
        }
    }
}
