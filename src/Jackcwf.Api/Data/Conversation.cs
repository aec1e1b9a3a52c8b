namespace Jackcwf.Api.Data;

public sealed class Conversation
{
    public Guid Id { get; set; }
    public Guid UserId { get; set; }
    public string Title { get; set; } = "";
    public string Model { get; set; } = "";
    public string? SystemPrompt { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime UpdatedAt { get; set; }
    /// <summary>Pinned conversations come first in the list.</summary>
    public bool Pinned { get; set; }
    /// <summary>Archived conversations are left out of the list unless asked for (<c>?archived=true</c>).</summary>
    public bool Archived { get; set; }
    /// <summary>The caller's folder holding it, if any; deleting the folder sets it back to null.</summary>
    public Guid? FolderId { get; set; }
    public List<Message> Messages { get; set; } = [];
}
