using System.Collections.Concurrent;
using System.Text;
using ConnMgr.Edge.Upstream;
using ConnMgr.Protocol.Xml;
using ConnMgr.Tests.OpenfireDouble;
using Microsoft.Extensions.Logging;
using NUnit.Framework;

namespace ConnMgr.Tests.Edge.Upstream;

/// <summary>One call an <see cref="IUpstreamSessionOwner"/> received.</summary>
internal sealed record OwnerEvent(string Kind, string? Xml = null, DeliveryKind DeliveryKind = DeliveryKind.Stanza,
    StreamErrorCondition StreamError = StreamErrorCondition.None, StanzaErrorCondition Refusal = StanzaErrorCondition.UndefinedCondition);

/// <summary>A client session stand-in that records every call, in order, and lets tests wait for one.</summary>
internal sealed class RecordingOwner : IUpstreamSessionOwner
{
    private readonly Lock _lock = new();
    private readonly List<OwnerEvent> _events = [];
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Runs inside <see cref="Deliver"/> before recording, e.g. to throw.</summary>
    public Action<string>? BeforeDeliver { get; init; }

    public IReadOnlyList<OwnerEvent> Events
    {
        get
        {
            lock (_lock)
            {
                return [.. _events];
            }
        }
    }

    public IReadOnlyList<OwnerEvent> Deliveries => [.. Events.Where(e => e.Kind == "deliver")];

    public bool Ended => Events.Any(e => e.Kind is "refused" or "stream-error" or "closed" or "lost");

    public void OnSessionCreated() => Record(new OwnerEvent("created"));

    public void OnSessionRefused(StanzaErrorCondition condition) => Record(new OwnerEvent("refused", Refusal: condition));

    public void Deliver(ReadOnlySpan<byte> stanza, DeliveryKind kind)
    {
        var xml = Encoding.UTF8.GetString(stanza);
        BeforeDeliver?.Invoke(xml);
        Record(new OwnerEvent("deliver", xml, kind));
    }

    public void OnStreamError(StreamErrorCondition condition, string? text) => Record(new OwnerEvent("stream-error", text, StreamError: condition));

    public void OnClosedByServer() => Record(new OwnerEvent("closed"));

    public void OnUpstreamLost() => Record(new OwnerEvent("lost"));

    public async Task WaitForAsync(Func<RecordingOwner, bool> condition, string description, TimeSpan? timeout = null)
    {
        using var deadline = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(10));
        while (true)
        {
            Task changed;
            lock (_lock)
            {
                changed = _changed.Task;
            }
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
                Assert.Fail($"Timed out waiting for {description}; owner saw: {string.Join(", ", Events.Select(e => e.Kind + (e.Xml is null ? "" : " " + e.Xml)))}");
            }
        }
    }

    public Task WaitForEventAsync(string kind, TimeSpan? timeout = null)
        => WaitForAsync(o => o.Events.Any(e => e.Kind == kind), $"'{kind}'", timeout);

    private void Record(OwnerEvent e)
    {
        TaskCompletionSource signal;
        lock (_lock)
        {
            _events.Add(e);
            signal = _changed;
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        signal.TrySetResult();
    }
}

/// <summary>An <see cref="ILogger{T}"/> that keeps every entry, so tests can check what operators would read.</summary>
internal sealed class ListLogger<T> : ILogger<T>
{
    private readonly ConcurrentQueue<(int EventId, LogLevel Level, string Message)> _entries = new();

    public IReadOnlyList<(int EventId, LogLevel Level, string Message)> Entries => [.. _entries];

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        _entries.Enqueue((eventId.Id, logLevel, formatter(state, exception)));
        if (logLevel >= LogLevel.Information)
        {
            TestContext.Progress.WriteLine($"[{logLevel}] {eventId.Id} {formatter(state, exception)}");
        }
    }

    public int Count(int eventId) => _entries.Count(e => e.EventId == eventId);

    public async Task WaitForAsync(int eventId, int count = 1, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(10));
        while (Count(eventId) < count)
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"Timed out waiting for log event {eventId} x{count}; got: {string.Join(" | ", Entries.Select(e => $"{e.EventId} {e.Message}"))}");
            }
            await Task.Delay(20);
        }
    }
}

internal static class UpstreamTestSupport
{
    public const string CmName = "cm1";

    /// <summary>Settings against the double: its self-signed certificate accepted, short timers for tests.</summary>
    public static UpstreamSettings Settings(OpenfireDoubleServer server, int links = 1) => new()
    {
        Host = "127.0.0.1",
        Port = server.Port,
        Secret = "secret",
        CmName = CmName,
        Links = links,
        ServerCertificateValidation = static (_, _, _, _) => true,
        TlsServerName = server.Options.Domain,
        ReconnectInitial = TimeSpan.FromMilliseconds(100),
        ReconnectMax = TimeSpan.FromSeconds(1),
        StopDrainTimeout = TimeSpan.FromSeconds(3),
    };

    public static async Task<UpstreamPool> StartPoolAsync(UpstreamSettings settings, ListLogger<UpstreamPool>? logger = null)
    {
        var pool = new UpstreamPool(settings, logger ?? new ListLogger<UpstreamPool>());
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        await pool.StartAsync(timeout.Token);
        return pool;
    }

    /// <summary>Waits for the pool to report a number of authenticated links.</summary>
    public static async Task WaitForLinksAsync(UpstreamPool pool, int linksUp, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(10));
        while (pool.LinksUp != linksUp)
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"Expected {linksUp} links up, have {pool.LinksUp}.");
            }
            await Task.Delay(20);
        }
    }

    /// <summary>Creates a session and waits until the server has it and the owner heard "created".</summary>
    public static async Task<(UpstreamSession Session, RecordingOwner Owner)> CreateAsync(
        UpstreamPool pool, OpenfireDoubleServer server, RecordingOwner? owner = null)
    {
        owner ??= new RecordingOwner();
        var session = pool.CreateSession(pool.NewStreamId(), owner, System.Net.IPAddress.Parse("203.0.113.7"));
        await owner.WaitForEventAsync("created");
        await server.WaitForSessionAsync(session.StreamId);
        return (session, owner);
    }

    public static ValueTask RouteAsync(this UpstreamSession session, string xml)
        => session.RouteAsync(new System.Buffers.ReadOnlySequence<byte>(Encoding.UTF8.GetBytes(xml)), CancellationToken.None);

    /// <summary>The link JID a session's traffic reached the double on: the link of its create.</summary>
    public static string LinkOfCreate(OpenfireDoubleServer server, string streamId)
        => server.ReceivedElements.First(e => e.Name == "iq" && e.Element!.Descendants().Any(d => d.Name.LocalName == "session" && (string?)d.Attribute("id") == streamId)).Link;
}
