using System.Globalization;
using System.Reflection;
using Microsoft.Extensions.Configuration;

namespace ConnMgr.Options;

/// <summary>
/// Base of every options class: one configuration section, flat scalar
/// properties (string, int, bool, enum) whose names are the keys.
/// </summary>
/// <remarks>
/// We bind ourselves instead of calling <c>ConfigurationBinder.Bind</c> because
/// the stock binder throws on the first value it cannot convert
/// (<c>Upstream:Links=four</c>), before any validator runs, so the operator
/// would learn about one mistake per restart. Here a value that does not
/// convert keeps its default and is recorded; the section's validator reports
/// it beside every other failure.
/// </remarks>
internal abstract class SectionOptions
{
    private readonly List<string> _bindingErrors = [];

    /// <summary>The configuration section this class binds, or null for top-level keys.</summary>
    internal abstract string? SectionName { get; }

    /// <summary>Values present in configuration that could not be converted, as messages naming the key.</summary>
    internal IReadOnlyList<string> BindingErrors => _bindingErrors;

    /// <summary>The full key of a property, as operators write it (<c>Edge:ClientPort</c>).</summary>
    internal string Key(string propertyName) =>
        SectionName is null ? propertyName : SectionName + ":" + propertyName;

    /// <summary>The public settable properties, which are exactly the section's keys.</summary>
    internal static PropertyInfo[] KeysOf(Type optionsType) =>
        optionsType.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.CanWrite && p.SetMethod!.IsPublic)
            .ToArray();

    internal void BindFrom(IConfiguration root)
    {
        IConfiguration section = SectionName is null ? root : root.GetSection(SectionName);
        foreach (PropertyInfo property in KeysOf(GetType()))
        {
            string? raw = section[property.Name];
            if (raw is null)
            {
                continue;
            }
            if (TryConvert(raw, property.PropertyType, out object? value))
            {
                property.SetValue(this, value);
            }
            else
            {
                _bindingErrors.Add($"{Key(property.Name)} must be {Expected(property.PropertyType)} (got \"{raw}\")");
            }
        }
    }

    private static bool TryConvert(string raw, Type type, out object? value)
    {
        Type target = Nullable.GetUnderlyingType(type) ?? type;
        value = null;
        if (target == typeof(string))
        {
            value = raw;
            return true;
        }
        if (target != type && raw.Length == 0)
        {
            return true;
        }
        if (target == typeof(int))
        {
            bool ok = int.TryParse(raw, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int number);
            value = number;
            return ok;
        }
        if (target == typeof(bool))
        {
            bool ok = bool.TryParse(raw, out bool flag);
            value = flag;
            return ok;
        }
        if (target.IsEnum)
        {
            // Names only: Enum.TryParse would also take "7" and produce an undefined value.
            foreach (string name in Enum.GetNames(target))
            {
                if (string.Equals(name, raw.Trim(), StringComparison.OrdinalIgnoreCase))
                {
                    value = Enum.Parse(target, name);
                    return true;
                }
            }
            return false;
        }
        throw new NotSupportedException($"Options property type {target} is not supported by {nameof(SectionOptions)}.");
    }

    private static string Expected(Type type)
    {
        Type target = Nullable.GetUnderlyingType(type) ?? type;
        if (target == typeof(int))
        {
            return "an integer";
        }
        if (target == typeof(bool))
        {
            return "true or false";
        }
        return "one of: " + string.Join(", ", Enum.GetNames(target).Select(n => n.ToLowerInvariant()));
    }
}
