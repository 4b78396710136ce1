using System.Buffers;
using ConnMgr.Protocol.Xml;

namespace ConnMgr.Edge.Upstream;

/// <summary>
/// One client stream as the server knows it: a stream ID in the CM-wide table, pinned to one
/// link for everything it sends (spec 8.1), so the server sees its create, routes, failed and
/// close in order.
/// </summary>
internal sealed class UpstreamSession
{
    private readonly UpstreamPool _pool;
    private readonly Lock _callbackLock = new();
    private byte[] _routeStart;
    private UpstreamLink? _link;
    private int _closed;
    private bool _createdSignalled;

    internal UpstreamSession(UpstreamPool pool, string streamId, IUpstreamSessionOwner owner, byte[] routeStart, UpstreamLink link)
    {
        _pool = pool;
        StreamId = streamId;
        Owner = owner;
        _routeStart = routeStart;
        _link = link;
    }

    public string StreamId { get; }

    internal IUpstreamSessionOwner Owner { get; }

    /// <summary>The link this session's traffic goes out on; null once it has none left.</summary>
    internal UpstreamLink? Link => Volatile.Read(ref _link);

    public bool IsClosed => Volatile.Read(ref _closed) != 0;

    /// <summary>
    /// Sends one client stanza in a <c>&lt;route&gt;</c>, copying the bytes as they are (spec 6.1).
    /// The caller has validated them (well-formed, standalone given the declarations passed to
    /// <see cref="UpstreamPool.CreateSession"/>, XML 1.0 characters, at most
    /// <see cref="UpstreamPool.MaxRoutedStanzaBytes"/>): one bad element closes the shared
    /// link (spec 2). Completes synchronously unless the link's output is over its threshold;
    /// the bytes must stay valid until the returned task completes. After <see cref="Close"/>,
    /// or with no link left, the stanza is dropped.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The stanza is larger than <see cref="UpstreamPool.MaxRoutedStanzaBytes"/>.</exception>
    /// <exception cref="ArgumentException">The stanza is empty or does not start with <c>&lt;</c>.</exception>
    public ValueTask RouteAsync(ReadOnlySequence<byte> stanza, CancellationToken ct)
    {
        if (stanza.Length > UpstreamPool.MaxRoutedStanzaBytes)
        {
            ThrowTooLarge(stanza.Length);
        }
        // A route without a child element makes Openfire drop the whole link (spec 2).
        if (stanza.IsEmpty || stanza.FirstSpan[0] != (byte)'<')
        {
            ThrowNotAnElement();
        }
        if (IsClosed)
        {
            return ValueTask.CompletedTask;
        }
        var link = Link;
        if (link is null)
        {
            return ValueTask.CompletedTask;
        }
        if (link.Output.IsOverThreshold)
        {
            return RouteAfterDrainAsync(stanza, ct);
        }
        WriteRoute(stanza);
        return ValueTask.CompletedTask;
    }

    /// <summary>
    /// Replaces the prefix declarations put on each route, after a client stream restart
    /// brought a new header (RFC 6120 4.3.3). Call it between stanzas, from the client's loop.
    /// </summary>
    public void SetStreamNamespaces(IEnumerable<KeyValuePair<string, string>>? namespaces)
        => Volatile.Write(ref _routeStart, LinkWire.RouteStart(StreamId, namespaces));

    /// <summary>
    /// Tells the server a routed <c>&lt;message&gt;</c> could not be delivered, so it stores it
    /// offline (spec 5.5). Call it before <see cref="Close"/>: the server only accepts it while
    /// the session exists. Never waits.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="message"/> is not one <c>message</c> element.</exception>
    public ValueTask SendFailedAsync(ReadOnlySpan<byte> message)
    {
        if (!XmlElementReader.TryCreate(message, default, out var reader) || !reader.QualifiedName.SequenceEqual("message"u8))
        {
            throw new ArgumentException("Only a single <message> element can be reported as failed (spec 5.5).", nameof(message));
        }
        var raw = reader.Raw;
        var hasXmlns = reader.HasAttribute("xmlns"u8);
        var link = BeginWrite(out var scope);
        if (link is not null)
        {
            using (scope)
            {
                LinkWire.Failed(scope.Writer, StreamId, raw, hasXmlns);
            }
        }
        return ValueTask.CompletedTask;
    }

    /// <summary>
    /// Ends the session: sends <c>&lt;close/&gt;</c> on its link, once, and removes it from the
    /// table. No owner callback follows. Safe to call more than once and from any thread.
    /// </summary>
    public void Close()
    {
        if (TryMarkClosed())
        {
            _pool.OnSessionEnded(this, sendClose: true);
        }
    }

    /// <summary>Marks the session closed; true for the one caller that did it.</summary>
    internal bool TryMarkClosed() => Interlocked.Exchange(ref _closed, 1) == 0;

    /// <summary>Moves the session off a dead link (spec 8.1); false if someone else moved it first.</summary>
    internal bool TryRepin(UpstreamLink from, UpstreamLink to)
        => Interlocked.CompareExchange(ref _link, to, from) == from;

    internal void Unpin() => Volatile.Write(ref _link, null);

