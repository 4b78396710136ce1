using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace ConnMgr.Benchmarks.Load;

/// <summary>
/// The <c>load</c> verb: one process driving all the clients, or (<c>--processes K</c>) a parent that starts
/// K worker processes of this same program, each with a share of the users and source addresses, samples the
/// server, and merges the workers' totals and histograms into one report.
/// </summary>
internal static class LoadCommand
{
    /// <summary>A worker's first line: its clients are prepared; it starts when the parent writes a line back.</summary>
    private const string ReadyLine = "ready";

    /// <summary>Ports of one source address towards one server port: Linux's default ephemeral range 32768-60999.</summary>
    private const int EphemeralPorts = 60999 - 32768 + 1;

    /// <summary>
    /// Stops idle thread-pool workers from spinning before they sleep (the runtime's default spins up to 70
    /// rounds of sched_yield): on a 2-core box that spinning is CPU taken from the server under test, and
    /// the generator's work items are short and sparse. Must run before the thread pool is first used.
    /// </summary>
    public static void ConfigureThreadPool()
        => AppContext.SetData("System.Threading.ThreadPool.UnfairSemaphoreSpinLimit", 0);

    public static async Task<int> RunAsync(IReadOnlyList<string> args)
    {
        var options = LoadOptions.Parse(args, out var error);
        if (options is null)
        {
            await Console.Error.WriteLineAsync($"load: {error}").ConfigureAwait(false);
            return 2;
        }
        if (options.Help)
        {
            await Console.Out.WriteLineAsync(LoadOptions.HelpText).ConfigureAwait(false);
            return 0;
        }

        var fd = FileDescriptorLimit.RaiseToHard();
        var perProcess = (options.Clients + options.Processes - 1) / options.Processes;
        if (fd.After > 0 && perProcess + FileDescriptorLimit.Reserve > fd.After)
        {
            var needed = (options.Clients + (int)fd.After - FileDescriptorLimit.Reserve - 1) / ((int)fd.After - FileDescriptorLimit.Reserve);
            await Console.Error.WriteLineAsync(
                $"load: {perProcess} clients in one process need {perProcess + FileDescriptorLimit.Reserve} file descriptors; this process may open {fd.After} (hard limit {fd.Hard}). Use --processes {needed} or more.").ConfigureAwait(false);
            return 2;
        }
        if (!options.Worker && options.Clients > EphemeralPorts && options.Sources.Count * EphemeralPorts < options.Clients)
        {
            await Console.Error.WriteLineAsync(
                $"load: warning: {options.Clients} clients towards one server port need more than one source address ({EphemeralPorts} ephemeral ports each); add --sources 127.0.0.1-127.0.0.{Math.Min(254, options.Clients / EphemeralPorts + 2)}").ConfigureAwait(false);
        }

        using var cancel = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            // First Ctrl+C: stop the ramp and hold, close politely and still write the results.
            e.Cancel = true;
            cancel.Cancel();
        };

