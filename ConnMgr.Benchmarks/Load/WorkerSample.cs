using System.Text.Json;

namespace ConnMgr.Benchmarks.Load;

/// <summary>
/// One generator process's state at one second: gauges, cumulative counters, its own RSS and CPU time, and
/// the latencies recorded since its previous sample. A worker process prints one per second on stdout as a
/// JSON line; the parent sums them into the run's time series.
/// </summary>
internal sealed class WorkerSample
{
    public RunPhase Phase { get; init; }
    public long Connecting { get; init; }
    public long Connected { get; init; }
    public long LoggedIn { get; init; }
    public long LoginsStarted { get; init; }
    public long LoginsSucceeded { get; init; }
    public long LoginsFailed { get; init; }
    public long MessagesSent { get; init; }
    public long MessagesReceived { get; init; }
    public long Errors { get; init; }
    public long RssBytes { get; init; }
    public long CpuTicks { get; init; }
    public LatencyHistogram Latency { get; init; } = new();

    /// <summary>The prefix of a sample line on a worker's stdout.</summary>
    public const string LinePrefix = "sample ";

    public string ToLine()
    {
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream))
        {
            json.WriteStartObject();
            json.WriteString("phase", Phase.ToString());
            json.WriteNumber("connecting", Connecting);
            json.WriteNumber("connected", Connected);
            json.WriteNumber("loggedIn", LoggedIn);
            json.WriteNumber("loginsStarted", LoginsStarted);
            json.WriteNumber("loginsSucceeded", LoginsSucceeded);
            json.WriteNumber("loginsFailed", LoginsFailed);
            json.WriteNumber("messagesSent", MessagesSent);
            json.WriteNumber("messagesReceived", MessagesReceived);
            json.WriteNumber("errors", Errors);
            json.WriteNumber("rssBytes", RssBytes);
            json.WriteNumber("cpuTicks", CpuTicks);
            json.WritePropertyName("latency");
            HistogramJson.Write(json, Latency);
            json.WriteEndObject();
        }
        return LinePrefix + System.Text.Encoding.UTF8.GetString(stream.GetBuffer(), 0, (int)stream.Length);
    }

    /// <summary>Parses a <see cref="ToLine"/> line; null for any other line.</summary>
    public static WorkerSample? TryParseLine(string line)
    {
        if (!line.StartsWith(LinePrefix, StringComparison.Ordinal))
            return null;
        try
        {
            using var document = JsonDocument.Parse(line.AsMemory(LinePrefix.Length));
            var root = document.RootElement;
            return new WorkerSample
            {
                Phase = Enum.Parse<RunPhase>(root.GetProperty("phase").GetString()!),
                Connecting = root.GetProperty("connecting").GetInt64(),
                Connected = root.GetProperty("connected").GetInt64(),
                LoggedIn = root.GetProperty("loggedIn").GetInt64(),
                LoginsStarted = root.GetProperty("loginsStarted").GetInt64(),
                LoginsSucceeded = root.GetProperty("loginsSucceeded").GetInt64(),
                LoginsFailed = root.GetProperty("loginsFailed").GetInt64(),
                MessagesSent = root.GetProperty("messagesSent").GetInt64(),
                MessagesReceived = root.GetProperty("messagesReceived").GetInt64(),
                Errors = root.GetProperty("errors").GetInt64(),
                RssBytes = root.GetProperty("rssBytes").GetInt64(),
                CpuTicks = root.GetProperty("cpuTicks").GetInt64(),
                Latency = HistogramJson.Read(root.GetProperty("latency")),
            };
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException or ArgumentException)
        {
            return null;
        }
    }
}

/// <summary>A histogram in JSON: <c>{"count":N,"max":M,"sum":S,"buckets":[[index,count],...]}</c>, exact to merge.</summary>
internal static class HistogramJson
{
    public static void Write(Utf8JsonWriter json, LatencyHistogram histogram)
    {
        json.WriteStartObject();
        json.WriteNumber("count", histogram.Count);
        json.WriteNumber("max", histogram.Max);
        json.WriteNumber("sum", histogram.Sum);
        json.WriteStartArray("buckets");
        foreach (var (index, count) in histogram.NonEmptyBuckets())
        {
            json.WriteStartArray();
            json.WriteNumberValue(index);
            json.WriteNumberValue(count);
            json.WriteEndArray();
        }
        json.WriteEndArray();
        json.WriteEndObject();
    }

    public static LatencyHistogram Read(JsonElement element)
    {
        var buckets = new List<(int, long)>();
        foreach (var pair in element.GetProperty("buckets").EnumerateArray())
            buckets.Add((pair[0].GetInt32(), pair[1].GetInt64()));
        return LatencyHistogram.FromBuckets(buckets, element.GetProperty("max").GetInt64(), element.GetProperty("sum").GetInt64());
    }
}
