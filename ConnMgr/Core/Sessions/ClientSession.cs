using System.Buffers;
using ConnMgr.Core.Links;
using ConnMgr.Core.Sasl;
using ConnMgr.Protocol;
using ConnMgr.Protocol.Xml;

namespace ConnMgr.Core.Sessions;

internal enum SessionState : byte
{
    /// <summary>Created by the CM; SASL not done.</summary>
    Connected,

    /// <summary>SASL succeeded; no resource yet.</summary>
    Authenticated,

    /// <summary>A resource is bound: the session has a full JID and may exchange stanzas.</summary>
    Bound,

    Closed,
}

/// <summary>
/// One client stream hosted by a connection manager, keyed by its stream ID (spec 5.1).
/// </summary>
/// <remarks>
/// <para>
/// Ordering and isolation: the link's read loop only copies each routed stanza into a pooled
/// buffer and queues it here. The session processes its queue on the thread pool, one item at a
/// time, awaiting store writes in between (an offline message is committed before the sender's
/// next stanza is looked at). So one session's stanzas keep their order, and a slow SQLite commit
/// delays that session alone: the link keeps reading and other sessions keep running.
/// </para>
/// <para>
/// State that other sessions read (<see cref="Presence"/>, <see cref="Jid"/>) is published with
/// volatile writes of immutable values; everything else is touched only by the processor.
/// </para>
/// </remarks>
internal sealed class ClientSession : IThreadPoolWorkItem
{
    private readonly SessionProcessor _processor;
    private readonly Lock _queueLock = new();
    private readonly Queue<SessionWork> _queue = new();
    private readonly int _maxQueue;
    private readonly int _maxQueueBytes;
    private long _queuedBytes;
    private CoreLink _link;
    private TerminationRequest? _pendingTermination;
    private TerminationRequest? _termination;
    private bool _scheduled;
    private PresenceSnapshot? _presence;
    private Jid? _jid;
    private UserAccount? _account;

    public ClientSession(SessionProcessor processor, ConnectionManagerGroup group, CoreLink link, string streamId, string? hostAddress, int maxQueue, int maxQueueBytes)
    {
        _maxQueueBytes = maxQueueBytes;
        _processor = processor;
        Group = group;
        _link = link;
        StreamId = streamId;
        HostAddress = hostAddress;
        _maxQueue = maxQueue;
        CreatedAt = Environment.TickCount64;
    }

    public string StreamId { get; }

    public ConnectionManagerGroup Group { get; }

    /// <summary>The client's IP as the CM reported it in <c>&lt;host address&gt;</c> (spec 5.2), for logs.</summary>
    public string? HostAddress { get; }

    public long CreatedAt { get; }

    /// <summary>Read and written by the processor only.</summary>
    public SessionState State { get; set; }

    /// <summary>The user's account once authenticated; the processor sets it, anyone may read it.</summary>
    public UserAccount? Account
    {
        get => Volatile.Read(ref _account);
        set => Volatile.Write(ref _account, value);
    }

    /// <summary>The bound full JID, null before binding.</summary>
    public Jid? Jid
    {
        get => Volatile.Read(ref _jid);
        set => Volatile.Write(ref _jid, value);
    }

    /// <summary>The last available presence the client broadcast, stamped; null while unavailable (RFC 6121 4).</summary>
    public PresenceSnapshot? Presence
    {
        get => Volatile.Read(ref _presence);
        set => Volatile.Write(ref _presence, value);
    }

    /// <summary>The client asked for its roster: an "interested resource" that gets roster pushes (RFC 6121 2.1.6).</summary>
    public volatile bool InterestedInRoster;

    /// <summary>The SASL exchange in progress; processor only.</summary>
    public SaslExchange? Sasl { get; set; }

    /// <summary>SASL failures so far (spec 5.4, <c>xmpp.auth.retries</c>); processor only.</summary>
    public int AuthFailures { get; set; }

    /// <summary>Entities that got directed available presence and must get unavailable when the client goes (RFC 6121 4.6.3); processor only.</summary>
    public HashSet<Jid>? DirectedPresence { get; set; }

    public bool IsTerminating => Volatile.Read(ref _pendingTermination) is not null || Volatile.Read(ref _termination) is not null;

    /// <summary>
    /// The link for this session's traffic: the one its create came on, or when that one died,
    /// another link of the same CM chosen as Openfire chooses (spec 8.2), which the session then
    /// keeps. Null when the CM has no link left.
    /// </summary>
    public CoreLink? CurrentLink()
    {
        var link = Volatile.Read(ref _link);
        if (!link.IsClosed)
        {
            return link;
        }
        var next = Group.PickLink(StreamId);
        if (next is null)
        {
            return null;
        }
        Interlocked.CompareExchange(ref _link, next, link);
        return next;
    }

