using System.Diagnostics;
using System.Globalization;

namespace ConnMgr.Benchmarks.Load;

/// <summary>One second of the run, all generator processes together.</summary>
internal sealed class TimePoint
{
    public double Seconds { get; init; }
    public RunPhase Phase { get; init; }
    public long Connecting { get; init; }
    public long Connected { get; init; }
    public long LoggedIn { get; init; }
    public long LoginsSucceeded { get; init; }
    public long LoginsFailed { get; init; }
    public long Errors { get; init; }
    public double LoginsPerSecond { get; init; }
    public double SentPerSecond { get; init; }
    public double ReceivedPerSecond { get; init; }

    /// <summary>Latency of the messages received during this second; NaN when none arrived.</summary>
    public double LatencyP50Ms { get; init; } = double.NaN;
    public double LatencyP99Ms { get; init; } = double.NaN;

    /// <summary>Sum over the <c>--server-pid</c> processes; -1 when none is given or readable.</summary>
    public long ServerRssBytes { get; init; } = -1;

    /// <summary>Percent of one core (200 = both cores of this box); NaN when unknown.</summary>
    public double ServerCpuPercent { get; init; } = double.NaN;

    public long GeneratorRssBytes { get; init; }
    public double GeneratorCpuPercent { get; init; } = double.NaN;

    /// <summary>Kernel memory of all TCP sockets on the box (/proc/net/sockstat), bytes.</summary>
    public long TcpMemoryBytes { get; init; } = -1;
    public long TcpInUse { get; init; } = -1;
}

/// <summary>
/// Once a second: sums the generator processes' samples, reads the server's and the generator's RSS and CPU
/// and the kernel's TCP memory, appends a <see cref="TimePoint"/> and prints the progress line on stderr.
/// </summary>
internal sealed class LoadMonitor
{
    private readonly LoadOptions _options;
    private readonly Func<IReadOnlyList<WorkerSample>> _collect;
    private readonly ProcessProbe? _ownProbe;
    private readonly ProcessProbe[] _serverProbes;
    private readonly long _start = Stopwatch.GetTimestamp();
    private readonly TextWriter _progress;
    private long _lastTimestamp;
    private long _lastServerCpu = -1;
    private long _lastGeneratorCpu = -1;
    private long _lastLogins;
    private long _lastSent;
    private long _lastReceived;

    /// <param name="collect">The latest sample of every generator process.</param>
    /// <param name="ownProbe">This process, when it is a parent that generates no load itself (its CPU
    /// and memory still count as the generator's).</param>
    public LoadMonitor(LoadOptions options, Func<IReadOnlyList<WorkerSample>> collect, ProcessProbe? ownProbe, TextWriter progress)
    {
        _options = options;
        _collect = collect;
        _ownProbe = ownProbe;
        _progress = progress;
        _serverProbes = [.. options.ServerPids.Select(ProcessProbe.ForPid)];
    }

    public List<TimePoint> Series { get; } = [];

    /// <summary>Samples now, then every second until <paramref name="stop"/>, then once more.</summary>
    public async Task RunAsync(CancellationToken stop)
    {
        Sample();
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        try
        {
            while (await timer.WaitForNextTickAsync(stop).ConfigureAwait(false))
                Sample();
        }
        catch (OperationCanceledException)
        {
            // The run is over.
        }
        Sample();
    }

