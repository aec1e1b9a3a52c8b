using Jackcwf.Api.Configuration;

namespace Jackcwf.Api.Audit;

public static class AuditExtensions
{
    public static IHostApplicationBuilder AddAudit(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSettings<AuditOptions>(AuditOptions.Section);
        builder.Services.AddSingleton<IAuditLog, AuditLog>();
        builder.Services.AddHostedService<AuditRetention>();
        return builder;
    }
}
