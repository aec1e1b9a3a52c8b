using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Jackcwf.Api.Data.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class CheaperStorageTrigger : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            // As on PostgreSQL: an empty insert (an answer's placeholder) leaves the counter alone, and an
            // update of the text creates the user's row when it is missing (no row means 0 characters).
            migrationBuilder.Sql("DROP TRIGGER IF EXISTS messages_storage_insert;");
            migrationBuilder.Sql("""
                CREATE TRIGGER messages_storage_insert AFTER INSERT ON messages
                WHEN length(NEW."Content") > 0 BEGIN
                  INSERT INTO user_storage ("UserId", "StoredChars") VALUES (NEW."UserId", length(NEW."Content"))
                  ON CONFLICT ("UserId") DO UPDATE SET "StoredChars" = "StoredChars" + excluded."StoredChars";
                END;
                """);
            migrationBuilder.Sql("DROP TRIGGER IF EXISTS messages_storage_update;");
            migrationBuilder.Sql("""
                CREATE TRIGGER messages_storage_update AFTER UPDATE OF "Content" ON messages
                WHEN length(NEW."Content") <> length(OLD."Content") BEGIN
                  INSERT INTO user_storage ("UserId", "StoredChars") VALUES (NEW."UserId", length(NEW."Content") - length(OLD."Content"))
                  ON CONFLICT ("UserId") DO UPDATE SET "StoredChars" = "StoredChars" + excluded."StoredChars";
                END;
                """);
            migrationBuilder.Sql("DROP TRIGGER IF EXISTS messages_storage_delete;");
            migrationBuilder.Sql("""
                CREATE TRIGGER messages_storage_delete AFTER DELETE ON messages
                WHEN length(OLD."Content") > 0 BEGIN
                  UPDATE user_storage SET "StoredChars" = "StoredChars" - length(OLD."Content") WHERE "UserId" = OLD."UserId";
                END;
                """);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.Sql("DROP TRIGGER IF EXISTS messages_storage_insert;");
            migrationBuilder.Sql("""
                CREATE TRIGGER messages_storage_insert AFTER INSERT ON messages BEGIN
                  INSERT INTO user_storage ("UserId", "StoredChars") VALUES (NEW."UserId", length(NEW."Content"))
                  ON CONFLICT ("UserId") DO UPDATE SET "StoredChars" = "StoredChars" + excluded."StoredChars";
                END;
                """);
            migrationBuilder.Sql("DROP TRIGGER IF EXISTS messages_storage_update;");
            migrationBuilder.Sql("""
                CREATE TRIGGER messages_storage_update AFTER UPDATE OF "Content" ON messages
                WHEN length(NEW."Content") <> length(OLD."Content") BEGIN
                  UPDATE user_storage SET "StoredChars" = "StoredChars" + length(NEW."Content") - length(OLD."Content") WHERE "UserId" = NEW."UserId";
                END;
                """);
            migrationBuilder.Sql("DROP TRIGGER IF EXISTS messages_storage_delete;");
            migrationBuilder.Sql("""
                CREATE TRIGGER messages_storage_delete AFTER DELETE ON messages BEGIN
                  UPDATE user_storage SET "StoredChars" = "StoredChars" - length(OLD."Content") WHERE "UserId" = OLD."UserId";
                END;
                """);
        }
    }
}
