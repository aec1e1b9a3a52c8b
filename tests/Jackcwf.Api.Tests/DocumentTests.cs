using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using DocumentFormat.OpenXml;
using DocumentFormat.OpenXml.Packaging;
using DocumentFormat.OpenXml.Wordprocessing;
using Jackcwf.Api.Files;
using Jackcwf.Testing;
using UglyToad.PdfPig.Core;
using UglyToad.PdfPig.Fonts.Standard14Fonts;
using UglyToad.PdfPig.Writer;

namespace Jackcwf.Api.Tests;

/// <summary>Small limits so the size, quota and takeover rules are reached with small files and short waits.</summary>
internal static class DocumentLimits
{
    public const int MaxBytes = 64 * 1024;
    public const int QuotaBytes = 200 * 1024;

    public static IReadOnlyDictionary<string, string?> Environment => new Dictionary<string, string?>
    {
        ["FILE_MAX_BYTES"] = MaxBytes.ToString(),
        ["FILES_QUOTA_BYTES"] = QuotaBytes.ToString(),
        // Chunks of about one paragraph, so the answer's paragraph is a chunk of its own.
        ["FILES_CHUNK_CHARS"] = "300",
        ["FILES_CHUNK_OVERLAP_CHARS"] = "40",
        // A claim lapses after 6 s and the sweep runs every 3 s: a crashed replica's file is taken over quickly.
        ["Files__ClaimSeconds"] = "6",
    };
}

public sealed class SqliteDocumentFixture : SqliteServiceFixture
{
    protected override IReadOnlyDictionary<string, string?> ExtraEnvironment => DocumentLimits.Environment;
}

public sealed class PostgresDocumentFixture : PostgresServiceFixture
{
    protected override IReadOnlyDictionary<string, string?> ExtraEnvironment => DocumentLimits.Environment;
}

/// <summary>Test documents written by the libraries the service reads them with.</summary>
public static class DocumentFixtures
{
    public static byte[] Pdf(params string[] lines)
    {
        using var builder = new PdfDocumentBuilder();
        var font = builder.AddStandard14Font(Standard14Font.Helvetica);
        var page = builder.AddPage(595, 842);
        var y = 800.0;
        foreach (var line in lines)
        {
            page.AddText(line, 11, new PdfPoint(40, y), font);
            y -= 16;
        }
        return builder.Build();
    }

    public static byte[] Docx(params string[] paragraphs)
    {
        using var stream = new MemoryStream();
        using (var doc = WordprocessingDocument.Create(stream, WordprocessingDocumentType.Document))
        {
            var main = doc.AddMainDocumentPart();
            main.Document = new Document(new Body(paragraphs.Select(p => new Paragraph(new Run(new Text(p) { Space = SpaceProcessingModeValues.Preserve })))));
            main.Document.Save();
        }
        return stream.ToArray();
    }

    public static async Task<HttpResponseMessage> UploadAsync(this TestUser u, string name, byte[] data, string contentType = "application/octet-stream")
    {
        using var form = new MultipartFormDataContent();
        var file = new ByteArrayContent(data);
        file.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        form.Add(file, "file", name);
        return await u.Http.PostAsync("api/files", form);
    }

    public static async Task<Guid> UploadReadyAsync(this TestUser u, string name, byte[] data, ApiProcess? api = null)
    {
        var r = await u.UploadAsync(name, data);
        var body = await r.Content.ReadAsStringAsync();
        Assert.True(r.StatusCode == HttpStatusCode.Created, $"upload {name}: {(int)r.StatusCode} {body}");
        var id = JsonNode.Parse(body)!["id"]!.GetValue<Guid>();
        var file = await u.WaitForFileAsync(id);
        Assert.True(file["status"]!.GetValue<string>() == "ready", $"{name}: {file.ToJsonString()}\n{(api is null ? "" : api.Logs[^Math.Min(api.Logs.Length, 8000)..])}");
        return id;
    }

