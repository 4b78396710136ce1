using System.Buffers;
using System.Xml;
using BenchmarkDotNet.Attributes;
using ConnMgr.Protocol.Xml;

namespace ConnMgr.Benchmarks.Scanner;

/// <summary>
/// XmppStreamScanner against System.Xml.XmlReader on the same bytes (<see cref="StanzaMix"/>), one
/// operation = the whole mix. Throughput in MB/s is <c>MixBytes / Mean</c>; divide Allocated by
/// <see cref="Stanzas"/> for bytes per stanza.
/// </summary>
[MemoryDiagnoser]
public class ScannerBenchmarks
{
    public const int Stanzas = 1000;

    private static readonly XmlReaderSettings s_readerSettings = new()
    {
        ConformanceLevel = ConformanceLevel.Fragment,
        DtdProcessing = DtdProcessing.Prohibit,
        CloseInput = true,
    };

    private byte[] _mix = [];
    private ReadOnlySequence<byte> _single;
    private ReadOnlySequence<byte> _segmented;
    private XmppStreamScanner _scanner = null!;

    [GlobalSetup]
    public void Setup()
    {
        _mix = StanzaMix.Build(Stanzas);
        _single = new ReadOnlySequence<byte>(_mix);
        _segmented = Segments(_mix, 4096);
        // One scanner for the whole run, as for one long-lived stream: steady state must not allocate.
        _scanner = new XmppStreamScanner(new XmlScannerOptions { ExpectStreamHeader = false });
        Console.WriteLine($"// mix: {Stanzas} stanzas, {_mix.Length} bytes");
        if (Scanner() < Stanzas || XmlReaderAllNodes() == 0)
            throw new InvalidOperationException("the mix does not scan: " + _scanner.ErrorText);
    }

    [Benchmark(Baseline = true)]
    public long XmlReaderAllNodes() => ReadAllNodes(_mix);

    [Benchmark]
    public int Scanner() => ScanAll(_scanner, _single);

    /// <summary>The same mix cut into 4 KiB segments, as a pipe delivers it.</summary>
    [Benchmark]
    public int Scanner4KiBSegments() => ScanAll(_scanner, _segmented);

    /// <summary>What an XmlReader user does with each node: the names and the values, as strings.</summary>
    public static long ReadAllNodes(byte[] mix)
    {
        long characters = 0;
        using var reader = XmlReader.Create(new MemoryStream(mix), s_readerSettings);
        while (reader.Read())
        {
            switch (reader.NodeType)
            {
                case XmlNodeType.Element:
                    characters += reader.Name.Length;
                    while (reader.MoveToNextAttribute())
                        characters += reader.Name.Length + reader.Value.Length;
                    break;
                case XmlNodeType.Text:
                case XmlNodeType.CDATA:
                case XmlNodeType.Whitespace:
                case XmlNodeType.SignificantWhitespace:
                    characters += reader.Value.Length;
                    break;
            }
        }
        return characters;
    }

    /// <summary>Scans every frame of <paramref name="buffer"/> as a connection's read loop does; returns the elements found.</summary>
    public static int ScanAll(XmppStreamScanner scanner, ReadOnlySequence<byte> buffer)
    {
        var frames = 0;
        while (scanner.Scan(buffer, out var consumed, out _, out var frame) == ScanStatus.Frame)
        {
            if (frame.Kind == XmlFrameKind.Element)
                frames++;
            buffer = buffer.Slice(consumed);
        }
        return frames;
    }

    public static ReadOnlySequence<byte> Segments(byte[] data, int size)
    {
        Segment? first = null, last = null;
        for (var at = 0; at < data.Length; at += size)
        {
            var memory = data.AsMemory(at, Math.Min(size, data.Length - at));
            var segment = new Segment(memory, at);
            if (last is null)
                first = segment;
            else
                last.SetNext(segment);
            last = segment;
        }
        return new ReadOnlySequence<byte>(first!, 0, last!, last!.Memory.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public void SetNext(Segment next) => Next = next;
    }
}
