using System.Collections.Concurrent;
using System.Net;
using ConnMgr.Diagnostics;
using ConnMgr.Protocol;
using ConnMgr.Protocol.Link;
using ConnMgr.Protocol.Xml;
using Microsoft.Extensions.Logging;

namespace ConnMgr.Edge.Upstream;

/// <summary>The pool has no authenticated link: the edge cannot start a client session now.</summary>
internal sealed class UpstreamUnavailableException(string message) : Exception(message);

/// <summary>
/// The edge's links to the core server (Openfire's connection-manager protocol, client side).
/// <list type="bullet">
/// <item><see cref="UpstreamSettings.Links"/> links, <c>NAME/link-1</c> to <c>NAME/link-N</c>,
/// each reconnecting on its own with exponential backoff and jitter.</item>
/// <item>A CM-wide table of sessions by stream ID: replies and routes are accepted on any link
/// (spec 8.2), while each session sends on the one link it is pinned to (spec 8.1) and moves
/// only when that link dies.</item>
/// <item>One heartbeat for every link: whitespace keepalive, dead-link and stalled-send
/// detection, negotiation timeout (spec 8.3).</item>
/// </list>
/// </summary>
internal sealed partial class UpstreamPool : IUpstreamHealth, IAsyncDisposable
{
    /// <summary>
    /// Largest client stanza <see cref="UpstreamSession.RouteAsync"/> accepts. Openfire closes a
    /// link on any element over 1 MiB (spec 2); the 16 KiB left cover the envelope, including
    /// the client header's prefix declarations (at most 8 KiB with the scanner's header limit).
    /// </summary>
    public const int MaxRoutedStanzaBytes = 1024 * 1024 - 16 * 1024;

    /// <summary>
    /// Ghost and closed stream IDs remembered so each gets one <c>&lt;close/&gt;</c> (spec 6.3);
    /// 64 Ki IDs of ~20 bytes stay under 5 MiB.
    /// </summary>
    private const int RecentIdCapacity = 64 * 1024;

    /// <summary>The raw-text body of a 4.8+ route: elements for the client stream, no header (spec 6.2).</summary>
    internal static readonly XmlScannerOptions RawTextScannerOptions = new()
    {
        ExpectStreamHeader = false,
        ContentNamespace = XmppNamespaces.Client,
        MaxElementBytes = 1024 * 1024,
    };

    private readonly UpstreamSettings _settings;
    private readonly ConnMgrMetrics? _metrics;
    private readonly StreamIdGenerator _streamIds;
    private readonly ConcurrentDictionary<string, UpstreamSession> _sessions = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, UpstreamSession>.AlternateLookup<ReadOnlySpan<char>> _sessionsBySpan;
    private readonly RecentStreamIds _closedIds = new(RecentIdCapacity);
    private readonly ConcurrentQueue<string> _orphans = new();
    private readonly UpstreamLink?[] _links;
    private readonly Lock _readyLock = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly TaskCompletionSource _firstConfigured = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private UpstreamLink[] _ready = [];
    private Task[] _supervisors = [];
    private Task _heartbeat = Task.CompletedTask;
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task? _stopTask;
    private ClientStreamConfiguration? _configuration;
    private int _roundRobin;
    private int _nextResource;
    private int _orphanCount;
    private int _started;
    private int _stopRequested;

    public UpstreamPool(UpstreamSettings settings, ILogger<UpstreamPool> logger, ConnMgrMetrics? metrics = null)
    {
        Validate(settings);
        _settings = settings;
        Logger = logger;
        _metrics = metrics;
        _streamIds = new StreamIdGenerator(settings.CmName);
        _sessionsBySpan = _sessions.GetAlternateLookup<ReadOnlySpan<char>>();
        _links = new UpstreamLink?[settings.Links];
        // Resources past the configured count are for links renamed after a conflict.
        _nextResource = settings.Links;
    }

    internal ILogger Logger { get; }

    /// <summary>The client configuration from the most recent configuration IQ (spec 3.7); null until the first.</summary>
    public ClientStreamConfiguration? Configuration => Volatile.Read(ref _configuration);

