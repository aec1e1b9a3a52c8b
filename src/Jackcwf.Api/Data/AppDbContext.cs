using Microsoft.AspNetCore.DataProtection.EntityFrameworkCore;
using Microsoft.AspNetCore.Identity.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Jackcwf.Api.Data;

/// <summary>
/// The one database context. Each provider has its own subclass so that each keeps its own
/// migration set (Data/Migrations/Sqlite and Data/Migrations/PostgreSql).
/// </summary>
public abstract class AppDbContext(DbContextOptions options)
    : IdentityDbContext<AppUser, AppRole, Guid>(options), IDataProtectionKeyContext
{
    public DbSet<Conversation> Conversations => Set<Conversation>();
    public DbSet<Message> Messages => Set<Message>();
    public DbSet<IdempotencyRecord> IdempotencyRecords => Set<IdempotencyRecord>();
    public DbSet<DataProtectionKey> DataProtectionKeys => Set<DataProtectionKey>();
    public DbSet<ApiKey> ApiKeys => Set<ApiKey>();
    public DbSet<UsageRecord> UsageRecords => Set<UsageRecord>();
    public DbSet<Sharing.ShareLink> ShareLinks => Set<Sharing.ShareLink>();
    public DbSet<Audit.AuditEntry> AuditLog => Set<Audit.AuditEntry>();
    public DbSet<UserStorage> UserStorage => Set<UserStorage>();
    public DbSet<Folders.Folder> Folders => Set<Folders.Folder>();
    public DbSet<Prompts.SavedPrompt> SavedPrompts => Set<Prompts.SavedPrompt>();
    public DbSet<Feedback.MessageFeedback> MessageFeedback => Set<Feedback.MessageFeedback>();

    public abstract DatabaseProvider Provider { get; }

    protected override void ConfigureConventions(ModelConfigurationBuilder configurationBuilder)
    {
        // Every timestamp is UTC; SQLite forgets the kind, so restore it on the way out.
        configurationBuilder.Properties<DateTime>().HaveConversion<UtcConverter>();
        configurationBuilder.Properties<DateTime?>().HaveConversion<NullableUtcConverter>();
    }

    protected override void OnModelCreating(ModelBuilder builder)
    {
        base.OnModelCreating(builder);
        builder.ApplyConfigurationsFromAssembly(typeof(AppDbContext).Assembly);
    }
}

internal sealed class UtcConverter() : Microsoft.EntityFrameworkCore.Storage.ValueConversion.ValueConverter<DateTime, DateTime>(
    v => v.Kind == DateTimeKind.Utc ? v : v.ToUniversalTime(), v => DateTime.SpecifyKind(v, DateTimeKind.Utc));

internal sealed class NullableUtcConverter() : Microsoft.EntityFrameworkCore.Storage.ValueConversion.ValueConverter<DateTime?, DateTime?>(
    v => v == null ? v : v.Value.Kind == DateTimeKind.Utc ? v : v.Value.ToUniversalTime(), v => v == null ? v : DateTime.SpecifyKind(v.Value, DateTimeKind.Utc));

public sealed class SqliteAppDbContext(DbContextOptions<SqliteAppDbContext> options) : AppDbContext(options)
{
    public override DatabaseProvider Provider => DatabaseProvider.Sqlite;
}

public sealed class PostgresAppDbContext(DbContextOptions<PostgresAppDbContext> options) : AppDbContext(options)
{
    public override DatabaseProvider Provider => DatabaseProvider.PostgreSql;
}

internal sealed class ConversationConfiguration : IEntityTypeConfiguration<Conversation>
{
    public void Configure(EntityTypeBuilder<Conversation> e)
    {
        e.ToTable("conversations");
        e.HasKey(c => c.Id);
        e.Property(c => c.Title).HasMaxLength(200);
        e.Property(c => c.Model).HasMaxLength(200);
        e.HasIndex(c => new { c.UserId, c.UpdatedAt });
        // The list: one user's archived or current conversations, pinned first, newest first.
        e.HasIndex(c => new { c.UserId, c.Archived, c.Pinned, c.UpdatedAt });
        // Database defaults, so the previous release (which does not know these columns) can still insert.
        e.Property(c => c.Pinned).HasDefaultValue(false);
        e.Property(c => c.Archived).HasDefaultValue(false);
        // A deleted folder lets its conversations go (never deletes them), in the database itself, so a
        // conversation moved into a folder while it is deleted cannot keep pointing at it.
        e.HasOne<Folders.Folder>().WithMany().HasForeignKey(c => c.FolderId).OnDelete(DeleteBehavior.SetNull);
        e.HasMany(c => c.Messages).WithOne().HasForeignKey(m => m.ConversationId).OnDelete(DeleteBehavior.Cascade);
        e.HasOne<AppUser>().WithMany().HasForeignKey(c => c.UserId).OnDelete(DeleteBehavior.Cascade);
    }
}

