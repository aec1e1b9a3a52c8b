using System.Text.Json;
using System.Text.Json.Serialization;
using Jackcwf.Api.Accounts;
using Jackcwf.Api.Chat;
using Jackcwf.Api.Conversations;
using Microsoft.AspNetCore.Mvc;

namespace Jackcwf.Api.Web;

/// <summary>Source-generated JSON for every type on the request path (no reflection per request).</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, DefaultIgnoreCondition = JsonIgnoreCondition.Never, MaxDepth = 64)]
[JsonSerializable(typeof(ConversationSummary))]
[JsonSerializable(typeof(ConversationDetail))]
[JsonSerializable(typeof(ConversationPage))]
[JsonSerializable(typeof(CreateConversationRequest))]
[JsonSerializable(typeof(UpdateConversationRequest))]
[JsonSerializable(typeof(MessageDto))]
[JsonSerializable(typeof(SendMessageRequest))]
[JsonSerializable(typeof(SendMessageResponse))]
[JsonSerializable(typeof(DeltaPayload))]
[JsonSerializable(typeof(StartPayload))]
[JsonSerializable(typeof(GenerationFinal))]
[JsonSerializable(typeof(ModelDto[]))]
[JsonSerializable(typeof(ExportDocument))]
[JsonSerializable(typeof(MeResponse))]
[JsonSerializable(typeof(Jackcwf.Api.Sharing.SharedConversation))]
[JsonSerializable(typeof(Jackcwf.Api.Sharing.CreateShareRequest))]
[JsonSerializable(typeof(Jackcwf.Api.Sharing.ShareLinkDto))]
[JsonSerializable(typeof(Jackcwf.Api.Sharing.ShareList))]
[JsonSerializable(typeof(Jackcwf.Api.Audit.AuditPage))]
[JsonSerializable(typeof(Jackcwf.Api.Privacy.ExportAccount))]
[JsonSerializable(typeof(List<Jackcwf.Api.Privacy.ExportUsage>))]
[JsonSerializable(typeof(List<Jackcwf.Api.Privacy.ExportApiKey>))]
[JsonSerializable(typeof(List<Jackcwf.Api.Privacy.ExportShare>))]
[JsonSerializable(typeof(Jackcwf.Api.Privacy.DeleteAccountRequest))]
[JsonSerializable(typeof(IReadOnlyList<Jackcwf.Api.Files.SourceDto>))]
[JsonSerializable(typeof(Jackcwf.Api.Files.FileDto))]
[JsonSerializable(typeof(Jackcwf.Api.Files.FileList))]
[JsonSerializable(typeof(List<Jackcwf.Api.Files.ExportFile>))]
[JsonSerializable(typeof(Jackcwf.Api.Folders.FolderList))]
[JsonSerializable(typeof(Jackcwf.Api.Folders.FolderDto))]
[JsonSerializable(typeof(Jackcwf.Api.Folders.FolderRequest))]
[JsonSerializable(typeof(Jackcwf.Api.Prompts.SavedPromptList))]
[JsonSerializable(typeof(Jackcwf.Api.Prompts.SavedPromptDto))]
[JsonSerializable(typeof(Jackcwf.Api.Prompts.SavedPromptRequest))]
[JsonSerializable(typeof(Jackcwf.Api.Feedback.FeedbackDto))]
[JsonSerializable(typeof(Jackcwf.Api.Feedback.FeedbackRequest))]
[JsonSerializable(typeof(Jackcwf.Api.Usage.AdminUsageReport))]
[JsonSerializable(typeof(List<Jackcwf.Api.Privacy.ExportFolder>))]
[JsonSerializable(typeof(List<Jackcwf.Api.Privacy.ExportPrompt>))]
[JsonSerializable(typeof(List<Jackcwf.Api.Privacy.ExportFeedback>))]
[JsonSerializable(typeof(ProblemDetails))]
[JsonSerializable(typeof(HttpValidationProblemDetails))]
public sealed partial class AppJsonContext : JsonSerializerContext;
