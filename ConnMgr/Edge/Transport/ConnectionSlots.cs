using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace ConnMgr.Edge.Transport;

/// <summary>
/// <c>Edge:MaxConnections</c>: one count of the client connections open over every transport (TCP,
/// Direct TLS, WebSocket, BOSH sessions), so that the number an operator sets bounds the memory and
/// file descriptors of them all. A connection takes a slot when it is admitted and returns it once,
/// when it ends.
/// </summary>
internal sealed class ConnectionSlots
{
    private static readonly TimeSpan WarningInterval = TimeSpan.FromMinutes(1);

    private int _taken;
    private long _refusedSinceWarning;
    private long _lastWarning;

    public ConnectionSlots(int limit)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        Limit = limit;
    }

    public int Limit { get; }

    /// <summary>Connections holding a slot now.</summary>
    public int Taken => Volatile.Read(ref _taken);

    public bool TryTake()
    {
        if (Interlocked.Increment(ref _taken) <= Limit)
        {
            return true;
        }
        Interlocked.Decrement(ref _taken);
        return false;
    }

    public void Return()
    {
        var left = Interlocked.Decrement(ref _taken);
        Debug.Assert(left >= 0, "a slot returned twice");
    }

    /// <summary>
    /// Counts a client turned away; one warning a minute at most while the cap holds (a flood would
    /// otherwise flood the log too).
    /// </summary>
    public void Refused(ILogger logger)
    {
        var refused = Interlocked.Increment(ref _refusedSinceWarning);
        var now = Stopwatch.GetTimestamp();
        var last = Volatile.Read(ref _lastWarning);
        if ((last == 0 || Stopwatch.GetElapsedTime(last, now) >= WarningInterval)
            && Interlocked.CompareExchange(ref _lastWarning, now, last) == last)
        {
            Interlocked.Add(ref _refusedSinceWarning, -refused);
            TransportLog.ConnectionCapReached(logger, Limit, refused);
        }
    }
}