    public TimePoint Sample()
    {
        var now = Stopwatch.GetTimestamp();
        var samples = _collect();
        var phase = samples.Count == 0 ? RunPhase.Ramp : RunPhase.Done;
        long connecting = 0, connected = 0, loggedIn = 0, logins = 0, failed = 0, sent = 0, received = 0, errors = 0;
        long generatorRss = 0, generatorCpu = 0;
        var latency = new LatencyHistogram();
        foreach (var s in samples)
        {
            phase = s.Phase < phase ? s.Phase : phase;
            connecting += s.Connecting;
            connected += s.Connected;
            loggedIn += s.LoggedIn;
            logins += s.LoginsSucceeded;
            failed += s.LoginsFailed;
            sent += s.MessagesSent;
            received += s.MessagesReceived;
            errors += s.Errors;
            generatorRss += Math.Max(0, s.RssBytes);
            generatorCpu += Math.Max(0, s.CpuTicks);
            latency.Add(s.Latency);
        }
        if (_ownProbe is not null)
        {
            var (rss, cpu) = _ownProbe.Read();
            generatorRss += Math.Max(0, rss);
            generatorCpu += Math.Max(0, cpu);
        }

        long serverRss = -1, serverCpu = -1;
        foreach (var probe in _serverProbes)
        {
            var (rss, cpu) = probe.Read();
            if (rss < 0)
                continue;
            serverRss = Math.Max(0, serverRss) + rss;
            serverCpu = Math.Max(0, serverCpu) + cpu;
        }
        var (tcpMemory, tcpInUse) = ProcessProbe.ReadTcpSockstat();

        var elapsed = _lastTimestamp == 0 ? 0 : (double)(now - _lastTimestamp) / Stopwatch.Frequency;
        double Rate(long current, long previous) => elapsed > 0 ? (current - previous) / elapsed : 0;
        double CpuPercent(long current, long previous)
            => elapsed > 0 && current >= 0 && previous >= 0 ? (current - previous) / ProcessProbe.ClockTicksPerSecond / elapsed * 100 : double.NaN;

        var point = new TimePoint
        {
            Seconds = Math.Round((double)(now - _start) / Stopwatch.Frequency, 3),
            Phase = phase,
            Connecting = connecting,
            Connected = connected,
            LoggedIn = loggedIn,
            LoginsSucceeded = logins,
            LoginsFailed = failed,
            Errors = errors,
            LoginsPerSecond = Rate(logins, _lastLogins),
            SentPerSecond = Rate(sent, _lastSent),
            ReceivedPerSecond = Rate(received, _lastReceived),
            LatencyP50Ms = latency.Count == 0 ? double.NaN : latency.ValueAtPercentile(50) / 1000.0,
            LatencyP99Ms = latency.Count == 0 ? double.NaN : latency.ValueAtPercentile(99) / 1000.0,
            ServerRssBytes = serverRss,
            ServerCpuPercent = CpuPercent(serverCpu, _lastServerCpu),
            GeneratorRssBytes = generatorRss,
            GeneratorCpuPercent = CpuPercent(generatorCpu, _lastGeneratorCpu),
            TcpMemoryBytes = tcpMemory,
            TcpInUse = tcpInUse,
        };
        _lastTimestamp = now;
        _lastLogins = logins;
        _lastSent = sent;
        _lastReceived = received;
        _lastServerCpu = serverCpu;
        _lastGeneratorCpu = generatorCpu;
        Series.Add(point);
        _progress.WriteLine(ProgressLine(point));
        return point;
    }

    internal string ProgressLine(TimePoint p)
    {
        var line = string.Create(CultureInfo.InvariantCulture,
            $"[{p.Seconds,5:0}s] {p.Phase.ToString().ToLowerInvariant(),-5} connected {p.Connected,6} online {p.LoggedIn,6} logins/s {p.LoginsPerSecond,6:0} | msgs/s {p.SentPerSecond,6:0} out {p.ReceivedPerSecond,6:0} in | p99 {Ms(p.LatencyP99Ms)} | errors {p.Errors}");
        if (_serverProbes.Length > 0)
            line += string.Create(CultureInfo.InvariantCulture, $" | server {Mib(p.ServerRssBytes)} {Percent(p.ServerCpuPercent)}");
        return line + string.Create(CultureInfo.InvariantCulture, $" | generator {Mib(p.GeneratorRssBytes)} {Percent(p.GeneratorCpuPercent)}");

        static string Ms(double ms) => double.IsNaN(ms) ? "    - ms" : ms.ToString("0.0", CultureInfo.InvariantCulture).PadLeft(6) + " ms";
        static string Mib(long bytes) => bytes < 0 ? "- MiB" : (bytes / 1048576.0).ToString("0", CultureInfo.InvariantCulture) + " MiB";
        static string Percent(double value) => double.IsNaN(value) ? "-% cpu" : value.ToString("0", CultureInfo.InvariantCulture) + "% cpu";
    }
}