    /// <summary>Polls until the file is no longer processing (the embedding model loads on first use, so the first file takes longest).</summary>
    public static async Task<JsonObject> WaitForFileAsync(this TestUser u, Guid id)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(120);
        // Backing off to one look a second keeps a slow first load well inside the per-user rate limit.
        for (var wait = 50; ; wait = Math.Min(1000, wait * 2))
        {
            var file = (await u.Http.GetFromJsonAsync<JsonObject>($"api/files/{id}"))!;
            if (file["status"]!.GetValue<string>() != "processing" || DateTime.UtcNow > deadline)
            {
                return file;
            }
            await Task.Delay(wait);
        }
    }
}

/// <summary>Uploads, extraction, limits, ownership and answers grounded in attached files, on one database.</summary>
public abstract class DocumentTests<TFixture>(TFixture fx) where TFixture : ServiceFixture
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task EachTypeIsRecognisedByContentExtractedChunkedAndExported()
    {
        var u = await fx.CreateUserAsync();
        var uploads = new (string Name, byte[] Data, string Type, string Phrase)[]
        {
            ("notes.txt", Encoding.UTF8.GetBytes("Plain words about the amber lighthouse.\n"), "text/plain", "amber lighthouse"),
            ("readme.md", Encoding.UTF8.GetBytes("# Title\n\nMarkdown about the *cobalt* windmill.\n"), "text/markdown", "windmill"),
            // The name says text; the content is a PDF, and that is what counts.
            ("scan.txt", DocumentFixtures.Pdf("A PDF line about the crimson observatory."), "application/pdf", "crimson observatory"),
            ("letter.docx", DocumentFixtures.Docx("A Word paragraph about the jade aqueduct.", "Second paragraph."), DocumentText.Docx, "jade aqueduct"),
        };
        var ids = new List<Guid>();
        foreach (var (name, data, type, _) in uploads)
        {
            var id = await u.UploadReadyAsync(name, data, fx.Api);
            var file = (await u.Http.GetFromJsonAsync<JsonObject>($"api/files/{id}", Ct))!;
            Assert.Equal(name, file["name"]!.GetValue<string>());
            Assert.Equal(type, file["contentType"]!.GetValue<string>());
            Assert.Equal(data.Length, file["size"]!.GetValue<long>());
            Assert.True(file["chunkCount"]!.GetValue<int>() >= 1);
            ids.Add(id);
        }
        var list = (await u.Http.GetFromJsonAsync<JsonObject>("api/files", Ct))!["items"]!.AsArray();
        Assert.Equal(ids.AsEnumerable().Reverse(), list.Select(f => f!["id"]!.GetValue<Guid>()));

        // The export holds each file's metadata and extracted text.
        var r = await u.Http.GetAsync("api/me/export", Ct);
        using var zip = new ZipArchive(await r.Content.ReadAsStreamAsync(Ct));
        string Read(string entry)
        {
            using var reader = new StreamReader(zip.GetEntry(entry)!.Open());
            return reader.ReadToEnd();
        }
        var exported = JsonNode.Parse(Read("files.json"))!.AsArray();
        Assert.Equal(4, exported.Count);
        for (var i = 0; i < uploads.Length; i++)
        {
            var text = Read($"files/{ids[i]}.txt");
            Assert.Contains(uploads[i].Phrase, text);
        }

        Assert.Equal(HttpStatusCode.NoContent, (await u.Http.DeleteAsync($"api/files/{ids[0]}", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await u.Http.GetAsync($"api/files/{ids[0]}", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await u.Http.DeleteAsync($"api/files/{ids[0]}", Ct)).StatusCode);
    }

    [Fact]
    public async Task OversizedFilesAre413AndDisguisedOrUnknownTypesAre415()
    {
        var u = await fx.CreateUserAsync();
        var big = await u.UploadAsync("big.txt", Encoding.UTF8.GetBytes(new string('a', DocumentLimits.MaxBytes + 1)));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, big.StatusCode);
        Assert.Equal("application/problem+json", big.Content.Headers.ContentType?.MediaType);
        Assert.Contains("file", await big.Content.ReadAsStringAsync(Ct));

        // A Windows executable named .pdf, and a ZIP that is not a Word document named .docx.
        var exe = new byte[4096];
        new Random(7).NextBytes(exe);
        "MZ\u0090\0"u8.CopyTo(exe);
        var zip = new MemoryStream();
        using (var archive = new ZipArchive(zip, ZipArchiveMode.Create, leaveOpen: true))
        {
            using var w = new StreamWriter(archive.CreateEntry("payload.bin").Open());
            w.Write("not a document");
        }
        foreach (var (name, data) in new[] { ("invoice.pdf", exe), ("report.docx", zip.ToArray()), ("notes.txt", new byte[] { 0x48, 0x00, 0x01, 0x02 }) })
        {
            var r = await u.UploadAsync(name, data, name.EndsWith(".pdf") ? "application/pdf" : "text/plain");
            Assert.Equal(HttpStatusCode.UnsupportedMediaType, r.StatusCode);
            var problem = await r.Content.ReadFromJsonAsync<JsonElement>(Ct);
            Assert.Equal("unsupported_file_type", problem.GetProperty("code").GetString());
            Assert.True(problem.GetProperty("errors").TryGetProperty("file", out _));
        }

        var json = await u.Http.PostAsJsonAsync("api/files", new { name = "x" }, Ct);
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, json.StatusCode);
        using var noFile = new MultipartFormDataContent { { new StringContent("hello"), "other" } };
        var missing = await u.Http.PostAsync("api/files", noFile, Ct);
        Assert.Equal(HttpStatusCode.BadRequest, missing.StatusCode);
        Assert.Contains("file", await missing.Content.ReadAsStringAsync(Ct));
        // Nothing refused was kept.
        Assert.Empty((await u.Http.GetFromJsonAsync<JsonObject>("api/files", Ct))!["items"]!.AsArray());
    }

    [Fact]
    public async Task StorageQuotaIsEnforcedAndDeletingMakesRoom()
    {
        var u = await fx.CreateUserAsync();
        // 60 KiB that claim to be a PDF: accepted by their header, they count against the quota, and their
        // processing fails at once (60 KiB of text would queue hundreds of chunks to embed for nothing).
        var piece = new byte[60 * 1024];
        new Random(11).NextBytes(piece);
        "%PDF-1.7\n"u8.CopyTo(piece);
        var ids = new List<Guid>();
        for (var i = 0; i < 3; i++)
        {
            var r = await u.UploadAsync($"part{i}.pdf", piece);
            Assert.Equal(HttpStatusCode.Created, r.StatusCode);
            ids.Add((await r.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetGuid());
        }
        var refused = await u.UploadAsync("part3.pdf", piece);
        Assert.Equal(HttpStatusCode.Conflict, refused.StatusCode);
        Assert.Equal("file_quota_exceeded", (await refused.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("code").GetString());
        // Another user has a quota of their own.
        Assert.Equal(HttpStatusCode.Created, (await (await fx.CreateUserAsync()).UploadAsync("mine.pdf", piece)).StatusCode);

        Assert.Equal(HttpStatusCode.NoContent, (await u.Http.DeleteAsync($"api/files/{ids[0]}", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await u.UploadAsync("part3.pdf", piece)).StatusCode);
        // What is not a readable PDF ends failed with a reason, and still counted until deleted.
        var failed = await u.WaitForFileAsync(ids[1]);
        Assert.Equal("failed", failed["status"]!.GetValue<string>());
        Assert.Contains("PDF", failed["error"]!.GetValue<string>());
    }

    [Fact]
    public async Task AnotherUsersFileIs404OnEveryRouteAndWhenAttached()
    {
        var owner = await fx.CreateUserAsync();
        var other = await fx.CreateUserAsync();
        var file = await owner.UploadReadyAsync("private.txt", Encoding.UTF8.GetBytes("The owner's private plans for the garden."));

        Assert.Equal(HttpStatusCode.NotFound, (await other.Http.GetAsync($"api/files/{file}", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await other.Http.DeleteAsync($"api/files/{file}", Ct)).StatusCode);
        Assert.Empty((await other.Http.GetFromJsonAsync<JsonObject>("api/files", Ct))!["items"]!.AsArray());

        var create = await other.Http.PostAsJsonAsync("api/conversations", new { fileIds = new[] { file } }, Ct);
        Assert.Equal(HttpStatusCode.NotFound, create.StatusCode);
        var c = await other.CreateConversationAsync();
        Assert.Equal(HttpStatusCode.NotFound, (await other.Http.PatchAsJsonAsync($"api/conversations/{c}", new { fileIds = new[] { file } }, Ct)).StatusCode);
        var send = await other.Http.PostAsJsonAsync($"api/conversations/{c}/messages", new { content = "what are the plans?", fileIds = new[] { file } }, Ct);
        Assert.Equal(HttpStatusCode.NotFound, send.StatusCode);
        Assert.Equal("application/problem+json", send.Content.Headers.ContentType?.MediaType);
        // Nothing of the refused message was stored, and nothing was attached.
        var conversation = await other.GetConversationAsync(c);
        Assert.Empty(conversation["messages"]!.AsArray());
        Assert.Empty(conversation["fileIds"]!.AsArray());

        // The owner still has it, unharmed.
        Assert.Equal(HttpStatusCode.OK, (await owner.Http.GetAsync($"api/files/{file}", Ct)).StatusCode);
    }

    [Fact]
    public async Task AnAnswerCitesTheAttachedDocumentThatHoldsItAndNeverAnotherUsersDocuments()
    {
        var u = await fx.CreateUserAsync();
        var other = await fx.CreateUserAsync();
        string[] paragraphs =
        [
            "Sourdough bread needs a lively starter, a long cold proof in the refrigerator and a very hot oven with steam for a crisp crust.",
            "The weather in the mountains changes quickly; hikers should carry a waterproof jacket, a map and enough water for the whole day.",
            "Project Heliotrope launch code: the launch code for Project Heliotrope is PURPLE-OTTER-42, known only to the flight director.",
            "Tomato plants grow best in full sun with regular deep watering, and they need stakes or cages once the fruit begins to set.",
            "Saturn has the most spectacular rings in the solar system, made of countless pieces of ice and rock orbiting the planet.",
        ];
        var manual = await u.UploadReadyAsync("manual.pdf", DocumentFixtures.Pdf(paragraphs));
        var recipes = await u.UploadReadyAsync("recipes.md", Encoding.UTF8.GetBytes("# Recipes\n\nPancakes need flour, milk, eggs and a hot pan. Serve them with maple syrup.\n"));
        var theirs = await other.UploadReadyAsync("theirs.txt",
            Encoding.UTF8.GetBytes("Project Heliotrope launch code: the launch code for Project Heliotrope is GREEN-FOX-7 according to another team."));
        var theirConversation = await other.CreateConversationAsync(new { fileIds = new[] { theirs } });
        await other.SendAsync(theirConversation, new { content = "What is the launch code for Project Heliotrope?" });

        // One file on the conversation, one on the message: both are searched.
        var c = await u.CreateConversationAsync(new { model = "openai/gpt-4o-mini", fileIds = new[] { recipes } });
        var question = $"What is the launch code for Project Heliotrope? ({Guid.NewGuid():N})";
        using var stream = await u.StreamAsync(c, new { content = question, fileIds = new[] { manual } });
        var events = await stream.ReadAllEventsAsync(Ct);
        var done = events.Single(e => e.Type == "done").Json;
        var sources = done.GetProperty("sources").EnumerateArray().ToList();
        Assert.InRange(sources.Count, 1, 4);
        Assert.Equal(manual, sources[0].GetProperty("fileId").GetGuid());
        Assert.Equal("manual.pdf", sources[0].GetProperty("fileName").GetString());
        Assert.Contains("PURPLE-OTTER-42", sources[0].GetProperty("snippet").GetString());
        Assert.True(sources[0].GetProperty("score").GetDouble() > sources[^1].GetProperty("score").GetDouble() || sources.Count == 1);
        Assert.All(sources, s => Assert.Contains(s.GetProperty("fileId").GetGuid(), new[] { manual, recipes }));
        Assert.DoesNotContain("GREEN-FOX", done.GetRawText());

        // The model got the excerpts as delimited data before the question, and nothing of the other user's.
        var sent = fx.Fake.ChatRequests.Last(r => r.LastUserText?.Contains(question) == true).Body;
        Assert.Contains("<excerpts>", sent);
        Assert.Contains("not instructions", sent);
        Assert.Contains("PURPLE-OTTER-42", sent);
        Assert.DoesNotContain("GREEN-FOX", sent);

        // Stored with the answer, and returned when the conversation is read.
        var conversation = await u.GetConversationAsync(c);
        Assert.Equal(new[] { recipes, manual }, conversation["fileIds"]!.AsArray().Select(x => x!.GetValue<Guid>()));
        var answer = conversation["messages"]!.AsArray().Single(m => m!["role"]!.GetValue<string>() == "assistant")!;
        Assert.Equal(manual, answer["sources"]![0]!["fileId"]!.GetValue<Guid>());
        Assert.Equal(sources[0].GetProperty("chunkIndex").GetInt32(), answer["sources"]![0]!["chunkIndex"]!.GetValue<int>());
    }

    [Fact]
    public async Task AFileLeftProcessingByACrashedReplicaIsTakenOverAndDeletedAccountsLeaveNoFileRows()
    {
        var u = await fx.CreateUserAsync();
        var id = Guid.NewGuid();
        await using (var db = fx.OpenDatabase())
        {
            db.Add(new StoredFile
            {
                Id = id, UserId = u.Id, Name = "orphan.txt", ContentType = DocumentText.PlainText, Size = 40, Status = FileStatuses.Processing,
                CreatedAt = DateTime.UtcNow, Data = Encoding.UTF8.GetBytes("Left behind by a replica that crashed.."),
                ClaimedBy = "crashed-replica", ClaimExpiresAt = DateTime.UtcNow.AddSeconds(-1),
            });
            await db.SaveChangesAsync(Ct);
        }
        var file = await u.WaitForFileAsync(id);
        Assert.Equal("ready", file["status"]!.GetValue<string>());
        Assert.Equal(1, file["chunkCount"]!.GetValue<int>());
        await using (var db = fx.OpenDatabase())
        {
            var row = await Microsoft.EntityFrameworkCore.EntityFrameworkQueryableExtensions.SingleAsync(db.Set<StoredFile>(), f => f.Id == id, Ct);
            Assert.Null(row.Data);
            Assert.Null(row.ClaimedBy);
        }

        var c = await u.CreateConversationAsync(new { fileIds = new[] { id } });
        await u.SendAsync(c, new { content = "what was left behind?" });
        using var delete = new HttpRequestMessage(HttpMethod.Delete, "api/me") { Content = JsonContent.Create(new { password = u.Password }) };
        Assert.Equal(HttpStatusCode.NoContent, (await u.Http.SendAsync(delete, Ct)).StatusCode);
        await using (var db = fx.OpenDatabase())
        {
            Assert.False(await Microsoft.EntityFrameworkCore.EntityFrameworkQueryableExtensions.AnyAsync(db.Set<StoredFile>(), f => f.UserId == u.Id, Ct));
            Assert.False(await Microsoft.EntityFrameworkCore.EntityFrameworkQueryableExtensions.AnyAsync(db.Set<FileChunk>(), f => f.UserId == u.Id, Ct));
            Assert.False(await Microsoft.EntityFrameworkCore.EntityFrameworkQueryableExtensions.AnyAsync(db.Set<ConversationFile>(), f => f.UserId == u.Id, Ct));
        }
    }
}

public sealed class SqliteDocumentTests(SqliteDocumentFixture fx) : DocumentTests<SqliteDocumentFixture>(fx), IClassFixture<SqliteDocumentFixture>;

public sealed class PostgresDocumentTests(PostgresDocumentFixture fx) : DocumentTests<PostgresDocumentFixture>(fx), IClassFixture<PostgresDocumentFixture>;
