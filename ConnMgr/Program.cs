using ConnMgr.Cli;
using ConnMgr.Hosting;
using ConnMgr.Options;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace ConnMgr;

/// <summary>The <c>connmgr</c> command line.</summary>
internal static class Program
{
    public const int ExitOk = 0;

    /// <summary>Bad configuration or a start-up failure the message explains.</summary>
    public const int ExitFailure = 1;

    /// <summary>Unknown command: usage printed.</summary>
    public const int ExitUsage = 2;

    private const string Usage = """
        usage: connmgr [run] [SETTINGS]             run the daemon (the default)
               connmgr check-config [SETTINGS]      validate the configuration and exit
               connmgr user add NAME --password PASS [SETTINGS]
               connmgr user remove NAME [SETTINGS]
               connmgr user list [SETTINGS]
               connmgr user import FILE|- [SETTINGS]  one name:password per line
               connmgr help

        SETTINGS: --config FILE (JSON) and any number of --Section:Key=value
        (or --Section:Key value). Each key can also be set in the environment as
        CONNMGR_Section__Key. Precedence, lowest first: built-in defaults, the
        --config file, the environment, the command line.
        Example: connmgr --config /etc/connmgr/connmgr.json --Upstream:Links=8
        """;

    public static Task<int> Main(string[] args) => RunAsync(args, Console.In, Console.Out, Console.Error);

    /// <summary>Everything <c>Main</c> does, with the standard streams passed in so that tests can run it in-process.</summary>
    internal static async Task<int> RunAsync(string[] args, TextReader stdin, TextWriter stdout, TextWriter stderr)
    {
        string command = args.Length == 0 || (args[0].StartsWith('-') && args[0] is not ("-h" or "--help")) ? "run" : args[0];
        string[] rest = args.Length > 0 && args[0] == command ? args[1..] : args;
        switch (command)
        {
            case "run":
                return await RunDaemonAsync(rest, stderr);
            case "check-config":
                return CheckConfig(rest, stdout, stderr);
            case "user":
                return await RunUserCommandAsync(rest, stdin, stdout, stderr);
            case "help" or "-h" or "--help":
                stdout.WriteLine(Usage);
                return ExitOk;
            default:
                stderr.WriteLine($"connmgr: unknown command \"{command}\"");
                stderr.WriteLine(Usage);
                return ExitUsage;
        }
    }

    private static async Task<int> RunDaemonAsync(string[] settings, TextWriter stderr)
    {
        IHost host;
        try
        {
            host = DaemonHost.Build(settings);
        }
        catch (ConfigurationLoadException e)
        {
            stderr.WriteLine($"connmgr: {e.Message}");
            return ExitFailure;
        }
        return await RunHostAsync(host, stderr);
    }

    /// <summary>Starts <paramref name="host"/>, waits for shutdown, disposes it and returns the exit status.</summary>
    internal static async Task<int> RunHostAsync(IHost host, TextWriter stderr)
    {
        using (host)
        {
            try
            {
                // Validates every option first; no listener opens on a bad configuration.
                await host.StartAsync();
            }
            catch (Exception e) when (StartupValidation.Failures(e) is { Count: > 0 } failures)
            {
                PrintFailures(failures, stderr);
                return ExitFailure;
            }
            catch (DaemonStartupException e)
            {
                stderr.WriteLine($"connmgr: {e.Message}");
                await host.StopAsync();
                return ExitFailure;
            }
            await host.WaitForShutdownAsync();

            // A background service that throws stops the host, yet (until .NET 11)
            // WaitForShutdownAsync completes normally. Exit non-zero so that
            // systemd's Restart=on-failure brings the daemon back.
            bool failed = false;
            foreach (BackgroundService service in host.Services.GetServices<IHostedService>().OfType<BackgroundService>())
            {
                if (service.ExecuteTask is { IsFaulted: true } task)
                {
                    stderr.WriteLine($"connmgr: stopped because {service.GetType().Name} failed: {task.Exception!.InnerException!.Message}");
                    failed = true;
                }
            }
            return failed ? ExitFailure : ExitOk;
        }
    }

    private static int CheckConfig(string[] settings, TextWriter stdout, TextWriter stderr)
    {
        IHost host;
        try
        {
            host = DaemonHost.Build(settings);
        }
        catch (ConfigurationLoadException e)
        {
            stderr.WriteLine($"connmgr: {e.Message}");
            return ExitFailure;
        }
        using (host)
        {
            foreach (string key in OptionsRegistration.FindUnknownKeys(host.Services.GetRequiredService<IConfiguration>()))
            {
                stderr.WriteLine($"connmgr: warning: {key} is not a known setting and is ignored");
            }
            IReadOnlyList<string> failures = StartupValidation.Validate(host.Services);
            if (failures.Count > 0)
            {
                PrintFailures(failures, stderr);
                return ExitFailure;
            }
        }
        stdout.WriteLine("configuration OK");
        return ExitOk;
    }

    /// <summary>
    /// <c>user</c> takes its own arguments (<c>--password</c>) mixed with settings;
    /// settings are <c>--config</c>, <c>--DataDirectory</c> and keys with a colon.
    /// Only <c>DataDirectory</c> is checked: a user can be added while, say, the
    /// TLS files are still missing.
    /// </summary>
    private static async Task<int> RunUserCommandAsync(string[] args, TextReader stdin, TextWriter stdout, TextWriter stderr)
    {
        var settings = new List<string>();
        var userArgs = new List<string>();
        for (int i = 0; i < args.Length; i++)
        {
            string arg = args[i];
            string key = arg.Split('=', 2)[0];
            bool isSetting = key.StartsWith("--", StringComparison.Ordinal)
                && (key.Contains(':', StringComparison.Ordinal)
                    || key.Equals(DaemonConfiguration.ConfigFileOption, StringComparison.OrdinalIgnoreCase)
                    || key.Equals("--" + nameof(DaemonOptions.DataDirectory), StringComparison.OrdinalIgnoreCase));
            if (!isSetting)
            {
                userArgs.Add(arg);
                continue;
            }
            settings.Add(arg);
            if (!arg.Contains('=', StringComparison.Ordinal) && i + 1 < args.Length)
            {
                settings.Add(args[++i]);
            }
        }

        var daemon = new DaemonOptions();
        try
        {
            using ConfigurationManager configuration = DaemonConfiguration.Load(settings);
            daemon.BindFrom(configuration);
        }
        catch (ConfigurationLoadException e)
        {
            stderr.WriteLine($"connmgr: {e.Message}");
            return ExitFailure;
        }
        if (new DaemonOptionsValidator().Validate(null, daemon) is { Failed: true } result)
        {
            PrintFailures(result.Failures!.ToArray(), stderr);
            return ExitFailure;
        }
        return await UserCommand.RunAsync(userArgs.ToArray(), daemon.DataDirectoryFullPath, stdin, stdout, stderr);
    }

    private static void PrintFailures(IReadOnlyList<string> failures, TextWriter stderr)
    {
        foreach (string failure in failures)
        {
            stderr.WriteLine($"connmgr: configuration error: {failure}");
        }
    }
}
