namespace Jackcwf.Api.Files;

/// <summary>A file attached to a conversation: its chunks are searched on every turn.</summary>
public sealed class ConversationFile
{
    public Guid ConversationId { get; set; }
    public Guid FileId { get; set; }
    public Guid UserId { get; set; }
    public DateTime CreatedAt { get; set; }
}
