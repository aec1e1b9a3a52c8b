using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Jackcwf.Api.Data.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class ResourceLimits : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "Route",
                table: "idempotency_keys",
                type: "TEXT",
                maxLength: 64,
                nullable: true);

            migrationBuilder.CreateTable(
                name: "user_storage",
                columns: table => new
                {
                    UserId = table.Column<Guid>(type: "TEXT", nullable: false),
                    StoredChars = table.Column<long>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_user_storage", x => x.UserId);
                    table.ForeignKey(
                        name: "FK_user_storage_AspNetUsers_UserId",
                        column: x => x.UserId,
                        principalTable: "AspNetUsers",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateIndex(
                name: "IX_messages_UserId_CreatedAt",
                table: "messages",
                columns: new[] { "UserId", "CreatedAt" });

            // The storage counter follows every write to messages (see UserStorage): the current release,
            // the previous one still running during a rolling upgrade, cascades and manual fixes alike.
            migrationBuilder.Sql("""
                CREATE TRIGGER messages_storage_insert AFTER INSERT ON messages BEGIN
                  INSERT INTO user_storage ("UserId", "StoredChars") VALUES (NEW."UserId", length(NEW."Content"))
                  ON CONFLICT ("UserId") DO UPDATE SET "StoredChars" = "StoredChars" + excluded."StoredChars";
                END;
                """);
            migrationBuilder.Sql("""
                CREATE TRIGGER messages_storage_update AFTER UPDATE OF "Content" ON messages
                WHEN length(NEW."Content") <> length(OLD."Content") BEGIN
                  UPDATE user_storage SET "StoredChars" = "StoredChars" + length(NEW."Content") - length(OLD."Content") WHERE "UserId" = NEW."UserId";
                END;
                """);
            migrationBuilder.Sql("""
                CREATE TRIGGER messages_storage_delete AFTER DELETE ON messages BEGIN
                  UPDATE user_storage SET "StoredChars" = "StoredChars" - length(OLD."Content") WHERE "UserId" = OLD."UserId";
                END;
                """);
            migrationBuilder.Sql("""
                INSERT INTO user_storage ("UserId", "StoredChars")
                  SELECT m."UserId", SUM(length(m."Content")) FROM messages m JOIN "AspNetUsers" u ON u."Id" = m."UserId" GROUP BY m."UserId";
                """);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.Sql("DROP TRIGGER IF EXISTS messages_storage_insert;");
            migrationBuilder.Sql("DROP TRIGGER IF EXISTS messages_storage_update;");
            migrationBuilder.Sql("DROP TRIGGER IF EXISTS messages_storage_delete;");

            migrationBuilder.DropTable(
                name: "user_storage");

            migrationBuilder.DropIndex(
                name: "IX_messages_UserId_CreatedAt",
                table: "messages");

            migrationBuilder.DropColumn(
                name: "Route",
                table: "idempotency_keys");
        }
    }
}
