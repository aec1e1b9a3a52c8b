using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using Jackcwf.Api.Data;
using Jackcwf.Api.ErrorHandling;
using Microsoft.AspNetCore.Authentication;
using Microsoft.EntityFrameworkCore;

namespace Jackcwf.Api.Accounts;

public static class ApiKeysApi
{
    public static IEndpointRouteBuilder MapApiKeysApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/keys").WithTags("Accounts").RequireAuthorization();
        api.MapPost("/", CreateKeyAsync).WithName("CreateApiKey").WithSummary("Create a personal API key; the key is shown in this answer only.");
        api.MapGet("/", ListKeysAsync).WithName("ListApiKeys").WithSummary("The caller's API keys (without the keys themselves).");
        api.MapDelete("/{id:guid}", DeleteKeyAsync).WithName("DeleteApiKey").WithSummary("Revoke a key; it is refused on the next request, on every replica.");
        return app;
    }

    public static string Hash(string key) => Hash(key.AsSpan());

    /// <summary>The key's SHA-256 in upper-case hex; only the hex string is allocated for a key of up to 200 characters.</summary>
    public static string Hash(ReadOnlySpan<char> key)
    {
        Span<byte> utf8 = key.Length <= 200 ? stackalloc byte[600] : new byte[Encoding.UTF8.GetMaxByteCount(key.Length)];
        var length = Encoding.UTF8.GetBytes(key, utf8);
        Span<byte> digest = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(utf8[..length], digest);
        return Convert.ToHexString(digest);
    }

    public static async Task<Microsoft.AspNetCore.Http.HttpResults.Results<Microsoft.AspNetCore.Http.HttpResults.Created<CreatedKey>, Microsoft.AspNetCore.Http.HttpResults.ValidationProblem>> CreateKeyAsync(
        HttpContext http, ClaimsPrincipal user, AppDbContext db, Audit.IAuditLog audit, TimeProvider time, CreateKeyRequest? request, CancellationToken ct)
    {
        var name = request?.Name?.Trim();
        if (string.IsNullOrEmpty(name) || name.Length > 100)
        {
            return Problems.Invalid("name", "is required and at most 100 characters");
        }
        var secret = ApiKeyAuthenticationHandler.KeyPrefix + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', 'A').Replace('/', 'B');
        var key = new ApiKey
        {
            Id = time.NewId(), UserId = user.Id(), Name = name, Prefix = secret[..11], Hash = Hash(secret), CreatedAt = time.UtcNowForStorage(),
        };
        db.ApiKeys.Add(key);
        await db.SaveChangesAsync(ct);
        await audit.RecordAsync(http, Audit.AuditActions.ApiKeyCreated, target: $"api_key:{key.Id}", detail: $"prefix {key.Prefix}", ct: ct);
        return TypedResults.Created($"/api/keys/{key.Id}", new CreatedKey(key.Id, key.Name, key.Prefix, secret, key.CreatedAt));
    }

    public static async Task<Microsoft.AspNetCore.Http.HttpResults.Ok<KeyList>> ListKeysAsync(ClaimsPrincipal user, AppDbContext db, CancellationToken ct)
    {
        var id = user.Id();
        var keys = await db.ApiKeys.AsNoTracking().Where(k => k.UserId == id).OrderByDescending(k => k.CreatedAt)
            .Select(k => new KeySummary(k.Id, k.Name, k.Prefix, k.CreatedAt, k.LastUsedAt)).ToListAsync(ct);
        return TypedResults.Ok(new KeyList(keys));
    }

    /// <summary>Revoking a key also stops its gateway calls still streaming, on every replica (see <see cref="AccessRevocations"/>).</summary>
    public static async Task<Microsoft.AspNetCore.Http.HttpResults.Results<Microsoft.AspNetCore.Http.HttpResults.NoContent, Microsoft.AspNetCore.Http.HttpResults.ProblemHttpResult>> DeleteKeyAsync(
        HttpContext http, ClaimsPrincipal user, Guid id, AppDbContext db, IInvalidationBus bus, Audit.IAuditLog audit, CancellationToken ct)
    {
        var userId = user.Id();
        if (await db.ApiKeys.Where(k => k.Id == id && k.UserId == userId).ExecuteDeleteAsync(ct) == 0)
        {
            return Problems.NotFound("API key");
        }
        await bus.PublishAsync(UserAccessCache.KeyTopic, id);
        await audit.RecordAsync(http, Audit.AuditActions.ApiKeyRevoked, target: $"api_key:{id}", ct: ct);
        return TypedResults.NoContent();
    }
}
