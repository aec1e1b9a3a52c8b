using Jackcwf.Api.Conversations;
using Jackcwf.Api.Data;
using Microsoft.EntityFrameworkCore;

namespace Jackcwf.Api.Tests;

/// <summary>Measures live memory, so it runs alone: other tests allocating in this process would blur the figure.</summary>
[CollectionDefinition(nameof(MemoryMeasurement), DisableParallelization = true)]
public sealed class MemoryMeasurement;

/// <summary>
/// Issue 12, hole 9: a conversation at the message cap is written out (unpaged view, JSON and
/// Markdown export) with the memory of one batch, not of the conversation. Live memory is sampled
/// with a full collection while the response is being written, so the figure does not depend on
/// when the collector happens to run.
/// </summary>
[Collection(nameof(MemoryMeasurement))]
public sealed class ConversationMemoryTests : IAsyncLifetime
{
    private const int Messages = 200;
    private const int CharsPerMessage = 50_000;
    /// <summary>The text alone as .NET strings: 20 MB. Holding the conversation would cost at least this.</summary>
    private const long ConversationBytes = 2L * Messages * CharsPerMessage;
    /// <summary>Half the conversation: a batch or two of messages (strings, entities, buffers) fit in it, the conversation does not.</summary>
    private const long Bound = ConversationBytes / 2;

    private readonly string _dir = Path.Combine(Path.GetTempPath(), "jackcwf-memory-" + Guid.NewGuid().ToString("N"));
    private Conversation _conversation = null!;

    private SqliteAppDbContext NewContext() =>
        new(new DbContextOptionsBuilder<SqliteAppDbContext>().UseSqlite($"Data Source={Path.Combine(_dir, "app.db")};Pooling=False").Options);

    public async ValueTask InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        await using var db = NewContext();
        await db.Database.MigrateAsync();
        var user = new AppUser { Id = Guid.NewGuid(), UserName = "memory@example.com", Email = "memory@example.com" };
        db.Users.Add(user);
        _conversation = new Conversation { Id = TimeProvider.System.NewId(), UserId = user.Id, Title = "At the cap", Model = "demo/echo", CreatedAt = TimeProvider.System.UtcNowForStorage(), UpdatedAt = TimeProvider.System.UtcNowForStorage() };
        db.Conversations.Add(_conversation);
        Guid? parent = null;
        for (var i = 0; i < Messages; i++)
        {
            var now = TimeProvider.System.UtcNowForStorage();
            var m = new Message
            {
                Id = TimeProvider.System.NewId(), ConversationId = _conversation.Id, UserId = user.Id, ParentMessageId = parent,
                Role = i % 2 == 0 ? MessageRoles.User : MessageRoles.Assistant, Content = new string((char)('a' + i % 26), CharsPerMessage),
                Status = MessageStatuses.Complete, Model = "demo/echo", CreatedAt = now, UpdatedAt = now, CompletedAt = now,
            };
            db.Messages.Add(m);
            parent = m.Id;
        }
        await db.SaveChangesAsync();
    }

    public ValueTask DisposeAsync()
    {
        Directory.Delete(_dir, recursive: true);
        return ValueTask.CompletedTask;
    }

    [Fact]
    public Task Hole9_ViewingAConversationAtTheCapHoldsItInMemory() =>
        AssertBoundedAsync((body, db, ct) => ConversationStreams.WriteJsonAsync(body, db, _conversation, export: false, ct), "\"nextCursor\":null}");

    [Fact]
    public Task Hole9_JsonExportOfAConversationAtTheCapHoldsItInMemory() =>
        AssertBoundedAsync((body, db, ct) => ConversationStreams.WriteJsonAsync(body, db, _conversation, export: true, ct), "\"format\":\"jackcwf.conversation.v1\"}");

    [Fact]
    public Task Hole9_MarkdownExportOfAConversationAtTheCapHoldsItInMemory() =>
        AssertBoundedAsync((body, db, ct) => ConversationStreams.WriteMarkdownAsync(body, db, _conversation, ct), new string('r', 100) + "\n");

    private async Task AssertBoundedAsync(Func<Stream, AppDbContext, CancellationToken, Task> write, string ending)
    {
        await using var db = NewContext();
        var sink = new SamplingStream();
        await write(sink, db, CancellationToken.None); // warm-up: compiled queries, pooled buffers
        sink = new SamplingStream();
        await write(sink, db, TestContext.Current.CancellationToken);

        Assert.True(sink.Written > Messages * CharsPerMessage, $"only {sink.Written} bytes were written");
        Assert.EndsWith(ending, sink.Tail);
        Assert.True(sink.Samples >= 5, $"only {sink.Samples} samples were taken");
        TestContext.Current.SendDiagnosticMessage($"{sink.Written / 1e6:0.0} MB written; live memory grew at most {sink.PeakGrowth / 1e6:0.0} MB (conversation text: {ConversationBytes / 1e6:0} MB)");
        Assert.True(sink.PeakGrowth < Bound,
            $"live memory grew by {sink.PeakGrowth / 1e6:0.0} MB while writing a conversation of {ConversationBytes / 1e6:0} MB (bound {Bound / 1e6:0} MB)");
    }

    /// <summary>Discards what is written, sampling live memory (after a full collection) every MB.</summary>
    private sealed class SamplingStream : Stream
    {
        private const long SampleEvery = 1024 * 1024;
        private readonly long _baseline = GC.GetTotalMemory(forceFullCollection: true);
        private long _nextSample = SampleEvery;
        private readonly char[] _tail = new char[256];
        private int _tailLength;

        public long Written { get; private set; }
        public long PeakGrowth { get; private set; }
        public int Samples { get; private set; }
        public string Tail => new(_tail, 0, _tailLength);

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            Written += buffer.Length;
            var keep = buffer[Math.Max(0, buffer.Length - _tail.Length)..];
            var shift = Math.Min(_tailLength, _tail.Length - keep.Length);
            Array.Copy(_tail, _tailLength - shift, _tail, 0, shift);
            for (var i = 0; i < keep.Length; i++)
            {
                _tail[shift + i] = (char)keep[i];
            }
            _tailLength = shift + keep.Length;
            if (Written >= _nextSample)
            {
                _nextSample += SampleEvery;
                Samples++;
                PeakGrowth = Math.Max(PeakGrowth, GC.GetTotalMemory(forceFullCollection: true) - _baseline);
            }
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        {
            Write(buffer.AsSpan(offset, count));
            return Task.CompletedTask;
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Write(buffer.Span);
            return ValueTask.CompletedTask;
        }

        public override void Flush()
        {
        }

        public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => Written;
        public override long Position { get => Written; set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
