using System.Net;
using System.Text.Json;
using ConnMgr.Tests.Hosting;
using NUnit.Framework;

namespace ConnMgr.Tests.Interop;

/// <summary>
/// Runs the third-party client scenarios beside this file: Python scripts on
/// slixmpp under <c>slixmpp/</c>, Node scripts on xmpp.js under <c>xmppjs/</c>.
/// Each prints one closing JSON line <c>{"ok", "observed", "error"}</c>.
/// </summary>
internal static class ClientScripts
{
    public const string Domain = "localhost";

    // Debian's interpreter: a pyenv or virtualenv python3 earlier on PATH does not see python3-slixmpp.
    public const string Python = "/usr/bin/python3";

    // Each script bounds itself (--timeout); the runner's own limit only
    // catches an interpreter that hangs before or after the scenario.
    private const int ScenarioSeconds = 30;
    private static readonly TimeSpan s_processTimeout = TimeSpan.FromSeconds(ScenarioSeconds + 60);

    private static readonly Lazy<Task<string?>> s_slixmppMissing = new(FindSlixmppProblemAsync);
    private static readonly Lazy<Task<string?>> s_xmppJsMissing = new(FindXmppJsProblemAsync);

    public static string Directory => Path.Combine(ConfigurationSourcesTests.RepositoryRoot(), "ConnMgr.Tests", "Interop");

    public static string SlixmppDirectory => Path.Combine(Directory, "slixmpp");

    public static string XmppJsDirectory => Path.Combine(Directory, "xmppjs");

    /// <summary>CI sets <c>CI=true</c>; there a missing client is a failure, never a skip.</summary>
    public static bool InCi => string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    public static async Task RequireSlixmppAsync() => Require(await s_slixmppMissing.Value);

    public static async Task RequireXmppJsAsync() => Require(await s_xmppJsMissing.Value);

    /// <summary>Starts a slixmpp scenario against the daemon's STARTTLS port.</summary>
    public static ChildProcess StartSlixmpp(string script, IPEndPoint c2s, params string[] arguments) =>
        ChildProcess.Start(script, Python,
            [
                "-B", Path.Combine(SlixmppDirectory, script),
                "--host", c2s.Address.ToString(), "--port", c2s.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
                "--domain", Domain, "--timeout", ScenarioSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture),
                "--debug", .. arguments,
            ],
            new Dictionary<string, string>
            {
                ["PYTHONDONTWRITEBYTECODE"] = "1",
                ["PYTHONUTF8"] = "1",
                ["PYTHONUNBUFFERED"] = "1",
            });

    public static Task<ScriptResult> RunSlixmppAsync(string script, IPEndPoint c2s, params string[] arguments) =>
        CompleteAsync(StartSlixmpp(script, c2s, arguments));

    /// <param name="service"><c>xmpp://127.0.0.1:PORT</c> (STARTTLS) or <c>xmpps://127.0.0.1:PORT</c> (Direct TLS).</param>
    public static Task<ScriptResult> RunXmppJsAsync(string script, string service, params string[] arguments) =>
        CompleteAsync(ChildProcess.Start(script, "node",
            [
                // Node 20 has the WebSocket that xmpp.js's ws:// transport uses only behind this flag.
                "--experimental-websocket",
                Path.Combine(XmppJsDirectory, script),
                "--service", service, "--domain", Domain,
                "--timeout", ScenarioSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture),
                "--debug", .. arguments,
            ],
            // xmpp.js has no TLS options; the daemon's certificate is self-signed.
            new Dictionary<string, string> { ["NODE_TLS_REJECT_UNAUTHORIZED"] = "0" }));

    /// <summary>Waits for a started scenario to end and reads its closing line; disposes the process.</summary>
    public static async Task<ScriptResult> CompleteAsync(ChildProcess script)
    {
        await using (script)
        {
            int status;
            try
            {
                status = await script.WaitForExitAsync(s_processTimeout);
            }
            catch (TimeoutException e)
            {
                Assert.Fail($"{e.Message}\n{script.Transcript()}");
                throw;
            }
            IReadOnlyList<string> stdout = script.StandardOutput;
            string? closing = stdout.LastOrDefault(line => line.StartsWith('{'));
            JsonElement? result = null;
            if (closing is not null)
            {
                try
                {
                    using JsonDocument json = JsonDocument.Parse(closing);
                    result = json.RootElement.Clone();
                }
                catch (JsonException)
                {
                    // Reported through ScriptResult.Observed.
                }
            }
            return new ScriptResult(script.Name, status, result, script.Transcript());
        }
    }

    private static void Require(string? problem)
    {
        if (problem is null)
        {
            return;
        }
        if (InCi)
        {
            Assert.Fail($"{problem} (CI=true: interop clients must be installed; .ci/run installs them)");
        }
        Assert.Ignore(problem);
    }

    private static async Task<string?> FindSlixmppProblemAsync()
    {
        const string install = "python3-slixmpp is not installed: apt-get install python3-slixmpp";
        if (!File.Exists(Python))
        {
            return install + $" ({Python} not found)";
        }
        await using ChildProcess probe = ChildProcess.Start("python3", Python, ["-c", "import slixmpp; print(slixmpp.__version__)"]);
        int status = await probe.WaitForExitAsync(TimeSpan.FromSeconds(60));
        return status == 0 ? null : $"{install}\n{probe.Transcript()}";
    }

    private static async Task<string?> FindXmppJsProblemAsync()
    {
        string install = $"xmpp.js is not installed: (cd {XmppJsDirectory} && npm ci)";
        try
        {
            await using ChildProcess probe = ChildProcess.Start("node", "node", ["--version"]);
            if (await probe.WaitForExitAsync(TimeSpan.FromSeconds(60)) != 0)
            {
                return $"node does not run: apt-get install nodejs npm\n{probe.Transcript()}";
            }
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return "node is not installed: apt-get install nodejs npm";
        }
        string package = Path.Combine(XmppJsDirectory, "node_modules", "@xmpp", "client", "package.json");
        if (!File.Exists(package))
        {
            return install;
        }
        using JsonDocument json = JsonDocument.Parse(await File.ReadAllTextAsync(package));
        string? version = json.RootElement.GetProperty("version").GetString();
        return version is not null && version.StartsWith("0.14.", StringComparison.Ordinal)
            ? null
            : $"{install} (found @xmpp/client {version}, package.json pins 0.14)";
    }
}

