using System.ComponentModel.DataAnnotations;

namespace Jackcwf.Api.Telemetry;

public sealed class BuildOptions
{
    public const string Section = "Build";
    /// <summary>Shown as a metric label (<c>jackcwf_build_info</c>): short, printable.</summary>
    [RegularExpression(@"^[\x21-\x7E]{1,100}$", ErrorMessage = "Build:Version (APP_VERSION) must be 1 to 100 printable characters without spaces.")]
    public string? Version { get; set; }
    [RegularExpression(@"^[\x21-\x7E]{1,100}$", ErrorMessage = "Build:Commit (GIT_COMMIT) must be 1 to 100 printable characters without spaces.")]
    public string? Commit { get; set; }
}
