using System.Diagnostics;
using System.Globalization;
using System.IO.Pipelines;
using System.Net;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using ConnMgr.Protocol.Sasl;

namespace ConnMgr.Benchmarks.Load;

/// <summary>Where a run is: logging clients in, holding them, closing them.</summary>
internal enum RunPhase { Ramp, Hold, Close, Done }

/// <summary>
/// The clients of one generator process and the single heartbeat thread that drives them: it starts logins
/// at <c>--rate</c>, turns the chat wheel every <see cref="Tick"/>, and once a second fails logins that
/// outlived <c>--login-timeout</c>. No client has a timer or a thread of its own.
/// </summary>
internal sealed class LoadRun
{
    /// <summary>
    /// Heartbeat period: 10 ms spreads one interval's messages over 2,000 slots at the default 20 s, and
    /// spaces logins 10 ms apart at the default rate; shorter would only spin the thread.
    /// </summary>
    public static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(10);

    /// <summary>How long closing clients get to exchange stream end tags before their sockets are closed.</summary>
    private static readonly TimeSpan CloseGrace = TimeSpan.FromSeconds(10);

    private readonly XmppLoadClient[] _clients;
    private readonly IPEndPoint[] _serverEndPoints;
    private readonly ChatSchedule? _schedule;
    private readonly Func<int, bool> _sendChat;
    private readonly Random _random;
    private readonly TaskCompletionSource _rampDone = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _launched;
    private int _nextSource;
    private volatile bool _stopRamp;
    private volatile bool _stopChat;
    private volatile bool _stopHeartbeat;
    private volatile RunPhase _phase;

    /// <param name="scramCache">SaltedPasswords already derived (the measured run's, for its warm-up); null: a new cache.</param>
    public LoadRun(LoadOptions options, ScramSaltedPasswordCache? scramCache = null)
    {
        ScramCache = scramCache ?? new();
        Options = options;
        Stanzas = new ClientStanzas(options);
        _serverEndPoints = new IPEndPoint[options.Ports.Count];
        for (var i = 0; i < _serverEndPoints.Length; i++)
            _serverEndPoints[i] = new IPEndPoint(options.Host, options.Ports[i]);
        TlsOptions = new SslClientAuthenticationOptions
        {
            TargetHost = options.Domain,
            // A load tool against a server on the same box: the certificate is deliberately not checked.
            RemoteCertificateValidationCallback = static (_, _, _, _) => true,
            // SslStream builds a chain even when the callback ignores it; an empty custom trust store keeps
            // it from searching the system's ~140 roots on every handshake, which cost the generator more
            // CPU per login than the server's side of TLS.
            CertificateChainPolicy = new X509ChainPolicy
            {
                TrustMode = X509ChainTrustMode.CustomRootTrust,
                RevocationMode = X509RevocationMode.NoCheck,
                DisableCertificateDownloads = true,
            },
            AllowTlsResume = options.TlsResume,
        };
        _clients = new XmppLoadClient[options.Clients];
        _random = new Random(options.Seed);
        if (options.Interval > TimeSpan.Zero)
        {
            var slots = (int)Math.Max(1, Math.Round(options.Interval / Tick));
            _schedule = new ChatSchedule(slots, options.Neighbours, options.PopulationFirst, options.PopulationCount, options.Seed);
        }
        _sendChat = SendChat;
    }

    public LoadOptions Options { get; }
    public LoadCounters Counters { get; } = new();
    public ClientStanzas Stanzas { get; }
    /// <summary>The port user <paramref name="number"/> connects to: one of the edges, always the same one.</summary>
    public IPEndPoint ServerEndPointFor(int number)
        => _serverEndPoints[(uint)(number - Options.PopulationFirst) % (uint)_serverEndPoints.Length];
    public SslClientAuthenticationOptions TlsOptions { get; }

    /// <summary>SaltedPassword per account, derived once as a real client that remembers it would.</summary>
    public ScramSaltedPasswordCache ScramCache { get; }

