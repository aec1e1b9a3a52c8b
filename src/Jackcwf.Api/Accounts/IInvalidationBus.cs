using Microsoft.EntityFrameworkCore;

namespace Jackcwf.Api.Accounts;

/// <summary>Tells every replica that something cached changed (a key revoked, a user disabled).</summary>
public interface IInvalidationBus
{
    Task PublishAsync(string topic, Guid id);

    void Subscribe(string topic, Action<Guid> handler);
}
