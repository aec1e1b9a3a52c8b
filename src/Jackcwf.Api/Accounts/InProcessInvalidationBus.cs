using System.Collections.Concurrent;
using Microsoft.EntityFrameworkCore;

namespace Jackcwf.Api.Accounts;

public sealed class InProcessInvalidationBus : IInvalidationBus
{
    private readonly ConcurrentDictionary<string, List<Action<Guid>>> _handlers = new();

    public Task PublishAsync(string topic, Guid id)
    {
        if (_handlers.TryGetValue(topic, out var list))
        {
            foreach (var h in list.ToArray())
            {
                h(id);
            }
        }
        return Task.CompletedTask;
    }

    public void Subscribe(string topic, Action<Guid> handler) =>
        _handlers.AddOrUpdate(topic, _ => [handler], (_, l) => { lock (l) { l.Add(handler); } return l; });
}
