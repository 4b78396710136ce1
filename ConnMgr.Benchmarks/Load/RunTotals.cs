using System.Diagnostics;
using System.Text.Json;

namespace ConnMgr.Benchmarks.Load;

/// <summary>
/// The final counts and histograms of one generator process, or of several merged: what a worker writes
/// with <c>--out</c> and the parent adds up. Histograms merge exactly, so merged percentiles are the
/// percentiles of all the processes' values together.
/// </summary>
internal sealed class RunTotals
{
    public long LoginsStarted { get; set; }
    public long LoginsSucceeded { get; set; }
    public long LoginsFailed { get; set; }
    public long MessagesSent { get; set; }
    public long MessagesReceived { get; set; }
    public long MessagesOffline { get; set; }
    public long MessagesDropped { get; set; }

    /// <summary>Stopwatch timestamps (CLOCK_MONOTONIC, comparable across processes); 0 when none.</summary>
    public long FirstLoginStart { get; set; }
    public long LastLoginDone { get; set; }

    public LatencyHistogram LoginTime { get; set; } = new();
    public LatencyHistogram Latency { get; set; } = new();
    public long[] ErrorCounts { get; set; } = new long[LoadCounters.ErrorKinds];
    public string?[] ErrorTexts { get; set; } = new string?[LoadCounters.ErrorKinds];

    public long TotalErrors => ErrorCounts.Sum();

    /// <summary>Logins per second from the first login started to the last one done.</summary>
    public double LoginRate
    {
        get
        {
            if (LoginsSucceeded == 0 || LastLoginDone <= FirstLoginStart)
                return 0;
            return LoginsSucceeded / ((double)(LastLoginDone - FirstLoginStart) / Stopwatch.Frequency);
        }
    }

    public static RunTotals From(LoadCounters c)
    {
        var totals = new RunTotals
        {
            LoginsStarted = c.LoginsStarted,
            LoginsSucceeded = c.LoginsSucceeded,
            LoginsFailed = c.LoginsFailed,
            MessagesSent = c.MessagesSent,
            MessagesReceived = c.MessagesReceived,
            MessagesOffline = c.MessagesOffline,
            MessagesDropped = c.MessagesDropped,
            FirstLoginStart = c.FirstLoginStart,
            LastLoginDone = c.LastLoginDone,
            LoginTime = c.LoginTime.Clone(),
            Latency = c.Latency.Clone(),
        };
        foreach (var kind in Enum.GetValues<LoadError>())
        {
            totals.ErrorCounts[(int)kind] = c.ErrorCount(kind);
            totals.ErrorTexts[(int)kind] = c.FirstErrorText(kind);
        }
        return totals;
    }

    public void Add(RunTotals other)
    {
        LoginsStarted += other.LoginsStarted;
        LoginsSucceeded += other.LoginsSucceeded;
        LoginsFailed += other.LoginsFailed;
        MessagesSent += other.MessagesSent;
        MessagesReceived += other.MessagesReceived;
        MessagesOffline += other.MessagesOffline;
        MessagesDropped += other.MessagesDropped;
        if (other.FirstLoginStart != 0 && (FirstLoginStart == 0 || other.FirstLoginStart < FirstLoginStart))
            FirstLoginStart = other.FirstLoginStart;
        LastLoginDone = Math.Max(LastLoginDone, other.LastLoginDone);
        LoginTime.Add(other.LoginTime);
        Latency.Add(other.Latency);
        for (var i = 0; i < ErrorCounts.Length; i++)
        {
            ErrorCounts[i] += other.ErrorCounts[i];
            ErrorTexts[i] ??= other.ErrorTexts[i];
        }
    }

    public void Write(Utf8JsonWriter json)
    {
        json.WriteStartObject();
        json.WriteNumber("loginsStarted", LoginsStarted);
        json.WriteNumber("loginsSucceeded", LoginsSucceeded);
        json.WriteNumber("loginsFailed", LoginsFailed);
        json.WriteNumber("messagesSent", MessagesSent);
        json.WriteNumber("messagesReceived", MessagesReceived);
        json.WriteNumber("messagesOffline", MessagesOffline);
        json.WriteNumber("messagesDropped", MessagesDropped);
        json.WriteNumber("firstLoginStartTimestamp", FirstLoginStart);
        json.WriteNumber("lastLoginDoneTimestamp", LastLoginDone);
        json.WriteStartObject("errors");
        foreach (var kind in Enum.GetValues<LoadError>())
        {
            if (ErrorCounts[(int)kind] == 0)
                continue;
            json.WriteStartObject(kind.ToString());
            json.WriteNumber("count", ErrorCounts[(int)kind]);
            json.WriteString("first", ErrorTexts[(int)kind]);
            json.WriteEndObject();
        }
        json.WriteEndObject();
        json.WritePropertyName("loginTimeUs");
        HistogramJson.Write(json, LoginTime);
        json.WritePropertyName("latencyUs");
        HistogramJson.Write(json, Latency);
        json.WriteEndObject();
    }

    public static RunTotals Read(JsonElement e)
    {
        var totals = new RunTotals
        {
            LoginsStarted = e.GetProperty("loginsStarted").GetInt64(),
            LoginsSucceeded = e.GetProperty("loginsSucceeded").GetInt64(),
            LoginsFailed = e.GetProperty("loginsFailed").GetInt64(),
            MessagesSent = e.GetProperty("messagesSent").GetInt64(),
            MessagesReceived = e.GetProperty("messagesReceived").GetInt64(),
            MessagesOffline = e.GetProperty("messagesOffline").GetInt64(),
            MessagesDropped = e.GetProperty("messagesDropped").GetInt64(),
            FirstLoginStart = e.GetProperty("firstLoginStartTimestamp").GetInt64(),
            LastLoginDone = e.GetProperty("lastLoginDoneTimestamp").GetInt64(),
            LoginTime = HistogramJson.Read(e.GetProperty("loginTimeUs")),
            Latency = HistogramJson.Read(e.GetProperty("latencyUs")),
        };
        foreach (var error in e.GetProperty("errors").EnumerateObject())
        {
            if (!Enum.TryParse<LoadError>(error.Name, out var kind))
                continue;
            totals.ErrorCounts[(int)kind] = error.Value.GetProperty("count").GetInt64();
            totals.ErrorTexts[(int)kind] = error.Value.GetProperty("first").GetString();
        }
        return totals;
    }
}
