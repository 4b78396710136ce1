using System.Globalization;
using System.Runtime;
using System.Runtime.InteropServices;
using System.Text;

namespace ConnMgr.Benchmarks.Memory;

/// <summary>
/// One measured run of idle connections: the process before the clients came, with the first
/// quarter of them idle, and with all of them idle. <see cref="Print"/> turns one or more runs into
/// the table an operator reads.
/// </summary>
/// <remarks>
/// Two figures per measure. "per connection" is (all idle - before) / N: what the process grew by,
/// fixed costs included (the GC's gen0 budget, thread-pool threads, pools warming up), so it falls
/// as N grows. "marginal" is (all idle - first quarter idle) / (N - N/4): what one more idle
/// connection costs once those fixed costs are paid, the figure that scales to 100,000.
/// </remarks>
/// <param name="QuarterCount">Connections idle when <paramref name="Quarter"/> was taken (N/4).</param>
/// <param name="TrimmedRssBytes">RSS after glibc's malloc_trim(0) returned free heap pages; -1 when not available.</param>
internal sealed record IdleMemoryRun(string Mode, int Count, IdleConnectionsBenchmark.Snapshot Before, int QuarterCount,
    IdleConnectionsBenchmark.Snapshot Quarter, IdleConnectionsBenchmark.Snapshot After, long TrimmedRssBytes, IReadOnlyList<string> Notes)
{
    /// <summary>Issue 4's targets for process RSS per idle connection (kernel socket memory is not in RSS); none for WebSocket.</summary>
    private const double PlainTargetKiB = 6;
    private const double TlsTargetKiB = 30;

    private const double KiBPerGiB = 1024 * 1024;

    private const string LinePrefix = "idle-memory-run\t";
    private const int LabelWidth = 30;
    private const int ColumnWidth = 14;

    public bool IsTls => Mode.Contains("TLS", StringComparison.Ordinal);

    public double RssKiB => PerConnection(After.RssBytes - Before.RssBytes);

    public double TargetKiB => Mode == "WebSocket" ? double.NaN : IsTls ? TlsTargetKiB : PlainTargetKiB;

    /// <summary>
    /// RSS after asking glibc to give free heap pages back (malloc_trim). The gap to RSS is memory
    /// the allocator holds free (handshake buffers already released); the daemon does not trim.
    /// </summary>
    public static long TrimAndReadRss()
    {
        try
        {
            MallocTrim(0);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return -1;
        }
        return IdleConnectionsBenchmark.Snapshot.ReadRss();
    }

    /// <summary>The table: one column per run, one row per measure, per idle connection.</summary>
    public static void Print(string title, IReadOnlyList<IdleMemoryRun> runs)
    {
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"{title}, .NET {Environment.Version}, {(GCSettings.IsServerGC ? "server" : "workstation")} GC{Tuning()}");
        text.Append("per idle connection (KiB)".PadRight(LabelWidth));
        foreach (var run in runs)
        {
            text.Append(run.Mode.PadLeft(ColumnWidth));
        }
        text.AppendLine();

        Row(text, runs, "process RSS", r => r.RssKiB);
        Row(text, runs, "  target", r => r.TargetKiB);
        Row(text, runs, "  marginal", r => r.Marginal(s => s.RssBytes));
        // Issue 7 compares transports by how many idle clients 1 GiB (1,048,576 KiB) of RSS holds.
        Row(text, runs, "clients per GiB of RSS", r => KiBPerGiB / r.RssKiB, "F0");
        Row(text, runs, "  marginal", r => KiBPerGiB / r.Marginal(s => s.RssBytes), "F0");
        Row(text, runs, "managed heap (live objects)", r => r.PerConnection(r.After.HeapSizeBytes - r.Before.HeapSizeBytes));
        Row(text, runs, "  marginal", r => r.Marginal(s => s.HeapSizeBytes));
        Row(text, runs, "GC committed", r => r.PerConnection(r.After.CommittedBytes - r.Before.CommittedBytes));
        Row(text, runs, "  marginal", r => r.Marginal(s => s.CommittedBytes));
        Row(text, runs, "native (RSS - GC committed)", r => r.PerConnection(r.After.RssBytes - r.Before.RssBytes - (r.After.CommittedBytes - r.Before.CommittedBytes)));
        Row(text, runs, "  marginal", r => r.Marginal(s => s.RssBytes - s.CommittedBytes));
        Row(text, runs, "RSS after malloc_trim", r => r.TrimmedRssBytes < 0 ? double.NaN : r.PerConnection(r.TrimmedRssBytes - r.Before.RssBytes));
        text.Append("verdict".PadRight(LabelWidth));
        foreach (var run in runs)
        {
            text.Append((double.IsNaN(run.TargetKiB) ? "no target" : run.RssKiB <= run.TargetKiB ? "within target" : "over target").PadLeft(ColumnWidth));
        }
        text.AppendLine();
        foreach (var run in runs)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"{run.Mode}: 0 -> {run.QuarterCount} -> {run.Count} connections; RSS {Mebibytes(run.Before.RssBytes)} -> {Mebibytes(run.Quarter.RssBytes)} -> {Mebibytes(run.After.RssBytes)} MiB, GC heap {Mebibytes(run.Before.HeapSizeBytes)} -> {Mebibytes(run.Quarter.HeapSizeBytes)} -> {Mebibytes(run.After.HeapSizeBytes)} MiB");
            foreach (var note in run.Notes)
            {
                text.AppendLine(CultureInfo.InvariantCulture, $"  {note}");
            }
        }
        Console.Write(text.ToString());
    }

    /// <summary>One line for the process that runs several modes and prints them side by side.</summary>
    public string ToLine() => string.Join('\t', [
        LinePrefix.TrimEnd('\t'), Mode, Count.ToString(CultureInfo.InvariantCulture),
        Before.ToLine(), QuarterCount.ToString(CultureInfo.InvariantCulture), Quarter.ToLine(), After.ToLine(), TrimmedRssBytes.ToString(CultureInfo.InvariantCulture), .. Notes]);

    public static IdleMemoryRun? TryParse(string line)
    {
        if (!line.StartsWith(LinePrefix, StringComparison.Ordinal))
        {
            return null;
        }
        var parts = line.Split('\t');
        return new IdleMemoryRun(parts[1], int.Parse(parts[2], CultureInfo.InvariantCulture),
            IdleConnectionsBenchmark.Snapshot.Parse(parts[3]), int.Parse(parts[4], CultureInfo.InvariantCulture),
            IdleConnectionsBenchmark.Snapshot.Parse(parts[5]), IdleConnectionsBenchmark.Snapshot.Parse(parts[6]),
            long.Parse(parts[7], CultureInfo.InvariantCulture), parts[8..]);
    }

    private double PerConnection(long bytes) => bytes / (double)Count / 1024;

    private double Marginal(Func<IdleConnectionsBenchmark.Snapshot, long> measure)
        => (measure(After) - measure(Quarter)) / (double)(Count - QuarterCount) / 1024;

    private static void Row(StringBuilder text, IReadOnlyList<IdleMemoryRun> runs, string label, Func<IdleMemoryRun, double> value, string format = "F2")
    {
        text.Append(label.PadRight(LabelWidth));
        foreach (var run in runs)
        {
            var v = value(run);
            text.Append((double.IsNaN(v) ? "n/a" : v.ToString(format, CultureInfo.InvariantCulture)).PadLeft(ColumnWidth));
        }
        text.AppendLine();
    }

    /// <summary>GC and allocator settings from the environment, which change these figures (e.g. DOTNET_GCgen0size).</summary>
    private static string Tuning()
    {
        var settings = new List<string>();
        foreach (System.Collections.DictionaryEntry variable in Environment.GetEnvironmentVariables())
        {
            var name = (string)variable.Key;
            if (name.StartsWith("DOTNET_GC", StringComparison.OrdinalIgnoreCase) || name.StartsWith("MALLOC_", StringComparison.Ordinal))
            {
                settings.Add($"{name}={variable.Value}");
            }
        }
        settings.Sort(StringComparer.Ordinal);
        return settings.Count == 0 ? "" : ", " + string.Join(' ', settings);
    }

    private static string Mebibytes(long bytes) => (bytes / 1048576.0).ToString("F1", CultureInfo.InvariantCulture);

    [DllImport("libc", EntryPoint = "malloc_trim")]
    private static extern int MallocTrim(nuint pad);
}
