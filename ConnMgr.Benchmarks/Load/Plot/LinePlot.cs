using System.Globalization;

namespace ConnMgr.Benchmarks.Load.Plot;

/// <summary>One line of a plot; a NaN y leaves a gap.</summary>
internal sealed record PlotSeries(string Name, Rgb Colour, IReadOnlyList<double> X, IReadOnlyList<double> Y);

/// <summary>
/// Line plots of the results' time series: axes from zero, grid at 1-2-5 steps, tick labels with K/M/G
/// suffixes, a legend, drawn on a <see cref="Raster"/> for <see cref="PngEncoder"/>.
/// </summary>
internal static class LinePlot
{
    private const int Left = 78;
    private const int Right = 20;
    private const int Top = 44;
    private const int Bottom = 46;

    public static readonly Rgb White = new(255, 255, 255);
    public static readonly Rgb Black = new(0, 0, 0);
    public static readonly Rgb Grid = new(225, 225, 225);
    public static readonly Rgb Blue = new(31, 119, 180);
    public static readonly Rgb Orange = new(230, 120, 20);
    public static readonly Rgb Green = new(44, 160, 44);
    public static readonly Rgb Red = new(214, 39, 40);
    public static readonly Rgb Purple = new(148, 103, 189);
    public static readonly Rgb Grey = new(110, 110, 110);

    public static Raster Render(string title, string xLabel, string yLabel, IReadOnlyList<PlotSeries> series, int width = 900, int height = 420)
    {
        var raster = new Raster(width, height, White);
        double xMin = double.PositiveInfinity, xMax = double.NegativeInfinity, yMax = 0;
        foreach (var s in series)
        {
            for (var i = 0; i < Math.Min(s.X.Count, s.Y.Count); i++)
            {
                if (double.IsNaN(s.Y[i]) || double.IsInfinity(s.Y[i]))
                    continue;
                xMin = Math.Min(xMin, s.X[i]);
                xMax = Math.Max(xMax, s.X[i]);
                yMax = Math.Max(yMax, s.Y[i]);
            }
        }
        if (double.IsInfinity(xMin))
        {
            xMin = 0;
            xMax = 1;
        }
        if (xMax <= xMin)
            xMax = xMin + 1;
        var yStep = NiceStep(yMax > 0 ? yMax / 5 : 0.2);
        var yTop = Math.Max(yStep, Math.Ceiling(yMax / yStep) * yStep);
        var xStep = NiceStep((xMax - xMin) / 8);

        int plotLeft = Left, plotRight = width - Right, plotTop = Top, plotBottom = height - Bottom;
        int X(double v) => plotLeft + (int)Math.Round((v - xMin) / (xMax - xMin) * (plotRight - plotLeft));
        int Y(double v) => plotBottom - (int)Math.Round(v / yTop * (plotBottom - plotTop));

        for (var v = 0.0; v <= yTop + yStep / 2; v += yStep)
        {
            var y = Y(v);
            raster.DrawLine(plotLeft, y, plotRight, y, Grid);
            var label = FormatTick(v);
            raster.DrawText(plotLeft - 6 - Raster.TextWidth(label), y - PixelFont.Height / 2, label, Black);
        }
        for (var v = Math.Ceiling(xMin / xStep) * xStep; v <= xMax + xStep / 1000; v += xStep)
        {
            var x = X(v);
            raster.DrawLine(x, plotTop, x, plotBottom, Grid);
            var label = FormatTick(v);
            raster.DrawText(x - Raster.TextWidth(label) / 2, plotBottom + 6, label, Black);
        }
        raster.DrawLine(plotLeft, plotTop, plotLeft, plotBottom, Black);
        raster.DrawLine(plotLeft, plotBottom, plotRight, plotBottom, Black);

        foreach (var s in series)
        {
            int? px = null, py = null;
            for (var i = 0; i < Math.Min(s.X.Count, s.Y.Count); i++)
            {
                if (double.IsNaN(s.Y[i]) || double.IsInfinity(s.Y[i]))
                {
                    px = py = null;
                    continue;
                }
                int x = X(s.X[i]), y = Y(s.Y[i]);
                if (px is int lastX && py is int lastY)
                    raster.DrawLine(lastX, lastY, x, y, s.Colour, 2);
                else
                    raster.FillRectangle(x - 1, y - 1, 2, 2, s.Colour);
                px = x;
                py = y;
            }
        }

        raster.DrawText((width - Raster.TextWidth(title, 2)) / 2, 10, title, Black, 2);
        raster.DrawText(plotLeft, plotTop - 14, yLabel, Grey);
        raster.DrawText((plotLeft + plotRight - Raster.TextWidth(xLabel)) / 2, height - 18, xLabel, Grey);

        var legendY = plotTop + 8;
        foreach (var s in series)
        {
            var textWidth = Raster.TextWidth(s.Name);
            var legendX = plotRight - 10 - textWidth - 16;
            raster.FillRectangle(legendX - 4, legendY - 3, textWidth + 24, PixelFont.Height + 6, White);
            raster.FillRectangle(legendX, legendY, 10, PixelFont.Height, s.Colour);
            raster.DrawText(legendX + 16, legendY, s.Name, Black);
            legendY += PixelFont.Height + 6;
        }
        return raster;
    }

    /// <summary>The 1, 2 or 5 times a power of ten nearest above <paramref name="rough"/>.</summary>
    internal static double NiceStep(double rough)
    {
        if (rough <= 0 || double.IsNaN(rough))
            return 1;
        var magnitude = Math.Pow(10, Math.Floor(Math.Log10(rough)));
        var fraction = rough / magnitude;
        return (fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10) * magnitude;
    }

    internal static string FormatTick(double value)
    {
        var abs = Math.Abs(value);
        var (scaled, suffix) = abs >= 1e9 ? (value / 1e9, "G") : abs >= 1e6 ? (value / 1e6, "M") : abs >= 1e3 ? (value / 1e3, "K") : (value, "");
        return scaled.ToString(Math.Abs(scaled - Math.Round(scaled)) < 1e-9 ? "0" : "0.##", CultureInfo.InvariantCulture) + suffix;
    }
}
