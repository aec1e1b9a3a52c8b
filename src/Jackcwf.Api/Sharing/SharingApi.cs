using System.Buffers.Text;
using System.Net;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text.Json;
using Jackcwf.Api.Accounts;
using Jackcwf.Api.Audit;
using Jackcwf.Api.Data;
using Jackcwf.Api.ErrorHandling;
using Jackcwf.Api.Limits;
using Jackcwf.Api.Web;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace Jackcwf.Api.Sharing;

public static class SharingApi
{
    public static IEndpointRouteBuilder MapSharingApi(this IEndpointRouteBuilder app)
    {
        var owner = app.MapGroup("/api").WithTags("Sharing").RequireAuthorization();
        owner.MapPost("/conversations/{id:guid}/share", CreateShareAsync).WithName("CreateShare")
            .WithSummary("Publish a read-only snapshot of the conversation's current branch; sharing again refreshes it behind the same link.");
        owner.MapDelete("/conversations/{id:guid}/share", RevokeShareAsync).WithName("RevokeShare").WithSummary("Revoke the link: it answers 404 from now on.");
        owner.MapGet("/shares", ListSharesAsync).WithName("ListShares").WithSummary("The caller's share links, newest first.");

        var anonymous = app.MapGroup("").WithTags("Sharing").AllowAnonymous().AddEndpointFilter(AnonymousRateLimitAsync);
        anonymous.MapGet("/api/shared/{token}", GetSharedAsync).WithName("GetShared").WithSummary("A shared conversation, without signing in.");
        anonymous.MapGet("/s/{token}", ShareLinkPageAsync).WithName("SharedPage").WithSummary("The web page of a share link.").ExcludeFromDescription();
        return app;
    }

    public static async Task<Results<Created<ShareLinkDto>, Ok<ShareLinkDto>, ProblemHttpResult, ValidationProblem>> CreateShareAsync(
        HttpContext http, ClaimsPrincipal user, AppDbContext db, IAuditLog audit, TimeProvider time, Guid id, CreateShareRequest? request, CancellationToken ct)
    {
        var userId = user.Id();
        var conversation = await db.Conversations.AsNoTracking().FirstOrDefaultAsync(c => c.Id == id && c.UserId == userId, ct);
        if (conversation is null)
        {
            return Problems.NotFound("conversation");
        }
        var messages = await db.Messages.AsNoTracking().Where(m => m.ConversationId == id).OrderBy(m => m.CreatedAt).ToListAsync(ct);
        if (messages.Count == 0)
        {
            return Problems.Invalid("conversation", "has no messages to share yet");
        }
        Message? leaf;
        if (request?.MessageId is { } messageId)
        {
            leaf = messages.FirstOrDefault(m => m.Id == messageId);
            if (leaf is null)
            {
                return Problems.Invalid("messageId", "is not a message of this conversation");
            }
        }
        else
        {
            leaf = NewestLeaf(messages);
        }
        var now = time.UtcNowForStorage();
        var snapshot = new SharedConversation(conversation.Title, now, BranchTo(messages, leaf)
            .Where(m => m.Status != MessageStatuses.Streaming)
            .Select(m => new SharedMessage(m.Role, m.Content, m.Role == MessageRoles.Assistant ? m.Model : null, m.CreatedAt)).ToList());
        var json = JsonSerializer.Serialize(snapshot, AppJsonContext.Default.SharedConversation);

        var link = await db.Set<ShareLink>().FirstOrDefaultAsync(s => s.ConversationId == id, ct);
        var created = link is null;
        if (link is null)
        {
            link = new ShareLink { Id = time.NewId(), UserId = userId, ConversationId = id, Token = NewToken() };
            db.Add(link);
        }
        link.Title = conversation.Title;
        link.Snapshot = json;
        link.CreatedAt = now;
        await db.SaveChangesAsync(ct);
        await audit.RecordAsync(http, AuditActions.ShareCreated, target: $"conversation:{id}", ct: ct);
        var dto = new ShareLinkDto(UrlOf(http, link.Token), link.Token, link.CreatedAt);
        return created ? TypedResults.Created($"/api/shared/{link.Token}", dto) : TypedResults.Ok(dto);
    }

    public static async Task<Results<NoContent, ProblemHttpResult>> RevokeShareAsync(
        HttpContext http, ClaimsPrincipal user, AppDbContext db, IAuditLog audit, Guid id, CancellationToken ct)
    {
        var userId = user.Id();
        var deleted = await db.Set<ShareLink>().Where(s => s.ConversationId == id && s.UserId == userId).ExecuteDeleteAsync(ct);
        if (deleted == 0)
        {
            return Problems.NotFound("share link");
        }
        await audit.RecordAsync(http, AuditActions.ShareRevoked, target: $"conversation:{id}", ct: ct);
        return TypedResults.NoContent();
    }

