using Jackcwf.Api.Health;
using Jackcwf.ServiceDefaults;

namespace Jackcwf.Api.Chat;

public static class ChatExtensions
{
    public static IHostApplicationBuilder AddChat(this IHostApplicationBuilder builder)
    {
        var s = builder.Services;
        s.AddOptions<ChatSettings>().BindConfiguration(ChatSettings.Section);
        s.AddSingleton(StreamDeadlines.Shared);
        s.AddSingleton<IGenerationEventLog, InProcessGenerationEventLog>();
        s.AddSingleton<IStopSignal, InProcessStopSignal>();
        s.AddOptions<Usage.UsageLedgerOptions>().BindConfiguration(Usage.UsageLedgerOptions.Section);
        // Registered before the generation runner: hosted services stop in reverse order, so the ledger's
        // final flush runs after the running generations have drained and recorded their usage.
        s.AddSingleton<Usage.UsageLedger>();
        s.AddHostedService(sp => sp.GetRequiredService<Usage.UsageLedger>());
        s.AddSingleton<GenerationRunner>();
        s.AddHostedService(sp => sp.GetRequiredService<GenerationRunner>());
        s.AddSingleton<IShutdownParticipant>(sp => sp.GetRequiredService<GenerationRunner>());
        s.AddHostedService<LeaseSweeper>();
        s.AddHostedService<HealthMonitor>();
        return builder;
    }
}
