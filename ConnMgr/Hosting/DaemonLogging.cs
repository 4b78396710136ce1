using System.Globalization;
using ConnMgr.Diagnostics;
using ConnMgr.Options;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Serilog;
using Serilog.Events;

namespace ConnMgr.Hosting;

/// <summary>
/// Components log through Microsoft.Extensions.Logging (<c>[LoggerMessage]</c>
/// methods); Serilog is only the sink, writing to standard output, which
/// systemd hands to journald.
/// </summary>
internal static class DaemonLogging
{
    private const string TextTemplate = "{Timestamp:yyyy-MM-dd HH:mm:ss.fff} [{Level:u3}] {SourceContext}: {Message:lj}{NewLine}{Exception}";

    public static void Configure(ILoggingBuilder logging, IConfiguration configuration)
    {
        // The logger is built before options are validated, so a value that does
        // not convert keeps its default here; start-up still fails on it, with
        // the key named.
        var options = new LoggingOptions();
        options.BindFrom(configuration);

        logging.ClearProviders();
        if (options.Level == LogLevel.None)
        {
            return;
        }
        // Serilog filters by level itself: AddSerilog installs a rule passing every
        // level to its provider, so Microsoft.Extensions.Logging filters would not apply.
        logging.AddSerilog(CreateLogger(options), dispose: true);
    }

    private static Serilog.Core.Logger CreateLogger(LoggingOptions options)
    {
        LogEventLevel level = ToSerilog(options.Level);
        LoggerConfiguration configuration = new LoggerConfiguration().MinimumLevel.Is(level);
        if (level > LogEventLevel.Debug)
        {
            // ASP.NET Core logs every HTTP request at Information; a scraper calling
            // /metrics every few seconds would drown the daemon's own events.
            // Microsoft.Hosting.Lifetime repeats the HTTP listener's address.
            LogEventLevel quiet = level > LogEventLevel.Warning ? level : LogEventLevel.Warning;
            configuration.MinimumLevel.Override("Microsoft.AspNetCore", quiet);
            configuration.MinimumLevel.Override("Microsoft.Hosting.Lifetime", quiet);
        }
        return (options.Format == LogFormat.Json
            ? configuration.WriteTo.Console(new CompactJsonFormatter())
            : configuration.WriteTo.Console(outputTemplate: TextTemplate, formatProvider: CultureInfo.InvariantCulture))
            .CreateLogger();
    }

    private static LogEventLevel ToSerilog(LogLevel level) => level switch
    {
        LogLevel.Trace => LogEventLevel.Verbose,
        LogLevel.Debug => LogEventLevel.Debug,
        LogLevel.Information => LogEventLevel.Information,
        LogLevel.Warning => LogEventLevel.Warning,
        LogLevel.Error => LogEventLevel.Error,
        _ => LogEventLevel.Fatal,
    };
}