internal sealed class MessageConfiguration : IEntityTypeConfiguration<Message>
{
    public void Configure(EntityTypeBuilder<Message> e)
    {
        e.ToTable("messages");
        e.HasKey(m => m.Id);
        e.Property(m => m.Role).HasMaxLength(16);
        e.Property(m => m.Status).HasMaxLength(16);
        e.Property(m => m.Model).HasMaxLength(200);
        e.Property(m => m.RequestedModel).HasMaxLength(200);
        e.Property(m => m.ErrorCode).HasMaxLength(64);
        e.Property(m => m.ErrorDetail).HasMaxLength(2000);
        e.Property(m => m.OwnerInstance).HasMaxLength(128);
        e.Property(m => m.CostUsd).HasPrecision(18, 8);
        e.HasIndex(m => new { m.ConversationId, m.CreatedAt });
        e.HasIndex(m => new { m.Status, m.LeaseExpiresAt });
        // Search reads a user's newest messages only (LimitsOptions.SearchMaxMessages).
        e.HasIndex(m => new { m.UserId, m.CreatedAt });
    }
}

internal sealed class IdempotencyRecordConfiguration : IEntityTypeConfiguration<IdempotencyRecord>
{
    public void Configure(EntityTypeBuilder<IdempotencyRecord> e)
    {
        e.ToTable("idempotency_keys");
        e.HasKey(r => new { r.UserId, r.Key });
        e.Property(r => r.Key).HasMaxLength(200);
        e.Property(r => r.RequestHash).HasMaxLength(64);
        e.Property(r => r.Route).HasMaxLength(64);
        e.HasIndex(r => r.CreatedAt);
    }
}

internal sealed class UserStorageConfiguration : IEntityTypeConfiguration<UserStorage>
{
    public void Configure(EntityTypeBuilder<UserStorage> e)
    {
        e.ToTable("user_storage");
        e.HasKey(s => s.UserId);
        e.HasOne<AppUser>().WithMany().HasForeignKey(s => s.UserId).OnDelete(DeleteBehavior.Cascade);
    }
}

internal sealed class ApiKeyConfiguration : IEntityTypeConfiguration<ApiKey>
{
    public void Configure(EntityTypeBuilder<ApiKey> e)
    {
        e.ToTable("api_keys");
        e.HasKey(k => k.Id);
        e.Property(k => k.Name).HasMaxLength(100);
        e.Property(k => k.Prefix).HasMaxLength(16);
        e.Property(k => k.Hash).HasMaxLength(64);
        e.HasIndex(k => k.Hash).IsUnique();
        e.HasIndex(k => k.UserId);
        e.HasOne<AppUser>().WithMany().HasForeignKey(k => k.UserId).OnDelete(DeleteBehavior.Cascade);
    }
}

internal sealed class UsageRecordConfiguration : IEntityTypeConfiguration<UsageRecord>
{
    public void Configure(EntityTypeBuilder<UsageRecord> e)
    {
        e.ToTable("usage_records");
        e.HasKey(u => u.Id);
        e.Property(u => u.Model).HasMaxLength(200);
        e.Property(u => u.Source).HasMaxLength(16);
        e.Property(u => u.CostUsd).HasPrecision(18, 8);
        e.HasIndex(u => new { u.UserId, u.CreatedAt });
    }
}

internal sealed class AppUserConfiguration : IEntityTypeConfiguration<AppUser>
{
    public void Configure(EntityTypeBuilder<AppUser> e) => e.Property(u => u.MonthlyBudgetUsd).HasPrecision(18, 4);
}

/// <summary>Design-time factories: <c>dotnet ef migrations add X --context SqliteAppDbContext</c> (or PostgresAppDbContext).</summary>
internal sealed class SqliteDesignTimeFactory : IDesignTimeDbContextFactory<SqliteAppDbContext>
{
    public SqliteAppDbContext CreateDbContext(string[] args) =>
        new(new DbContextOptionsBuilder<SqliteAppDbContext>().UseSqlite("Data Source=design.db").Options);
}

internal sealed class PostgresDesignTimeFactory : IDesignTimeDbContextFactory<PostgresAppDbContext>
{
    public PostgresAppDbContext CreateDbContext(string[] args) =>
        new(new DbContextOptionsBuilder<PostgresAppDbContext>().UseNpgsql("Host=localhost;Database=design").Options);
}
