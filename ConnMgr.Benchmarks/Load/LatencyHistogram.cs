namespace ConnMgr.Benchmarks.Load;

/// <summary>
/// A log-bucketed histogram of durations in microseconds, in the manner of HdrHistogram: exact below
/// 256 µs, then 128 buckets per power of two, so any recorded value is reported within 1/128 (0.8%) of
/// itself. Two histograms merge exactly by adding their bucket counts, which is how the percentiles of
/// several generator processes are combined. Recording is lock-free and safe from any thread.
/// </summary>
internal sealed class LatencyHistogram
{
    /// <summary>Sub-bucket bits: 2^7 = 128 buckets per octave (relative error below 1/128).</summary>
    private const int SubBucketBits = 7;
    private const int SubBucketCount = 1 << SubBucketBits;

    /// <summary>Values are clamped to 2^40 µs (about 12.7 days): longer durations are not measurements.</summary>
    internal const long MaxValue = (1L << 40) - 1;

    /// <summary>Bucket count: the index of <see cref="MaxValue"/> plus one.</summary>
    internal static readonly int BucketCount = IndexOf(MaxValue) + 1;

    private readonly long[] _counts = new long[BucketCount];
    private long _total;
    private long _max;
    private long _sum;

    public long Count => Interlocked.Read(ref _total);

    /// <summary>The largest value recorded, exactly (not rounded to its bucket).</summary>
    public long Max => Interlocked.Read(ref _max);

    public double Mean
    {
        get
        {
            var count = Count;
            return count == 0 ? 0 : (double)Interlocked.Read(ref _sum) / count;
        }
    }

    public void Record(long microseconds)
    {
        var value = Math.Clamp(microseconds, 0, MaxValue);
        Interlocked.Increment(ref _counts[IndexOf(value)]);
        Interlocked.Increment(ref _total);
        Interlocked.Add(ref _sum, value);
        var max = Interlocked.Read(ref _max);
        while (value > max)
        {
            var seen = Interlocked.CompareExchange(ref _max, value, max);
            if (seen == max)
                break;
            max = seen;
        }
    }

    /// <summary>Adds every count of <paramref name="other"/> to this one.</summary>
    public void Add(LatencyHistogram other)
    {
        for (var i = 0; i < _counts.Length; i++)
        {
            var c = Interlocked.Read(ref other._counts[i]);
            if (c != 0)
                Interlocked.Add(ref _counts[i], c);
        }
        Interlocked.Add(ref _total, other.Count);
        Interlocked.Add(ref _sum, Interlocked.Read(ref other._sum));
        var otherMax = other.Max;
        if (otherMax > _max)
            _max = otherMax;
    }

    /// <summary>
    /// The value at or below which <paramref name="percentile"/> percent of the recorded values fall,
    /// reported as the highest value of its bucket (never below the truth, at most 0.8% above it) and never
    /// above <see cref="Max"/>. Zero for an empty histogram.
    /// </summary>
    public long ValueAtPercentile(double percentile)
    {
        var total = Count;
        if (total == 0)
            return 0;
        var rank = (long)Math.Ceiling(Math.Clamp(percentile, 0, 100) / 100.0 * total);
        if (rank < 1)
            rank = 1;
        long seen = 0;
        for (var i = 0; i < _counts.Length; i++)
        {
            seen += Interlocked.Read(ref _counts[i]);
            if (seen >= rank)
                return Math.Min(HighestEquivalentValue(i), Max);
        }
        return Max;
    }

    /// <summary>Non-empty buckets as (index, count) pairs, for the JSON results.</summary>
    public IEnumerable<(int Index, long Count)> NonEmptyBuckets()
    {
        for (var i = 0; i < _counts.Length; i++)
        {
            var c = Interlocked.Read(ref _counts[i]);
            if (c != 0)
                yield return (i, c);
        }
    }

    /// <summary>Rebuilds a histogram from <see cref="NonEmptyBuckets"/>, <see cref="Max"/> and the sum of values.</summary>
    public static LatencyHistogram FromBuckets(IEnumerable<(int Index, long Count)> buckets, long max, long sum)
    {
        var histogram = new LatencyHistogram();
        foreach (var (index, count) in buckets)
        {
            if ((uint)index >= (uint)BucketCount || count < 0)
                throw new FormatException($"histogram bucket {index} with count {count} is out of range");
            histogram._counts[index] += count;
            histogram._total += count;
        }
        histogram._max = max;
        histogram._sum = sum;
        return histogram;
    }

    public long Sum => Interlocked.Read(ref _sum);

    public LatencyHistogram Clone()
    {
        var copy = new LatencyHistogram();
        copy.Add(this);
        return copy;
    }

    public void Reset()
    {
        Array.Clear(_counts);
        _total = 0;
        _max = 0;
        _sum = 0;
    }

    /// <summary>Values below 2 * 128 have their own bucket; above, 128 buckets per octave.</summary>
    internal static int IndexOf(long value)
    {
        if (value < 2 * SubBucketCount)
            return (int)value;
        var shift = 63 - (int)long.LeadingZeroCount(value) - SubBucketBits;
        return (int)((shift << SubBucketBits) + (value >> shift));
    }

    internal static long LowestEquivalentValue(int index)
    {
        if (index < 2 * SubBucketCount)
            return index;
        var shift = (index >> SubBucketBits) - 1;
        var sub = index - (shift << SubBucketBits);
        return (long)sub << shift;
    }

    internal static long HighestEquivalentValue(int index)
        => index + 1 < BucketCount ? LowestEquivalentValue(index + 1) - 1 : MaxValue;
}
