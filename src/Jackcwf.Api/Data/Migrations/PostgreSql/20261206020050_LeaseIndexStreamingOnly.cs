using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Jackcwf.Api.Data.Migrations.PostgreSql
{
    /// <summary>
    /// The lease sweeper's index holds running generations only (<c>"Status" = 'streaming'</c>), not
    /// every message. Built and dropped <c>CONCURRENTLY</c> (outside the migration's transaction, one
    /// statement a command) so chat writes go on while it scans a large <c>messages</c> table. The
    /// previous release never names either index; its sweep (<c>Status = 'streaming' AND
    /// LeaseExpiresAt &lt; now</c>) is answered by the new one, so dropping the old one here is safe.
    /// </summary>
    /// <remarks>
    /// An interrupted <c>CREATE INDEX CONCURRENTLY</c> leaves an invalid index behind and the migration
    /// unrecorded: it is dropped first, so the migration can simply run again.
    /// </remarks>
    public partial class LeaseIndexStreamingOnly : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.Sql("DROP INDEX CONCURRENTLY IF EXISTS \"IX_messages_LeaseExpiresAt\";", suppressTransaction: true);
            migrationBuilder.Sql(
                "CREATE INDEX CONCURRENTLY \"IX_messages_LeaseExpiresAt\" ON messages (\"LeaseExpiresAt\") WHERE \"Status\" = 'streaming';",
                suppressTransaction: true);
            migrationBuilder.Sql("DROP INDEX CONCURRENTLY IF EXISTS \"IX_messages_Status_LeaseExpiresAt\";", suppressTransaction: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.Sql("DROP INDEX CONCURRENTLY IF EXISTS \"IX_messages_Status_LeaseExpiresAt\";", suppressTransaction: true);
            migrationBuilder.Sql(
                "CREATE INDEX CONCURRENTLY \"IX_messages_Status_LeaseExpiresAt\" ON messages (\"Status\", \"LeaseExpiresAt\");",
                suppressTransaction: true);
            migrationBuilder.Sql("DROP INDEX CONCURRENTLY IF EXISTS \"IX_messages_LeaseExpiresAt\";", suppressTransaction: true);
        }
    }
}
