using Microsoft.Extensions.Options;

namespace Jackcwf.Api.Files;

public static class FilesExtensions
{
    /// <summary>Documents: options, the background processor (one per replica) and retrieval for chat turns.</summary>
    public static IHostApplicationBuilder AddFiles(this IHostApplicationBuilder builder)
    {
        var s = builder.Services;
        s.AddOptions<FilesOptions>().BindConfiguration(FilesOptions.Section).ValidateOnStart();
        s.AddSingleton<IValidateOptions<FilesOptions>, ValidateFilesOptions>();
        s.AddSingleton<FileMetrics>();
        s.AddSingleton<FileProcessor>();
        s.AddHostedService(sp => sp.GetRequiredService<FileProcessor>());
        s.AddSingleton<DocumentRetrieval>();
        return builder;
    }
}
