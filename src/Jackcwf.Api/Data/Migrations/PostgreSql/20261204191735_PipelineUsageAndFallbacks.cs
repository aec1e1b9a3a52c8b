using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Jackcwf.Api.Data.Migrations.PostgreSql
{
    /// <inheritdoc />
    public partial class PipelineUsageAndFallbacks : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<bool>(
                name: "Cached",
                table: "usage_records",
                type: "boolean",
                nullable: false,
                defaultValue: false);

            migrationBuilder.AddColumn<int>(
                name: "TokensSaved",
                table: "usage_records",
                type: "integer",
                nullable: false,
                defaultValue: 0);

            migrationBuilder.AddColumn<string>(
                name: "RequestedModel",
                table: "messages",
                type: "character varying(200)",
                maxLength: 200,
                nullable: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "Cached",
                table: "usage_records");

            migrationBuilder.DropColumn(
                name: "TokensSaved",
                table: "usage_records");

            migrationBuilder.DropColumn(
                name: "RequestedModel",
                table: "messages");
        }
    }
}
