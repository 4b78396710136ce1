using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace ConnMgr.Tests.Diagnostics;

/// <summary>
/// A strict reader of the Prometheus text exposition format 0.0.4, written from
/// the format's description: it throws <see cref="FormatException"/> on any
/// line a Prometheus server would reject or that breaks the format's rules
/// (names, escaping, one TYPE and HELP per metric before its samples, samples
/// of one metric together, no label set twice).
/// </summary>
internal sealed partial class PrometheusText
{
    /// <summary>Samples by <c>name{label="value",...}</c> with labels sorted and values unescaped.</summary>
    public Dictionary<string, double> Samples { get; } = new(StringComparer.Ordinal);

    public Dictionary<string, string> Types { get; } = new(StringComparer.Ordinal);

    public Dictionary<string, string> Help { get; } = new(StringComparer.Ordinal);

    /// <summary>Samples as (name, labels) for tests that look at label values.</summary>
    public List<(string Name, Dictionary<string, string> Labels, double Value)> Rows { get; } = [];

    [GeneratedRegex("^[a-zA-Z_:][a-zA-Z0-9_:]*$")]
    private static partial Regex MetricName();

    [GeneratedRegex("^[a-zA-Z_][a-zA-Z0-9_]*$")]
    private static partial Regex LabelName();

    public static PrometheusText Parse(string text)
    {
        if (text.Length > 0 && !text.EndsWith('\n'))
        {
            throw new FormatException("the last line must end with a line feed");
        }
        var result = new PrometheusText();
        var finished = new HashSet<string>(StringComparer.Ordinal);
        string? current = null;
        foreach (string line in text.Split('\n')[..^1])
        {
            if (line.StartsWith('#'))
            {
                string[] parts = line.Split(' ', 4);
                if (parts.Length >= 3 && parts[1] is "HELP" or "TYPE")
                {
                    string name = parts[2];
                    Require(MetricName().IsMatch(name), $"bad metric name in \"{line}\"");
                    Require(!finished.Contains(name) && !result.Rows.Any(r => r.Name == name), $"{parts[1]} for {name} after its samples");
                    var table = parts[1] == "HELP" ? result.Help : result.Types;
                    Require(!table.ContainsKey(name), $"second {parts[1]} for {name}");
                    string value = parts.Length == 4 ? parts[3] : "";
                    if (parts[1] == "TYPE")
                    {
                        Require(value is "counter" or "gauge" or "histogram" or "summary" or "untyped", $"bad type in \"{line}\"");
                    }
                    table[name] = parts[1] == "HELP" ? Unescape(value, allowQuote: false) : value;
                }
                continue;
            }
            Require(line.Trim().Length > 0, "blank line");
            (string metric, Dictionary<string, string> labels, double sample) = ParseSample(line);
            if (metric != current)
            {
                Require(!finished.Contains(metric), $"samples of {metric} are not together");
                if (current is not null)
                {
                    finished.Add(current);
                }
                current = metric;
            }
            string key = metric + (labels.Count == 0 ? "" : "{" + string.Join(",", labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => $"{l.Key}=\"{l.Value}\"")) + "}");
            Require(result.Samples.TryAdd(key, sample), $"label set given twice: {key}");
            result.Rows.Add((metric, labels, sample));
        }
        foreach ((string name, string type) in result.Types)
        {
            Require(type != "counter" || name.EndsWith("_total", StringComparison.Ordinal), $"counter {name} does not end in _total");
        }
        return result;
    }

    private static (string Name, Dictionary<string, string> Labels, double Value) ParseSample(string line)
    {
        int i = 0;
        while (i < line.Length && line[i] is not ('{' or ' '))
        {
            i++;
        }
        string name = line[..i];
        Require(MetricName().IsMatch(name), $"bad metric name in \"{line}\"");
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        if (i < line.Length && line[i] == '{')
        {
            i++;
            while (line[i] != '}')
            {
                int equals = line.IndexOf('=', i);
                Require(equals > i, $"label without '=' in \"{line}\"");
                string labelName = line[i..equals];
                Require(LabelName().IsMatch(labelName) && !labelName.StartsWith("__", StringComparison.Ordinal), $"bad label name \"{labelName}\"");
                Require(line[equals + 1] == '"', $"unquoted label value in \"{line}\"");
                var value = new StringBuilder();
                int j = equals + 2;
                for (; line[j] != '"'; j++)
                {
                    if (line[j] == '\\')
                    {
                        j++;
                        value.Append(line[j] switch
                        {
                            '\\' => '\\',
                            '"' => '"',
                            'n' => '\n',
                            _ => throw new FormatException($"bad escape \\{line[j]} in \"{line}\""),
                        });
                    }
                    else
                    {
                        value.Append(line[j]);
                    }
                }
                Require(labels.TryAdd(labelName, value.ToString()), $"label {labelName} twice in \"{line}\"");
                i = j + 1;
                if (line[i] == ',')
                {
                    i++;
                }
            }
            i++;
        }
        Require(i < line.Length && line[i] == ' ', $"no space before the value in \"{line}\"");
        string[] rest = line[(i + 1)..].Split(' ');
        Require(rest.Length is 1 or 2, $"extra fields in \"{line}\"");
        double sample = rest[0] switch
        {
            "+Inf" => double.PositiveInfinity,
            "-Inf" => double.NegativeInfinity,
            "NaN" => double.NaN,
            _ when double.TryParse(rest[0], NumberStyles.Float, CultureInfo.InvariantCulture, out double v) => v,
            _ => throw new FormatException($"bad value in \"{line}\""),
        };
        return (name, labels, sample);
    }

    private static string Unescape(string text, bool allowQuote)
    {
        var value = new StringBuilder();
        for (int i = 0; i < text.Length; i++)
        {
            if (text[i] != '\\')
            {
                value.Append(text[i]);
                continue;
            }
            i++;
            Require(i < text.Length && (text[i] is '\\' or 'n' || (allowQuote && text[i] == '"')), $"bad escape in \"{text}\"");
            value.Append(text[i] == 'n' ? '\n' : text[i]);
        }
        return value.ToString();
    }

    private static void Require(bool condition, string message)
    {
        if (!condition)
        {
            throw new FormatException(message);
        }
    }
}
