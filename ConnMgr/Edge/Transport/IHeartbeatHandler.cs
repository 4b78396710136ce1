namespace ConnMgr.Edge.Transport;

/// <summary>Something the one-second <see cref="Heartbeat"/> visits.</summary>
internal interface IHeartbeatHandler
{
    /// <summary>
    /// Called on the heartbeat's thread with <see cref="System.Diagnostics.Stopwatch.GetTimestamp"/>
    /// ticks. Must be quick and must not block: every handler shares the one tick.
    /// </summary>
    void OnHeartbeat(long timestamp);
}

/// <summary>
/// The stream layer's per-connection hook into the heartbeat (idle pings, polite timeouts).
/// Runs on the heartbeat thread, concurrently with the stream's own code: use only thread-safe
/// members there (<see cref="ClientConnection.TryWrite(ReadOnlySpan{byte})"/>,
/// <see cref="ClientConnection.Abort"/>, timestamps).
/// </summary>
internal interface IConnectionHeartbeatListener
{
    void OnHeartbeat(ClientConnection connection, long timestamp);
}
