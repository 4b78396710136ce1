using System.Text.Json;
using Microsoft.Extensions.Configuration;

namespace ConnMgr.Hosting;

/// <summary>A configuration that cannot be read at all: a missing or malformed file, a malformed argument.</summary>
internal sealed class ConfigurationLoadException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Assembles the daemon's configuration. Sources, lowest precedence first:
/// the defaults written in the options classes; the JSON file given with
/// <c>--config FILE</c>; environment variables <c>CONNMGR_Section__Key</c>;
/// command-line arguments <c>--Section:Key=value</c> or <c>--Section:Key value</c>.
/// </summary>
internal static class DaemonConfiguration
{
    public const string EnvironmentPrefix = "CONNMGR_";
    public const string ConfigFileOption = "--config";

    /// <summary>Reads every source; throws <see cref="ConfigurationLoadException"/> with a message for the operator.</summary>
    /// <remarks>
    /// A <see cref="ConfigurationManager"/> loads each source as it is added, so
    /// the file's errors surface here, and the host can take it as it is.
    /// </remarks>
    public static ConfigurationManager Load(IReadOnlyList<string> args)
    {
        (string? file, string[] settings) = ParseArguments(args);
        var configuration = new ConfigurationManager();
        try
        {
            if (file is not null)
            {
                if (!File.Exists(file))
                {
                    throw new ConfigurationLoadException($"config file {file} not found");
                }
                try
                {
                    configuration.AddJsonFile(file, optional: false, reloadOnChange: false);
                }
                catch (Exception e) when (e is InvalidDataException or FormatException or JsonException)
                {
                    // The JSON provider wraps the parser's error (which has the line
                    // and position) in two generic layers; the innermost is the useful one.
                    Exception cause = e;
                    while (cause.InnerException is not null)
                    {
                        cause = cause.InnerException;
                    }
                    throw new ConfigurationLoadException($"config file {file} is not valid: {cause.Message}", e);
                }
            }
            configuration.AddEnvironmentVariables(EnvironmentPrefix);
            configuration.AddCommandLine(settings);
            return configuration;
        }
        catch
        {
            configuration.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Takes <c>--config FILE</c> out and returns the rest as <c>--Key=value</c>.
    /// Stricter than the command-line provider, which silently skips a word that
    /// is not a setting and a trailing key without a value.
    /// </summary>
    internal static (string? ConfigFile, string[] Settings) ParseArguments(IReadOnlyList<string> args)
    {
        string? file = null;
        var settings = new List<string>(args.Count);
        for (int i = 0; i < args.Count; i++)
        {
            string arg = args[i];
            if (!arg.StartsWith("--", StringComparison.Ordinal) || arg.Length == 2 || arg[2] == '=')
            {
                throw new ConfigurationLoadException($"unexpected argument \"{arg}\": settings are given as --Section:Key=value");
            }
            int equals = arg.IndexOf('=', StringComparison.Ordinal);
            string key = equals < 0 ? arg : arg[..equals];
            string value;
            if (equals >= 0)
            {
                value = arg[(equals + 1)..];
            }
            else if (i + 1 < args.Count)
            {
                value = args[++i];
            }
            else
            {
                throw new ConfigurationLoadException($"missing value after {arg}");
            }

            if (string.Equals(key, ConfigFileOption, StringComparison.OrdinalIgnoreCase))
            {
                if (file is not null)
                {
                    throw new ConfigurationLoadException($"{ConfigFileOption} given more than once");
                }
                if (value.Length == 0)
                {
                    throw new ConfigurationLoadException($"{ConfigFileOption} needs a file name");
                }
                file = Path.GetFullPath(value);
            }
            else
            {
                settings.Add(key + "=" + value);
            }
        }
        return (file, settings.ToArray());
    }
}
