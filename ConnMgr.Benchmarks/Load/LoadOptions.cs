using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using ConnMgr.Protocol.Sasl;

namespace ConnMgr.Benchmarks.Load;

/// <summary>SASL mechanism the generated clients use.</summary>
internal enum LoadMechanism : byte { ScramSha1, ScramSha256, Plain }

/// <summary>The load generator's settings: every option of <c>load</c>, its default and its unit.</summary>
internal sealed class LoadOptions
{
    /// <summary>Server address; loopback only (this is a tool for one box). Default 127.0.0.1.</summary>
    public IPAddress Host { get; set; } = IPAddress.Loopback;

    /// <summary>c2s port. Default 5222 (RFC 6120 section 14.7). The first of <see cref="Ports"/>.</summary>
    public int Port => Ports[0];

    /// <summary>
    /// c2s ports of the edges sharing one core (the many-edges topology): user n connects to
    /// <c>Ports[(n - PopulationFirst) % Ports.Count]</c>, the same edge in every worker. Default [5222].
    /// </summary>
    public List<int> Ports { get; set; } = [5222];

    /// <summary>XMPP domain: stream <c>to</c>, TLS server name and JID domain. Default <c>localhost</c>.</summary>
    public string Domain { get; set; } = "localhost";

    /// <summary>Clients in this run (all processes together). Default 100.</summary>
    public int Clients { get; set; } = 100;

    /// <summary>Number substituted for <c>%d</c> in the first user's name. Default 1.</summary>
    public int First { get; set; } = 1;

    /// <summary>User name pattern; <c>%d</c> becomes the user's number. Default <c>user%d</c>.</summary>
    public string UserPattern { get; set; } = "user%d";

    /// <summary>Password pattern; <c>%d</c> becomes the user's number. Default <c>pass</c>.</summary>
    public string PasswordPattern { get; set; } = "pass";

    /// <summary>Resource every client binds. Default <c>load</c>.</summary>
    public string Resource { get; set; } = "load";

    public LoadMechanism Mechanism { get; set; } = LoadMechanism.ScramSha1;

    /// <summary>Login attempts started per second during the ramp. Default 100.</summary>
    public double Rate { get; set; } = 100;

