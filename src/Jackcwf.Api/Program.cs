using Jackcwf.Api;
using Jackcwf.Api.Accounts;
using Jackcwf.Api.Ai;
using Jackcwf.Api.Audit;
using Jackcwf.Api.Backplane;
using Jackcwf.Api.Backup;
using Jackcwf.Api.Chat;
using Jackcwf.Api.Conversations;
using Jackcwf.Api.Data;
using Jackcwf.Api.Files;
using Jackcwf.Api.Feedback;
using Jackcwf.Api.Folders;
using Jackcwf.Api.Health;
using Jackcwf.Api.Limits;
using Jackcwf.Api.OpenAiCompat;
using Jackcwf.Api.Privacy;
using Jackcwf.Api.Prompts;
using Jackcwf.Api.Sharing;
using Jackcwf.Api.Telemetry;
using Jackcwf.Api.Usage;
using Jackcwf.Api.Web;
using Jackcwf.ServiceDefaults;

// Commands that need no web host (backup, restore, migrate-data, healthcheck, --help, unknown words).
if (await Commands.RunToolAsync(args) is { } exitCode)
{
    return exitCode;
}

// Settings and the web app ship beside the binary; data (./data) follows the working directory.
// The slim builder: the same configuration sources, logging, host filtering and Kestrel settings, without
// what this service never uses and the default builder loads at every start: IIS integration, Kestrel's
// HTTPS configuration and HTTP/3 (QUIC, which loads the native msquic where it is installed, as in the
// runtime image), hosting-startup assemblies and regex route constraints. TLS ends at the proxy in front
// (docs/security.md). 1.8 MiB less of assemblies at rest (docs/deployment/capacity.md, "Memory at rest").
var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
if (!builder.AddJackcwfConfiguration())
{
    return 2;
}
builder.AddServiceDefaults();
builder.AddDrainOnShutdown();
builder.AddTelemetry();
builder.AddData();
builder.AddBackups();
builder.AddAccounts();
builder.AddAudit();
builder.AddPrivacy();
builder.AddExternalLogin();
builder.AddAi();
builder.AddLimits();
builder.AddChat();
builder.AddHealthMonitoring();
builder.AddFiles();
builder.AddBackplane();
builder.AddWeb();

var app = builder.Build();
if (args is ["migrate", ..])
{
    return await Commands.MigrateAsync(app);
}
if (!await Commands.ValidateSettingsAsync(app))
{
    return 2;
}

app.UseWeb();
app.UseAuthentication();
app.UseAccessAndRateLimits();
app.UseAuthorization();
app.MapDefaultEndpoints();
app.MapAccountsApi();
app.MapExternalLoginApi();
app.MapApiKeysApi();
app.MapAdminApi();
app.MapUsageApi();
app.MapModelsApi();
app.MapConversationsApi();
app.MapFoldersApi();
app.MapPromptsApi();
app.MapFeedbackApi();
app.MapSharingApi();
app.MapFilesApi();
app.MapAuditApi();
app.MapExportApi();
app.MapAccountDeletionApi();
app.MapChatApi();
app.MapOpenAiCompatApi();
app.MapWebEndpoints();
return await Commands.RunAsync(app);

public partial class Program;
