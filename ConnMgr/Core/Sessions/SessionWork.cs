using ConnMgr.Core.Links;
using ConnMgr.Protocol.Xml;

namespace ConnMgr.Core.Sessions;

internal enum SessionWorkKind : byte
{
    /// <summary>A client stanza from a route.</summary>
    Stanza,

    /// <summary>The CM's <c>&lt;close/&gt;</c> (spec 5.3): end the session, then answer.</summary>
    CmClose,

    /// <summary>The CM's <c>&lt;failed&gt;</c> (spec 5.5): store the message offline, then answer.</summary>
    CmFailed,
}

/// <summary>
/// One unit of a session's ordered work. <see cref="Buffer"/> is rented from the shared array pool
/// and returned by the processor when the work is done.
/// </summary>
internal readonly record struct SessionWork(SessionWorkKind Kind, StanzaKind Stanza, byte[]? Buffer, int Length, CoreLink? Link)
{
    public ReadOnlySpan<byte> Bytes => Buffer.AsSpan(0, Length);
}

/// <summary>How a session ends, and who wants to know when it has.</summary>
internal sealed class TerminationRequest(SessionEndReason reason, StreamErrorCondition error = StreamErrorCondition.None, string? text = null)
{
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public SessionEndReason Reason { get; } = reason;

    /// <summary>The stream error sent to the client as a raw-text route first (spec 5.4), or None.</summary>
    public StreamErrorCondition Error { get; } = error;

    public string? Text { get; } = text;

    /// <summary>Completes once the session is gone: unavailable presence broadcast, resource released.</summary>
    public Task Completion => _done.Task;

    public void Complete() => _done.TrySetResult();
}

/// <summary>Why a session ended; the log line.</summary>
internal enum SessionEndReason
{
    /// <summary>The CM sent <c>&lt;close/&gt;</c>.</summary>
    ClosedByCm,

    /// <summary>The same full JID bound again elsewhere (RFC 6120 7.7.2.2).</summary>
    ResourceConflict,

    /// <summary>The user was removed from the store, by the CLI or otherwise.</summary>
    UserRemoved,

    /// <summary><see cref="CoreServerOptions.MaxAuthFailures"/> SASL failures (spec 5.4).</summary>
    AuthFailures,

    /// <summary>No resource bound within <see cref="CoreServerOptions.PreBindTimeout"/> (spec 5.4).</summary>
    PreBindTimeout,

    /// <summary>A stanza before authentication or binding (RFC 6120 7.1).</summary>
    NotAuthorized,

    /// <summary>More than <see cref="CoreServerOptions.MaxSessionQueue"/> stanzas or <see cref="CoreServerOptions.MaxSessionQueueBytes"/> waiting.</summary>
    QueueOverflow,

    /// <summary>The CM's last link closed.</summary>
    CmGone,

    /// <summary>The core is stopping.</summary>
    Shutdown,

    /// <summary>A bug while handling one of its stanzas.</summary>
    InternalError,
}
