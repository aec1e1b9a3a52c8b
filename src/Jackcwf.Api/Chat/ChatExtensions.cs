using Jackcwf.Api.Configuration;
using Jackcwf.Api.Health;
using Jackcwf.ServiceDefaults;

namespace Jackcwf.Api.Chat;

public static class ChatExtensions
{
    public static IHostApplicationBuilder AddChat(this IHostApplicationBuilder builder)
    {
        var s = builder.Services;
        s.AddSettings<ChatSettings>(ChatSettings.Section);
        s.AddSingleton<IGenerationEventLog, InProcessGenerationEventLog>();
        s.AddSingleton<IStopSignal, InProcessStopSignal>();
        s.AddSingleton<Usage.UsageLedger>();
        s.AddSingleton<GenerationRunner>();
        s.AddHostedService(sp => sp.GetRequiredService<GenerationRunner>());
        s.AddSingleton<IShutdownParticipant>(sp => sp.GetRequiredService<GenerationRunner>());
        s.AddHostedService<LeaseSweeper>();
        return builder;
    }
}
