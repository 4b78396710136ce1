using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace ConnMgr.Options;

/// <summary>Registers every options class, bound from configuration and validated at start-up.</summary>
internal static class OptionsRegistration
{
    private static readonly Type[] s_optionsTypes =
    [
        typeof(DaemonOptions), typeof(XmppOptions), typeof(EdgeOptions), typeof(TlsOptions),
        typeof(UpstreamOptions), typeof(CoreOptions), typeof(LoggingOptions), typeof(TestingOptions),
    ];

    // Keys the generic host adds to configuration for its own settings.
    private static readonly HashSet<string> s_hostKeys = new(StringComparer.OrdinalIgnoreCase)
    {
        HostDefaults.ApplicationKey, HostDefaults.ContentRootKey, HostDefaults.EnvironmentKey,
    };

    public static IServiceCollection AddConnMgrOptions(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddSingleton(typeof(UnvalidatedOptions<>));
        Add<DaemonOptions, DaemonOptionsValidator>(services, configuration);
        Add<XmppOptions, XmppOptionsValidator>(services, configuration);
        Add<EdgeOptions, EdgeOptionsValidator>(services, configuration);
        Add<TlsOptions, TlsOptionsValidator>(services, configuration);
        Add<UpstreamOptions, UpstreamOptionsValidator>(services, configuration);
        Add<CoreOptions, CoreOptionsValidator>(services, configuration);
        Add<LoggingOptions, LoggingOptionsValidator>(services, configuration);
        Add<TestingOptions, TestingOptionsValidator>(services, configuration);
        return services;
    }

    /// <summary>
    /// Keys given in our sections that no option reads: most often a typo
    /// (<c>Upstream:Link</c>) that would otherwise be silently ignored. Keys whose
    /// name starts with <c>//</c> are comments and are skipped. Sections other
    /// components own are not inspected.
    /// </summary>
    public static IReadOnlyList<string> FindUnknownKeys(IConfiguration root)
    {
        var unknown = new List<string>();
        foreach (Type type in s_optionsTypes)
        {
            var options = (SectionOptions)Activator.CreateInstance(type)!;
            HashSet<string> known = SectionOptions.KeysOf(type).Select(p => p.Name).ToHashSet(StringComparer.OrdinalIgnoreCase);
            if (options.SectionName is null)
            {
                foreach (IConfigurationSection child in root.GetChildren())
                {
                    if (child.Value is not null && !known.Contains(child.Key) && !IsComment(child.Key) && !s_hostKeys.Contains(child.Key))
                    {
                        unknown.Add(child.Path);
                    }
                }
                continue;
            }
            foreach (KeyValuePair<string, string?> pair in root.GetSection(options.SectionName).AsEnumerable(makePathsRelative: true))
            {
                string first = pair.Key.Split(ConfigurationPath.KeyDelimiter)[0];
                bool nested = pair.Key.Contains(ConfigurationPath.KeyDelimiter, StringComparison.Ordinal);
                if (pair.Value is not null && !IsComment(first) && (nested || !known.Contains(first)))
                {
                    unknown.Add(options.SectionName + ConfigurationPath.KeyDelimiter + pair.Key);
                }
            }
        }
        unknown.Sort(StringComparer.OrdinalIgnoreCase);
        return unknown;
    }

    private static bool IsComment(string key) => key.StartsWith("//", StringComparison.Ordinal);

    private static void Add<TOptions, TValidator>(IServiceCollection services, IConfiguration configuration)
        where TOptions : SectionOptions, new()
        where TValidator : class, IValidateOptions<TOptions>
    {
        services.AddSingleton<IValidateOptions<TOptions>, TValidator>();
        services.AddOptions<TOptions>()
            .Configure(options => options.BindFrom(configuration))
            .ValidateOnStart();
    }
}
