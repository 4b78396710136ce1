using System.Net;
using System.Text.Json;
using ConnMgr.Tests.Hosting;

namespace ConnMgr.Tests.Interop;

/// <summary>
/// The real daemon as a separate process, exactly as an operator runs it
/// (<c>dotnet connmgr.dll</c>, the build the tests reference), all-in-one on
/// loopback with a private data directory. Listeners bind ports the system
/// picks; the daemon names them in its "Ready" log event, read here from the
/// JSON log on standard output. Ready for clients once <c>/health</c> answers
/// 200, i.e. an upstream link to the embedded core is up.
/// </summary>
internal sealed class DaemonProcess : IAsyncDisposable
{
    public const string ClientPortKey = "Edge:ClientPort";
    public const string DirectTlsPortKey = "Edge:DirectTlsPort";
    public const string HttpPortKey = "Edge:HttpPort";

    // The "Ready; listening: {Listeners}" event of ConnMgr.Hosting.ReadinessGate.
    private const int ReadyEventId = 102;

    // Start-up is a .NET process start, certificate generation and the first
    // upstream handshake: a few seconds, more on a loaded CI box.
    private static readonly TimeSpan s_startTimeout = TimeSpan.FromSeconds(90);
    private static readonly TimeSpan s_healthPollInterval = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan s_cliTimeout = TimeSpan.FromSeconds(60);

    private readonly ChildProcess _process;
    private readonly TempDirectory _data;
    private readonly IReadOnlyDictionary<string, IPEndPoint> _listeners;

    private DaemonProcess(ChildProcess process, TempDirectory data, IReadOnlyDictionary<string, IPEndPoint> listeners)
    {
        _process = process;
        _data = data;
        _listeners = listeners;
    }

    public string DataDirectory => _data.Path;

    public IPEndPoint ClientEndPoint => Listener(ClientPortKey);

    public IPEndPoint DirectTlsEndPoint => Listener(DirectTlsPortKey);

    /// <summary>A mark in the daemon's output, for <see cref="OutputSince"/>.</summary>
    public int OutputMark => _process.TranscriptLength;

    /// <summary>The compiled daemon next to the test assembly (copied there by the project reference).</summary>
    public static string Assembly => Path.Combine(AppContext.BaseDirectory, "connmgr.dll");

    /// <summary>The <c>dotnet</c> host running the tests, or the first one on PATH.</summary>
    private static string DotnetHost => Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";

    /// <param name="settings">Extra <c>--Section:Key=value</c> settings; they come last, so they win.</param>
    public static async Task<DaemonProcess> StartAsync(params string[] settings)
    {
        if (!File.Exists(Assembly))
        {
            throw new FileNotFoundException($"the daemon is not built next to the tests: {Assembly}");
        }
        var data = new TempDirectory();
        string[] arguments =
        [
            Assembly,
            "run",
            "--DataDirectory=" + data.Path,
            "--Edge:ListenAddress=127.0.0.1",
            "--Testing:EphemeralPorts=true",
            "--Logging:Format=json",
            "--Logging:Level=Information",
            .. settings,
        ];
        ChildProcess process = ChildProcess.Start("connmgr", DotnetHost, arguments);
        try
        {
            using var deadline = new CancellationTokenSource(s_startTimeout);
            string ready = await process.WaitForLineAsync(IsReadyEvent, s_startTimeout);
            IReadOnlyDictionary<string, IPEndPoint> listeners = ParseListeners(ready);
            if (!listeners.TryGetValue(HttpPortKey, out IPEndPoint? http))
            {
                throw new InvalidOperationException($"the Ready event names no {HttpPortKey} listener: {ready}");
            }
            await WaitUntilHealthyAsync(process, http, deadline.Token);
            return new DaemonProcess(process, data, listeners);
        }
        catch (Exception e)
        {
            await process.DisposeAsync();
            string output = process.Transcript();
            data.Dispose();
            throw new InvalidOperationException($"connmgr did not become ready: {e.Message}\n--- daemon output ---\n{output}", e);
        }
    }

    public IPEndPoint Listener(string key) =>
        _listeners.TryGetValue(key, out IPEndPoint? endPoint)
            ? endPoint
            : throw new InvalidOperationException($"the daemon reported no {key} listener (got {string.Join(", ", _listeners.Keys)})");

    /// <summary>Adds an account with <c>connmgr user add</c> (the same binary, the same data directory) while the daemon runs.</summary>
    public async Task AddUserAsync(string name, string password)
    {
        await using ChildProcess cli = ChildProcess.Start("connmgr user add", DotnetHost,
            [Assembly, "user", "add", name, "--password", password, "--DataDirectory=" + DataDirectory]);
        int status = await cli.WaitForExitAsync(s_cliTimeout);
        if (status != 0)
        {
            throw new InvalidOperationException($"connmgr user add {name} exited {status}:\n{cli.Transcript()}");
        }
    }

    public string OutputSince(int mark) => _process.TranscriptSince(mark);

    public async ValueTask DisposeAsync()
    {
        await _process.DisposeAsync();
        _data.Dispose();
    }

    internal static bool IsReadyEvent(string line)
    {
        if (!line.StartsWith('{'))
        {
            return false;
        }
        try
        {
            using JsonDocument json = JsonDocument.Parse(line);
            return json.RootElement.TryGetProperty("EventId", out JsonElement id)
                && id.ValueKind == JsonValueKind.Object
                && id.TryGetProperty("Id", out JsonElement number)
                && number.TryGetInt32(out int value)
                && value == ReadyEventId
                && json.RootElement.TryGetProperty("Listeners", out _);
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <summary>"Edge:ClientPort 127.0.0.1:40001, Edge:HttpPort 127.0.0.1:40002" as key to endpoint.</summary>
    internal static IReadOnlyDictionary<string, IPEndPoint> ParseListeners(string readyLine)
    {
        using JsonDocument json = JsonDocument.Parse(readyLine);
        string listeners = json.RootElement.GetProperty("Listeners").GetString() ?? "";
        var result = new Dictionary<string, IPEndPoint>(StringComparer.OrdinalIgnoreCase);
        foreach (string entry in listeners.Split(", ", StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            string[] parts = entry.Split(' ', 2);
            if (parts.Length != 2 || !IPEndPoint.TryParse(parts[1], out IPEndPoint? endPoint))
            {
                throw new FormatException($"cannot read listener \"{entry}\" in the Ready event: {readyLine}");
            }
            result[parts[0]] = endPoint;
        }
        return result;
    }

    private static async Task WaitUntilHealthyAsync(ChildProcess process, IPEndPoint http, CancellationToken cancellationToken)
    {
        // No proxy from the environment: the daemon is on loopback.
        using var client = new HttpClient(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(5) };
        var health = new Uri($"http://{http}/health");
        string last = "no answer";
        while (true)
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException("the daemon exited");
            }
            try
            {
                using HttpResponseMessage response = await client.GetAsync(health, cancellationToken);
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return;
                }
                last = $"{(int)response.StatusCode} {(await response.Content.ReadAsStringAsync(cancellationToken)).Trim()}";
            }
            catch (HttpRequestException e)
            {
                last = e.Message;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                throw new TimeoutException($"{health} did not answer 200 within {s_startTimeout.TotalSeconds} s (last: {last})");
            }
            try
            {
                await Task.Delay(s_healthPollInterval, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"{health} did not answer 200 within {s_startTimeout.TotalSeconds} s (last: {last})");
            }
        }
    }
}
