using System.Text.Json;
using ConnMgr.Benchmarks.Load;
using NUnit.Framework;

namespace ConnMgr.Tests.Load;

public sealed class ResultsTests
{
    [Test]
    public void RssIsReadFromProcStatus()
        => Assert.That(ProcessProbe.ParseRss("Name:\tprosody\nVmPeak:\t  99999 kB\nVmRSS:\t   48828 kB\nVmData: 1 kB\n"), Is.EqualTo(48828L * 1024));

    [Test]
    public void CpuTicksSkipACommandNameWithSpacesAndParentheses()
    {
        // Fields 14 and 15 (utime, stime) are 700 and 55.
        const string stat = "4242 (lua (x) y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 700 55 0 0 20 0 1 0 100 123456 789 18446744073709551615";
        Assert.That(ProcessProbe.ParseCpuTicks(stat), Is.EqualTo(755));
    }

    [Test]
    public void OwnProcessCanBeProbed()
    {
        var (rss, cpu) = ProcessProbe.Self.Read();
        Assert.That(rss, Is.GreaterThan(1024 * 1024));
        Assert.That(cpu, Is.GreaterThanOrEqualTo(0));
        Assert.That(ProcessProbe.ForPid(int.MaxValue).Read(), Is.EqualTo((-1L, -1L)));
    }

    [Test]
    public void SockstatTcpMemoryIsCountedInPages()
    {
        const string sockstat = "sockets: used 300\nTCP: inuse 2005 orphan 0 tw 3 alloc 2010 mem 1500\nUDP: inuse 1 mem 2\n";
        Assert.That(ProcessProbe.ParseSockstat(sockstat, 4096), Is.EqualTo((1500L * 4096, 2005L)));
    }

    [Test]
    public void WorkerSampleLineRoundTrips()
    {
        var latency = new LatencyHistogram();
        latency.Record(1500);
        latency.Record(90_000);
        var sample = new WorkerSample
        {
            Phase = RunPhase.Hold, Connecting = 1, Connected = 2, LoggedIn = 3, LoginsStarted = 4, LoginsSucceeded = 5,
            LoginsFailed = 6, MessagesSent = 7, MessagesReceived = 8, Errors = 9, RssBytes = 10, CpuTicks = 11, Latency = latency,
        };
        var line = sample.ToLine();
        Assert.That(line, Does.StartWith(WorkerSample.LinePrefix).And.Not.Contain("\n"));
        var back = WorkerSample.TryParseLine(line)!;
        Assert.Multiple(() =>
        {
            Assert.That(back.Phase, Is.EqualTo(RunPhase.Hold));
            Assert.That(new[] { back.Connecting, back.Connected, back.LoggedIn, back.LoginsStarted, back.LoginsSucceeded, back.LoginsFailed, back.MessagesSent, back.MessagesReceived, back.Errors, back.RssBytes, back.CpuTicks },
                Is.EqualTo(Enumerable.Range(1, 11).Select(i => (long)i)));
            Assert.That(back.Latency.ValueAtPercentile(99), Is.EqualTo(latency.ValueAtPercentile(99)));
        });
        Assert.That(WorkerSample.TryParseLine("load: something else"), Is.Null);
        Assert.That(WorkerSample.TryParseLine("sample {broken"), Is.Null);
    }

    [Test]
    public void TotalsOfSeveralProcessesAddUpAfterAJsonRoundTrip()
    {
        var a = new LoadCounters();
        var b = new LoadCounters();
        a.LoginStarted();
        a.LoginSucceeded(2_000);
        b.LoginStarted();
        b.LoginSucceeded(4_000);
        a.RecordLatency(1_000);
        b.RecordLatency(3_000);
        a.Error(LoadError.Auth, "first auth failure");
        b.Error(LoadError.Auth, "second auth failure");
        b.Error(LoadError.ConnectRefused, "refused");

        var merged = new RunTotals();
        foreach (var counters in new[] { a, b })
        {
            using var stream = new MemoryStream();
            using (var json = new Utf8JsonWriter(stream))
                RunTotals.From(counters).Write(json);
            using var document = JsonDocument.Parse(stream.ToArray());
            merged.Add(RunTotals.Read(document.RootElement));
        }
        Assert.Multiple(() =>
        {
            Assert.That(merged.LoginsSucceeded, Is.EqualTo(2));
            Assert.That(merged.LoginTime.Count, Is.EqualTo(2));
            Assert.That(merged.LoginTime.Max, Is.EqualTo(4_000));
            Assert.That(merged.Latency.ValueAtPercentile(50), Is.InRange(1_000, 1_000 * 129 / 128), "the bucket of 1 ms");
            Assert.That(merged.Latency.Max, Is.EqualTo(3_000));
            Assert.That(merged.ErrorCounts[(int)LoadError.Auth], Is.EqualTo(2));
            Assert.That(merged.ErrorTexts[(int)LoadError.Auth], Is.EqualTo("first auth failure"));
            Assert.That(merged.TotalErrors, Is.EqualTo(3));
            Assert.That(merged.FirstLoginStart, Is.EqualTo(Math.Min(a.FirstLoginStart, b.FirstLoginStart)));
            Assert.That(merged.LastLoginDone, Is.EqualTo(Math.Max(a.LastLoginDone, b.LastLoginDone)));
        });
    }

    [Test]
    public void LatencyIntervalIsEmptiedBySampling()
    {
        var counters = new LoadCounters();
        counters.RecordLatency(5_000);
        Assert.That(counters.TakeLatencyInterval().Count, Is.EqualTo(1));
        counters.RecordLatency(7_000);
        var second = counters.TakeLatencyInterval();
        Assert.That(second.Count, Is.EqualTo(1));
        Assert.That(second.Max, Is.EqualTo(7_000));
        Assert.That(counters.Latency.Count, Is.EqualTo(2));
    }
}
