using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace ConnMgr.Hosting;

/// <summary>
/// The options validation the host runs first thing in <c>StartAsync</c>, before
/// any hosted service opens a port; <c>connmgr check-config</c> runs the very same.
/// </summary>
internal static class StartupValidation
{
    /// <summary>Every failure message, in registration order; empty when the configuration is valid.</summary>
    public static IReadOnlyList<string> Validate(IServiceProvider services)
    {
        try
        {
            services.GetService<IStartupValidator>()?.Validate();
            return [];
        }
        catch (Exception e) when (Failures(e) is { Count: > 0 } failures)
        {
            return failures;
        }
    }

    /// <summary>The messages of an options validation exception (alone or aggregated); empty for any other exception.</summary>
    public static IReadOnlyList<string> Failures(Exception exception) => exception switch
    {
        OptionsValidationException validation => validation.Failures.ToArray(),
        AggregateException aggregate => aggregate.InnerExceptions.SelectMany(Failures).ToArray(),
        _ => [],
    };
}
