using Jackcwf.Api.Configuration;
using Jackcwf.Api.Health;
using Jackcwf.ServiceDefaults;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Jackcwf.Api.Chat;

public static class ChatExtensions
{
    public static IHostApplicationBuilder AddChat(this IHostApplicationBuilder builder)
    {
        var s = builder.Services;
        s.AddSettings<ChatSettings>(ChatSettings.Section).ValidateDataAnnotations();
        s.AddSingleton(StreamDeadlines.Shared);
        // One replica's log and stop signal; AddBackplane replaces them with Redis ones (in either order).
        s.TryAddSingleton<IGenerationEventLog, InProcessGenerationEventLog>();
        s.TryAddSingleton<IStopSignal, InProcessStopSignal>();
        // HTTP → ChatTurns → GenerationRunner → pipeline; events flow back: runner → event log → GenerationStream → SSE.
        s.AddScoped<ChatTurns>();
        s.AddSingleton<IStoredAnswers, DatabaseStoredAnswers>();
        s.AddSingleton<GenerationStream>();
        s.AddSettings<Usage.UsageLedgerOptions>(Usage.UsageLedgerOptions.Section);
        // Registered before the generation runner: hosted services stop in reverse order, so the ledger's
        // final flush runs after the running generations have drained and recorded their usage.
        s.AddSingleton<Usage.UsageLedger>();
        s.AddHostedService(sp => sp.GetRequiredService<Usage.UsageLedger>());
        s.AddSingleton<GenerationRunner>();
        s.AddHostedService(sp => sp.GetRequiredService<GenerationRunner>());
        s.AddSingleton<IShutdownParticipant>(sp => sp.GetRequiredService<GenerationRunner>());
        s.AddHostedService<LeaseSweeper>();
        return builder;
    }
}
