using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using ConnMgr.Benchmarks.Load.Plot;
using NUnit.Framework;

namespace ConnMgr.Tests.Load;

public sealed class PngEncoderTests
{
    [Test]
    public void Crc32MatchesTheStandardCheckValue()
        // The CRC-32 check value of "123456789" (ISO 3309, as used by PNG and zlib) is 0xCBF43926.
        => Assert.That(Crc32.Compute("123456789"u8), Is.EqualTo(0xCBF43926u));

    [Test]
    public void EncodedImageIsAValidPngWithTheSamePixels()
    {
        const int width = 7, height = 5;
        var rgb = new byte[width * height * 3];
        new Random(1).NextBytes(rgb);
        var png = PngEncoder.Encode(width, height, rgb);

        var chunks = ReadChunks(png);
        Assert.That(chunks.Select(c => c.Type), Is.EqualTo(new[] { "IHDR", "IDAT", "IEND" }));
        var header = chunks[0].Data;
        Assert.Multiple(() =>
        {
            Assert.That(BinaryPrimitives.ReadInt32BigEndian(header), Is.EqualTo(width));
            Assert.That(BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(4)), Is.EqualTo(height));
            Assert.That(header[8..13], Is.EqualTo(new byte[] { 8, 2, 0, 0, 0 }), "8-bit RGB, deflate, no filter method, no interlace");
            Assert.That(chunks[2].Data, Is.Empty);
        });

        Assert.That(Unfilter(Inflate(chunks[1].Data), width, height), Is.EqualTo(rgb));
    }

    [Test]
    public void WrongPixelCountIsRefused()
        => Assert.That(() => PngEncoder.Encode(2, 2, new byte[11]), Throws.ArgumentException);

    [Test]
    public void LinePlotDrawsItsSeriesAndEncodes()
    {
        var x = new double[] { 0, 1, 2, 3, 4 };
        var raster = LinePlot.Render("Test", "SECONDS", "CLIENTS",
        [
            new PlotSeries("rising", LinePlot.Red, x, [0, 10, 20, 30, 40]),
            new PlotSeries("gap", LinePlot.Blue, x, [5, double.NaN, 5, 5, 5]),
        ], width: 320, height: 200);
        var red = 0;
        var blue = 0;
        for (var py = 0; py < raster.Height; py++)
        {
            for (var px = 0; px < raster.Width; px++)
            {
                var c = raster.GetPixel(px, py);
                red += c == LinePlot.Red ? 1 : 0;
                blue += c == LinePlot.Blue ? 1 : 0;
            }
        }
        Assert.That(red, Is.GreaterThan(100), "the rising line and its legend swatch");
        Assert.That(blue, Is.GreaterThan(50));
        var png = PngEncoder.Encode(raster.Width, raster.Height, raster.Pixels);
        Assert.That(Unfilter(Inflate(ReadChunks(png)[1].Data), raster.Width, raster.Height), Is.EqualTo(raster.Pixels));
    }

    [TestCase(0.7, 1)]
    [TestCase(13, 20)]
    [TestCase(180, 200)]
    [TestCase(0.03, 0.05)]
    public void NiceStepsAreOneTwoOrFiveTimesAPowerOfTen(double rough, double expected)
        => Assert.That(LinePlot.NiceStep(rough), Is.EqualTo(expected).Within(1e-12));

    [TestCase(0, "0")]
    [TestCase(2500, "2.5K")]
    [TestCase(20000, "20K")]
    [TestCase(3_000_000, "3M")]
    [TestCase(0.25, "0.25")]
    public void TickLabelsUseSuffixes(double value, string expected)
        => Assert.That(LinePlot.FormatTick(value), Is.EqualTo(expected));

    /// <summary>Parses the chunk sequence, checking the signature, each length and each CRC independently of the encoder.</summary>
    private static List<(string Type, byte[] Data)> ReadChunks(byte[] png)
    {
        Assert.That(png[..8], Is.EqualTo(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }));
        var chunks = new List<(string, byte[])>();
        var at = 8;
        while (at < png.Length)
        {
            var length = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(at));
            var typeAndData = png.AsSpan(at + 4, 4 + length);
            var crc = BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(at + 8 + length));
            Assert.That(crc, Is.EqualTo(BitwiseCrc(typeAndData)), "chunk CRC");
            chunks.Add((Encoding.ASCII.GetString(typeAndData[..4]), typeAndData[4..].ToArray()));
            at += 12 + length;
        }
        Assert.That(at, Is.EqualTo(png.Length));
        return chunks;
    }

    /// <summary>CRC-32 bit by bit, without a table, as a second implementation to check the encoder's against.</summary>
    private static uint BitwiseCrc(ReadOnlySpan<byte> data)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in data)
        {
            crc ^= b;
            for (var k = 0; k < 8; k++)
                crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
        }
        return ~crc;
    }

    private static byte[] Inflate(byte[] zlib)
    {
        using var input = new ZLibStream(new MemoryStream(zlib), CompressionMode.Decompress);
        using var output = new MemoryStream();
        input.CopyTo(output);
        return output.ToArray();
    }

    private static byte[] Unfilter(byte[] raw, int width, int height)
    {
        var stride = width * 3;
        Assert.That(raw.Length, Is.EqualTo(height * (stride + 1)));
        var pixels = new byte[height * stride];
        for (var y = 0; y < height; y++)
        {
            Assert.That(raw[y * (stride + 1)], Is.Zero, "filter type None");
            Array.Copy(raw, y * (stride + 1) + 1, pixels, y * stride, stride);
        }
        return pixels;
    }
}
