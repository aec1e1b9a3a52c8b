using System.Data.Common;
using System.Text;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Storage;

namespace Jackcwf.Api.Data;

/// <summary>
/// Many rows in one SQL statement, on PostgreSQL and SQLite alike: a multi-row <c>INSERT</c> and an
/// <c>UPDATE … FROM (VALUES …)</c> (<c>FROM unnest(…)</c> on PostgreSQL). Table and column names come from the EF Core model and every
/// value goes through the provider's own type mapping, so rows look exactly as EF Core writes them.
/// </summary>
/// <remarks>
/// Hand-written because EF Core sends one statement per row (<c>SaveChanges</c>) or one value for
/// every row (<c>ExecuteUpdate</c>); background writers (the usage ledger, checkpoints of running
/// answers) write hundreds of rows per tick, and one statement instead of hundreds is what keeps the
/// database's load flat as streams grow. The answers' final writes that finish together go the same way
/// (<see cref="UpdateRowsAsync{T, TKey}"/>, each row its own values).
/// </remarks>
internal static class BatchCommands
{
    /// <summary>
    /// PostgreSQL settings for the rest of a statement's transaction (<c>set_config(…, true)</c>) that leave the
    /// planner only the key's index to find rows given by their key: no sequential scan, no hash or merge join.
    /// </summary>
    private const string KeyIndexOnly =
        "set_config('enable_seqscan', 'off', true), set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)";

    /// <summary>Largest number of rows callers put in one statement (parameters stay far below both databases' limits).</summary>
    public const int MaxRows = 500;

    /// <summary><c>INSERT INTO t (…) VALUES (…), (…) ON CONFLICT DO NOTHING</c>: a retried batch does not fail on rows it already wrote.</summary>
    public static Task InsertAsync<T>(AppDbContext db, IReadOnlyList<T> rows, IReadOnlyList<(string Property, Func<T, object?> Value)> columns, CancellationToken ct)
        where T : class =>
        ExecuteAsync(db, typeof(T), ct, (command, map) =>
        {
            var properties = columns.Select(c => map.Property(c.Property)).ToArray();
            var text = new StringBuilder("INSERT INTO ").Append(map.Table).Append(" (")
                .AppendJoin(", ", columns.Select(c => map.Column(c.Property))).Append(") VALUES ");
            for (var r = 0; r < rows.Count; r++)
            {
                text.Append(r == 0 ? "(" : ", (");
                for (var c = 0; c < columns.Count; c++)
                {
                    text.Append(c == 0 ? "" : ", ").Append(map.Parameter(command, properties[c], columns[c].Value(rows[r])));
                }
                text.Append(')');
            }
            return text.Append(" ON CONFLICT DO NOTHING").ToString();
        });

    /// <summary>
    /// On PostgreSQL, the rows in one binary <c>COPY … FROM STDIN</c>: no SQL text to build and parse,
    /// no parameter per value (a 500-row ledger batch was 5,500 of them). It cannot skip rows already
    /// written, so a batch retried after a failure goes through <see cref="InsertAsync{T}"/> instead.
    /// On SQLite, <see cref="InsertAsync{T}"/>.
    /// </summary>
    public static async Task CopyAsync<T>(AppDbContext db, IReadOnlyList<T> rows, IReadOnlyList<(string Property, Func<T, object?> Value)> columns, CancellationToken ct)
        where T : class
    {
        if (db.Database.GetDbConnection() is not Npgsql.NpgsqlConnection connection)
        {
            await InsertAsync(db, rows, columns, ct);
            return;
        }
        var map = new TableMap(db, typeof(T));
        var types = new NpgsqlTypes.NpgsqlDbType[columns.Count];
        var names = new string[columns.Count];
        for (var c = 0; c < columns.Count; c++)
        {
            var property = map.Property(columns[c].Property);
            names[c] = map.Column(columns[c].Property);
            types[c] = CopyType(Nullable.GetUnderlyingType(property.ClrType) ?? property.ClrType, property.Name);
        }
        await db.Database.OpenConnectionAsync(ct);
        try
        {
            await using var importer = await connection.BeginBinaryImportAsync(
                $"COPY {map.Table} ({string.Join(", ", names)}) FROM STDIN (FORMAT BINARY)", ct);
            foreach (var row in rows)
            {
                await importer.StartRowAsync(ct);
                for (var c = 0; c < columns.Count; c++)
                {
                    if (columns[c].Value(row) is { } value)
                    {
                        await importer.WriteAsync(value, types[c], ct);
                    }
                    else
                    {
                        await importer.WriteNullAsync(ct);
                    }
                }
            }
            await importer.CompleteAsync(ct);
        }
        finally
        {
            await db.Database.CloseConnectionAsync();
        }
    }

