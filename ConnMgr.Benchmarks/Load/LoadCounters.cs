using System.Diagnostics;

namespace ConnMgr.Benchmarks.Load;

/// <summary>Why a client failed, the label of the error counts in the results.</summary>
internal enum LoadError
{
    /// <summary>TCP connect failed for another reason than the ones below.</summary>
    Connect,
    /// <summary>Nothing listens on the server port (ECONNREFUSED).</summary>
    ConnectRefused,
    /// <summary>No ephemeral port left on the source address (EADDRNOTAVAIL): add --sources.</summary>
    SourcePortsExhausted,
    /// <summary>The process ran out of file descriptors (EMFILE): use --processes.</summary>
    FileDescriptors,
    /// <summary>The server offered no STARTTLS, or answered it with a failure.</summary>
    StartTls,
    /// <summary>The TLS handshake failed.</summary>
    TlsHandshake,
    /// <summary>The server does not offer the chosen SASL mechanism.</summary>
    Mechanism,
    /// <summary>SASL failure, or a server signature that does not verify.</summary>
    Auth,
    /// <summary>Resource binding or session establishment answered with an error.</summary>
    Bind,
    /// <summary>The server sent a stream error.</summary>
    StreamError,
    /// <summary>The server closed the stream or the connection while the client was in use.</summary>
    ClosedByServer,
    /// <summary>Not bound with presence sent within --login-timeout.</summary>
    LoginTimeout,
    /// <summary>The server's XML broke the stream scanner or an expected element was missing.</summary>
    Protocol,
    /// <summary>A message bounced with type='error'.</summary>
    MessageError,
    /// <summary>The client's unsent output exceeded its bound: a chat message was dropped.</summary>
    SendBacklog,
    /// <summary>A read or write failed on an established connection.</summary>
    Io,
}

/// <summary>
/// The counters of one generator process, updated lock-free by every client. Gauges (connecting, connected,
/// logged in) go up and down; the rest only grow.
/// </summary>
internal sealed class LoadCounters
{
    public static readonly int ErrorKinds = Enum.GetValues<LoadError>().Length;

    private readonly long[] _errors = new long[ErrorKinds];
    private readonly string?[] _firstErrorText = new string?[ErrorKinds];
    private LatencyHistogram _latencyInterval = new();
    private LatencyHistogram _spareInterval = new();

    public long Connecting;
    public long Connected;
    public long LoggedIn;
    public long LoginsStarted;
    public long LoginsSucceeded;
    public long LoginsFailed;
    public long MessagesSent;
    public long MessagesReceived;
    public long MessagesOffline;
    public long MessagesDropped;

    /// <summary>Stopwatch timestamps of the first login start and the last login success (0 = none yet).</summary>
    public long FirstLoginStart;
    public long LastLoginDone;

    /// <summary>Connect to bound with initial presence sent, µs.</summary>
    public LatencyHistogram LoginTime { get; } = new();

    /// <summary>Message send to receive, µs, whole run.</summary>
    public LatencyHistogram Latency { get; } = new();

    public long ErrorCount(LoadError kind) => Interlocked.Read(ref _errors[(int)kind]);

    public long TotalErrors
    {
        get
        {
            long total = 0;
            for (var i = 0; i < _errors.Length; i++)
                total += Interlocked.Read(ref _errors[i]);
            return total;
        }
    }

    /// <summary>The first error text seen for each kind, for the report (later ones only count).</summary>
    public string? FirstErrorText(LoadError kind) => Volatile.Read(ref _firstErrorText[(int)kind]);

    public void Error(LoadError kind, string text)
    {
        Interlocked.Increment(ref _errors[(int)kind]);
        Interlocked.CompareExchange(ref _firstErrorText[(int)kind], text, null);
    }

    public void RecordLatency(long microseconds)
    {
        Latency.Record(microseconds);
        Volatile.Read(ref _latencyInterval).Record(microseconds);
    }

    public void LoginStarted()
    {
        Interlocked.Increment(ref LoginsStarted);
        Interlocked.CompareExchange(ref FirstLoginStart, Stopwatch.GetTimestamp(), 0);
    }

    public void LoginSucceeded(long microseconds)
    {
        LoginTime.Record(microseconds);
        Interlocked.Increment(ref LoginsSucceeded);
        Interlocked.Increment(ref LoggedIn);
        Volatile.Write(ref LastLoginDone, Stopwatch.GetTimestamp());
    }

    /// <summary>
    /// Latencies recorded since the previous call, for the per-second series. The histogram returned is
    /// reused by the call after next: read it before then. Called by one sampler only.
    /// </summary>
    public LatencyHistogram TakeLatencyInterval()
    {
        _spareInterval.Reset();
        var taken = Interlocked.Exchange(ref _latencyInterval, _spareInterval);
        _spareInterval = taken;
        return taken;
    }
}