    /// <summary>Authenticated links right now.</summary>
    public int LinksUp => Volatile.Read(ref _ready).Length;

    /// <summary>Client sessions in the table.</summary>
    public int SessionCount => _sessions.Count;

    /// <summary>
    /// Starts every link and the heartbeat. Completes when a first link is authenticated and its
    /// configuration IQ has arrived, so <see cref="Configuration"/> is set (open links before
    /// accepting clients, spec 0.1 point 3). Links that fail keep retrying in the background with
    /// backoff until <see cref="StopAsync"/>; cancelling <paramref name="ct"/> only stops the wait.
    /// </summary>
    public Task StartAsync(CancellationToken ct)
    {
        if (Interlocked.Exchange(ref _started, 1) != 0)
        {
            throw new InvalidOperationException("The upstream pool was already started.");
        }
        var supervisors = new Task[_links.Length];
        for (var slot = 0; slot < supervisors.Length; slot++)
        {
            supervisors[slot] = SuperviseAsync(slot);
        }
        _supervisors = supervisors;
        _heartbeat = HeartbeatAsync();
        return _firstConfigured.Task.WaitAsync(ct);
    }

    /// <summary>A fresh stream ID: CM-name prefix, <c>[A-Za-z0-9._-]</c>, never a Java hash of MIN_VALUE (spec 5.1, 0.1 point 9).</summary>
    public string NewStreamId() => _streamIds.Next();

    /// <summary>
    /// Registers a client session, pins it to a link and sends its <c>create</c> with the client's
    /// address as an IP literal (spec 5.2). <paramref name="namespaces"/> are the prefix
    /// declarations of the client's stream header (prefix to URI; the default namespace and
    /// <c>stream</c> are skipped): a client may use them in its stanzas, and a route child must
    /// parse standalone on the link (spec 2), so they are written on every <c>&lt;route&gt;</c>.
    /// The owner may be told <see cref="IUpstreamSessionOwner.OnUpstreamLost"/> at any time, even
    /// before this returns if the last link dies meanwhile.
    /// </summary>
    /// <exception cref="UpstreamUnavailableException">No authenticated link, or the pool is stopping.</exception>
    /// <exception cref="ArgumentException">The stream ID is already in use or not safe.</exception>
    public UpstreamSession CreateSession(string streamId, IUpstreamSessionOwner owner, IPAddress? clientAddress,
        IEnumerable<KeyValuePair<string, string>>? namespaces = null)
    {
        ArgumentNullException.ThrowIfNull(owner);
        if (!StreamIdGenerator.IsSafe(streamId))
        {
            throw new ArgumentException($"Stream ID '{streamId}' must be 1 to {StreamIdGenerator.MaxLength} characters of [A-Za-z0-9._-] (spec 5.1).", nameof(streamId));
        }
        if (Volatile.Read(ref _stopRequested) != 0)
        {
            throw new UpstreamUnavailableException("The upstream pool is stopping.");
        }
        var link = PickLink() ?? throw new UpstreamUnavailableException("No upstream link is connected.");
        var session = new UpstreamSession(this, streamId, owner, LinkWire.RouteStart(streamId, namespaces), link);
        if (!_sessions.TryAdd(streamId, session))
        {
            throw new ArgumentException($"Stream ID '{streamId}' is already in use.", nameof(streamId));
        }
        // StopAsync sets the flag before it closes the table's sessions: one of us sees the other.
        if (Volatile.Read(ref _stopRequested) != 0)
        {
            _sessions.TryRemove(streamId, out _);
            throw new UpstreamUnavailableException("The upstream pool is stopping.");
        }
        // The link may have gone down between the pick and the registration, after its sweep.
        if (link.IsDown)
        {
            TryMoveSession(session, link);
        }
        if (session.BeginWrite(out var scope) is not null)
        {
            using (scope)
            {
                LinkWire.Create(scope.Writer, streamId, clientAddress);
            }
        }
        return session;
    }

