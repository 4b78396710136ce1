using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;

namespace ConnMgr.Diagnostics;

/// <summary>
/// Renders the instruments of <see cref="ConnMgrMetrics.Meter"/> in the Prometheus
/// text exposition format, version 0.0.4: for each metric a <c># HELP</c> and a
/// <c># TYPE</c> line, then one sample line per label set.
/// </summary>
/// <remarks>
/// Names: the instrument name with every character outside <c>[a-zA-Z0-9_:]</c>
/// turned into <c>_</c> (<c>connmgr.client.stanzas</c> → <c>connmgr_client_stanzas</c>),
/// plus <c>_total</c> for counters. Counters and observable counters are
/// <c>counter</c>; up-down counters and gauges are <c>gauge</c>. Histograms are
/// not exported (none is defined); an instrument of that kind is skipped.
/// Counters that are not observable are summed from the moment the exporter
/// starts listening, which is when the host starts.
/// </remarks>
internal sealed class PrometheusExporter : IDisposable
{
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    private readonly MeterListener _listener;
    private readonly Lock _instrumentsLock = new();
    private readonly List<InstrumentState> _instruments = [];
    private readonly Lock _collectLock = new();

    public PrometheusExporter(ConnMgrMetrics metrics)
    {
        Meter meter = metrics.Meter;
        _listener = new MeterListener
        {
            InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter == meter && InstrumentState.TryCreate(instrument) is { } state)
                {
                    lock (_instrumentsLock)
                    {
                        _instruments.Add(state);
                    }
                    listener.EnableMeasurementEvents(instrument, state);
                }
            },
            MeasurementsCompleted = (_, state) =>
            {
                lock (_instrumentsLock)
                {
                    _instruments.Remove((InstrumentState)state!);
                }
            },
        };
        _listener.SetMeasurementEventCallback<long>(static (_, value, tags, state) => ((InstrumentState)state!).Record(value, tags));
        _listener.SetMeasurementEventCallback<int>(static (_, value, tags, state) => ((InstrumentState)state!).Record(value, tags));
        _listener.SetMeasurementEventCallback<double>(static (_, value, tags, state) => ((InstrumentState)state!).Record(value, tags));
        _listener.SetMeasurementEventCallback<float>(static (_, value, tags, state) => ((InstrumentState)state!).Record(value, tags));
        _listener.Start();
    }

    /// <summary>Reads every observable instrument and renders all metrics.</summary>
    public string Render()
    {
        lock (_collectLock)
        {
            InstrumentState[] instruments;
            lock (_instrumentsLock)
            {
                instruments = _instruments.OrderBy(i => i.Name, StringComparer.Ordinal).ToArray();
            }
            foreach (InstrumentState instrument in instruments)
            {
                instrument.BeginCollect();
            }
            // Observable callbacks run here, on this thread, and land in Record.
            _listener.RecordObservableInstruments();

            var text = new StringBuilder();
            foreach (InstrumentState instrument in instruments)
            {
                instrument.Render(text);
            }
            return text.ToString();
        }
    }

    public void Dispose() => _listener.Dispose();

    internal static string MetricName(string instrumentName)
    {
        var name = new StringBuilder(instrumentName.Length);
        foreach (char c in instrumentName)
        {
            name.Append(char.IsAsciiLetterOrDigit(c) || c is '_' or ':' ? c : '_');
        }
        if (name.Length == 0 || char.IsAsciiDigit(name[0]))
        {
            name.Insert(0, '_');
        }
        return name.ToString();
    }

    internal static string LabelName(string tagKey)
    {
        string name = MetricName(tagKey).Replace(':', '_');
        // Names starting with "__" are reserved for Prometheus itself.
        return name.StartsWith("__", StringComparison.Ordinal) ? "tag" + name : name;
    }

    internal static void AppendLabelValue(StringBuilder text, string value)
    {
        foreach (char c in value)
        {
            switch (c)
            {
                case '\\': text.Append(@"\\"); break;
                case '"': text.Append("\\\""); break;
                case '\n': text.Append(@"\n"); break;
                default: text.Append(c); break;
            }
        }
    }

    internal static void AppendHelp(StringBuilder text, string help)
    {
        foreach (char c in help)
        {
            switch (c)
            {
                case '\\': text.Append(@"\\"); break;
                case '\n': text.Append(@"\n"); break;
                default: text.Append(c); break;
            }
        }
    }

    internal static void AppendValue(StringBuilder text, double value)
    {
        if (double.IsNaN(value))
        {
            text.Append("NaN");
        }
        else if (double.IsPositiveInfinity(value))
        {
            text.Append("+Inf");
        }
        else if (double.IsNegativeInfinity(value))
        {
            text.Append("-Inf");
        }
        else
        {
            text.Append(value.ToString("R", CultureInfo.InvariantCulture));
        }
    }

    /// <summary>One instrument and its series (one per label set).</summary>
    private sealed class InstrumentState
    {
        private readonly bool _observable;
        private readonly bool _sums;
        private readonly string _type;
        private readonly string _help;
        private readonly Lock _seriesLock = new();
        private Series[] _series = [];

        private InstrumentState(Instrument instrument, string type, bool observable, bool sums)
        {
            _type = type;
            _observable = observable;
            _sums = sums;
            string name = MetricName(instrument.Name);
            Name = type == "counter" && !name.EndsWith("_total", StringComparison.Ordinal) ? name + "_total" : name;
            _help = string.IsNullOrEmpty(instrument.Description) ? instrument.Name : instrument.Description;
        }

        public string Name { get; }

        public static InstrumentState? TryCreate(Instrument instrument)
        {
            Type kind = instrument.GetType().IsGenericType ? instrument.GetType().GetGenericTypeDefinition() : instrument.GetType();
            return kind switch
            {
                _ when kind == typeof(Counter<>) => new InstrumentState(instrument, "counter", observable: false, sums: true),
                _ when kind == typeof(ObservableCounter<>) => new InstrumentState(instrument, "counter", observable: true, sums: false),
                _ when kind == typeof(UpDownCounter<>) => new InstrumentState(instrument, "gauge", observable: false, sums: true),
                _ when kind == typeof(ObservableUpDownCounter<>) => new InstrumentState(instrument, "gauge", observable: true, sums: false),
                _ when kind == typeof(ObservableGauge<>) => new InstrumentState(instrument, "gauge", observable: true, sums: false),
                _ when kind == typeof(Gauge<>) => new InstrumentState(instrument, "gauge", observable: false, sums: false),
                _ => null,
            };
        }

        /// <summary>
        /// Called for every measurement. Finding the series is a scan over a
        /// copy-on-write array comparing tags, so a measurement on a known label
        /// set allocates nothing; only a new label set takes the lock.
        /// </summary>
        public void Record(double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            Series series = Find(Volatile.Read(ref _series), tags) ?? Add(tags);
            if (_sums)
            {
                series.Add(value);
            }
            else
            {
                series.Set(value);
            }
        }

        /// <summary>An observable instrument shows only the label sets its callback reports this time.</summary>
        public void BeginCollect()
        {
            if (_observable)
            {
                foreach (Series series in Volatile.Read(ref _series))
                {
                    series.Seen = false;
                }
            }
        }

        public void Render(StringBuilder text)
        {
            Series[] present = Volatile.Read(ref _series)
                .Where(s => !_observable || s.Seen)
                .OrderBy(s => s.Labels, StringComparer.Ordinal)
                .ToArray();
            if (present.Length == 0)
            {
                return;
            }
            text.Append("# HELP ").Append(Name).Append(' ');
            AppendHelp(text, _help);
            text.Append('\n');
            text.Append("# TYPE ").Append(Name).Append(' ').Append(_type).Append('\n');
            foreach (Series series in present)
            {
                text.Append(Name).Append(series.Labels).Append(' ');
                AppendValue(text, series.Value);
                text.Append('\n');
            }
        }

        private static Series? Find(Series[] all, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            foreach (Series series in all)
            {
                if (series.Matches(tags))
                {
                    return series;
                }
            }
            return null;
        }

        private Series Add(ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            lock (_seriesLock)
            {
                if (Find(_series, tags) is { } existing)
                {
                    return existing;
                }
                var series = new Series(tags.ToArray());
                Volatile.Write(ref _series, [.. _series, series]);
                return series;
            }
        }
    }

    private sealed class Series
    {
        private readonly KeyValuePair<string, object?>[] _tags;
        private double _value;

        public Series(KeyValuePair<string, object?>[] tags)
        {
            _tags = tags;
            Labels = FormatLabels(tags);
        }

        /// <summary>The rendered label set, <c>{a="x",b="y"}</c> sorted by name, or empty.</summary>
        public string Labels { get; }

        public bool Seen { get; set; }

        public double Value => Volatile.Read(ref _value);

        public bool Matches(ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            if (tags.Length != _tags.Length)
            {
                return false;
            }
            foreach (KeyValuePair<string, object?> tag in tags)
            {
                bool found = false;
                foreach (KeyValuePair<string, object?> own in _tags)
                {
                    if (string.Equals(tag.Key, own.Key, StringComparison.Ordinal) && Equals(tag.Value, own.Value))
                    {
                        found = true;
                        break;
                    }
                }
                if (!found)
                {
                    return false;
                }
            }
            return true;
        }

        public void Add(double delta)
        {
            double current = Volatile.Read(ref _value);
            while (true)
            {
                double seen = Interlocked.CompareExchange(ref _value, current + delta, current);
                if (seen.Equals(current))
                {
                    break;
                }
                current = seen;
            }
            Seen = true;
        }

        public void Set(double value)
        {
            Volatile.Write(ref _value, value);
            Seen = true;
        }

        private static string FormatLabels(KeyValuePair<string, object?>[] tags)
        {
            if (tags.Length == 0)
            {
                return "";
            }
            var text = new StringBuilder("{");
            bool first = true;
            foreach (KeyValuePair<string, object?> tag in tags.OrderBy(t => LabelName(t.Key), StringComparer.Ordinal))
            {
                if (!first)
                {
                    text.Append(',');
                }
                first = false;
                text.Append(LabelName(tag.Key)).Append("=\"");
                AppendLabelValue(text, Convert.ToString(tag.Value, CultureInfo.InvariantCulture) ?? "");
                text.Append('"');
            }
            return text.Append('}').ToString();
        }
    }
}
