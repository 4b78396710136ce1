using System.Buffers;
using System.Text;
using ConnMgr.Protocol.Xml;
using ConnMgr.Tests.Support;
using NUnit.Framework;

namespace ConnMgr.Tests.Protocol.Scanner;

/// <summary>
/// Feeds one input to fresh scanners in every way a pipe may deliver it, and checks that all ways give the
/// same transcript: whole, split at each byte boundary, one byte per segment, and incrementally (reads
/// appended to the unconsumed bytes, with NeedMoreData in between).
/// </summary>
internal static class ScanHarness
{
    public const string Header =
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>";

    /// <summary>A transcript: the frames found, then how scanning ended ("NeedMoreData(n)" with n bytes left, or "Error(condition)").</summary>
    public sealed record Outcome(IReadOnlyList<string> Frames, string End)
    {
        public override string ToString() => string.Join("\n", Frames) + "\n=> " + End;
    }

    public static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);

    /// <summary>Concatenates strings (as UTF-8) and raw byte arrays.</summary>
    public static byte[] Bytes(params object[] parts)
    {
        var all = new List<byte>();
        foreach (var part in parts)
        {
            all.AddRange(part switch
            {
                string s => Utf8(s),
                byte[] b => b,
                _ => throw new ArgumentException("strings and byte arrays only"),
            });
        }
        return all.ToArray();
    }

    public static string Element(string xml) => "Element:" + Latin1(Utf8(xml));
    public static string Whitespace(string ws) => "Whitespace:" + ws;
    public static string StreamEnd(string xml) => "StreamEnd:" + xml;

    /// <summary>Runs every way of feeding <paramref name="data"/>, asserts they agree, and returns the transcript.</summary>
    public static Outcome ScanAllWays(byte[] data, XmlScannerOptions? options = null, Func<XmlFrame, bool>? restartAfter = null)
    {
        options ??= XmlScannerOptions.Client;
        var expected = Normalize(RunAtOnce(options, SequenceFactory.Single(data), restartAfter));

        var expectedText = expected.ToString();
        void Same(Outcome actual, string how)
        {
            var actualText = Normalize(actual).ToString();
            if (actualText != expectedText)
                Assert.That(actualText, Is.EqualTo(expectedText), how);
        }

        Same(RunAtOnce(options, SequenceFactory.OneBytePerSegment(data), restartAfter), "one byte per segment");
        Same(RunAtOnce(options, SequenceFactory.OneBytePerSegmentWithEmpties(data), restartAfter), "one byte per segment, with empty segments");
        for (var cut = 1; cut < data.Length; cut++)
            Same(RunAtOnce(options, SequenceFactory.SplitAt(data, cut), restartAfter), $"two segments cut at {cut}");

        Same(RunIncremental(options, data, Enumerable.Range(1, data.Length), segmented: false, restartAfter), "one byte per read");
        Same(RunIncremental(options, data, Enumerable.Range(1, data.Length), segmented: true, restartAfter), "one byte per read, one byte per segment");
        for (var cut = 1; cut < data.Length; cut++)
            Same(RunIncremental(options, data, [cut, data.Length], segmented: false, restartAfter), $"two reads cut at {cut}");
        return expected;
    }

    /// <summary>The whole input in one call sequence; each frame is sliced off the buffer as the contract says.</summary>
    public static Outcome RunAtOnce(XmlScannerOptions options, ReadOnlySequence<byte> buffer, Func<XmlFrame, bool>? restartAfter = null)
    {
        var scanner = new XmppStreamScanner(options);
        var frames = new List<string>();
        while (true)
        {
            var status = scanner.Scan(buffer, out var consumed, out var examined, out var frame);
            switch (status)
            {
                case ScanStatus.Frame:
                    Check(examined.Equals(consumed), "examined = consumed after a frame");
                    Check(buffer.Slice(buffer.Start, consumed).ToArray().AsSpan().SequenceEqual(frame.Bytes.ToArray()), "the frame is the start of the buffer, up to consumed");
                    frames.Add(Describe(frame));
                    if (restartAfter?.Invoke(frame) == true)
                        scanner.Restart();
                    buffer = buffer.Slice(consumed);
                    continue;
                case ScanStatus.NeedMoreData:
                    Check(consumed.Equals(buffer.Start) && examined.Equals(buffer.End), "NeedMoreData: consumed = start, examined = end");
                    Check(buffer.Length > 0 || !scanner.HoldsScratch, "an idle scanner holds no scratch");
                    return new Outcome(frames, $"NeedMoreData({buffer.Length})");
                default:
                    return Failed(scanner, frames, buffer);
            }
        }
    }

    /// <summary>
    /// Simulates a pipe: each read appends the next chunk (up to each of <paramref name="readEnds"/>) to the
    /// bytes not yet consumed, and the scanner is called until it needs more.
    /// </summary>
    public static Outcome RunIncremental(XmlScannerOptions options, byte[] data, IEnumerable<int> readEnds, bool segmented, Func<XmlFrame, bool>? restartAfter = null)
    {
        var scanner = new XmppStreamScanner(options);
        var frames = new List<string>();
        var unconsumed = Array.Empty<byte>();
        var fed = 0;
        foreach (var end in readEnds)
        {
            unconsumed = [.. unconsumed, .. data.AsSpan(fed, end - fed)];
            fed = end;
            var buffer = segmented ? SequenceFactory.OneBytePerSegment(unconsumed) : SequenceFactory.Single(unconsumed);
            while (true)
            {
                var status = scanner.Scan(buffer, out var consumed, out var examined, out var frame);
                if (status == ScanStatus.Frame)
                {
                    frames.Add(Describe(frame));
                    if (restartAfter?.Invoke(frame) == true)
                        scanner.Restart();
                    buffer = buffer.Slice(consumed);
                    continue;
                }
                if (status == ScanStatus.Error)
                    return Failed(scanner, frames, buffer);
                Check(consumed.Equals(buffer.Start) && examined.Equals(buffer.End), "NeedMoreData: consumed = start, examined = end");
                Check(buffer.Length > 0 || !scanner.HoldsScratch, "an idle scanner holds no scratch");
                unconsumed = buffer.ToArray();
                break;
            }
        }
        return new Outcome(frames, $"NeedMoreData({unconsumed.Length})");
    }

    /// <summary>Cheap check for the per-call contract (NUnit constraints are too slow for thousands of calls).</summary>
    private static void Check(bool condition, string what)
    {
        if (!condition)
            Assert.Fail(what);
    }

    private static Outcome Failed(XmppStreamScanner scanner, List<string> frames, ReadOnlySequence<byte> buffer)
    {
        Check(scanner.ErrorCondition != StreamErrorCondition.None, "an error condition is set");
        Check(!string.IsNullOrEmpty(scanner.ErrorText), "an error text is set");
        Check(!scanner.HoldsScratch, "no scratch held after an error");
        Check(scanner.Scan(buffer, out _, out _, out _) == ScanStatus.Error, "errors are sticky");
        return new Outcome(frames, $"Error({scanner.ErrorCondition})");
    }

    private static string Describe(XmlFrame frame)
    {
        var text = Latin1(frame.Bytes.ToArray());
        if (frame.Kind != XmlFrameKind.StreamHeader)
            return $"{frame.Kind}:{text}";
        Check(frame.Header is not null, "a header frame carries the header");
        var h = frame.Header!;
        var attributes = string.Join(",", h.Attributes.Select(a => $"{a.Key}={a.Value}"));
        var declarations = string.Join(",", h.NamespaceDeclarations.Select(a => $"{a.Key}={a.Value}"));
        return $"StreamHeader:{text} [prefix={h.Prefix} default={h.DefaultNamespace} attrs={attributes} ns={declarations} decl={h.HadXmlDeclaration}]";
    }

    /// <summary>Bytes one-to-one as chars, so that any byte sequence compares exactly.</summary>
    private static string Latin1(byte[] bytes) => Encoding.Latin1.GetString(bytes);

    /// <summary>Whitespace frames may be cut differently by different reads: compare runs, not frames.</summary>
    private static Outcome Normalize(Outcome outcome)
    {
        var merged = new List<string>();
        foreach (var frame in outcome.Frames)
        {
            if (frame.StartsWith("Whitespace:", StringComparison.Ordinal) && merged.Count > 0 && merged[^1].StartsWith("Whitespace:", StringComparison.Ordinal))
                merged[^1] += frame["Whitespace:".Length..];
            else
                merged.Add(frame);
        }
        return outcome with { Frames = merged };
    }
}
