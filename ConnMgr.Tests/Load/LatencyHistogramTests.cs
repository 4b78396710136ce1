using System.Text.Json;
using ConnMgr.Benchmarks.Load;
using NUnit.Framework;

namespace ConnMgr.Tests.Load;

public sealed class LatencyHistogramTests
{
    [Test]
    public void BucketsAreContiguousAndEachValueFallsInItsOwn()
    {
        for (var i = 1; i < LatencyHistogram.BucketCount; i++)
        {
            var low = LatencyHistogram.LowestEquivalentValue(i);
            Assert.That(low, Is.EqualTo(LatencyHistogram.HighestEquivalentValue(i - 1) + 1), $"bucket {i}");
            Assert.That(LatencyHistogram.IndexOf(low), Is.EqualTo(i));
            Assert.That(LatencyHistogram.IndexOf(LatencyHistogram.HighestEquivalentValue(i)), Is.EqualTo(i));
        }
        Assert.That(LatencyHistogram.IndexOf(LatencyHistogram.MaxValue), Is.EqualTo(LatencyHistogram.BucketCount - 1));
    }

    [Test]
    public void SmallValuesAreExactAndLargeOnesWithinOneIn128()
    {
        for (long v = 0; v < 256; v++)
            Assert.That(LatencyHistogram.HighestEquivalentValue(LatencyHistogram.IndexOf(v)), Is.EqualTo(v));
        var random = new Random(7);
        for (var n = 0; n < 10_000; n++)
        {
            var v = (long)Math.Exp(random.NextDouble() * Math.Log(LatencyHistogram.MaxValue));
            var reported = LatencyHistogram.HighestEquivalentValue(LatencyHistogram.IndexOf(v));
            Assert.That(reported, Is.GreaterThanOrEqualTo(v));
            Assert.That((double)(reported - v) / Math.Max(1, v), Is.LessThan(1.0 / 128), $"value {v}");
        }
    }

    [Test]
    public void PercentilesOfUniformValues()
    {
        var h = new LatencyHistogram();
        for (var v = 1; v <= 10_000; v++)
            h.Record(v);
        Assert.Multiple(() =>
        {
            Assert.That(h.Count, Is.EqualTo(10_000));
            Assert.That(h.ValueAtPercentile(50), Is.InRange(5000, 5000 * 129 / 128));
            Assert.That(h.ValueAtPercentile(99), Is.InRange(9900, 9900 * 129 / 128));
            Assert.That(h.ValueAtPercentile(99.9), Is.InRange(9990, 10_000));
            Assert.That(h.ValueAtPercentile(100), Is.EqualTo(10_000));
            Assert.That(h.Max, Is.EqualTo(10_000));
            Assert.That(h.Mean, Is.EqualTo(5000.5).Within(1e-9));
        });
    }

    [Test]
    public void PercentileNeverExceedsTheExactMaximum()
    {
        var h = new LatencyHistogram();
        h.Record(100_001);
        Assert.That(h.ValueAtPercentile(99), Is.EqualTo(100_001));
    }

    [Test]
    public void EmptyHistogramReportsZero()
    {
        var h = new LatencyHistogram();
        Assert.That(h.ValueAtPercentile(99), Is.Zero);
        Assert.That(h.Mean, Is.Zero);
    }

    [Test]
    public void OutOfRangeValuesAreClamped()
    {
        var h = new LatencyHistogram();
        h.Record(-5);
        h.Record(long.MaxValue);
        Assert.That(h.ValueAtPercentile(1), Is.Zero);
        Assert.That(h.Max, Is.EqualTo(LatencyHistogram.MaxValue));
    }

    [Test]
    public void MergingEqualsRecordingEverythingInOne()
    {
        var random = new Random(3);
        var all = new LatencyHistogram();
        var parts = new[] { new LatencyHistogram(), new LatencyHistogram(), new LatencyHistogram() };
        for (var n = 0; n < 30_000; n++)
        {
            // Each part gets a different distribution, as generator processes with different shares would.
            var part = n % 3;
            var v = (long)(random.NextDouble() * (part + 1) * 50_000);
            all.Record(v);
            parts[part].Record(v);
        }
        var merged = new LatencyHistogram();
        foreach (var part in parts)
            merged.Add(part);
        Assert.Multiple(() =>
        {
            Assert.That(merged.Count, Is.EqualTo(all.Count));
            Assert.That(merged.Max, Is.EqualTo(all.Max));
            Assert.That(merged.Sum, Is.EqualTo(all.Sum));
            Assert.That(merged.NonEmptyBuckets(), Is.EqualTo(all.NonEmptyBuckets()));
            foreach (var p in new[] { 1, 50, 90, 99, 99.9, 100 })
                Assert.That(merged.ValueAtPercentile(p), Is.EqualTo(all.ValueAtPercentile(p)), $"p{p}");
        });
    }

    [Test]
    public void JsonRoundTripKeepsEveryBucket()
    {
        var h = new LatencyHistogram();
        foreach (var v in new long[] { 0, 3, 300, 300, 70_000, 5_000_000 })
            h.Record(v);
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream))
            HistogramJson.Write(json, h);
        using var document = JsonDocument.Parse(stream.ToArray());
        var back = HistogramJson.Read(document.RootElement);
        Assert.That(back.NonEmptyBuckets(), Is.EqualTo(h.NonEmptyBuckets()));
        Assert.That(back.Max, Is.EqualTo(5_000_000));
        Assert.That(back.Sum, Is.EqualTo(h.Sum));
        Assert.That(back.ValueAtPercentile(50), Is.EqualTo(h.ValueAtPercentile(50)));
    }

    [Test]
    public void BadBucketIndexInJsonIsRefused()
        => Assert.That(() => LatencyHistogram.FromBuckets([(LatencyHistogram.BucketCount, 1)], 0, 0), Throws.TypeOf<FormatException>());

    [Test]
    public void ConcurrentRecordsAreAllCounted()
    {
        var h = new LatencyHistogram();
        Parallel.For(0, 8, _ =>
        {
            for (var v = 0; v < 10_000; v++)
                h.Record(v);
        });
        Assert.That(h.Count, Is.EqualTo(80_000));
        Assert.That(h.NonEmptyBuckets().Sum(b => b.Count), Is.EqualTo(80_000));
        Assert.That(h.Max, Is.EqualTo(9_999));
    }
}
