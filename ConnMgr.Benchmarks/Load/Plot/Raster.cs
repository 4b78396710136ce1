namespace ConnMgr.Benchmarks.Load.Plot;

/// <summary>An RGB pixel buffer with the few drawing operations a line plot needs.</summary>
internal sealed class Raster
{
    public Raster(int width, int height, Rgb background)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        Width = width;
        Height = height;
        Pixels = new byte[width * height * 3];
        FillRectangle(0, 0, width, height, background);
    }

    public int Width { get; }
    public int Height { get; }

    /// <summary>Rows top to bottom, 3 bytes per pixel: the layout <see cref="PngEncoder.Encode"/> takes.</summary>
    public byte[] Pixels { get; }

    public void SetPixel(int x, int y, Rgb colour)
    {
        if ((uint)x >= (uint)Width || (uint)y >= (uint)Height)
            return;
        var i = (y * Width + x) * 3;
        Pixels[i] = colour.R;
        Pixels[i + 1] = colour.G;
        Pixels[i + 2] = colour.B;
    }

    public Rgb GetPixel(int x, int y)
    {
        var i = (y * Width + x) * 3;
        return new Rgb(Pixels[i], Pixels[i + 1], Pixels[i + 2]);
    }

    public void FillRectangle(int x, int y, int width, int height, Rgb colour)
    {
        for (var yy = Math.Max(0, y); yy < Math.Min(Height, y + height); yy++)
        {
            for (var xx = Math.Max(0, x); xx < Math.Min(Width, x + width); xx++)
                SetPixel(xx, yy, colour);
        }
    }

    /// <summary>Bresenham's line, <paramref name="thickness"/> pixels wide (a square brush).</summary>
    public void DrawLine(int x0, int y0, int x1, int y1, Rgb colour, int thickness = 1)
    {
        int dx = Math.Abs(x1 - x0), sx = x0 < x1 ? 1 : -1;
        int dy = -Math.Abs(y1 - y0), sy = y0 < y1 ? 1 : -1;
        var error = dx + dy;
        var half = (thickness - 1) / 2;
        while (true)
        {
            if (thickness == 1)
                SetPixel(x0, y0, colour);
            else
                FillRectangle(x0 - half, y0 - half, thickness, thickness, colour);
            if (x0 == x1 && y0 == y1)
                break;
            var e2 = 2 * error;
            if (e2 >= dy)
            {
                error += dy;
                x0 += sx;
            }
            if (e2 <= dx)
            {
                error += dx;
                y0 += sy;
            }
        }
    }

    /// <summary>Draws <paramref name="text"/> with its top-left corner at (x, y); returns the width drawn.</summary>
    public int DrawText(int x, int y, string text, Rgb colour, int scale = 1)
    {
        var start = x;
        foreach (var ch in text)
        {
            var glyph = PixelFont.Glyph(ch);
            for (var row = 0; row < PixelFont.Height; row++)
            {
                for (var col = 0; col < PixelFont.Width; col++)
                {
                    if ((glyph[row] >> (PixelFont.Width - 1 - col) & 1) != 0)
                        FillRectangle(x + col * scale, y + row * scale, scale, scale, colour);
                }
            }
            x += PixelFont.Advance * scale;
        }
        return x - start;
    }

    public static int TextWidth(string text, int scale = 1) => text.Length * PixelFont.Advance * scale;
}

internal readonly record struct Rgb(byte R, byte G, byte B);