    /// <summary>How long the clients stay connected once every login has succeeded or failed. Default 60 s.</summary>
    public TimeSpan Hold { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Each user sends one message per interval; zero disables chat. Default 20 s (amoc one_to_one).</summary>
    public TimeSpan Interval { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>Users around each user that it writes to. Default 8.</summary>
    public int Neighbours { get; set; } = 8;

    /// <summary>Characters in each message body (a timestamp, then filler). Default 150.</summary>
    public int BodySize { get; set; } = 150;

    /// <summary>Local addresses client sockets are bound to, in rotation; empty = the kernel's choice.</summary>
    public List<IPAddress> Sources { get; set; } = [];

    /// <summary>STARTTLS before authenticating (RFC 6120 section 5). Default on.</summary>
    public bool Tls { get; set; } = true;

    /// <summary>Let clients resume TLS sessions. Default off: each simulated device is a first-time client.</summary>
    public bool TlsResume { get; set; }

    /// <summary>A client not bound with presence sent by then counts as a login-timeout. Default 60 s.</summary>
    public TimeSpan LoginTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Server processes whose RSS and CPU are sampled every second.</summary>
    public List<int> ServerPids { get; set; } = [];

    public string? OutPath { get; set; }
    public string? MarkdownPath { get; set; }

    /// <summary>Generator processes sharing the clients (each holds at most about 19,900 sockets). Default 1.</summary>
    public int Processes { get; set; } = 1;

    /// <summary>
    /// Lines <c>NAME SALT_BASE64 ITERATIONS PASSWORD</c>: the server's SCRAM salts, derived into the client cache
    /// before the ramp, so that the run measures clients that remember their SaltedPassword (RFC 5802 section
    /// 5.1) and the generator's PBKDF2 is not charged to the box during the run.
    /// </summary>
    public string? SaltsPath { get; set; }

    /// <summary>
    /// Users who log in, chat and leave in this same process before the measured clients start; their results
    /// are not kept. Both sides are then past their first logins: a fresh .NET process spends a large share of
    /// its CPU in the JIT's tier-1 recompilation for the first few thousand (perf), which a daemon that has
    /// been up a while paid long ago and which would otherwise be charged to the generator during the ramp.
    /// Default 0.
    /// </summary>
    public int Warmup { get; set; }

    /// <summary>Number of the first warm-up user. Default: right after the measured users.</summary>
    public int WarmupFirst { get; set; } = -1;

    /// <summary>How long the warm-up users stay and how often they write: long enough to run every path once.</summary>
    public static readonly TimeSpan WarmupHold = TimeSpan.FromSeconds(10);
    public static readonly TimeSpan WarmupInterval = TimeSpan.FromSeconds(2);

    /// <summary>Name of the server under test in the report (e.g. <c>prosody</c>).</summary>
    public string Label { get; set; } = "server";

    /// <summary>Seed of the chat schedule and neighbour choice.</summary>
    public int Seed { get; set; } = 1;

    /// <summary>Set in a worker process started by <c>--processes</c>: progress goes to stdout as JSON lines.</summary>
    public bool Worker { get; set; }

    /// <summary>First user of the whole run (a worker's own <see cref="First"/> is its share's start).</summary>
    public int PopulationFirst { get; set; } = -1;

    /// <summary>Users in the whole run; neighbours are chosen among them.</summary>
    public int PopulationCount { get; set; } = -1;

    public bool Help { get; set; }

    public ScramHash ScramHash => Mechanism == LoadMechanism.ScramSha256 ? ScramHash.Sha256 : ScramHash.Sha1;

    public string MechanismName => Mechanism switch
    {
        LoadMechanism.ScramSha1 => "SCRAM-SHA-1",
        LoadMechanism.ScramSha256 => "SCRAM-SHA-256",
        _ => "PLAIN",
    };

    public string UserName(int number) => UserPattern.Replace("%d", number.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal);

    public string Password(int number) => PasswordPattern.Replace("%d", number.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal);

    public const string HelpText = """
        Usage: dotnet run -c Release --project ConnMgr.Benchmarks -- load [options]

        Drives any XMPP server on loopback (ConnMgr, Prosody...) with N clients that connect over TCP,
        STARTTLS, authenticate with SASL, bind a resource, send initial presence, then chat: each user
        sends a message to one of its neighbours every interval (amoc's one_to_one model). Measures logins
        per second, login time (connect -> bound with presence sent), message latency (send -> receive,
        Stopwatch timestamps, shared by all processes of the box), errors by kind and, every second, server
        and generator RSS/CPU, kernel TCP memory and connections.

        The server's TLS certificate is NOT verified: this is a load tool for a server on the same box.

        Server
          --host ADDR            server address, loopback only (127.0.0.1)
          --port N[,N2..]        c2s port (5222); several = one per edge of a many-edges server,
                                 user n goes to port (n - first) mod count
          --domain NAME          XMPP domain and TLS server name (localhost)
          --no-tls               skip STARTTLS (the server must allow plaintext)
          --tls-resume           allow TLS session resumption (off: every client is a first-time client)
          --server-pid P[,P2..]  sample these processes' RSS and CPU every second

        Users
          --clients N            clients, all processes together (100)
          --users PATTERN        user name, %d = user number (user%d)
          --first N              number of the first user (1)
          --password PATTERN     password, %d = user number (pass)
          --resource NAME        resource to bind (load)
          --mech NAME            SCRAM-SHA-1 | SCRAM-SHA-256 | PLAIN (SCRAM-SHA-1)

        Load
          --rate R               login attempts started per second (100)
          --hold DURATION        stay connected once every login succeeded or failed (60s)
          --interval DURATION    one message per user per interval; 0 = no chat (20s)
          --neighbours N         users around each user that it writes to (8)
          --body N               characters per message body (150)
          --login-timeout DUR    a login not done by then fails (60s)
          --sources LIST         bind client sockets to these loopback addresses in rotation,
                                 e.g. 127.0.0.1-127.0.0.20 or 127.0.0.2,127.0.0.3 (kernel's choice)
          --processes K          K generator processes share the clients and source addresses (1);
                                 each process holds at most 19,900 sockets (20,000 fds per process)
          --seed N               seed of the chat schedule (1)
          --warmup W             first, W other users (numbered after the measured ones, or from
                                 --warmup-first N) log in at the same rate, chat every 2 s for 10 s and
                                 leave, in the same process(es); not counted. The clock then starts with
                                 the JIT of both generator and server past its first logins (0)
          --salts FILE           lines "NAME SALT_BASE64 ITERATIONS PASSWORD": SCRAM salts read from the
                                 server's store; the clients derive their SaltedPassword before the ramp,
                                 as clients that remember it (real ones do) would have it already

        Output
          --out FILE             JSON results: config, time series, summary, histograms
          --md FILE              Markdown summary with PNG plots written beside it
          --label NAME           name of the server in the report (server)

        Durations take a unit: 500ms, 20s, 5m (no unit = seconds).
        """;

    /// <summary>Parses the arguments after <c>load</c>. Null and <paramref name="error"/> set on bad input.</summary>
    public static LoadOptions? Parse(IReadOnlyList<string> args, out string? error)
    {
        var options = new LoadOptions();
        error = null;
        for (var i = 0; i < args.Count; i++)
        {
            var name = args[i];
            string? inlineValue = null;
            var eq = name.IndexOf('=', StringComparison.Ordinal);
            if (name.StartsWith("--", StringComparison.Ordinal) && eq > 0)
            {
                inlineValue = name[(eq + 1)..];
                name = name[..eq];
            }

            string Value()
            {
                if (inlineValue is not null)
                    return inlineValue;
                if (i + 1 >= args.Count)
                    throw new OptionException($"{name} needs a value");
                return args[++i];
            }

            try
            {
                switch (name)
                {
                    case "-h" or "--help": options.Help = true; break;
                    case "--host": options.Host = ParseLoopback(name, Value()); break;
                    case "--port": options.Ports = ParsePorts(name, Value()); break;
                    case "--domain": options.Domain = ParseNonEmpty(name, Value()); break;
                    case "--no-tls": options.Tls = false; break;
                    case "--tls-resume": options.TlsResume = true; break;
                    case "--server-pid": options.ServerPids = ParsePids(name, Value()); break;
                    case "--clients" or "-n": options.Clients = ParseInt(name, Value(), 1, 10_000_000); break;
                    case "--users": options.UserPattern = ParsePattern(name, Value()); break;
                    case "--first": options.First = ParseInt(name, Value(), 0, int.MaxValue / 2); break;
                    case "--password": options.PasswordPattern = ParseNonEmpty(name, Value()); break;
                    case "--resource": options.Resource = ParseNonEmpty(name, Value()); break;
                    case "--mech": options.Mechanism = ParseMechanism(name, Value()); break;
                    case "--rate": options.Rate = ParseDouble(name, Value(), 0.01, 1_000_000); break;
                    case "--hold": options.Hold = ParseDuration(name, Value(), allowZero: true); break;
                    case "--interval": options.Interval = ParseDuration(name, Value(), allowZero: true); break;
                    case "--neighbours" or "--neighbors": options.Neighbours = ParseInt(name, Value(), 1, 1000); break;
                    case "--body": options.BodySize = ParseInt(name, Value(), 24, 64 * 1024); break;
                    case "--login-timeout": options.LoginTimeout = ParseDuration(name, Value(), allowZero: false); break;
                    case "--sources": options.Sources = ParseSources(name, Value()); break;
                    case "--processes": options.Processes = ParseInt(name, Value(), 1, 64); break;
                    case "--salts": options.SaltsPath = ParseNonEmpty(name, Value()); break;
                    case "--warmup": options.Warmup = ParseInt(name, Value(), 0, 10_000_000); break;
                    case "--warmup-first": options.WarmupFirst = ParseInt(name, Value(), 0, int.MaxValue / 2); break;
                    case "--seed": options.Seed = ParseInt(name, Value(), int.MinValue, int.MaxValue); break;
                    case "--out": options.OutPath = ParseNonEmpty(name, Value()); break;
                    case "--md": options.MarkdownPath = ParseNonEmpty(name, Value()); break;
                    case "--label": options.Label = ParseNonEmpty(name, Value()); break;
                    case "--worker": options.Worker = true; break;
                    case "--population-first": options.PopulationFirst = ParseInt(name, Value(), 0, int.MaxValue / 2); break;
                    case "--population-count": options.PopulationCount = ParseInt(name, Value(), 1, 10_000_000); break;
                    default: throw new OptionException($"unknown option '{name}' (see load --help)");
                }
            }
            catch (OptionException e)
            {
                error = e.Message;
                return null;
            }
        }

        if (options.Interval > TimeSpan.Zero && options.Interval < LoadRun.Tick)
        {
            error = $"--interval must be 0 or at least {LoadRun.Tick.TotalMilliseconds:0} ms (the heartbeat tick)";
            return null;
        }
        if (options.Clients < options.Processes)
        {
            error = $"--processes {options.Processes} needs at least as many clients (--clients {options.Clients})";
            return null;
        }
        if (options.PopulationFirst < 0)
            options.PopulationFirst = options.First;
        if (options.PopulationCount < 0)
            options.PopulationCount = options.Clients;
        if (options.WarmupFirst < 0)
            options.WarmupFirst = options.PopulationFirst + options.PopulationCount;
        return options;
    }

    /// <summary>The warm-up run of <see cref="Warmup"/>: its own users, a short hold, no report files.</summary>
    public LoadOptions ForWarmup()
    {
        var warm = (LoadOptions)MemberwiseClone();
        warm.Clients = Warmup;
        warm.First = WarmupFirst;
        warm.PopulationFirst = WarmupFirst;
        warm.PopulationCount = Warmup;
        warm.Hold = WarmupHold;
        warm.Interval = WarmupInterval;
        warm.Warmup = 0;
        warm.OutPath = null;
        warm.MarkdownPath = null;
        return warm;
    }

    /// <summary>The arguments that make a worker process run share <paramref name="index"/> of <paramref name="count"/>.</summary>
    public List<string> WorkerArguments(int index, int count, string outPath)
    {
        var (first, clients) = Share(First, Clients, index, count);
        var (warmupFirst, warmup) = Share(WarmupFirst, Warmup, index, count);
        var args = new List<string>
        {
            "load", "--worker",
            "--host", Host.ToString(), "--port", string.Join(',', Ports), "--domain", Domain,
            "--clients", Inv(clients), "--first", Inv(first),
            "--population-first", Inv(First), "--population-count", Inv(Clients),
            "--users", UserPattern, "--password", PasswordPattern, "--resource", Resource, "--mech", MechanismName,
            "--rate", (Rate / count).ToString("R", CultureInfo.InvariantCulture),
            "--hold", Ms(Hold), "--interval", Ms(Interval), "--neighbours", Inv(Neighbours), "--body", Inv(BodySize),
            "--login-timeout", Ms(LoginTimeout), "--seed", Inv(Seed + index), "--label", Label, "--out", outPath,
            "--warmup", Inv(warmup), "--warmup-first", Inv(warmupFirst),
        };
        if (!Tls)
            args.Add("--no-tls");
        if (TlsResume)
            args.Add("--tls-resume");
        if (SaltsPath is not null)
        {
            args.Add("--salts");
            args.Add(SaltsPath);
        }
        var sources = SourceShare(index, count);
        if (sources.Count > 0)
        {
            args.Add("--sources");
            args.Add(string.Join(',', sources));
        }
        return args;

        static string Inv(int value) => value.ToString(CultureInfo.InvariantCulture);
        static string Ms(TimeSpan value) => ((long)value.TotalMilliseconds).ToString(CultureInfo.InvariantCulture) + "ms";
    }

    /// <summary>Worker <paramref name="index"/>'s slice of <paramref name="total"/> users numbered from <paramref name="first"/>.</summary>
    private static (int First, int Count) Share(int first, int total, int index, int count)
    {
        var share = total / count;
        var extra = total % count;
        return (first + index * share + Math.Min(index, extra), share + (index < extra ? 1 : 0));
    }

    /// <summary>Worker <paramref name="index"/>'s source addresses: every K-th one, or all if there are fewer than K.</summary>
    public List<IPAddress> SourceShare(int index, int count)
    {
        if (Sources.Count < count)
            return Sources;
        var share = new List<IPAddress>();
        for (var i = index; i < Sources.Count; i += count)
            share.Add(Sources[i]);
        return share;
    }

    internal static TimeSpan ParseDuration(string name, string text, bool allowZero)
    {
        var (number, scale) = text.EndsWith("ms", StringComparison.Ordinal) ? (text[..^2], 0.001)
            : text.EndsWith('s') ? (text[..^1], 1.0)
            : text.EndsWith('m') ? (text[..^1], 60.0)
            : text.EndsWith('h') ? (text[..^1], 3600.0)
            : (text, 1.0);
        if (!double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out var value)
            || double.IsNaN(value) || value < 0 || value * scale > 7 * 24 * 3600 || (!allowZero && value == 0))
            throw new OptionException($"{name} takes a duration such as 500ms, 20s or 5m{(allowZero ? "" : ", above zero")}; got '{text}'");
        return TimeSpan.FromSeconds(value * scale);
    }

    internal static List<IPAddress> ParseSources(string name, string text)
    {
        var result = new List<IPAddress>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var dash = part.IndexOf('-', StringComparison.Ordinal);
            if (dash < 0)
            {
                result.Add(ParseLoopback(name, part));
                continue;
            }
            var from = ToUInt32(ParseLoopback(name, part[..dash]));
            var to = ToUInt32(ParseLoopback(name, part[(dash + 1)..]));
            if (to < from)
                throw new OptionException($"{name}: range '{part}' ends before it starts");
            if (to - from >= 65536 || result.Count + (to - from) >= 65536)
                throw new OptionException($"{name}: more than 65,536 addresses");
            for (var a = from; a <= to; a++)
                result.Add(FromUInt32(a));
        }
        if (result.Count == 0)
            throw new OptionException($"{name} needs at least one address");
        return result;

        static uint ToUInt32(IPAddress address)
        {
            Span<byte> bytes = stackalloc byte[4];
            address.TryWriteBytes(bytes, out _);
            return (uint)bytes[0] << 24 | (uint)bytes[1] << 16 | (uint)bytes[2] << 8 | bytes[3];
        }

        static IPAddress FromUInt32(uint value)
            => new([(byte)(value >> 24), (byte)(value >> 16), (byte)(value >> 8), (byte)value]);
    }

