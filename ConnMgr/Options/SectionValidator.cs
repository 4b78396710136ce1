using System.Net;
using Microsoft.Extensions.Options;

namespace ConnMgr.Options;

/// <summary>
/// Base of the start-up validators. Every message names the key as
/// <c>Section:Key</c>, states what is allowed and echoes the value given, so an
/// operator can fix the file from the message alone.
/// </summary>
internal abstract class SectionValidator<T> : IValidateOptions<T> where T : SectionOptions
{
    public ValidateOptionsResult Validate(string? name, T options)
    {
        var failures = new List<string>(options.BindingErrors);
        Check(options, failures);
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    protected abstract void Check(T options, List<string> failures);

    protected static void Range(List<string> failures, T options, string property, int value, int min, int max)
    {
        if (value < min || value > max)
        {
            failures.Add($"{options.Key(property)} must be between {min} and {max} (got {value})");
        }
    }

    protected static void Port(List<string> failures, T options, string property, int value)
    {
        Range(failures, options, property, value, 1, 65535);
    }

    /// <summary>A port where 0 is the documented way to turn the listener off.</summary>
    protected static void OptionalPort(List<string> failures, T options, string property, int value)
    {
        if (value < 0 || value > 65535)
        {
            failures.Add($"{options.Key(property)} must be between 1 and 65535, or 0 to turn it off (got {value})");
        }
    }

    protected static void IpAddress(List<string> failures, T options, string property, string value)
    {
        // IPAddress.TryParse also takes inet_aton's shorthands ("127.1", "10"),
        // which read as typos in a configuration file: IPv4 needs all four parts.
        bool isIPv6 = value.Contains(':', StringComparison.Ordinal);
        if (!IPAddress.TryParse(value, out _) || (!isIPv6 && value.Count(c => c == '.') != 3))
        {
            failures.Add($"{options.Key(property)} must be an IPv4 or IPv6 address such as 0.0.0.0, :: or 127.0.0.1 (got \"{value}\")");
        }
    }
}