    /// <summary>
    /// Derives the SaltedPassword of this process's users (measured and warm-up) listed in <c>--salts</c> into <see cref="ScramCache"/>,
    /// on every core, before the clock starts. Returns the number derived.
    /// </summary>
    public int PreloadSalts()
    {
        if (Options.SaltsPath is null)
            return 0;
        // The warm-up's users too: one pass over the file serves both runs (they share the cache).
        var mine = new HashSet<string>(StringComparer.Ordinal);
        for (var n = Options.First; n < Options.First + Options.Clients; n++)
            mine.Add(Options.UserName(n));
        for (var n = Options.WarmupFirst; n < Options.WarmupFirst + Options.Warmup; n++)
            mine.Add(Options.UserName(n));
        var entries = new List<(byte[] Salt, int Iterations, string Password)>();
        var lineNumber = 0;
        foreach (var line in File.ReadLines(Options.SaltsPath))
        {
            lineNumber++;
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length == 0)
                continue;
            if (fields.Length != 4 || !int.TryParse(fields[2], NumberStyles.None, CultureInfo.InvariantCulture, out var iterations)
                || iterations < 1 || iterations > ScramClient.MaxIterations)
                throw new FormatException($"{Options.SaltsPath}:{lineNumber}: expected NAME SALT_BASE64 ITERATIONS PASSWORD");
            if (mine.Contains(fields[0]))
                entries.Add((Convert.FromBase64String(fields[1]), iterations, fields[3]));
        }
        var hash = Options.ScramHash;
        Parallel.ForEach(entries, e => ScramCache.GetOrDerive(hash, e.Password, e.Salt, e.Iterations));
        return entries.Count;
    }

    /// <summary>
    /// Client output: no pause threshold (the client bounds its own backlog, see
    /// <see cref="XmppLoadClient.MaxPendingBytes"/>); the send loop resumes on the thread pool, so TLS
    /// encryption never runs on the heartbeat.
    /// </summary>
    public PipeOptions OutputPipeOptions { get; } = new(
        readerScheduler: PipeScheduler.ThreadPool,
        writerScheduler: PipeScheduler.Inline,
        pauseWriterThreshold: 0,
        resumeWriterThreshold: 0,
        minimumSegmentSize: 2048,
        useSynchronizationContext: false);

    /// <summary>
    /// Zero-byte reads: an idle client holds no read buffer until data arrives. 4 KiB buffers hold a
    /// chat message (about 300 bytes) many times over.
    /// </summary>
    public StreamPipeReaderOptions ReaderOptions { get; } = new(bufferSize: 4096, minimumReadSize: 1024, leaveOpen: true, useZeroByteReads: true);

    public RunPhase Phase => _phase;

    /// <summary>The next source address in rotation, or null for the kernel's choice.</summary>
    public IPAddress? NextSource()
    {
        var sources = Options.Sources;
        if (sources.Count == 0)
            return null;
        var i = (uint)Interlocked.Increment(ref _nextSource) % (uint)sources.Count;
        return sources[(int)i];
    }

    /// <summary>A client is bound with presence sent: it starts chatting.</summary>
    public void OnOnline(XmppLoadClient client) => _schedule?.Add(client.Number - Options.First);

    /// <summary>Runs the whole load: ramp, hold, polite close. Cancelling skips to the close.</summary>
    public async Task RunAsync(CancellationToken cancel)
    {
        var start = Stopwatch.GetTimestamp();
        var heartbeat = new Thread(() => Heartbeat(start)) { IsBackground = true, Name = "load-heartbeat" };
        heartbeat.Start();
        try
        {
            using (cancel.Register(() => _stopRamp = true))
                await _rampDone.Task.ConfigureAwait(false);
            _phase = RunPhase.Hold;
            if (!cancel.IsCancellationRequested)
            {
                try
                {
                    await Task.Delay(Options.Hold, cancel).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    // Ctrl+C: close what is open and still write the results.
                }
            }
            _phase = RunPhase.Close;
            _stopChat = true;
            await CloseAllAsync().ConfigureAwait(false);
        }
        finally
        {
            _stopHeartbeat = true;
            heartbeat.Join();
            _phase = RunPhase.Done;
        }
    }

    private async Task CloseAllAsync()
    {
        var launched = Volatile.Read(ref _launched);
        var tasks = new Task[launched];
        for (var i = 0; i < launched; i++)
        {
            _clients[i].BeginClose();
            tasks[i] = _clients[i].Completion;
        }
        var all = Task.WhenAll(tasks);
        if (await Task.WhenAny(all, Task.Delay(CloseGrace)).ConfigureAwait(false) != all)
        {
            for (var i = 0; i < launched; i++)
                _clients[i].Abort();
        }
        await all.ConfigureAwait(false);
    }

    private void Heartbeat(long start)
    {
        var options = Options;
        var tickTicks = (long)(Tick.TotalSeconds * Stopwatch.Frequency);
        var timeoutTicks = (long)(options.LoginTimeout.TotalSeconds * Stopwatch.Frequency);
        var rampDone = false;
        long turns = 0;
        var nextTimeoutCheck = start;
        while (!_stopHeartbeat)
        {
            var now = Stopwatch.GetTimestamp();
            if (!rampDone)
            {
                // One login at once, then one every 1/rate s: --rate 100 starts client k at k * 10 ms.
                var elapsed = (double)(now - start) / Stopwatch.Frequency;
                var due = (int)Math.Min(_clients.Length, Math.Floor(elapsed * options.Rate) + 1);
                while (_launched < due && !_stopRamp)
                {
                    var client = new XmppLoadClient(this, options.First + _launched);
                    _clients[_launched] = client;
                    Volatile.Write(ref _launched, _launched + 1);
                    client.Start(now);
                }
                // The ramp ends when every client started has logged in or failed (bounded by
                // --login-timeout), so that the hold measures a settled population.
                var counters = Counters;
                if (_stopRamp
                    || (_launched == _clients.Length
                        && Interlocked.Read(ref counters.LoginsSucceeded) + Interlocked.Read(ref counters.LoginsFailed) >= _launched))
                {
                    rampDone = true;
                    _rampDone.TrySetResult();
                }
            }

            if (_schedule is not null && !_stopChat)
            {
                var target = (now - start) / tickTicks;
                // Catch up at most a second of ticks at once; further behind, skip rather than burst.
                var catchUp = 0;
                while (turns < target && catchUp++ < 100)
                {
                    _schedule.Advance(_sendChat);
                    turns++;
                }
                turns = Math.Max(turns, target);
            }

            if (now >= nextTimeoutCheck)
            {
                var launched = Volatile.Read(ref _launched);
                for (var i = 0; i < launched; i++)
                    _clients[i].CheckLoginTimeout(now, timeoutTicks);
                nextTimeoutCheck = now + Stopwatch.Frequency;
            }

            var sleep = tickTicks - (Stopwatch.GetTimestamp() - now);
            if (sleep > 0)
                Thread.Sleep(TimeSpan.FromSeconds((double)sleep / Stopwatch.Frequency));
        }
    }

    private bool SendChat(int local)
    {
        var client = _clients[local];
        return client.TrySendChat(_schedule!.PickNeighbour(client.Number, _random));
    }

    /// <summary>This process's counters now, for the per-second series.</summary>
    public WorkerSample Sample(ProcessProbe self)
    {
        var c = Counters;
        var (rss, cpu) = self.Read();
        return new WorkerSample
        {
            Phase = _phase,
            Connecting = Interlocked.Read(ref c.Connecting),
            Connected = Interlocked.Read(ref c.Connected),
            LoggedIn = Interlocked.Read(ref c.LoggedIn),
            LoginsStarted = Interlocked.Read(ref c.LoginsStarted),
            LoginsSucceeded = Interlocked.Read(ref c.LoginsSucceeded),
            LoginsFailed = Interlocked.Read(ref c.LoginsFailed),
            MessagesSent = Interlocked.Read(ref c.MessagesSent),
            MessagesReceived = Interlocked.Read(ref c.MessagesReceived),
            Errors = c.TotalErrors,
            RssBytes = rss,
            CpuTicks = cpu,
            Latency = c.TakeLatencyInterval().Clone(),
        };
    }
}