    private static IPAddress ParseLoopback(string name, string text)
    {
        if (text == "localhost")
            return IPAddress.Loopback;
        if (!IPAddress.TryParse(text, out var address) || address.AddressFamily != AddressFamily.InterNetwork)
            throw new OptionException($"{name}: '{text}' is not an IPv4 address");
        if (!IPAddress.IsLoopback(address))
            throw new OptionException($"{name}: {text} is not a loopback address (127.0.0.0/8): this generator only drives servers on the same box");
        return address;
    }

    private static List<int> ParsePorts(string name, string text)
    {
        var ports = new List<int>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            ports.Add(ParseInt(name, part, 1, 65535));
        if (ports.Count == 0)
            throw new OptionException($"{name} needs at least one port");
        return ports;
    }

    private static List<int> ParsePids(string name, string text)
    {
        var pids = new List<int>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            pids.Add(ParseInt(name, part, 1, int.MaxValue));
        if (pids.Count == 0)
            throw new OptionException($"{name} needs at least one process id");
        return pids;
    }

    private static LoadMechanism ParseMechanism(string name, string text) => text.ToUpperInvariant() switch
    {
        "SCRAM-SHA-1" => LoadMechanism.ScramSha1,
        "SCRAM-SHA-256" => LoadMechanism.ScramSha256,
        "PLAIN" => LoadMechanism.Plain,
        _ => throw new OptionException($"{name} must be SCRAM-SHA-1, SCRAM-SHA-256 or PLAIN; got '{text}'"),
    };

