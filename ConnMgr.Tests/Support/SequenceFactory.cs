using System.Buffers;

namespace ConnMgr.Tests.Support;

/// <summary>
/// Builds <see cref="ReadOnlySequence{T}"/> values with chosen segment boundaries, so that parsers can be
/// fed the same bytes cut in every way a pipe might cut them.
/// </summary>
public static class SequenceFactory
{
    /// <summary>One segment holding all of <paramref name="data"/>.</summary>
    public static ReadOnlySequence<byte> Single(ReadOnlySpan<byte> data) => new(data.ToArray());

    /// <summary>One segment per byte.</summary>
    public static ReadOnlySequence<byte> OneBytePerSegment(ReadOnlySpan<byte> data)
    {
        var segments = new byte[data.Length][];
        for (var i = 0; i < data.Length; i++)
            segments[i] = [data[i]];
        return FromSegments(segments);
    }

    /// <summary>One segment per byte with an empty segment before each, which a sequence may legally contain.</summary>
    public static ReadOnlySequence<byte> OneBytePerSegmentWithEmpties(ReadOnlySpan<byte> data)
    {
        var segments = new byte[data.Length * 2][];
        for (var i = 0; i < data.Length; i++)
        {
            segments[2 * i] = [];
            segments[2 * i + 1] = [data[i]];
        }
        return FromSegments(segments);
    }

    /// <summary>Segments cut at the given ascending offsets (e.g. <c>SplitAt(data, 5)</c> gives [0,5) and [5,n)).</summary>
    public static ReadOnlySequence<byte> SplitAt(ReadOnlySpan<byte> data, params int[] offsets)
    {
        var segments = new List<byte[]>(offsets.Length + 1);
        var start = 0;
        foreach (var offset in offsets)
        {
            if (offset < start || offset > data.Length)
                throw new ArgumentOutOfRangeException(nameof(offsets), "offsets must be ascending and inside the data");
            segments.Add(data[start..offset].ToArray());
            start = offset;
        }
        segments.Add(data[start..].ToArray());
        return FromSegments(segments.ToArray());
    }

    public static ReadOnlySequence<byte> FromSegments(params byte[][] segments)
    {
        if (segments.Length == 0)
            return ReadOnlySequence<byte>.Empty;
        var first = new Segment(segments[0], 0);
        var last = first;
        for (var i = 1; i < segments.Length; i++)
            last = last.Append(segments[i]);
        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}
