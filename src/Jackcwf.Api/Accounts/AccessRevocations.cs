using System.Collections.Concurrent;
using Jackcwf.Api.Chat;

namespace Jackcwf.Api.Accounts;

/// <summary>
/// Stops work already running for a caller whose access was taken away: a disabled user's chat
/// generations and gateway (/v1) calls, and the gateway calls of a revoked API key, on every replica
/// (the events travel over <see cref="IInvalidationBus"/>).
/// </summary>
public sealed class AccessRevocations
{
    /// <summary>Published with the user id when the account is disabled.</summary>
    public const string UserRevokedTopic = "user-revoked";

    private readonly ConcurrentDictionary<Lease, byte> _leases = new();
    private readonly IInvalidationBus _bus;

    public AccessRevocations(IInvalidationBus bus, GenerationRunner runner)
    {
        _bus = bus;
        bus.Subscribe(UserRevokedTopic, userId =>
        {
            runner.StopAllForUser(userId);
            Cancel(l => l.UserId == userId);
        });
        bus.Subscribe(UserAccessCache.KeyTopic, keyId => Cancel(l => l.KeyId == keyId));
    }

    /// <summary>A token cancelled when the user is disabled or the key revoked; dispose when the call ends.</summary>
    public Lease Track(Guid userId, Guid? keyId)
    {
        var lease = new Lease(this, userId, keyId);
        _leases[lease] = 0;
        return lease;
    }

    public Task RevokeUserAsync(Guid userId) => _bus.PublishAsync(UserRevokedTopic, userId);

    private void Cancel(Func<Lease, bool> match)
    {
        foreach (var lease in _leases.Keys.Where(match))
        {
            lease.Revoke();
        }
    }

    public sealed class Lease(AccessRevocations owner, Guid userId, Guid? keyId) : IDisposable
    {
        private readonly CancellationTokenSource _cts = new();

        public Guid UserId { get; } = userId;

        public Guid? KeyId { get; } = keyId;

        public CancellationToken Token => _cts.Token;

        public bool IsRevoked => _cts.IsCancellationRequested;

        internal void Revoke()
        {
            try
            {
                _cts.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // The call ended at the same moment.
            }
        }

        public void Dispose()
        {
            owner._leases.TryRemove(this, out _);
            _cts.Dispose();
        }
    }
}
