using System.Buffers;
using System.Globalization;
using System.Runtime.InteropServices;
using ConnMgr.Protocol.Xml;

namespace ConnMgr.Benchmarks.Scanner;

/// <summary>
/// <c>scanner-ratio [--seconds N]</c>: the scanner against XmlReader on the stanza mix of
/// <see cref="ScannerBenchmarks"/>, side by side in one process. BenchmarkDotNet runs one method after the
/// other, each in its own process, so on a shared box a neighbour's burst lands on one side of the ratio;
/// here every round runs each subject once in a shuffled order and is timed by the thread's own CPU time,
/// and the ratio is taken within each round. Prints medians and quartiles over the rounds, and the bytes
/// the scanner allocated per stanza.
/// </summary>
internal static class ScannerRatioCommand
{
    public const string Verb = "scanner-ratio";

    // Mixes per timed sample: long enough that the clock's resolution does not matter (a mix takes 0.1-2 ms).
    private const int MixesPerSample = 10;

    public static int Run(string[] args)
    {
        var seconds = 30.0;
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i] == "--seconds" && i + 1 < args.Length && double.TryParse(args[i + 1], CultureInfo.InvariantCulture, out seconds) && seconds > 0)
                i++;
            else
                throw new ArgumentException($"{Verb}: unknown or bad argument '{args[i]}' (expected --seconds N, N > 0)");
        }
        if (!OperatingSystem.IsLinux())
            throw new PlatformNotSupportedException($"{Verb} reads the thread's CPU clock through Linux's clock_gettime");

        var mix = StanzaMix.Build(ScannerBenchmarks.Stanzas);
        var whole = new ReadOnlySequence<byte>(mix);
        var segmented = ScannerBenchmarks.Segments(mix, 4096);
        var scanner = new XmppStreamScanner(new XmlScannerOptions { ExpectStreamHeader = false });
        var subjects = new (string Name, Func<long> Run)[]
        {
            ("XmlReader", () => ScannerBenchmarks.ReadAllNodes(mix)),
            ("Scanner", () => ScannerBenchmarks.ScanAll(scanner, whole)),
            ("Scanner, 4 KiB segments", () => ScannerBenchmarks.ScanAll(scanner, segmented)),
        };
        if (subjects[1].Run() != ScannerBenchmarks.Stanzas || subjects[2].Run() != ScannerBenchmarks.Stanzas)
            throw new InvalidOperationException("the mix does not scan: " + scanner.ErrorText);

        // Past tiered compilation's thresholds before anything is timed.
        for (var k = 0; k < 300; k++)
        {
            foreach (var subject in subjects)
                subject.Run();
        }

        var allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        subjects[1].Run();
        var allocatedPerStanza = (double)(GC.GetAllocatedBytesForCurrentThread() - allocatedBefore) / ScannerBenchmarks.Stanzas;

        var samples = subjects.Select(_ => new List<double>()).ToArray();
        var order = Enumerable.Range(0, subjects.Length).ToArray();
        var random = new Random(1);
        var wall = System.Diagnostics.Stopwatch.StartNew();
        while (wall.Elapsed.TotalSeconds < seconds)
        {
            random.Shuffle(order);
            foreach (var s in order)
            {
                var start = ThreadCpuSeconds();
                for (var k = 0; k < MixesPerSample; k++)
                    subjects[s].Run();
                samples[s].Add((ThreadCpuSeconds() - start) / MixesPerSample);
            }
        }

        var rounds = samples[0].Count;
        Console.WriteLine($"// {Verb}: {ScannerBenchmarks.Stanzas} stanzas, {mix.Length} bytes; {rounds} rounds of {MixesPerSample} mixes each, thread CPU time");
        Console.WriteLine("| subject | CPU per mix, median (us) | MB/s | XmlReader / subject, median | quartiles |");
        Console.WriteLine("|---|---:|---:|---:|---|");
        for (var s = 0; s < subjects.Length; s++)
        {
            var perMix = Median(samples[s]);
            var ratios = Enumerable.Range(0, rounds).Select(r => samples[0][r] / samples[s][r]).Order().ToArray();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {subjects[s].Name} | {perMix * 1e6:F1} | {mix.Length / perMix / 1e6:F0} | {ratios[rounds / 2]:F2}x | {ratios[rounds / 4]:F2}-{ratios[rounds * 3 / 4]:F2} |"));
        }
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"// scanner allocated {allocatedPerStanza:F2} bytes per stanza"));
        return 0;
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted[sorted.Length / 2];
    }

    private static double ThreadCpuSeconds()
    {
        if (clock_gettime(ClockThreadCpuTime, out var now) != 0)
            throw new InvalidOperationException("clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
        return now.Seconds + now.Nanoseconds / 1e9;
    }

    private const int ClockThreadCpuTime = 3; // CLOCK_THREAD_CPUTIME_ID

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern int clock_gettime(int clock, out TimeSpec time);
}
