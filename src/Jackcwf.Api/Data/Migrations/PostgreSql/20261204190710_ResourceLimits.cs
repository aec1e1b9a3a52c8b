using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Jackcwf.Api.Data.Migrations.PostgreSql
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
                type: "character varying(64)",
                maxLength: 64,
                nullable: true);

            migrationBuilder.CreateTable(
                name: "user_storage",
                columns: table => new
                {
                    UserId = table.Column<Guid>(type: "uuid", nullable: false),
                    StoredChars = table.Column<long>(type: "bigint", nullable: false)
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
                CREATE FUNCTION jackcwf_track_message_storage() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                  IF TG_OP = 'INSERT' THEN
                    INSERT INTO user_storage ("UserId", "StoredChars") VALUES (NEW."UserId", length(NEW."Content"))
                    ON CONFLICT ("UserId") DO UPDATE SET "StoredChars" = user_storage."StoredChars" + EXCLUDED."StoredChars";
                    RETURN NEW;
                  ELSIF TG_OP = 'UPDATE' THEN
                    IF length(NEW."Content") <> length(OLD."Content") THEN
                      UPDATE user_storage SET "StoredChars" = "StoredChars" + length(NEW."Content") - length(OLD."Content") WHERE "UserId" = NEW."UserId";
                    END IF;
                    RETURN NEW;
                  ELSE
                    UPDATE user_storage SET "StoredChars" = "StoredChars" - length(OLD."Content") WHERE "UserId" = OLD."UserId";
                    RETURN OLD;
                  END IF;
                END $$;
                CREATE TRIGGER messages_track_storage AFTER INSERT OR DELETE OR UPDATE OF "Content" ON messages
                  FOR EACH ROW EXECUTE FUNCTION jackcwf_track_message_storage();
                INSERT INTO user_storage ("UserId", "StoredChars")
                  SELECT m."UserId", SUM(length(m."Content")) FROM messages m JOIN "AspNetUsers" u ON u."Id" = m."UserId" GROUP BY m."UserId"
                  ON CONFLICT ("UserId") DO NOTHING;
                """);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.Sql("""
                DROP TRIGGER IF EXISTS messages_track_storage ON messages;
                DROP FUNCTION IF EXISTS jackcwf_track_message_storage();
                """);

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
