using System.IO.Compression;
using Jackcwf.Api.Accounts;

namespace Jackcwf.Api.Privacy;

public sealed record ExportAccount(Guid Id, string Email, DateTime CreatedAt, DateTime ExportedAt, string Format);

public sealed record ExportApiKey(string Name, string Prefix, DateTime CreatedAt, DateTime? LastUsedAt);

public sealed record ExportUsage(string Model, string Source, int InputTokens, int OutputTokens, decimal CostUsd, DateTime CreatedAt);

public sealed record ExportShare(Guid ConversationId, string Title, DateTime CreatedAt);

public sealed record ExportFolder(Guid Id, string Name, DateTime CreatedAt);

public sealed record ExportPrompt(string Title, string? Command, string Text, DateTime CreatedAt, DateTime UpdatedAt);

public sealed record ExportFeedback(Guid ConversationId, Guid MessageId, string Model, string Rating, string? Comment, DateTime UpdatedAt);