        if (options.Worker)
            return await RunWorkerAsync(options, cancel.Token).ConfigureAwait(false);
        if (options.Processes > 1)
            return await RunParentAsync(options, fd, cancel.Token).ConfigureAwait(false);
        return await RunSingleAsync(options, fd, cancel.Token).ConfigureAwait(false);
    }

    private static async Task<int> RunSingleAsync(LoadOptions options, (long, long, long) fd, CancellationToken cancel)
    {
        var run = new LoadRun(options);
        if (!await PreloadSaltsAsync(run).ConfigureAwait(false))
            return 2;
        await WarmUpAsync(run, cancel).ConfigureAwait(false);
        var started = DateTime.UtcNow;
        var loadAverage = ProcessProbe.ReadLoadAverage();
        using var stopMonitor = new CancellationTokenSource();
        var monitor = new LoadMonitor(options, () => [run.Sample(ProcessProbe.Self)], ownProbe: null, Console.Error);
        var monitoring = monitor.RunAsync(stopMonitor.Token);
        await run.RunAsync(cancel).ConfigureAwait(false);
        await stopMonitor.CancelAsync().ConfigureAwait(false);
        await monitoring.ConfigureAwait(false);
        return Finish(new LoadReport
        {
            Options = options,
            StartedUtc = started,
            Totals = RunTotals.From(run.Counters),
            Series = monitor.Series,
            FileDescriptors = fd,
            LoadAverageStart = loadAverage,
        });
    }

    /// <summary>A worker: runs its share, prints one sample line a second on stdout, writes its totals to --out.</summary>
    private static async Task<int> RunWorkerAsync(LoadOptions options, CancellationToken cancel)
    {
        if (options.OutPath is null)
        {
            await Console.Error.WriteLineAsync("load: --worker needs --out").ConfigureAwait(false);
            return 2;
        }
        var run = new LoadRun(options);
        if (!await PreloadSaltsAsync(run).ConfigureAwait(false))
            return 2;
        await WarmUpAsync(run, cancel).ConfigureAwait(false);
        // Ready; the parent says go once every worker is, so that no worker's PBKDF2 runs on the run's clock.
        await Console.Out.WriteLineAsync(ReadyLine).ConfigureAwait(false);
        try
        {
            await Console.In.ReadLineAsync(cancel).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Interrupted before the start: the run below closes at once and still writes its totals.
        }
        using var stopSampling = new CancellationTokenSource();
        var sampling = Task.Run(async () =>
        {
            using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
            try
            {
                while (await timer.WaitForNextTickAsync(stopSampling.Token).ConfigureAwait(false))
                    await Console.Out.WriteLineAsync(run.Sample(ProcessProbe.Self).ToLine()).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // The run is over.
            }
        });
        await run.RunAsync(cancel).ConfigureAwait(false);
        await stopSampling.CancelAsync().ConfigureAwait(false);
        await sampling.ConfigureAwait(false);
        await Console.Out.WriteLineAsync(run.Sample(ProcessProbe.Self).ToLine()).ConfigureAwait(false);

        await using (var stream = File.Create(options.OutPath))
        await using (var json = new Utf8JsonWriter(stream))
            RunTotals.From(run.Counters).Write(json);
        return 0;
    }

    private static async Task<int> RunParentAsync(LoadOptions options, (long, long, long) fd, CancellationToken cancel)
    {
        var count = options.Processes;
        var temp = Directory.CreateTempSubdirectory("connmgr-load-");
        var latest = new WorkerSample?[count];
        var processes = new Process[count];
        var readiness = new Task[count];
        var started = DateTime.UtcNow;
        var loadAverage = ProcessProbe.ReadLoadAverage();
        try
        {
            for (var i = 0; i < count; i++)
            {
                var index = i;
                var process = new Process { StartInfo = WorkerStartInfo(options.WorkerArguments(i, count, Path.Combine(temp.FullName, $"worker-{i}.json"))) };
                var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                readiness[i] = ready.Task;
                process.OutputDataReceived += (_, e) =>
                {
                    if (e.Data is null)
                        ready.TrySetResult();
                    else if (e.Data == ReadyLine)
                        ready.TrySetResult();
                    else if (WorkerSample.TryParseLine(e.Data) is { } sample)
                        Volatile.Write(ref latest[index], sample);
                };
                process.Start();
                process.BeginOutputReadLine();
                processes[i] = process;
            }

            // Workers derive their users' SaltedPasswords (--salts) before they are ready; the clock starts after.
            await Task.WhenAll(readiness).ConfigureAwait(false);
            started = DateTime.UtcNow;
            loadAverage = ProcessProbe.ReadLoadAverage();
            foreach (var p in processes)
            {
                if (!p.HasExited)
                    await p.StandardInput.WriteLineAsync("go").ConfigureAwait(false);
            }

            using var forward = cancel.Register(() =>
            {
                // Started from a terminal, the workers got the same SIGINT; otherwise pass it on.
                foreach (var p in processes)
                {
                    if (!p.HasExited)
                        Kill(p.Id, 2);
                }
            });
            using var stopMonitor = new CancellationTokenSource();
            var monitor = new LoadMonitor(options, () => [.. latest.OfType<WorkerSample>()], ProcessProbe.Self, Console.Error);
            var monitoring = monitor.RunAsync(stopMonitor.Token);
            foreach (var p in processes)
                await p.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            await stopMonitor.CancelAsync().ConfigureAwait(false);
            await monitoring.ConfigureAwait(false);

            var totals = new RunTotals();
            for (var i = 0; i < count; i++)
            {
                var path = Path.Combine(temp.FullName, $"worker-{i}.json");
                if (processes[i].ExitCode != 0 || !File.Exists(path))
                {
                    await Console.Error.WriteLineAsync($"load: worker {i} exited with code {processes[i].ExitCode} and no results").ConfigureAwait(false);
                    return 1;
                }
                using var document = JsonDocument.Parse(await File.ReadAllBytesAsync(path, CancellationToken.None).ConfigureAwait(false));
                totals.Add(RunTotals.Read(document.RootElement));
            }
            return Finish(new LoadReport { Options = options, StartedUtc = started, Totals = totals, Series = monitor.Series, FileDescriptors = fd, LoadAverageStart = loadAverage });
        }
        finally
        {
            foreach (var p in processes)
            {
                if (p is not null && !p.HasExited)
                    p.Kill();
                p?.Dispose();
            }
            temp.Delete(recursive: true);
        }
    }

    /// <summary>Runs <c>--warmup</c>'s users to the end and says how it went; their results are dropped.</summary>
    private static async Task WarmUpAsync(LoadRun run, CancellationToken cancel)
    {
        var options = run.Options;
        if (options.Warmup == 0)
            return;
        // The measured run's cache already holds the warm-up users' SaltedPasswords (PreloadSalts).
        var warm = new LoadRun(options.ForWarmup(), run.ScramCache);
        await warm.RunAsync(cancel).ConfigureAwait(false);
        var t = RunTotals.From(warm.Counters);
        await Console.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
            $"load: warm-up users {options.WarmupFirst}..{options.WarmupFirst + options.Warmup - 1}: {t.LoginsSucceeded} logged in at {t.LoginRate:0.0}/s, {t.TotalErrors} errors (not counted)")).ConfigureAwait(false);
    }

    private static async Task<bool> PreloadSaltsAsync(LoadRun run)
    {
        try
        {
            var derived = run.PreloadSalts();
            if (derived > 0 && !run.Options.Worker)
                await Console.Error.WriteLineAsync($"load: derived {derived} SaltedPasswords from {run.Options.SaltsPath}").ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (e is IOException or FormatException or UnauthorizedAccessException)
        {
            await Console.Error.WriteLineAsync($"load: --salts: {e.Message}").ConfigureAwait(false);
            return false;
        }
    }

    /// <summary>This same program in worker mode: the apphost directly, or <c>dotnet ConnMgr.Benchmarks.dll</c>.</summary>
    private static ProcessStartInfo WorkerStartInfo(List<string> arguments)
    {
        var host = Environment.ProcessPath ?? throw new InvalidOperationException("cannot tell which program to start for the workers");
        var info = new ProcessStartInfo(host) { RedirectStandardOutput = true, RedirectStandardInput = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(host) == "dotnet")
            info.ArgumentList.Add(typeof(LoadCommand).Assembly.Location);
        foreach (var argument in arguments)
            info.ArgumentList.Add(argument);
        return info;
    }

    private static int Finish(LoadReport report)
    {
        var options = report.Options;
        foreach (var path in new[] { options.OutPath, options.MarkdownPath })
        {
            if (path is not null)
                Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        }
        if (options.OutPath is not null)
            report.WriteJson(options.OutPath);
        if (options.MarkdownPath is not null)
            report.WriteMarkdown(options.MarkdownPath);

        var t = report.Totals;
        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine(string.Create(inv, $"logins: {t.LoginsSucceeded} ok, {t.LoginsFailed} failed, {t.LoginRate:0.0}/s; login time p50 {t.LoginTime.ValueAtPercentile(50) / 1000.0:0.0} ms, p99 {t.LoginTime.ValueAtPercentile(99) / 1000.0:0.0} ms"));
        Console.WriteLine(string.Create(inv, $"messages: {t.MessagesSent} sent, {t.MessagesReceived} received ({t.MessagesOffline} offline), {t.MessagesDropped} dropped; latency p50 {t.Latency.ValueAtPercentile(50) / 1000.0:0.00} ms, p99 {t.Latency.ValueAtPercentile(99) / 1000.0:0.00} ms, p99.9 {t.Latency.ValueAtPercentile(99.9) / 1000.0:0.00} ms, max {t.Latency.Max / 1000.0:0.00} ms"));
        if (report.SteadyState is { } steady)
        {
            var server = steady.ServerRssBytes < 0 ? ""
                : string.Create(inv, $", server RSS {steady.ServerRssBytes / 1048576.0:0.0} MiB ({report.ServerRssPerConnectionKiB:0.0} KiB per connection over {report.ServerRssBaseline / 1048576.0:0.0} MiB before)");
            Console.WriteLine(string.Create(inv, $"steady state at {steady.Seconds:0} s: {steady.LoggedIn} online{server}, generator RSS {steady.GeneratorRssBytes / 1048576.0:0.0} MiB"));
        }
        Console.WriteLine(string.Create(inv, $"cpu (% of one core) during hold: server {report.MeanCpu(RunPhase.Hold, true):0}, generator {report.MeanCpu(RunPhase.Hold, false):0}; load average {report.LoadAverageStart} at start, {report.LoadAverageEnd} at end"));
        Console.WriteLine(string.Create(inv, $"errors: {t.TotalErrors}"));
        foreach (var kind in Enum.GetValues<LoadError>())
        {
            if (t.ErrorCounts[(int)kind] > 0)
                Console.WriteLine($"  {kind}: {t.ErrorCounts[(int)kind]} (first: {t.ErrorTexts[(int)kind]})");
        }
        return t.LoginsSucceeded > 0 ? 0 : 1;
    }

    [DllImport("libc", EntryPoint = "kill")]
    private static extern int Kill(int pid, int signal);
}