    public static async Task<Ok<ShareList>> ListSharesAsync(HttpContext http, ClaimsPrincipal user, AppDbContext db, CancellationToken ct)
    {
        var userId = user.Id();
        var rows = await db.Set<ShareLink>().AsNoTracking().Where(s => s.UserId == userId).OrderByDescending(s => s.CreatedAt)
            .Select(s => new { s.ConversationId, s.Title, s.Token, s.CreatedAt }).ToListAsync(ct);
        return TypedResults.Ok(new ShareList(rows
            .Select(s => new ShareListItem(s.ConversationId, s.Title, UrlOf(http, s.Token), s.Token, s.CreatedAt)).ToList()));
    }

    public static async Task<Results<ContentHttpResult, ProblemHttpResult>> GetSharedAsync(
        HttpContext http, AppDbContext db, string token, CancellationToken ct)
    {
        NoIndex(http);
        if (!IsWellFormed(token))
        {
            return Problems.NotFound("share link");
        }
        var snapshot = await db.Set<ShareLink>().AsNoTracking().Where(s => s.Token == token).Select(s => s.Snapshot).FirstOrDefaultAsync(ct);
        // The snapshot is stored as the JSON it is served as: no parse and re-serialise per read.
        return snapshot is null ? Problems.NotFound("share link") : TypedResults.Content(snapshot, "application/json; charset=utf-8");
    }

    /// <summary>The web app renders the snapshot; an unknown or revoked token still gets the page (it says so) with a 404 status.</summary>
    public static async Task ShareLinkPageAsync(HttpContext http, AppDbContext db, IWebHostEnvironment env, string token, CancellationToken ct)
    {
        NoIndex(http);
        var exists = IsWellFormed(token) && await db.Set<ShareLink>().AnyAsync(s => s.Token == token, ct);
        http.Response.StatusCode = exists ? StatusCodes.Status200OK : StatusCodes.Status404NotFound;
        await WebExtensions.SendIndexAsync(http, env);
    }

    private static void NoIndex(HttpContext http)
    {
        http.Response.Headers["X-Robots-Tag"] = "noindex, nofollow";
        http.Response.Headers.CacheControl = "no-store";
    }

    /// <summary>Anonymous readers are limited per client address, with the same per-minute allowance as a signed-in user.</summary>
    private static async ValueTask<object?> AnonymousRateLimitAsync(EndpointFilterInvocationContext ctx, EndpointFilterDelegate next)
    {
        var http = ctx.HttpContext;
        var guard = http.RequestServices.GetRequiredService<LimitGuard>();
        var ip = http.Connection.RemoteIpAddress ?? IPAddress.None;
        if (await guard.CheckAnonymousRateAsync(ip) is { } refusal)
        {
            await ErrorResponses.WriteRefusalAsync(http, refusal);
            return null;
        }
        return await next(ctx);
    }

    private static string UrlOf(HttpContext http, string token)
    {
        var configured = http.RequestServices.GetRequiredService<Microsoft.Extensions.Options.IOptions<Web.ServerOptions>>().Value.PublicBaseUrl;
        var origin = string.IsNullOrEmpty(configured) ? $"{http.Request.Scheme}://{http.Request.Host}" : configured.TrimEnd('/');
        return $"{origin}/s/{token}";
    }

    private static string NewToken() => Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(32));

    private static bool IsWellFormed(string token) => token.Length == 43 && token.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_');

    /// <summary>The branch the web app shows by default: at every fork the newest child.</summary>
    internal static Message NewestLeaf(IReadOnlyList<Message> messages)
    {
        var children = messages.ToLookup(m => m.ParentMessageId is { } p && messages.Any(x => x.Id == p) ? p : (Guid?)null);
        var current = children[null].Last();
        while (children[current.Id].LastOrDefault() is { } next)
        {
            current = next;
        }
        return current;
    }

    internal static List<Message> BranchTo(IReadOnlyList<Message> messages, Message leaf)
    {
        var byId = messages.ToDictionary(m => m.Id);
        var branch = new List<Message>();
        for (Message? m = leaf; m is not null && branch.Count <= messages.Count; m = m.ParentMessageId is { } p ? byId.GetValueOrDefault(p) : null)
        {
            branch.Add(m);
        }
        branch.Reverse();
        return branch;
    }
}
