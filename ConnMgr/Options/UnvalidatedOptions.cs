using Microsoft.Extensions.Options;

namespace ConnMgr.Options;

/// <summary>
/// Builds <typeparamref name="T"/> as configured, without running its validators,
/// for the validators of other sections that check rules across sections (a
/// port clash between <c>Edge</c> and <c>Core</c>). Going through
/// <see cref="IOptions{T}"/> instead would throw when <typeparamref name="T"/> is
/// itself invalid, hiding this section's own failures behind the other's.
/// </summary>
internal sealed class UnvalidatedOptions<T>(IEnumerable<IConfigureOptions<T>> setups, IEnumerable<IPostConfigureOptions<T>> postConfigures)
    where T : class
{
    public T Create() => new OptionsFactory<T>(setups, postConfigures, []).Create(Microsoft.Extensions.Options.Options.DefaultName);
}
