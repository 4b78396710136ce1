using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using ConnMgr.Core.Links;
using ConnMgr.Core.Sessions;
using ConnMgr.Core.Storage;
using ConnMgr.Protocol;
using ConnMgr.Protocol.Sasl;
using ConnMgr.Protocol.Xml;
using Microsoft.Extensions.Logging;

namespace ConnMgr.Core;

/// <summary>
/// The embedded core: a small XMPP server that speaks the server side of Openfire's
/// connection-manager protocol on its link listener and keeps users, rosters and offline
/// messages in SQLite (<see cref="XmppStore"/>). Edges reach it exactly as they reach Openfire.
/// </summary>
/// <remarks>
/// Threads: each link has a receive and a send loop; each session processes its own queue on
/// the thread pool (see <see cref="ClientSession"/>); one timer loop sends keepalives and
/// enforces the idle, write-stall and pre-bind timeouts.
/// </remarks>
internal sealed class CoreServer : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<CoreLink, byte> _links = new(ReferenceEqualityComparer.Instance);
    private readonly ConcurrentDictionary<string, CoreLink> _linkJids = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ConnectionManagerGroup> _groups = new(StringComparer.Ordinal);
    private readonly Lock _groupsLock = new();
    private readonly Task _acceptTask;
    private readonly Task _timerTask;
    private readonly int _iqIdPrefix = RandomNumberGenerator.GetInt32(1000);
    private long _iqSequence;
    private int _disposed;

    private CoreServer(CoreServerOptions options, XmppStore store, Socket listener, ILogger logger)
    {
        Options = options;
        Store = store;
        Logger = logger;
        _listener = listener;
        LocalEndPoint = (IPEndPoint)listener.LocalEndPoint!;
        Domain = Jid.Parse(options.Domain).Domain;
        ScramOptions = new ScramServerOptions
        {
            Domain = Domain,
            // Stable across restarts, so probing an unknown name twice shows the same salt (ScramServerOptions).
            UnknownUserKey = string.IsNullOrEmpty(options.Secret)
                ? default
                : SHA256.HashData(Encoding.UTF8.GetBytes("connmgr unknown-user salt key\0" + options.Secret)),
            UnknownUserIterations = options.StoreOptions.Iterations,
        };
        UnknownUserCredential = ScramCredential.Derive(Convert.ToHexString(RandomNumberGenerator.GetBytes(16)), ScramHash.Sha256, options.StoreOptions.Iterations);
        Processor = new SessionProcessor(this);
        store.UserRemoved += OnUserRemoved;
        _acceptTask = AcceptLoopAsync();
        _timerTask = TimerLoopAsync();
    }

    public CoreServerOptions Options { get; }

    public XmppStore Store { get; }

    public ILogger Logger { get; }

    /// <summary>The prepared domain served.</summary>
    public string Domain { get; }

    /// <summary>Where the link listener is bound (the real port when 0 was asked for).</summary>
    public IPEndPoint LocalEndPoint { get; }

    public SessionRegistry Registry { get; } = new();

    internal SessionProcessor Processor { get; }

    internal ScramServerOptions ScramOptions { get; }

    /// <summary>A credential nobody knows the password of: PLAIN logins of unknown users are checked against it, to cost the same.</summary>
    internal ScramCredential UnknownUserCredential { get; }

    /// <summary>Links accepted and not yet finished, for tests and shutdown.</summary>
    internal ICollection<CoreLink> Links => _links.Keys;

    /// <summary>
    /// Opens the store (blocking while it migrates) and the listener, and starts serving.
    /// Throws <see cref="SocketException"/> when the port cannot be bound.
    /// </summary>
    public static CoreServer Start(CoreServerOptions options, ILoggerFactory loggerFactory)
    {
        options.Validate();
        var store = XmppStore.Open(options.DataDirectory, loggerFactory.CreateLogger<XmppStore>(), options.StoreOptions);
        Socket? listener = null;
        try
        {
            listener = new Socket(options.ListenEndPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            listener.Bind(options.ListenEndPoint);
            listener.Listen(512);
        }
        catch
        {
            listener?.Dispose();
            store.DisposeAsync().AsTask().GetAwaiter().GetResult();
            throw;
        }
        var server = new CoreServer(options, store, listener, loggerFactory.CreateLogger("ConnMgr.Core"));
        CoreLog.Listening(server.Logger, server.Domain, server.LocalEndPoint);
        return server;
    }

    /// <summary>A fresh IQ id in Tinder's form <c>&lt;0-999&gt;-&lt;sequence&gt;</c> (spec 3.7).</summary>
    public string NextIqId()
        => string.Create(CultureInfo.InvariantCulture, $"{_iqIdPrefix}-{Interlocked.Increment(ref _iqSequence)}");

    public ClientSession? FindSession(ReadOnlySpan<char> streamId) => Registry.Find(streamId);

    public ClientSession? FindSession(string streamId) => Registry.Find(streamId);

    /// <summary>Claims a link JID; false when a live link already holds it (spec 3.3: conflict).</summary>
    public bool TryReserveLinkJid(string linkJid, CoreLink link) => _linkJids.TryAdd(linkJid, link);

    /// <summary>
    /// Adds an authenticated link to its CM, creating the CM's group with its first link;
    /// <paramref name="linkCount"/> is the group's number of links with this one.
    /// </summary>
    public ConnectionManagerGroup JoinGroup(CoreLink link, out int linkCount)
    {
        var domain = link.CmDomain!;
        lock (_groupsLock)
        {
            if (!_groups.TryGetValue(domain, out var group) || (linkCount = group.TryAdd(link)) == 0)
            {
                group = new ConnectionManagerGroup(domain);
                linkCount = group.TryAdd(link);
                _groups[domain] = group;
            }
            return group;
        }
    }

    /// <summary>
    /// Spec 5.2: a new client session on this CM, pinned to the link its create came on. False
    /// when the stream ID is in use.
    /// </summary>
    public bool TryCreateSession(ConnectionManagerGroup group, CoreLink link, string streamId, string? address)
    {
        var session = new ClientSession(Processor, group, link, streamId, address, Options.MaxSessionQueue, Options.MaxSessionQueueBytes);
        if (!Registry.TryAdd(session))
        {
            return false;
        }
        group.Sessions[streamId] = session;
        if (group.LinkCount == 0)
        {
            // The CM lost its last link while this create was being read: nobody will end it otherwise.
            _ = session.RequestTermination(new TerminationRequest(SessionEndReason.CmGone));
        }
        CoreLog.SessionCreated(Logger, streamId, group.Domain, address);
        return true;
    }

    /// <summary>
    /// A link closed: release its JID; if it was its CM's last link, end all that CM's sessions
    /// (spec 8.4 as Openfire 4.x did; 5.x leaves ghosts, spec 0.1 point 2). Sessions pinned to a
    /// closed link move to another link of their CM at their next delivery.
    /// </summary>
    public void OnLinkClosed(CoreLink link)
    {
        if (link.LinkJid is { } jid)
        {
            _linkJids.TryRemove(new KeyValuePair<string, CoreLink>(jid, link));
        }
        var group = link.Group;
        if (group is null || !group.Remove(link))
        {
            return;
        }
        lock (_groupsLock)
        {
            if (_groups.TryGetValue(group.Domain, out var current) && current == group)
            {
                _groups.Remove(group.Domain);
            }
        }
        var reason = _stopping.IsCancellationRequested ? SessionEndReason.Shutdown : SessionEndReason.CmGone;
        var sessions = group.Sessions.Values;
        CoreLog.ConnectionManagerGone(Logger, group.Domain, sessions.Count);
        foreach (var session in sessions)
        {
            _ = session.RequestTermination(new TerminationRequest(reason));
        }
    }

    /// <summary>The store saw a user removed (by the CLI, maybe in another process): end their sessions (RFC 6120 4.9.3.12).</summary>
    private void OnUserRemoved(string user)
    {
        var count = 0;
        foreach (var session in Registry.All)
        {
            if (session.Account?.User == user)
            {
                count++;
                _ = session.RequestTermination(new TerminationRequest(SessionEndReason.UserRemoved, StreamErrorCondition.NotAuthorized, "The account was removed"));
            }
        }
        if (count > 0)
        {
            CoreLog.UserRemovedSessionsEnded(Logger, user, count);
        }
    }

    private async Task AcceptLoopAsync()
    {
        await Task.Yield();
        while (!_stopping.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptAsync(_stopping.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException e)
            {
                // Per-connection failures (reset before accept, out of descriptors): keep listening.
                CoreLog.AcceptFailed(Logger, e);
                continue;
            }
            socket.NoDelay = true;
            var link = new CoreLink(this, socket);
            _links.TryAdd(link, 0);
            link.Start();
        }
    }

    private async Task TimerLoopAsync()
    {
        using var timer = new PeriodicTimer(Options.TimerResolution);
        try
        {
            while (await timer.WaitForNextTickAsync(_stopping.Token))
            {
                var now = Environment.TickCount64;
                foreach (var link in _links.Keys)
                {
                    if (link.Completion.IsCompleted)
                    {
                        _links.TryRemove(link, out _);
                    }
                    else
                    {
                        link.OnTimer(now);
                    }
                }
                var limit = (long)Options.PreBindTimeout.TotalMilliseconds;
                foreach (var session in Registry.Unbound)
                {
                    if (now - session.CreatedAt > limit && !session.IsTerminating)
                    {
                        _ = session.RequestTermination(new TerminationRequest(SessionEndReason.PreBindTimeout, StreamErrorCondition.ConnectionTimeout,
                            "no resource bound in time"));
                    }
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>
    /// Stops: no new links, <c>system-shutdown</c> on every link (spec 8.5), sessions ended
    /// without presence broadcasts (everyone is going), then the store flushed and closed.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        _stopping.Cancel();
        _listener.Dispose();
        await _acceptTask;
        await _timerTask;
        Store.UserRemoved -= OnUserRemoved;

        foreach (var link in _links.Keys)
        {
            link.Close(LinkCloseReason.ServerShutdown, StreamErrorCondition.SystemShutdown, null);
        }
        var endings = new List<Task>();
        foreach (var session in Registry.All)
        {
            endings.Add(session.RequestTermination(new TerminationRequest(SessionEndReason.Shutdown)));
        }
        var deadline = Task.Delay(Options.ShutdownTimeout);
        await Task.WhenAny(Task.WhenAll(endings), deadline);
        var linkCompletions = new List<Task>();
        foreach (var link in _links.Keys)
        {
            linkCompletions.Add(link.Completion);
        }
        await Task.WhenAny(Task.WhenAll(linkCompletions), deadline);
        await Store.DisposeAsync();
        _stopping.Dispose();
        CoreLog.Stopped(Logger);
    }
}
