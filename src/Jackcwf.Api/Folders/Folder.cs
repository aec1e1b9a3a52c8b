using Jackcwf.Api.Data;

namespace Jackcwf.Api.Folders;

/// <summary>A user's named group of conversations (<see cref="Conversation.FolderId"/>).</summary>
public sealed class Folder
{
    public Guid Id { get; set; }
    public Guid UserId { get; set; }
    public string Name { get; set; } = "";
    public DateTime CreatedAt { get; set; }
    public DateTime UpdatedAt { get; set; }
}
