namespace Jackcwf.Api.Prompts;

public sealed record SavedPromptDto(Guid Id, string Title, string? Command, string Text, DateTime CreatedAt, DateTime UpdatedAt)
{
    public static SavedPromptDto From(SavedPrompt p) => new(p.Id, p.Title, p.Command, p.Text, p.CreatedAt, p.UpdatedAt);
}

public sealed record SavedPromptList(IReadOnlyList<SavedPromptDto> Items);

/// <summary>On PATCH, an absent (null) field is left as it is; <c>command: ""</c> removes the command.</summary>
public sealed record SavedPromptRequest(string? Title, string? Command, string? Text);