    private static string ParsePattern(string name, string text)
    {
        ParseNonEmpty(name, text);
        if (!text.Contains("%d", StringComparison.Ordinal))
            throw new OptionException($"{name} must contain %d (the user number); got '{text}'");
        if (text.AsSpan().IndexOfAny("@/\"'<>& ") >= 0 || Encoding.UTF8.GetByteCount(text) > 200)
            throw new OptionException($"{name}: '{text}' is not a plain localpart pattern (no @ / quotes < > & or spaces)");
        return text;
    }

    private static string ParseNonEmpty(string name, string text)
        => string.IsNullOrWhiteSpace(text) ? throw new OptionException($"{name} must not be empty") : text;

    private static int ParseInt(string name, string text, int min, int max)
    {
        if (!int.TryParse(text.Replace("_", "", StringComparison.Ordinal), NumberStyles.Integer, CultureInfo.InvariantCulture, out var value)
            || value < min || value > max)
            throw new OptionException($"{name} must be a whole number from {min} to {max}; got '{text}'");
        return value;
    }

    private static double ParseDouble(string name, string text, double min, double max)
    {
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value)
            || double.IsNaN(value) || value < min || value > max)
            throw new OptionException($"{name} must be a number from {min} to {max}; got '{text}'");
        return value;
    }

    private sealed class OptionException(string message) : Exception(message);
}