    // Binary COPY sends each value in its column's wire format; the CLR types the entities use map one to one.
    private static NpgsqlTypes.NpgsqlDbType CopyType(Type type, string property) => type switch
    {
        _ when type == typeof(Guid) => NpgsqlTypes.NpgsqlDbType.Uuid,
        _ when type == typeof(string) => NpgsqlTypes.NpgsqlDbType.Text,
        _ when type == typeof(int) => NpgsqlTypes.NpgsqlDbType.Integer,
        _ when type == typeof(long) => NpgsqlTypes.NpgsqlDbType.Bigint,
        _ when type == typeof(decimal) => NpgsqlTypes.NpgsqlDbType.Numeric,
        _ when type == typeof(bool) => NpgsqlTypes.NpgsqlDbType.Boolean,
        _ when type == typeof(DateTime) => NpgsqlTypes.NpgsqlDbType.TimestampTz,
        _ => throw new InvalidOperationException($"{property}: no COPY wire type for {type.Name}; add one to BatchCommands.CopyType."),
    };

    /// <summary>
    /// Sets <paramref name="valueProperty"/> per row (by key) and <paramref name="shared"/> to one value for
    /// all, where <paramref name="filterProperty"/> equals <paramref name="filterValue"/>: one statement
    /// (on PostgreSQL the rows are two array parameters, <c>FROM unnest(…)</c>, so its text does not depend on
    /// the row count).
    /// </summary>
    public static Task UpdateAsync<T>(
        AppDbContext db, IReadOnlyList<(object Key, object? Value)> rows, string valueProperty,
        IReadOnlyList<(string Property, object? Value)> shared, string filterProperty, object filterValue, CancellationToken ct)
        where T : class =>
        ExecuteAsync(db, typeof(T), ct, (command, map) =>
        {
            var key = map.Property(map.KeyProperty);
            var value = map.Property(valueProperty);
            // The rows' columns are named column1, column2: as both PostgreSQL and SQLite name VALUES columns.
            var text = new StringBuilder("UPDATE ").Append(map.Table).Append(" SET ").Append(map.Column(valueProperty)).Append(" = v.column2");
            foreach (var (property, v) in shared)
            {
                text.Append(", ").Append(map.Column(property)).Append(" = ").Append(map.Parameter(command, map.Property(property), v));
            }
            var arrays = command is Npgsql.NpgsqlCommand && !TableMap.Converts(key) && !TableMap.Converts(value);
            if (arrays)
            {
                // On PostgreSQL the rows travel as two arrays: the statement's text is the same whatever the
                // row count, so it is prepared once per connection. With one VALUES row per generation, every
                // row count was a statement of its own, each prepared and kept on every pooled connection (up to
                // 20 KB of text each), pushing the chat turn's statements out of the connection's prepared slots.
                text.Append(" FROM unnest(").Append(map.ArrayParameter(command, key, rows.Select(r => r.Key))).Append(", ")
                    .Append(map.ArrayParameter(command, value, rows.Select(r => r.Value))).Append(") AS v(column1, column2)");
            }
            else
            {
                text.Append(" FROM (VALUES ");
                for (var r = 0; r < rows.Count; r++)
                {
                    text.Append(r == 0 ? "(" : ", (").Append(map.Parameter(command, key, rows[r].Key)).Append(", ")
                        .Append(map.Parameter(command, value, rows[r].Value)).Append(')');
                }
                text.Append(") AS v");
            }
            text.Append(" WHERE ").Append(map.Table).Append('.').Append(map.Column(map.KeyProperty)).Append(" = v.column1 AND ")
                .Append(map.Table).Append('.').Append(map.Column(filterProperty)).Append(" = ")
                .Append(map.Parameter(command, map.Property(filterProperty), filterValue));
            // Npgsql prepares the statement once it has run a few times, and PostgreSQL may then keep a generic plan made
            // while the table was young (a hash join over a sequential scan of every message) until the next analyze:
            // as for the grouped final writes, the rows are found by the key's index whatever the statistics say.
            return arrays ? $"SELECT {KeyIndexOnly};\n{text}" : text.ToString();
        });

