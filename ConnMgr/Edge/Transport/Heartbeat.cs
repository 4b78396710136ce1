using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace ConnMgr.Edge.Transport;

/// <summary>
/// The one timer behind every timeout of the client transport: each second it visits the
/// registered handlers (the transport, which walks its connections; the certificate provider).
/// No connection owns a timer: 10,000 idle clients cost one tick a second, not 10,000 timers.
/// Deadlines are therefore checked to within a second, which is all XMPP timeouts need.
/// </summary>
internal sealed partial class Heartbeat : IAsyncDisposable
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private IHeartbeatHandler[] _handlers = [];
    private PeriodicTimer? _timer;
    private Task? _loop;

    public Heartbeat(ILogger<Heartbeat> logger)
    {
        _logger = logger;
    }

    public void Register(IHeartbeatHandler handler)
    {
        lock (_lock)
        {
            _handlers = [.. _handlers, handler];
        }
    }

    public void Unregister(IHeartbeatHandler handler)
    {
        lock (_lock)
        {
            _handlers = Array.FindAll(_handlers, h => !ReferenceEquals(h, handler));
        }
    }

    public void Start()
    {
        if (_timer is not null)
        {
            throw new InvalidOperationException("The heartbeat is already running.");
        }
        _timer = new PeriodicTimer(Interval);
        _loop = RunAsync(_timer);
    }

    /// <summary>One tick: visits every handler. Tests call it directly with a chosen timestamp.</summary>
    internal void Tick(long timestamp)
    {
        foreach (var handler in Volatile.Read(ref _handlers))
        {
            try
            {
                handler.OnHeartbeat(timestamp);
            }
            catch (Exception e)
            {
                LogHandlerFailed(e, handler.GetType().Name);
            }
        }
    }

    /// <summary>The timestamp <paramref name="delay"/> after <paramref name="timestamp"/>, in Stopwatch ticks.</summary>
    public static long After(long timestamp, TimeSpan delay) => timestamp + (long)(delay.TotalSeconds * Stopwatch.Frequency);

    public async ValueTask DisposeAsync()
    {
        _timer?.Dispose();
        if (_loop is not null)
        {
            await _loop;
        }
    }

    private async Task RunAsync(PeriodicTimer timer)
    {
        while (await timer.WaitForNextTickAsync())
        {
            Tick(Stopwatch.GetTimestamp());
        }
    }

    [LoggerMessage(EventId = 1090, Level = LogLevel.Error, Message = "Heartbeat handler {Handler} failed")]
    private partial void LogHandlerFailed(Exception exception, string handler);
}
