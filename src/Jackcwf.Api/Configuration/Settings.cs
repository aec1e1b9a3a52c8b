using System.Globalization;
using System.Reflection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Jackcwf.Api.Configuration;

public static class SettingsExtensions
{
    /// <summary>
    /// Binds <typeparamref name="TOptions"/> from <paramref name="section"/> and validates it when the
    /// host starts, wherever the values came from (appsettings.json, environment, command line): the
    /// ranges of <see cref="EnvironmentVariables.All"/> for the section's keys, data annotations, and
    /// any <see cref="IValidateOptions{TOptions}"/> the feature adds. A bad value stops start-up with a
    /// message naming the setting and its environment variable. A class whose properties carry data
    /// annotations (<c>[Range]</c>) adds <c>.ValidateDataAnnotations()</c> itself: the check reflects over
    /// the class at start, which the others need not pay for. (The source-generated <c>[OptionsValidator]</c>
    /// would avoid the reflection, but its <c>[Range]</c> ignores <c>ErrorMessage</c>, which names the setting.)
    /// </summary>
    public static OptionsBuilder<TOptions> AddSettings<TOptions>(this IServiceCollection services, string section)
        where TOptions : class
    {
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<TOptions>>(new VariableRangeValidator<TOptions>(section)));
        return services.AddOptions<TOptions>().BindConfiguration(section).ValidateOnStart();
    }
}

/// <summary>
/// Checks the bound values of one section against the rules of its environment variables, so a value
/// from appsettings.json meets the same range as the variable would.
/// </summary>
internal sealed class VariableRangeValidator<TOptions>(string section) : IValidateOptions<TOptions>
    where TOptions : class
{
    private readonly EnvironmentVariables.Variable[] _variables =
        [.. EnvironmentVariables.All.Where(v => v.Key.StartsWith(section + ":", StringComparison.OrdinalIgnoreCase))];

    public ValidateOptionsResult Validate(string? name, TOptions options)
    {
        var errors = new List<string>();
        foreach (var v in _variables)
        {
            if (Text(ValueAt(options, v.Key[(section.Length + 1)..])) is { } raw
                && EnvironmentVariables.Problem(v, $"{v.Key} ({v.Name})", raw, out _) is { } problem)
            {
                errors.Add(problem);
            }
        }
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    // Options classes are plain property bags; the key's path (Providers:OpenAI:BaseUrl) names the property chain.
    private static object? ValueAt(object target, string path)
    {
        object? current = target;
        foreach (var part in path.Split(':'))
        {
            if (current?.GetType().GetProperty(part, BindingFlags.Public | BindingFlags.Instance | BindingFlags.IgnoreCase) is not { } property)
            {
                return null;
            }
            current = property.GetValue(current);
        }
        return current;
    }

    private static string? Text(object? value) => value switch
    {
        null or bool => null,
        string s => s.Trim(),
        double or float => Convert.ToDouble(value, CultureInfo.InvariantCulture) is var d && Math.Abs(d) < 1e15
            ? ((decimal)d).ToString(CultureInfo.InvariantCulture)
            : "out of range",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => null,
    };
}