    /// <summary>
    /// Stops in the order spec 0.1 point 2 asks for: <c>&lt;close/&gt;</c> for every session
    /// first (each owner is told <c>system-shutdown</c>), so Openfire 5.x keeps no ghosts; then
    /// <c>&lt;/stream:stream&gt;</c> on every link; links still open after
    /// <see cref="UpstreamSettings.StopDrainTimeout"/> or when <paramref name="ct"/> fires are aborted.
    /// </summary>
    public Task StopAsync(CancellationToken ct)
    {
        if (Interlocked.Exchange(ref _stopRequested, 1) == 0)
        {
            _stopTask = StopCoreAsync(ct);
        }
        // A second caller racing the first may not see the task yet; the signal covers it.
        return Volatile.Read(ref _stopTask) ?? _stopped.Task;
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync(CancellationToken.None).ConfigureAwait(false);
        _stopping.Dispose();
    }

    private async Task StopCoreAsync(CancellationToken ct)
    {
        try
        {
            // Ends reconnect delays and the heartbeat now; links are not tied to it, they close below.
            _stopping.Cancel();
            var closed = 0;
            foreach (var session in _sessions.Values)
            {
                session.End(SessionEnd.Shutdown);
                closed++;
            }
            UpstreamLog.PoolStopping(Logger, closed);
            foreach (var link in _links)
            {
                link?.BeginGracefulClose();
            }
            try
            {
                await Task.WhenAll(_supervisors).WaitAsync(_settings.StopDrainTimeout, ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is TimeoutException or OperationCanceledException)
            {
                foreach (var link in _links)
                {
                    link?.Abort(LinkCloseReason.Stopping);
                }
            }
            await Task.WhenAll(_supervisors).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            await _heartbeat.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            _firstConfigured.TrySetCanceled(CancellationToken.None);
        }
        finally
        {
            _stopped.TrySetResult();
        }
    }

    // ---- links ----------------------------------------------------------------------------------

    private async Task SuperviseAsync(int slot)
    {
        // Yield so StartAsync returns before the first connect runs.
        await Task.Yield();
        var resource = slot + 1;
        var failures = 0;
        while (true)
        {
            var link = new UpstreamLink(this, _settings, $"{_settings.CmName}/link-{resource}");
            // Published with a full fence before the stop flag is read; StopAsync sets the flag
            // before reading the slots, so one of the two always sees the other.
            Interlocked.Exchange(ref _links[slot], link);
            if (Volatile.Read(ref _stopRequested) != 0)
            {
                return;
            }
            var outcome = await link.RunAsync().ConfigureAwait(false);
            OnLinkDown(link, outcome);
            if (Volatile.Read(ref _stopRequested) != 0)
            {
                return;
            }
            failures = outcome.WasReady ? 0 : failures + 1;
            if (outcome.Reason == LinkCloseReason.Conflict)
            {
                // The JID is still held: another CM with this Edge:Name, or our own link from
                // before a crash that the server has not timed out yet (spec 3.3, 8.6).
                resource = Interlocked.Increment(ref _nextResource);
            }
            var delay = Backoff(failures);
            UpstreamLog.LinkReconnecting(Logger, link.Jid, outcome.Reason, (long)delay.TotalMilliseconds);
            try
            {
                await Task.Delay(delay, _stopping.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>
    /// <see cref="UpstreamSettings.ReconnectInitial"/> doubled per failed attempt up to
    /// <see cref="UpstreamSettings.ReconnectMax"/>, then "equal jitter" (half fixed, half random)
    /// so that several links, or several edges restarted together, do not reconnect in step.
    /// </summary>
    private TimeSpan Backoff(int failures)
    {
        var ceiling = _settings.ReconnectInitial.TotalMilliseconds * Math.Pow(2, Math.Min(failures, 16));
        var capped = Math.Min(ceiling, _settings.ReconnectMax.TotalMilliseconds);
        return TimeSpan.FromMilliseconds(capped / 2 + Random.Shared.NextDouble() * capped / 2);
    }

    private async Task HeartbeatAsync()
    {
        // One timer for every link (a few per second at most); the period bounds how late a
        // keepalive or a dead-link verdict can be.
        var shortest = Math.Min(_settings.Keepalive.TotalMilliseconds, _settings.DeadAfter.TotalMilliseconds);
        var period = TimeSpan.FromMilliseconds(Math.Clamp(shortest / 4, 10, 1000));
        using var timer = new PeriodicTimer(period);
        try
        {
            while (await timer.WaitForNextTickAsync(_stopping.Token).ConfigureAwait(false))
            {
                var now = Environment.TickCount64;
                foreach (var link in _links)
                {
                    link?.OnHeartbeat(now);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    internal void OnLinkReady(UpstreamLink link)
    {
        lock (_readyLock)
        {
            _ready = [.. _ready, link];
        }
        _metrics?.UpstreamLinkUp();
        UpstreamLog.LinkReady(Logger, link.Jid, LinksUp);
        if (Configuration is not null)
        {
            _firstConfigured.TrySetResult();
        }
        SendOrphanCloses(link);
    }

    /// <summary>Called first when a link ends: no new session or move may pick it.</summary>
    internal void OnLinkGoingDown(UpstreamLink link)
    {
        lock (_readyLock)
        {
            var index = Array.IndexOf(_ready, link);
            if (index < 0)
            {
                return;
            }
            var next = new UpstreamLink[_ready.Length - 1];
            Array.Copy(_ready, 0, next, 0, index);
            Array.Copy(_ready, index + 1, next, index, next.Length - index);
            _ready = next;
        }
        _metrics?.UpstreamLinkDown();
    }

    /// <summary>
    /// After a link's socket is closed and its sender stopped: its sessions move to live links
    /// (the server keeps them while the CM has a link, spec 8.4); with none left they are lost.
    /// </summary>
    private void OnLinkDown(UpstreamLink link, LinkOutcome outcome)
    {
        int moved = 0, lost = 0;
        foreach (var session in _sessions.Values)
        {
            if (session.Link != link)
            {
                continue;
            }
            if (TryMoveSession(session, link))
            {
                moved++;
            }
            else
            {
                session.End(SessionEnd.UpstreamLost);
                lost++;
            }
        }
        if (outcome.Reason == LinkCloseReason.Stopping)
        {
            UpstreamLog.LinkClosed(Logger, link.Jid);
        }
        else if (outcome.WasReady)
        {
            UpstreamLog.LinkDown(Logger, link.Jid, outcome.Reason, LinksUp, moved, lost);
        }
        if (lost > 0 && LinksUp == 0)
        {
            UpstreamLog.AllLinksDown(Logger, lost);
        }
    }

    /// <summary>A live link, round robin; null when none is authenticated.</summary>
    private UpstreamLink? PickLink()
    {
        var ready = Volatile.Read(ref _ready);
        if (ready.Length == 0)
        {
            return null;
        }
        var start = (uint)Interlocked.Increment(ref _roundRobin);
        for (var i = 0; i < ready.Length; i++)
        {
            var link = ready[(int)((start + (uint)i) % (uint)ready.Length)];
            if (!link.Output.IsCompleted && !link.IsDown)
            {
                return link;
            }
        }
        return null;
    }

    /// <summary>
    /// Re-pins a session away from a dead link; false when no live link is left. A target that
    /// dies right after the move is checked again, since its own sweep may already have run.
    /// </summary>
    internal bool TryMoveSession(UpstreamSession session, UpstreamLink from)
    {
        while (Volatile.Read(ref _stopRequested) == 0)
        {
            var to = PickLink();
            if (to is null)
            {
                return false;
            }
            if (!session.TryRepin(from, to))
            {
                return session.Link is not null;
            }
            if (!to.IsDown)
            {
                return true;
            }
            from = to;
        }
        return false;
    }

    /// <summary>
    /// The server ends every session on shutdown without a close IQ (spec 8.5): tell every
    /// client, then drop every link; they reconnect with backoff until the server is back.
    /// </summary>
    internal void OnServerShutdown(UpstreamLink from)
    {
        var count = 0;
        foreach (var session in _sessions.Values)
        {
            session.End(SessionEnd.StreamError, StreamErrorCondition.SystemShutdown);
            count++;
        }
        UpstreamLog.ServerShuttingDown(Logger, from.Jid, count);
        foreach (var link in _links)
        {
            if (link is not null && link != from)
            {
                link.Abort(LinkCloseReason.ServerShutdown);
            }
        }
    }

    // ---- sessions -------------------------------------------------------------------------------

    /// <summary>Removes a session that has just been marked closed and sends its <c>&lt;close/&gt;</c> if asked.</summary>
    internal void OnSessionEnded(UpstreamSession session, bool sendClose, bool orphaned = false)
    {
        _sessions.TryRemove(new KeyValuePair<string, UpstreamSession>(session.StreamId, session));
        _closedIds.Add(session.StreamId);
        if (sendClose)
        {
            if (session.BeginWrite(out var scope) is not null)
            {
                using (scope)
                {
                    LinkWire.Close(scope.Writer, session.StreamId);
                }
            }
            else
            {
                orphaned = true;
            }
        }
        session.Unpin();
        if (orphaned)
        {
            AddOrphan(session.StreamId);
        }
    }

    /// <summary>
    /// A session lost with its last link may live on in Openfire 5.x (spec 0.1 point 2): its
    /// close goes out on the next link that comes up. Bounded; an ID dropped here is still
    /// closed if the server ever routes to it (spec 6.3).
    /// </summary>
    private void AddOrphan(string streamId)
    {
        _orphans.Enqueue(streamId);
        if (Interlocked.Increment(ref _orphanCount) > RecentIdCapacity && _orphans.TryDequeue(out _))
        {
            Interlocked.Decrement(ref _orphanCount);
        }
    }

    private void SendOrphanCloses(UpstreamLink link)
    {
        var sent = 0;
        while (_orphans.TryDequeue(out var streamId))
        {
            Interlocked.Decrement(ref _orphanCount);
            using var scope = link.Output.Begin();
            if (scope.IsOpen)
            {
                LinkWire.Close(scope.Writer, streamId);
                sent++;
            }
        }
        if (sent > 0)
        {
            UpstreamLog.OrphansClosed(Logger, link.Jid, sent);
        }
    }

    /// <summary>Finds a session by the stream ID as it appears on the wire, without allocating.</summary>
    internal UpstreamSession? FindSession(ReadOnlySpan<byte> rawStreamId)
    {
        // Our IDs are ASCII without anything to unescape (spec 5.1): widening each byte is
        // enough, and anything else cannot match a key.
        if (rawStreamId.IsEmpty || rawStreamId.Length > StreamIdGenerator.MaxLength)
        {
            return null;
        }
        Span<char> chars = stackalloc char[StreamIdGenerator.MaxLength];
        for (var i = 0; i < rawStreamId.Length; i++)
        {
            chars[i] = (char)rawStreamId[i];
        }
        return _sessionsBySpan.TryGetValue(chars[..rawStreamId.Length], out var session) ? session : null;
    }

    private static void Validate(UpstreamSettings settings)
    {
        if (string.IsNullOrWhiteSpace(settings.Host))
        {
            throw new ArgumentException("Upstream:Host must be set.", nameof(settings));
        }
        if (settings.Port is < 1 or > 65535)
        {
            throw new ArgumentException("Upstream:Port must be between 1 and 65535.", nameof(settings));
        }
        if (string.IsNullOrEmpty(settings.Secret))
        {
            throw new ArgumentException("Upstream:Secret must be set.", nameof(settings));
        }
        if (settings.Links is < 1 or > 64)
        {
            throw new ArgumentException("Upstream:Links must be between 1 and 64.", nameof(settings));
        }
        if (!StreamIdGenerator.IsValidCmName(settings.CmName))
        {
            throw new ArgumentException(
                $"Edge:Name '{settings.CmName}' must be 1 to {StreamIdGenerator.MaxCmNameLength} characters of a-z, 0-9, '.' and '-', in dot-separated labels (spec 3.2).",
                nameof(settings));
        }
        if (settings.Keepalive <= TimeSpan.Zero || settings.DeadAfter <= settings.Keepalive)
        {
            throw new ArgumentException("Upstream:KeepaliveSeconds must be positive and less than Upstream:DeadAfterSeconds.", nameof(settings));
        }
    }
}