/// <summary>What a scenario script did: its exit status, its closing JSON line and everything it printed.</summary>
internal sealed class ScriptResult(string name, int exitCode, JsonElement? closing, string transcript)
{
    public int ExitCode => exitCode;

    /// <summary>The script's <c>observed</c> object; fails the test if the script printed none.</summary>
    public JsonElement Observed =>
        closing is { ValueKind: JsonValueKind.Object } line && line.TryGetProperty("observed", out JsonElement observed)
            ? observed
            : throw new AssertionException($"{name} printed no closing JSON line.\n{this}");

    /// <summary>A string at <paramref name="path"/> in <see cref="Observed"/>, or null when absent or JSON null.</summary>
    public string? Text(params string[] path)
    {
        JsonElement? value = At(path);
        return value is { ValueKind: JsonValueKind.String } text ? text.GetString() : value?.ToString();
    }

    public bool? Flag(params string[] path) => At(path) is { ValueKind: JsonValueKind.True or JsonValueKind.False } value ? value.GetBoolean() : null;

    /// <summary>The strings of the array at <paramref name="path"/>, or null when absent.</summary>
    public string?[]? Texts(params string[] path) =>
        At(path) is { ValueKind: JsonValueKind.Array } array ? array.EnumerateArray().Select(item => item.GetString()).ToArray() : null;

    /// <summary>The property names of the object at <paramref name="path"/>, or null when absent.</summary>
    public string[]? Keys(params string[] path) =>
        At(path) is { ValueKind: JsonValueKind.Object } value ? value.EnumerateObject().Select(property => property.Name).ToArray() : null;

    public JsonElement? At(params string[] path)
    {
        JsonElement current = Observed;
        foreach (string step in path)
        {
            if (current.ValueKind != JsonValueKind.Object || !current.TryGetProperty(step, out current))
            {
                return null;
            }
        }
        return current.ValueKind == JsonValueKind.Null ? null : current;
    }

    /// <summary>The exit status, the script's own error and its whole output: the message of every assertion on it.</summary>
    public override string ToString()
    {
        string? error = closing is { ValueKind: JsonValueKind.Object } line && line.TryGetProperty("error", out JsonElement e) ? e.ToString() : null;
        return $"{name} exited {exitCode}; error: {error ?? "none"}\n--- {name} output ---\n{transcript}";
    }
}