    /// <summary>
    /// <c>UPDATE t SET a = …, b = … WHERE key = …</c>: one row's columns set to absolute values, in one
    /// statement whose text depends only on the columns named, so PostgreSQL runs it prepared. What
    /// <c>ExecuteUpdate</c> writes, without building and looking up an expression tree on every call; it
    /// runs as EF Core's command (<see cref="RunAsync"/>), so the failover strategy and the command metrics apply.
    /// </summary>
    public static Task<int> UpdateRowAsync<T>(AppDbContext db, object key, IReadOnlyList<(string Property, object? Value)> values, CancellationToken ct)
        where T : class
    {
        var shape = ShapeFor(db, typeof(T), null, values, 0);
        return RunAsync(db, shape.Command(db), shape.Values(key, values, Array.Empty<object>()), ct);
    }

    /// <summary>
    /// Sets the same columns of many rows, each row to its own values, by key, in one statement, and says which rows
    /// it found (<c>RETURNING</c> their keys): on PostgreSQL <c>UPDATE … FROM unnest(…)</c>, one array parameter per
    /// column, so the text is the same for any row count and runs prepared; on SQLite <c>UPDATE … FROM (VALUES …)</c>. One row runs <see cref="UpdateRowAsync{T}"/>'s command. Every row
    /// names the same columns in the same order. Runs as EF Core's command (<see cref="RunAsync"/>), each shape's
    /// command made once; a retry of it (the failover strategy) writes the same absolute values again.
    /// </summary>
    public static async Task<bool[]> UpdateRowsAsync<T, TKey>(
        AppDbContext db, IReadOnlyList<(TKey Key, IReadOnlyList<(string Property, object? Value)> Values)> rows, CancellationToken ct)
        where T : class where TKey : notnull
    {
        if (rows.Count <= 1)
        {
            return rows.Count == 0 ? [] : [await UpdateRowAsync<T>(db, rows[0].Key, rows[0].Values, ct) > 0];
        }
        // With VALUES, one shape per power of two (the last row repeated up to it, which changes nothing: a row
        // joined twice is updated once), so a replica keeps a handful of commands, not one per row count.
        var shape = ManyShapeFor(db, typeof(T), rows[0].Values, (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)rows.Count));
        var values = shape.ManyValues(rows);
        var found = new HashSet<TKey>(rows.Count);
        try
        {
            await db.GetService<IExecutionStrategy>().ExecuteAsync(
                (Command: shape.Command(db), Values: values, Found: found, shape.Preamble),
                static async (context, state, ct) =>
                {
                    state.Found.Clear();
                    await using var reader = await state.Command.ExecuteReaderAsync(Arguments(context, state.Values), ct);
                    if (state.Preamble)
                    {
                        await reader.DbDataReader.NextResultAsync(ct);
                    }
                    while (await reader.ReadAsync(ct))
                    {
                        state.Found.Add(reader.DbDataReader.GetFieldValue<TKey>(0));
                    }
                    return true;
                },
                null, ct);
        }
        finally
        {
            // The arrays of a batch's texts are not kept by the pooled connection until its next command.
            Release(values.Values.OfType<DbParameter>());
        }
        var stored = new bool[rows.Count];
        for (var r = 0; r < rows.Count; r++)
        {
            stored[r] = found.Contains(rows[r].Key);
        }
        return stored;
    }

    /// <summary>
    /// One command of two statements, in the caller's transaction: the <c>UPDATE</c> of one row's columns
    /// (as <see cref="UpdateRowAsync{T}"/>), then the <c>INSERT</c> of whole entities, every mapped column as
    /// <c>SaveChanges</c> writes it. One round trip and no change tracking; each statement's text depends only
    /// on the columns and the number of rows, so PostgreSQL runs both prepared. A failure the database
    /// answers (a constraint) is thrown as <see cref="DbUpdateException"/>, as <c>SaveChanges</c> throws it;
    /// a lost connection is thrown as it came, for the failover strategy.
    /// With <paramref name="unflushed"/> (PostgreSQL, outside a transaction of the caller's), the command's own
    /// transaction commits without waiting for its WAL to reach the disk (<c>synchronous_commit</c> off for that
    /// transaction only): for a write that a later synchronous commit of the same request makes durable before
    /// anything is answered (a synchronous commit flushes all the WAL before it), as a JSON chat turn's answer does.
    /// </summary>
    public static async Task UpdateRowThenInsertAsync<TUpdated, TInserted>(
        AppDbContext db, object key, IReadOnlyList<(string Property, object? Value)> values, IReadOnlyList<TInserted> rows, CancellationToken ct,
        bool unflushed = false)
        where TUpdated : class where TInserted : class
    {
        var shape = ShapeFor(db, typeof(TUpdated), typeof(TInserted), values, rows.Count);
        try
        {
            await RunAsync(db, unflushed ? shape.UnflushedCommand(db) : shape.Command(db), shape.Values(key, values, rows), ct);
        }
        catch (DbException e) when (!FailoverExecutionStrategy.IsConnectionLoss(e))
        {
            throw new DbUpdateException("An error occurred while saving the entity changes. See the inner exception for details.", e);
        }
    }

    /// <summary>
    /// Runs a shape's command as <c>ExecuteSqlRaw</c> runs one (in the context's execution strategy, through EF
    /// Core's command, so its interceptors time it for the metrics), but with the command made once per shape:
    /// <c>ExecuteSqlRaw</c> formats the whole text again on every call, and copies every parameter (one
    /// <c>INSERT</c> of a turn's two messages has some 40), a third of a chat message's allocations. The
    /// strategy is the context's own, as <c>ExecuteSqlRaw</c>'s: a new one (<c>CreateExecutionStrategy</c>)
    /// seeds a <see cref="Random"/> from the kernel each time.
    /// </summary>
    private static Task<int> RunAsync(AppDbContext db, IRelationalCommand command, Dictionary<string, object?> values, CancellationToken ct) =>
        db.GetService<IExecutionStrategy>().ExecuteAsync(
            (Command: command, Values: values),
            static (context, state, ct) => state.Command.ExecuteNonQueryAsync(Arguments(context, state.Values), ct),
            null, ct);

    /// <summary>What EF Core's command runs with: the context's connection and logger, and the call's values by parameter name.</summary>
    private static RelationalCommandParameterObject Arguments(DbContext context, Dictionary<string, object?> values) =>
        new(context.GetService<IRelationalConnection>(), values, null, context,
            context.GetService<IRelationalCommandDiagnosticsLogger>(), CommandSource.ExecuteSqlRaw);

    /// <summary>
    /// Lets go of the values a command was sent with. Npgsql keeps a connection's last command with its
    /// statements and their parameters until the connection runs another (<c>NpgsqlCommand.Reset</c> leaves
    /// the statements), so without this every pooled connection would hold the texts of its last
    /// checkpoint (up to <see cref="MaxRows"/> running answers): copies of the answers that grow with them.
    /// (A final write alone, <see cref="UpdateRowAsync{T}"/>, is EF Core's command: its one answer is held until the
    /// connection's next command, as the values of every EF Core command are; the arrays of final writes grouped on
    /// PostgreSQL, <see cref="UpdateRowsAsync{T, TKey}"/>, are let go here.)
    /// </summary>
    private static void Release(IEnumerable<DbParameter> parameters)
    {
        foreach (var p in parameters)
        {
            p.Value = null;
        }
    }

    /// <summary>
    /// The commands of <see cref="UpdateRowAsync{T}"/> and <see cref="UpdateRowThenInsertAsync{TUpdated, TInserted}"/>
    /// by shape (model, entities, columns set, rows inserted): their text and how each parameter is made are
    /// the same for every call of one shape, so they are built once. The shapes are the column lists the code
    /// names (a handful), times the rows a turn inserts.
    /// </summary>
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<(IModel Model, Type Updated, Type? Inserted, int Rows, string Columns, bool Many), Shape> Shapes = new();

    private static Shape ShapeFor(AppDbContext db, Type updated, Type? inserted, IReadOnlyList<(string Property, object? Value)> values, int rows)
    {
        return Shapes.GetOrAdd((db.Model, updated, inserted, rows, string.Join(',', ColumnNames(values)), false),
            static (_, a) => Shape.Of(a.db, a.updated, a.inserted, a.values, a.rows), (db, updated, inserted, values, rows));
    }

    /// <summary>
    /// The command of <see cref="UpdateRowsAsync{T, TKey}"/> for these columns: one per column list on PostgreSQL (arrays),
    /// one per column list and <paramref name="rows"/> (a power of two) with <c>VALUES</c>.
    /// </summary>
    private static Shape ManyShapeFor(AppDbContext db, Type updated, IReadOnlyList<(string Property, object? Value)> values, int rows)
    {
        var names = ColumnNames(values);
        var arrays = db.Database.IsNpgsql();
        return Shapes.GetOrAdd((db.Model, updated, null, arrays ? 0 : rows, string.Join(',', names), true),
            static (_, a) => Shape.Many(a.db, a.updated, a.names, a.arrays ? 0 : a.rows), (db, updated, names, rows, arrays));
    }

    /// <summary>The properties a call sets, in its order: with the model and the rows, what makes a shape.</summary>
    private static string[] ColumnNames(IReadOnlyList<(string Property, object? Value)> values)
    {
        var names = new string[values.Count];
        for (var i = 0; i < names.Length; i++)
        {
            names[i] = values[i].Property;
        }
        return names;
    }

    /// <summary>One command's text and, per placeholder in order, the type mapping that makes its parameter.</summary>
    private sealed class Shape
    {
        private readonly List<Slot> _slots = [];

        public string Text { get; private set; } = "";

        /// <summary>The text starts with a statement of one row before the <c>UPDATE … RETURNING</c>.</summary>
        public bool Preamble { get; private set; }

        /// <summary>
        /// <see cref="Text"/> preceded by turning <c>synchronous_commit</c> off for its transaction (PostgreSQL), made
        /// once by the shapes that are written that way. <c>set_config(…, true)</c> holds until the end of the
        /// transaction, here the command's own implicit one (its statements run before one Sync), whose commit reads it.
        /// </summary>
        public string UnflushedText => field ??= "SELECT set_config('synchronous_commit', 'off', true);\n" + Text;

        /// <summary>
        /// <c>UPDATE table SET col = @p, … WHERE key = @p</c> for one row; with <paramref name="inserted"/>, then
        /// <c>INSERT INTO … VALUES</c> of <paramref name="rows"/> whole entities, every mapped column.
        /// </summary>
        public static Shape Of(AppDbContext db, Type updated, Type? inserted, IReadOnlyList<(string Property, object? Value)> values, int rows)
        {
            var shape = new Shape();
            var map = new TableMap(db, updated, inserted is null ? "p" : "u");
            var text = new StringBuilder("UPDATE ").Append(map.Table).Append(" SET ");
            for (var i = 0; i < values.Count; i++)
            {
                var property = values[i].Property;
                text.Append(i == 0 ? "" : ", ").Append(map.Column(property)).Append(" = ").Append(shape.Add(map, map.Property(property), Slot.Value(i)));
            }
            text.Append(" WHERE ").Append(map.Column(map.KeyProperty)).Append(" = ").Append(shape.Add(map, map.Property(map.KeyProperty), Slot.Key));
            if (inserted is not null)
            {
                var into = new TableMap(db, inserted, "i");
                var columns = into.Columns();
                text.Append(";\nINSERT INTO ").Append(into.Table).Append(" (").AppendJoin(", ", columns.Select(c => into.Column(c.Name))).Append(") VALUES ");
                for (var r = 0; r < rows; r++)
                {
                    text.Append(r == 0 ? "(" : ", (");
                    for (var c = 0; c < columns.Count; c++)
                    {
                        text.Append(c == 0 ? "" : ", ").Append(shape.Add(into, columns[c], Slot.Row(r, columns[c].GetGetter())));
                    }
                    text.Append(')');
                }
            }
            shape.Text = text.ToString();
            return shape;
        }

        /// <summary>
        /// <c>UPDATE table SET col = v.…, … FROM … AS v WHERE key = v.key RETURNING key</c>: with <paramref name="rows"/> 0,
        /// <c>unnest</c> of one array parameter per column (PostgreSQL); otherwise <c>VALUES</c> of that many rows.
        /// </summary>
        public static Shape Many(AppDbContext db, Type updated, IReadOnlyList<string> properties, int rows)
        {
            var shape = new Shape();
            var map = new TableMap(db, updated);
            var key = map.Property(map.KeyProperty);
            // The rows' columns are named column1 (the key), column2, …: as both PostgreSQL and SQLite name VALUES columns.
            var text = new StringBuilder();
            if (rows == 0)
            {
                // The planner sizes unnest by the arrays it is given: for a group of a few rows a plan made for the
                // values at hand (a custom plan) looks cheaper than the prepared one (which assumes 10), so PostgreSQL
                // planned the statement again on every run (pg_prepared_statements: custom plans only), which cost more
                // than the commits it saved. The prepared plan (a nested loop over the primary key) is used instead,
                // for this statement's transaction only. A connection keeps the plan it made first, and one made while
                // the table was young (a new database, not analyzed yet) was a hash join over a sequential scan of every
                // message, kept until an analyze invalidated it: 17.5 million rows read for 2,000 groups in a benchmark's
                // minutes. The only plan that suits a group of rows found by their key is the key's index, whatever the
                // statistics say, so the other join methods and sequential scans are off for this transaction too.
                text.Append("SELECT set_config('plan_cache_mode', 'force_generic_plan', true), ").Append(KeyIndexOnly).Append(";\n");
                shape.Preamble = true;
            }
            text.Append("UPDATE ").Append(map.Table).Append(" SET ");
            for (var c = 0; c < properties.Count; c++)
            {
                text.Append(c == 0 ? "" : ", ").Append(map.Column(properties[c])).Append(" = v.column").Append(c + 2);
            }
            if (rows == 0)
            {
                text.Append(" FROM unnest(").Append(shape.Add(map, key, new Slot(-1, null) { Array = true }));
                for (var c = 0; c < properties.Count; c++)
                {
                    text.Append(", ").Append(shape.Add(map, map.Property(properties[c]), new Slot(c, null) { Array = true }));
                }
                text.Append(") AS v(").AppendJoin(", ", Enumerable.Range(1, properties.Count + 1).Select(i => $"column{i}")).Append(')');
            }
            else
            {
                text.Append(" FROM (VALUES ");
                for (var r = 0; r < rows; r++)
                {
                    text.Append(r == 0 ? "(" : ", (").Append(shape.Add(map, key, new Slot(-1, null) { RowIndex = r }));
                    for (var c = 0; c < properties.Count; c++)
                    {
                        text.Append(", ").Append(shape.Add(map, map.Property(properties[c]), new Slot(c, null) { RowIndex = r }));
                    }
                    text.Append(')');
                }
                text.Append(") AS v");
            }
            text.Append(" WHERE ").Append(map.Table).Append('.').Append(map.Column(map.KeyProperty)).Append(" = v.column1 RETURNING ")
                .Append(map.Table).Append('.').Append(map.Column(map.KeyProperty));
            shape.Text = text.ToString();
            return shape;
        }

        /// <summary>
        /// The values of one call of a <see cref="Many"/> shape, by parameter name: per row and column (the last row again
        /// for the shape's rows past the call's), or per column one array parameter made here (an Npgsql parameter of the
        /// column's array type, which <see cref="MadeParameter"/> adds to EF Core's command as it is).
        /// </summary>
        public Dictionary<string, object?> ManyValues<TKey>(IReadOnlyList<(TKey Key, IReadOnlyList<(string Property, object? Value)> Values)> rows)
        {
            var byName = new Dictionary<string, object?>(_slots.Count);
            foreach (var slot in _slots)
            {
                if (!slot.Array)
                {
                    var row = rows[Math.Min(slot.RowIndex, rows.Count - 1)];
                    byName[slot.Name] = slot.Index < 0 ? row.Key : row.Values[slot.Index].Value;
                    continue;
                }
                var array = Array.CreateInstance(slot.Clr, rows.Count);
                for (var r = 0; r < rows.Count; r++)
                {
                    var value = slot.Index < 0 ? rows[r].Key : rows[r].Values[slot.Index].Value;
                    array.SetValue(value is not null && slot.Converter is { } converter ? converter.ConvertToProvider(value) : value, r);
                }
                byName[slot.Name] = new Npgsql.NpgsqlParameter(slot.Name, NpgsqlTypes.NpgsqlDbType.Array | CopyType(Nullable.GetUnderlyingType(slot.Clr) ?? slot.Clr, slot.Name))
                {
                    Value = array,
                };
            }
            return byName;
        }

        /// <summary>
        /// The command of <see cref="Text"/>, made once (by the first context that runs the shape): its parameters are
        /// made on every run by the properties' type mappings (GUIDs, decimals and dates are text on SQLite).
        /// </summary>
        public IRelationalCommand Command(AppDbContext db) => _command ??= Build(db, Text);

        /// <summary>The command of <see cref="UnflushedText"/>.</summary>
        public IRelationalCommand UnflushedCommand(AppDbContext db) => _unflushedCommand ??= Build(db, UnflushedText);

        private IRelationalCommand? _command;
        private IRelationalCommand? _unflushedCommand;

        private IRelationalCommand Build(AppDbContext db, string text)
        {
            var builder = db.GetService<IRelationalCommandBuilderFactory>().Create().Append(text);
            foreach (var slot in _slots)
            {
                if (slot.Array)
                {
                    // Its value is the parameter itself, made per call (ManyValues).
                    builder.AddParameter(new MadeParameter(slot.Name, slot.Name));
                }
                else
                {
                    builder.AddParameter(slot.Name, slot.Name, slot.Mapping, slot.Nullable);
                }
            }
            return builder.Build();
        }

        /// <summary>The values of one call, by parameter name.</summary>
        public Dictionary<string, object?> Values<TRow>(object key, IReadOnlyList<(string Property, object? Value)> values, IReadOnlyList<TRow> rows)
            where TRow : class
        {
            var byName = new Dictionary<string, object?>(_slots.Count);
            foreach (var slot in _slots)
            {
                byName[slot.Name] = slot.Getter is { } getter ? getter.GetClrValue(rows[slot.Index])
                    : slot.Index < 0 ? key
                    : values[slot.Index].Value;
            }
            return byName;
        }

        private string Add(TableMap map, IProperty property, Slot slot)
        {
            var (name, placeholder) = map.NextParameter();
            var mapping = property.GetRelationalTypeMapping();
            var converter = property.GetValueConverter() ?? mapping.Converter;
            _slots.Add(slot with { Mapping = mapping, Name = name, Nullable = property.IsNullable, Converter = converter, Clr = converter?.ProviderClrType ?? property.ClrType });
            return placeholder;
        }
    }

    /// <summary>
    /// A parameter of EF Core's command whose value is the <see cref="DbParameter"/> itself, made per call: an array of the
    /// column's Npgsql array type (<see cref="Shape.ManyValues{TKey}"/>), as the checkpoint's arrays are, which the type
    /// mappings of the columns (one value each) do not make.
    /// </summary>
    private sealed class MadeParameter(string invariantName, string name) : IRelationalParameter
    {
        public string InvariantName { get; } = invariantName;

        public string Name { get; } = name;

        public void AddDbParameter(DbCommand command, object? value) => command.Parameters.Add((DbParameter)value!);

        public void AddDbParameter(DbCommand command, IReadOnlyDictionary<string, object?>? parameterValues) =>
            AddDbParameter(command, parameterValues![InvariantName]);
    }

    /// <summary>
    /// Where a parameter's value comes from: the key (<see cref="Index"/> −1), a value set, or a column of an inserted row;
    /// for many rows updated, the key or value of row <see cref="RowIndex"/>, or of every row (<see cref="Array"/>).
    /// </summary>
    private sealed record Slot(int Index, IClrPropertyGetter? Getter)
    {
        public int RowIndex { get; init; }

        public bool Array { get; init; }

        /// <summary>The type of the values sent (after <see cref="Converter"/>).</summary>
        public Type Clr { get; init; } = typeof(object);

        public Microsoft.EntityFrameworkCore.Storage.ValueConversion.ValueConverter? Converter { get; init; }

        public RelationalTypeMapping Mapping { get; init; } = null!;

        public string Name { get; init; } = "";

        public bool Nullable { get; init; }

        public static Slot Key { get; } = new(-1, null);

        public static Slot Value(int index) => new(index, null);

        public static Slot Row(int row, IClrPropertyGetter getter) => new(row, getter);
    }

    private static async Task ExecuteAsync(AppDbContext db, Type entityType, CancellationToken ct, Func<DbCommand, TableMap, string> build)
    {
        var map = new TableMap(db, entityType);
        await db.Database.OpenConnectionAsync(ct);
        try
        {
            await using var command = db.Database.GetDbConnection().CreateCommand();
            command.CommandText = build(command, map);
            try
            {
                await command.ExecuteNonQueryAsync(ct);
            }
            finally
            {
                Release(command.Parameters.Cast<DbParameter>());
            }
        }
        finally
        {
            await db.Database.CloseConnectionAsync();
        }
    }

    private sealed class TableMap
    {
        private readonly IEntityType _entity;
        private readonly StoreObjectIdentifier _table;
        private readonly ISqlGenerationHelper _sql;
        private readonly string _prefix;
        private int _parameters;

        public TableMap(AppDbContext db, Type type, string prefix = "p")
        {
            _prefix = prefix;
            _entity = db.Model.FindEntityType(type) ?? throw new InvalidOperationException($"{type.Name} is not an entity of the model.");
            _table = StoreObjectIdentifier.Table(_entity.GetTableName()!, _entity.GetSchema());
            _sql = db.GetService<ISqlGenerationHelper>();
            Table = _sql.DelimitIdentifier(_table.Name, _table.Schema);
            KeyProperty = _entity.FindPrimaryKey()!.Properties.Single().Name;
        }

        public string Table { get; }

        public string KeyProperty { get; }

        /// <summary>Every property stored in the table (what <c>SaveChanges</c> inserts).</summary>
        public List<IProperty> Columns() => _entity.GetProperties().Where(p => p.GetColumnName(_table) is not null).ToList();

        public IProperty Property(string name) => _entity.FindProperty(name) ?? throw new InvalidOperationException($"{_entity.DisplayName()} has no property {name}.");

        public string Column(string property) => _sql.DelimitIdentifier(Property(property).GetColumnName(_table)!);

        /// <summary>The next parameter's name and its placeholder in the text.</summary>
        public (string Name, string Placeholder) NextParameter()
        {
            var name = _prefix + _parameters++;
            return (_sql.GenerateParameterName(name), _sql.GenerateParameterNamePlaceholder(name));
        }

        /// <summary>True when the property's values are converted on their way to the database (its CLR type is not its wire type).</summary>
        public static bool Converts(IProperty property) =>
            property.GetValueConverter() is not null || property.GetRelationalTypeMapping().Converter is not null;

        /// <summary>
        /// On PostgreSQL, adds one array parameter holding <paramref name="values"/> for a property stored without a
        /// value converter (<see cref="Converts"/> false); returns its placeholder.
        /// </summary>
        public string ArrayParameter(DbCommand command, IProperty property, IEnumerable<object?> values)
        {
            var clr = property.ClrType;
            var items = values.ToArray();
            var array = Array.CreateInstance(clr, items.Length);
            for (var i = 0; i < items.Length; i++)
            {
                array.SetValue(items[i], i);
            }
            var (name, placeholder) = NextParameter();
            command.Parameters.Add(new Npgsql.NpgsqlParameter(name, NpgsqlTypes.NpgsqlDbType.Array | CopyType(Nullable.GetUnderlyingType(clr) ?? clr, property.Name)) { Value = array });
            return placeholder;
        }

        /// <summary>Adds a parameter converted by the property's type mapping (GUIDs, decimals and dates are text on SQLite); returns its placeholder.</summary>
        public string Parameter(DbCommand command, IProperty property, object? value)
        {
            var (name, placeholder) = NextParameter();
            command.Parameters.Add(property.GetRelationalTypeMapping().CreateParameter(command, name, value, property.IsNullable));
            return placeholder;
        }
    }
}
