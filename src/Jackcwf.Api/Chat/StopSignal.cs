namespace Jackcwf.Api.Chat;

/// <summary>Carries a stop request to the replica that runs the generation.</summary>
public interface IStopSignal
{
    Task PublishAsync(Guid messageId);
}

/// <summary>One replica: the runner was already asked directly, so there is nobody else to tell.</summary>
public sealed class InProcessStopSignal : IStopSignal
{
    public Task PublishAsync(Guid messageId) => Task.CompletedTask;
}
