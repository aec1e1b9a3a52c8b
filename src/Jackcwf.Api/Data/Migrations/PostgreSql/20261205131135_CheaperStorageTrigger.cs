using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Jackcwf.Api.Data.Migrations.PostgreSql
{
    /// <inheritdoc />
    public partial class CheaperStorageTrigger : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            // The storage counter (see UserStorage) as three triggers, one per event, whose WHEN conditions
            // skip the writes that change nothing without calling a function: an answer's placeholder is
            // inserted empty, so a turn runs the counter twice (its question, its answer's final text), not
            // three times. Since an empty insert no longer creates the user's row, an update of the text
            // creates it when it is missing (no row means 0 characters). One transaction: every writer,
            // the previous release's too, is counted by the old trigger or by the new ones, never both.
            // The old function stays (unused) until a contract migration drops it.
            migrationBuilder.Sql("""
                CREATE FUNCTION jackcwf_storage_insert() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                  INSERT INTO user_storage ("UserId", "StoredChars") VALUES (NEW."UserId", length(NEW."Content"))
                  ON CONFLICT ("UserId") DO UPDATE SET "StoredChars" = user_storage."StoredChars" + EXCLUDED."StoredChars";
                  RETURN NULL;
                END $$;
                CREATE FUNCTION jackcwf_storage_update() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                  UPDATE user_storage SET "StoredChars" = "StoredChars" + length(NEW."Content") - length(OLD."Content") WHERE "UserId" = NEW."UserId";
                  IF NOT FOUND THEN
                    INSERT INTO user_storage ("UserId", "StoredChars") VALUES (NEW."UserId", length(NEW."Content") - length(OLD."Content"))
                    ON CONFLICT ("UserId") DO UPDATE SET "StoredChars" = user_storage."StoredChars" + EXCLUDED."StoredChars";
                  END IF;
                  RETURN NULL;
                END $$;
                CREATE FUNCTION jackcwf_storage_delete() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                  UPDATE user_storage SET "StoredChars" = "StoredChars" - length(OLD."Content") WHERE "UserId" = OLD."UserId";
                  RETURN NULL;
                END $$;
                DROP TRIGGER messages_track_storage ON messages;
                CREATE TRIGGER messages_storage_insert AFTER INSERT ON messages
                  FOR EACH ROW WHEN (length(NEW."Content") > 0) EXECUTE FUNCTION jackcwf_storage_insert();
                CREATE TRIGGER messages_storage_update AFTER UPDATE OF "Content" ON messages
                  FOR EACH ROW WHEN (length(NEW."Content") <> length(OLD."Content")) EXECUTE FUNCTION jackcwf_storage_update();
                CREATE TRIGGER messages_storage_delete AFTER DELETE ON messages
                  FOR EACH ROW WHEN (length(OLD."Content") > 0) EXECUTE FUNCTION jackcwf_storage_delete();
                """);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.Sql("""
                DROP TRIGGER IF EXISTS messages_storage_insert ON messages;
                DROP TRIGGER IF EXISTS messages_storage_update ON messages;
                DROP TRIGGER IF EXISTS messages_storage_delete ON messages;
                CREATE TRIGGER messages_track_storage AFTER INSERT OR DELETE OR UPDATE OF "Content" ON messages
                  FOR EACH ROW EXECUTE FUNCTION jackcwf_track_message_storage();
                DROP FUNCTION IF EXISTS jackcwf_storage_insert();
                DROP FUNCTION IF EXISTS jackcwf_storage_update();
                DROP FUNCTION IF EXISTS jackcwf_storage_delete();
                """);
        }
    }
}
