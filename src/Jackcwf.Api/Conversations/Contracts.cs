using System.Text.Json;
using System.Text.Json.Serialization;
using Jackcwf.Api.Data;
using Jackcwf.Api.Feedback;
using Jackcwf.Api.Files;
using Jackcwf.Api.Web;

namespace Jackcwf.Api.Conversations;

/// <summary><c>fileIds</c>: the files attached to the conversation, searched on every turn.</summary>
public sealed record ConversationSummary(
    Guid Id, string Title, string Model, string? SystemPrompt, DateTime CreatedAt, DateTime UpdatedAt, bool Pinned, bool Archived, Guid? FolderId,
    IReadOnlyList<Guid>? FileIds = null)
{
    public static ConversationSummary From(Conversation c, IReadOnlyList<Guid>? fileIds = null) =>
        new(c.Id, c.Title, c.Model, c.SystemPrompt, c.CreatedAt, c.UpdatedAt, c.Pinned, c.Archived, c.FolderId, fileIds ?? []);
}

/// <summary>
/// A conversation with messages, oldest first. Unpaged it holds every message; paged
/// (<c>?limit=</c>) it holds the newest page and <see cref="NextCursor"/> leads to older ones.
/// </summary>
public sealed record ConversationDetail(
    Guid Id, string Title, string Model, string? SystemPrompt, DateTime CreatedAt, DateTime UpdatedAt, IReadOnlyList<MessageDto> Messages,
    string? NextCursor = null, bool Pinned = false, bool Archived = false, Guid? FolderId = null, IReadOnlyList<Guid>? FileIds = null);

public sealed record ConversationPage(IReadOnlyList<ConversationSummary> Items, string? NextCursor);

/// <summary><c>fileIds</c>: files of the caller to attach.</summary>
public sealed record CreateConversationRequest(string? Title, string? Model, string? SystemPrompt, IReadOnlyList<Guid>? FileIds = null);

/// <summary>
/// Absent fields are left as they are; <c>folderId: null</c> takes the conversation out of its folder;
/// <c>fileIds</c>, when present, replaces the attached files (an empty list detaches them all).
/// </summary>
public sealed record UpdateConversationRequest(string? Title, string? Model, string? SystemPrompt, bool? Pinned = null, bool? Archived = null, OptionalGuid FolderId = default,
    IReadOnlyList<Guid>? FileIds = null);

public sealed record UsageDto(int InputTokens, int OutputTokens);

public sealed record MessageDto(
    Guid Id,
    Guid ConversationId,
    Guid? ParentMessageId,
    string Role,
    string Content,
    string Status,
    string? Model,
    UsageDto? Usage,
    decimal? CostUsd,
    string? Error,
    DateTime CreatedAt,
    DateTime? CompletedAt,
    string? RequestedModel = null,
    bool? Cached = null,
    FeedbackDto? Feedback = null,
    IReadOnlyList<SourceDto>? Sources = null)
{
    public static MessageDto From(Message m, FeedbackDto? feedback = null) => new(
        m.Id, m.ConversationId, m.ParentMessageId, m.Role, m.Content, m.Status, m.Model,
        m.InputTokens is null && m.OutputTokens is null ? null : new UsageDto(m.InputTokens ?? 0, m.OutputTokens ?? 0),
        m.CostUsd, m.ErrorCode, m.CreatedAt, m.CompletedAt, m.RequestedModel, Feedback: feedback, Sources: ReadSources(m.Sources));

    public static string? WriteSources(IReadOnlyList<SourceDto>? sources) =>
        sources is null ? null : JsonSerializer.Serialize(sources, AppJsonContext.Default.IReadOnlyListSourceDto);

    private static IReadOnlyList<SourceDto>? ReadSources(string? json) =>
        json is null ? null : JsonSerializer.Deserialize(json, AppJsonContext.Default.IReadOnlyListSourceDto);
}

/// <summary>
/// <c>parentMessageId</c> distinguishes "absent" (continue the latest branch) from an explicit
/// <c>null</c> (a new root message: a sibling of the first message).
/// </summary>
[JsonConverter(typeof(OptionalGuidConverter))]
public readonly record struct OptionalGuid(bool IsSet, Guid? Value);

public sealed class OptionalGuidConverter : JsonConverter<OptionalGuid>
{
    public override bool HandleNull => true;

    public override OptionalGuid Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        reader.TokenType switch
        {
            JsonTokenType.Null => new(true, null),
            JsonTokenType.String when reader.GetString() is { Length: 0 } => new(true, null),
            JsonTokenType.String when Guid.TryParse(reader.GetString(), out var g) => new(true, g),
            _ => throw new JsonException("must be a message id (UUID) or null"),
        };

    public override void Write(Utf8JsonWriter writer, OptionalGuid value, JsonSerializerOptions options)
    {
        if (value.Value is { } g)
        {
            writer.WriteStringValue(g);
        }
        else
        {
            writer.WriteNullValue();
        }
    }
}

public sealed record ModelDto(string Id, string Provider, string DisplayName, decimal InputPricePerMillionTokens, decimal OutputPricePerMillionTokens, bool IsDefault);

public sealed record ExportDocument(ConversationDetail Conversation, DateTime ExportedAt, string Format);
