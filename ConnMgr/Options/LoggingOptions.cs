using Microsoft.Extensions.Logging;

namespace ConnMgr.Options;

/// <summary>How log events are written to standard output.</summary>
internal enum LogFormat
{
    /// <summary>One readable line per event.</summary>
    Text,

    /// <summary>One JSON object per line (compact log event format), for journald and log shippers.</summary>
    Json,
}

/// <summary>Section <c>Logging</c>.</summary>
internal sealed class LoggingOptions : SectionOptions
{
    internal const string Section = "Logging";

    internal override string? SectionName => Section;

    /// <summary><c>Logging:Format</c>: <c>text</c> or <c>json</c>. Default <c>text</c>.</summary>
    public LogFormat Format { get; set; } = LogFormat.Text;

    /// <summary>
    /// <c>Logging:Level</c>: least severe level written: <c>Trace</c>, <c>Debug</c>,
    /// <c>Information</c>, <c>Warning</c>, <c>Error</c>, <c>Critical</c> or
    /// <c>None</c>. ASP.NET Core's and the host's own events (one per HTTP
    /// request) are kept at <c>Warning</c> or above unless this is <c>Debug</c>
    /// or lower. Default <c>Information</c>.
    /// </summary>
    public LogLevel Level { get; set; } = LogLevel.Information;
}

internal sealed class LoggingOptionsValidator : SectionValidator<LoggingOptions>
{
    // Every value of both enums is valid; only unconvertible input is reported.
    protected override void Check(LoggingOptions options, List<string> failures)
    {
    }
}