    /// <summary>
    /// Takes the write lock of the session's link. A link whose output is closed (it is going
    /// down) is left for a live one first: its sender has stopped, so nothing written before
    /// can still go out after what is written now (spec 8.1, no reordering).
    /// </summary>
    internal UpstreamLink? BeginWrite(out LinkOutput.WriteScope scope)
    {
        while (true)
        {
            var link = Link;
            if (link is null)
            {
                scope = default;
                return null;
            }
            scope = link.Output.Begin();
            if (scope.IsOpen)
            {
                return link;
            }
            scope.Dispose();
            if (!_pool.TryMoveSession(this, link))
            {
                scope = default;
                return null;
            }
        }
    }

    // ---- calls into the owner, one at a time ----------------------------------------------------

    internal void NotifyCreated()
    {
        var faulted = false;
        lock (_callbackLock)
        {
            if (_createdSignalled || IsClosed)
            {
                return;
            }
            _createdSignalled = true;
            try
            {
                Owner.OnSessionCreated();
            }
            catch (Exception e)
            {
                UpstreamLog.OwnerFailed(_pool.Logger, StreamId, e);
                faulted = true;
            }
        }
        if (faulted)
        {
            Close();
        }
    }

    /// <summary>Hands one element to the owner; an owner that throws gets its session closed.</summary>
    internal void Deliver(ReadOnlySpan<byte> element, DeliveryKind kind)
    {
        var faulted = false;
        lock (_callbackLock)
        {
            if (IsClosed)
            {
                return;
            }
            try
            {
                // The create result travels on a random link, routes on the hashed one (spec
                // 8.2): either may be read first. Owners always see "created" first.
                if (!_createdSignalled)
                {
                    _createdSignalled = true;
                    Owner.OnSessionCreated();
                }
                Owner.Deliver(element, kind);
            }
            catch (Exception e)
            {
                UpstreamLog.OwnerFailed(_pool.Logger, StreamId, e);
                faulted = true;
            }
        }
        if (faulted)
        {
            Close();
        }
    }

    /// <summary>Ends the session because of the server or the links, then tells the owner why.</summary>
    internal void End(SessionEnd end, StreamErrorCondition streamError = StreamErrorCondition.None, string? text = null,
        StanzaErrorCondition refusal = StanzaErrorCondition.UndefinedCondition)
    {
        if (!TryMarkClosed())
        {
            return;
        }
        // Jive's CM answered a server close with its own <close/> (spec 5.4); a stream error or
        // item-not-found also means "send <close/>" (spec 0.1 point 1), and so does our own
        // shutdown (0.1 point 2). A refused create left nothing on the server, and a lost or
        // shut-down upstream cannot be written to.
        var sendClose = end switch
        {
            SessionEnd.StreamError => streamError != StreamErrorCondition.SystemShutdown,
            SessionEnd.ClosedByServer or SessionEnd.Shutdown => true,
            _ => false,
        };
        _pool.OnSessionEnded(this, sendClose, orphaned: end == SessionEnd.UpstreamLost);
        lock (_callbackLock)
        {
            try
            {
                switch (end)
                {
                    case SessionEnd.Refused:
                        Owner.OnSessionRefused(refusal);
                        break;
                    case SessionEnd.StreamError:
                        Owner.OnStreamError(streamError, text);
                        break;
                    case SessionEnd.ClosedByServer:
                        Owner.OnClosedByServer();
                        break;
                    case SessionEnd.Shutdown:
                        Owner.OnStreamError(StreamErrorCondition.SystemShutdown, null);
                        break;
                    default:
                        Owner.OnUpstreamLost();
                        break;
                }
            }
            catch (Exception e)
            {
                UpstreamLog.OwnerFailed(_pool.Logger, StreamId, e);
            }
        }
    }

    private void WriteRoute(in ReadOnlySequence<byte> stanza)
    {
        if (BeginWrite(out var scope) is null)
        {
            return;
        }
        using (scope)
        {
            scope.Write(Volatile.Read(ref _routeStart));
            scope.Write(stanza);
            scope.Write(LinkWire.RouteEnd);
        }
    }

    private async ValueTask RouteAfterDrainAsync(ReadOnlySequence<byte> stanza, CancellationToken ct)
    {
        // Wait on whichever link the session is pinned to now: a link that dies releases its
        // waiters, and the session may have moved meanwhile.
        while (Link is { } link && !IsClosed && link.Output.IsOverThreshold)
        {
            await link.Output.WaitForDrainAsync(ct).ConfigureAwait(false);
        }
        if (!IsClosed)
        {
            WriteRoute(stanza);
        }
    }

    private static void ThrowNotAnElement()
        => throw new ArgumentException("A routed stanza must be one element, starting with '<'.", "stanza");

    private static void ThrowTooLarge(long length)
        => throw new ArgumentOutOfRangeException("stanza", length,
            $"A routed stanza may be at most {UpstreamPool.MaxRoutedStanzaBytes} bytes: the server closes the whole link beyond 1 MiB (spec 2).");
}

/// <summary>Why the pool ended a session on its own.</summary>
internal enum SessionEnd : byte
{
    Refused,
    StreamError,
    ClosedByServer,
    UpstreamLost,

    /// <summary>The edge is stopping: close upstream, tell the client <c>system-shutdown</c>.</summary>
    Shutdown,
}
