using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Jackcwf.Api.Data.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class LeaseIndexStreamingOnly : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_messages_Status_LeaseExpiresAt",
                table: "messages");

            migrationBuilder.CreateIndex(
                name: "IX_messages_LeaseExpiresAt",
                table: "messages",
                column: "LeaseExpiresAt",
                filter: "\"Status\" = 'streaming'");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_messages_LeaseExpiresAt",
                table: "messages");

            migrationBuilder.CreateIndex(
                name: "IX_messages_Status_LeaseExpiresAt",
                table: "messages",
                columns: new[] { "Status", "LeaseExpiresAt" });
        }
    }
}
