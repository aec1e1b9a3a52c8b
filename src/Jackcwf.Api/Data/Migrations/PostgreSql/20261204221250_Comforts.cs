using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Jackcwf.Api.Data.Migrations.PostgreSql
{
    /// <inheritdoc />
    public partial class Comforts : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<bool>(
                name: "Archived",
                table: "conversations",
                type: "boolean",
                nullable: false,
                defaultValue: false);

            migrationBuilder.AddColumn<Guid>(
                name: "FolderId",
                table: "conversations",
                type: "uuid",
                nullable: true);

            migrationBuilder.AddColumn<bool>(
                name: "Pinned",
                table: "conversations",
                type: "boolean",
                nullable: false,
                defaultValue: false);

            migrationBuilder.CreateTable(
                name: "folders",
                columns: table => new
                {
                    Id = table.Column<Guid>(type: "uuid", nullable: false),
                    UserId = table.Column<Guid>(type: "uuid", nullable: false),
                    Name = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: false),
                    CreatedAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: false),
                    UpdatedAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_folders", x => x.Id);
                    table.ForeignKey(
                        name: "FK_folders_AspNetUsers_UserId",
                        column: x => x.UserId,
                        principalTable: "AspNetUsers",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "message_feedback",
                columns: table => new
                {
                    MessageId = table.Column<Guid>(type: "uuid", nullable: false),
                    UserId = table.Column<Guid>(type: "uuid", nullable: false),
                    ConversationId = table.Column<Guid>(type: "uuid", nullable: false),
                    Model = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: false),
                    Rating = table.Column<string>(type: "character varying(8)", maxLength: 8, nullable: false),
                    Comment = table.Column<string>(type: "character varying(2000)", maxLength: 2000, nullable: true),
                    CreatedAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: false),
                    UpdatedAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_message_feedback", x => x.MessageId);
                    table.ForeignKey(
                        name: "FK_message_feedback_AspNetUsers_UserId",
                        column: x => x.UserId,
                        principalTable: "AspNetUsers",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                    table.ForeignKey(
                        name: "FK_message_feedback_messages_MessageId",
                        column: x => x.MessageId,
                        principalTable: "messages",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "saved_prompts",
                columns: table => new
                {
                    Id = table.Column<Guid>(type: "uuid", nullable: false),
                    UserId = table.Column<Guid>(type: "uuid", nullable: false),
                    Title = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: false),
                    Command = table.Column<string>(type: "character varying(32)", maxLength: 32, nullable: true),
                    Text = table.Column<string>(type: "character varying(20000)", maxLength: 20000, nullable: false),
                    CreatedAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: false),
                    UpdatedAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_saved_prompts", x => x.Id);
                    table.ForeignKey(
                        name: "FK_saved_prompts_AspNetUsers_UserId",
                        column: x => x.UserId,
                        principalTable: "AspNetUsers",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateIndex(
                name: "IX_conversations_FolderId",
                table: "conversations",
                column: "FolderId");

            migrationBuilder.CreateIndex(
                name: "IX_conversations_UserId_Archived_Pinned_UpdatedAt",
                table: "conversations",
                columns: new[] { "UserId", "Archived", "Pinned", "UpdatedAt" });

            migrationBuilder.CreateIndex(
                name: "IX_folders_UserId",
                table: "folders",
                column: "UserId");

            migrationBuilder.CreateIndex(
                name: "IX_message_feedback_UpdatedAt",
                table: "message_feedback",
                column: "UpdatedAt");

            migrationBuilder.CreateIndex(
                name: "IX_message_feedback_UserId",
                table: "message_feedback",
                column: "UserId");

            migrationBuilder.CreateIndex(
                name: "IX_saved_prompts_UserId_Command",
                table: "saved_prompts",
                columns: new[] { "UserId", "Command" },
                unique: true);

            migrationBuilder.AddForeignKey(
                name: "FK_conversations_folders_FolderId",
                table: "conversations",
                column: "FolderId",
                principalTable: "folders",
                principalColumn: "Id",
                onDelete: ReferentialAction.SetNull);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropForeignKey(
                name: "FK_conversations_folders_FolderId",
                table: "conversations");

            migrationBuilder.DropTable(
                name: "folders");

            migrationBuilder.DropTable(
                name: "message_feedback");

            migrationBuilder.DropTable(
                name: "saved_prompts");

            migrationBuilder.DropIndex(
                name: "IX_conversations_FolderId",
                table: "conversations");

            migrationBuilder.DropIndex(
                name: "IX_conversations_UserId_Archived_Pinned_UpdatedAt",
                table: "conversations");

            migrationBuilder.DropColumn(
                name: "Archived",
                table: "conversations");

            migrationBuilder.DropColumn(
                name: "FolderId",
                table: "conversations");

            migrationBuilder.DropColumn(
                name: "Pinned",
                table: "conversations");
        }
    }
}