    // ---- queueing, called by the link's read loop and by other sessions ----

    public void EnqueueStanza(StanzaKind kind, ReadOnlySpan<byte> stanza)
    {
        if (!TryEnqueue(new SessionWork(SessionWorkKind.Stanza, kind, null, stanza.Length, null), stanza, limit: true))
        {
            _ = RequestTermination(new TerminationRequest(SessionEndReason.QueueOverflow, StreamErrorCondition.ResourceConstraint,
                $"more than {_maxQueue} stanzas or {_maxQueueBytes} bytes waiting to be processed"));
        }
    }

    /// <summary>Queues the CM's close IQ; always accepted, so the CM always gets its answer.</summary>
    public void EnqueueCmClose(CoreLink link, ReadOnlySpan<byte> iq)
        => TryEnqueue(new SessionWork(SessionWorkKind.CmClose, StanzaKind.Iq, null, iq.Length, link), iq, limit: false);

    /// <summary>Queues the CM's failed IQ; always accepted: the message must not be lost (spec 5.5).</summary>
    public void EnqueueCmFailed(CoreLink link, ReadOnlySpan<byte> iq)
        => TryEnqueue(new SessionWork(SessionWorkKind.CmFailed, StanzaKind.Iq, null, iq.Length, link), iq, limit: false);

    private bool TryEnqueue(SessionWork work, ReadOnlySpan<byte> bytes, bool limit)
    {
        lock (_queueLock)
        {
            if (limit && (_termination is not null || _pendingTermination is not null))
            {
                // The session is ending: its stanzas are dropped, not an overflow.
                return true;
            }
            if (limit && (_queue.Count >= _maxQueue || _queuedBytes + bytes.Length > _maxQueueBytes))
            {
                return false;
            }
            _queuedBytes += bytes.Length;
            var buffer = ArrayPool<byte>.Shared.Rent(bytes.Length);
            bytes.CopyTo(buffer);
            _queue.Enqueue(work with { Buffer = buffer });
            ScheduleLocked();
            return true;
        }
    }

    /// <summary>
    /// Ends the session ahead of its queued stanzas (which are then dropped; CM close and failed
    /// IQs still get their answers). The first request wins; later ones get its completion.
    /// </summary>
    public Task RequestTermination(TerminationRequest request)
    {
        lock (_queueLock)
        {
            var existing = _termination ?? _pendingTermination;
            if (existing is not null)
            {
                return existing.Completion;
            }
            _pendingTermination = request;
            ScheduleLocked();
            return request.Completion;
        }
    }

    private void ScheduleLocked()
    {
        if (!_scheduled)
        {
            _scheduled = true;
            ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
        }
    }

    // Not awaited: RunAsync catches every exception itself, and shutdown waits for the
    // sessions' terminations rather than for their processors.
    void IThreadPoolWorkItem.Execute() => _ = RunAsync();

    private async Task RunAsync()
    {
        while (true)
        {
            SessionWork work;
            TerminationRequest? termination;
            lock (_queueLock)
            {
                termination = _pendingTermination;
                if (termination is not null)
                {
                    _pendingTermination = null;
                    _termination = termination;
                    work = default;
                }
                else if (_queue.TryDequeue(out work))
                {
                    _queuedBytes -= work.Length;
                }
                else
                {
                    _scheduled = false;
                    return;
                }
            }

            if (termination is not null)
            {
                try
                {
                    await _processor.TerminateAsync(this, termination);
                }
                catch (Exception e)
                {
                    // The session is closed and unregistered before anything can fail (a store read for the broadcast).
                    _processor.OnProcessingFailed(this, e);
                }
                continue;
            }
            try
            {
                await _processor.ProcessAsync(this, work);
            }
            catch (Exception e)
            {
                _processor.OnProcessingFailed(this, e);
                if (work.Kind == SessionWorkKind.Stanza)
                {
                    _ = RequestTermination(new TerminationRequest(SessionEndReason.InternalError, StreamErrorCondition.InternalServerError));
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(work.Buffer!);
            }
        }
    }
}

/// <summary>A session's last broadcast presence: the stanza as stamped (<c>from</c> its full JID, no <c>to</c>) and its priority.</summary>
internal sealed class PresenceSnapshot(byte[] stanza, int priority)
{
    public ReadOnlySpan<byte> Stanza => stanza;

    /// <summary>RFC 6121 4.7.2.3: -128 to 127; a negative priority never receives messages sent to the bare JID.</summary>
    public int Priority { get; } = priority;
}
