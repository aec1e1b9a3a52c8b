using Jackcwf.Api.Accounts;
using Jackcwf.Api.Audit;
using Jackcwf.Api.Data;
using Jackcwf.Api.Files;
using Jackcwf.Api.Sharing;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;

namespace Jackcwf.Api.Privacy;

/// <summary>
/// Deletes an account and everything it owns, in one transaction, then makes its tokens and keys
/// stop at once on every replica. Usage lines are kept for billing totals but anonymised (no user,
/// no key); audit entries keep the action and time but lose every trace of who (id and email).
/// </summary>
public sealed class AccountDeletion(AppDbContext db, UserManager<AppUser> users, IInvalidationBus bus, AccessRevocations revocations, Usage.UsageLedger ledger)
{
    /// <summary>The id written in place of a deleted user where a row must stay (usage totals, audit).</summary>
    public const string DeletedTarget = "user:deleted";

    public async Task<bool> DeleteAsync(Guid userId, CancellationToken ct)
    {
        var user = await users.FindByIdAsync(userId.ToString());
        if (user is null)
        {
            return false;
        }
        // Chat generations and /v1 streams of the account stop on every replica before its rows go.
        await revocations.RevokeUserAsync(userId);
        // Usage lines still queued on this replica are anonymised with the rest.
        await ledger.FlushAsync(ct);
        var keyIds = await db.ApiKeys.Where(k => k.UserId == userId).Select(k => k.Id).ToListAsync(ct);
        var target = $"user:{userId}";
        var strategy = db.Database.CreateExecutionStrategy();
        await strategy.ExecuteAsync(async () =>
        {
            await using var tx = await db.Database.BeginTransactionAsync(ct);
            await db.IdempotencyRecords.Where(r => r.UserId == userId).ExecuteDeleteAsync(ct);
            await db.Set<ShareLink>().Where(s => s.UserId == userId).ExecuteDeleteAsync(ct);
            await db.Set<ConversationFile>().Where(a => a.UserId == userId).ExecuteDeleteAsync(ct);
            await db.Set<FileChunk>().Where(c => c.UserId == userId).ExecuteDeleteAsync(ct);
            await db.Set<StoredFile>().Where(f => f.UserId == userId).ExecuteDeleteAsync(ct);
            await db.MessageFeedback.Where(f => f.UserId == userId).ExecuteDeleteAsync(ct);
            await db.SavedPrompts.Where(p => p.UserId == userId).ExecuteDeleteAsync(ct);
            await db.Messages.Where(m => m.UserId == userId).ExecuteDeleteAsync(ct);
            await db.Conversations.Where(c => c.UserId == userId).ExecuteDeleteAsync(ct);
            await db.Folders.Where(f => f.UserId == userId).ExecuteDeleteAsync(ct);
            await db.ApiKeys.Where(k => k.UserId == userId).ExecuteDeleteAsync(ct);
            await db.UserStorage.Where(s => s.UserId == userId).ExecuteDeleteAsync(ct);
            await db.UsageRecords.Where(u => u.UserId == userId)
                .ExecuteUpdateAsync(u => u.SetProperty(x => x.UserId, Guid.Empty).SetProperty(x => x.ApiKeyId, (Guid?)null), ct);
            await db.Set<AuditEntry>().Where(a => a.ActorId == userId)
                .ExecuteUpdateAsync(a => a.SetProperty(x => x.ActorId, (Guid?)null).SetProperty(x => x.ActorEmail, (string?)null), ct);
            await db.Set<AuditEntry>().Where(a => a.Target == target).ExecuteUpdateAsync(a => a.SetProperty(x => x.Target, DeletedTarget), ct);
            await db.UserRoles.Where(r => r.UserId == userId).ExecuteDeleteAsync(ct);
            await db.UserClaims.Where(r => r.UserId == userId).ExecuteDeleteAsync(ct);
            await db.UserLogins.Where(r => r.UserId == userId).ExecuteDeleteAsync(ct);
            await db.UserTokens.Where(r => r.UserId == userId).ExecuteDeleteAsync(ct);
            await db.Users.Where(u => u.Id == userId).ExecuteDeleteAsync(ct);
            await tx.CommitAsync(ct);
        });
        // Tokens and cookies of the account and its keys are refused from the next request on, on every replica.
        await bus.PublishAsync(UserAccessCache.UserTopic, userId);
        foreach (var k in keyIds)
        {
            await bus.PublishAsync(UserAccessCache.KeyTopic, k);
        }
        return true;
    }
}
