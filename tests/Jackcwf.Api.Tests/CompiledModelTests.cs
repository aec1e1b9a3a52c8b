using Jackcwf.Api.Data;
using Jackcwf.Testing;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design.Internal;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Scaffolding;
using Microsoft.Extensions.DependencyInjection;

#pragma warning disable EF1001 // The code generator of `dotnet ef dbcontext optimize` is internal API.

namespace Jackcwf.Api.Tests;

/// <summary>
/// Each context runs on its compiled model (Data/CompiledModels/), so a process does not build the
/// EF Core model when it starts; the compiled model must stay what OnModelCreating describes, and
/// the migrations must stay what the model describes.
/// </summary>
public sealed class CompiledModelTests
{
    private const string Regenerate = "scripts/regenerate-compiled-models.sh";

    public static TheoryData<DatabaseProvider> Providers => [DatabaseProvider.Sqlite, DatabaseProvider.PostgreSql];

    // No connection is opened: building and comparing models needs only the provider.
    private static AppDbContext CreateForDesign(DatabaseProvider provider) => provider == DatabaseProvider.Sqlite
        ? new SqliteDesignTimeFactory().CreateDbContext([])
        : new PostgresDesignTimeFactory().CreateDbContext([]);

    private static AppDbContext Create(DatabaseProvider provider) => provider == DatabaseProvider.Sqlite
        ? new SqliteAppDbContext(new DbContextOptionsBuilder<SqliteAppDbContext>().UseSqlite("Data Source=:memory:").Options)
        : new PostgresAppDbContext(new DbContextOptionsBuilder<PostgresAppDbContext>().UseNpgsql("Host=localhost;Database=unused").Options);

    [Theory]
    [MemberData(nameof(Providers))]
    public void Each_context_runs_on_its_compiled_model_without_being_told(DatabaseProvider provider)
    {
        using var db = Create(provider);

        // Created as DataMigration and the tests create it, with no UseModel: EF finds the model
        // through the [assembly: DbContextModel] attribute generated beside it.
        var expected = provider == DatabaseProvider.Sqlite
            ? Data.CompiledModels.Sqlite.SqliteAppDbContextModel.Instance
            : Data.CompiledModels.Postgres.PostgresAppDbContextModel.Instance;
        Assert.Same(expected, db.Model);
    }

    [Theory]
    [MemberData(nameof(Providers))]
    public void The_compiled_model_is_what_regenerating_it_would_write(DatabaseProvider provider)
    {
        // What `dotnet ef dbcontext optimize` does, in memory: the design-time model (built from the
        // conventions and OnModelCreating even when a compiled model exists) through the same code
        // generator, compared with the committed files. EF's design-time API is internal (EF1001);
        // an EF Core upgrade that changes it breaks this build, not the product.
        using var db = CreateForDesign(provider);
        var folder = provider == DatabaseProvider.Sqlite ? "Sqlite" : "Postgres";
        var assembly = typeof(AppDbContext).Assembly;
        var services = new DesignTimeServicesBuilder(assembly, assembly, new OperationReporter(handler: null), []).Build(db);
        var options = new CompiledModelCodeGenerationOptions
        {
            ContextType = db.GetType(),
            ModelNamespace = $"Jackcwf.Api.Data.CompiledModels.{folder}",
            Language = "C#",
            UseNullableReferenceTypes = true,
        };
        var generated = services.GetRequiredService<ICompiledModelCodeGeneratorSelector>().Select(options)
            .GenerateModel(db.GetService<IDesignTimeModel>().Model, options)
            .ToDictionary(f => f.Path, f => Normalize(f.Code));

        var dir = Path.Combine(RepoPaths.Root, "src", "Jackcwf.Api", "Data", "CompiledModels", folder);
        var committed = Directory.Exists(dir)
            ? Directory.GetFiles(dir, "*.cs").ToDictionary(f => Path.GetFileName(f), f => Normalize(File.ReadAllText(f)))
            : [];
        var stale = generated.Keys.Union(committed.Keys).Order(StringComparer.Ordinal)
            .Where(f => !generated.TryGetValue(f, out var g) || !committed.TryGetValue(f, out var c) || g != c)
            .ToList();

        Assert.True(stale.Count == 0, stale.Count == 0 ? "" :
            $"The compiled model of {db.GetType().Name} (src/Jackcwf.Api/Data/CompiledModels/{folder}/) is stale: "
            + $"{string.Join(", ", stale)} differ from what the model built from OnModelCreating generates "
            + $"({FirstDifference(stale[0], committed, generated)}). Run {Regenerate} and commit the result.");
    }

    [Theory]
    [MemberData(nameof(Providers))]
    public void The_migrations_match_the_model(DatabaseProvider provider)
    {
        using var db = Create(provider);

        Assert.False(db.Database.HasPendingModelChanges(),
            $"The model of {db.GetType().Name} has changes no migration describes: add one (docs/schema-changes.md), then run {Regenerate}.");
    }

    private static string FirstDifference(string file, Dictionary<string, string> committed, Dictionary<string, string> generated)
    {
        if (!committed.TryGetValue(file, out var c))
        {
            return $"{file} is missing";
        }
        if (!generated.TryGetValue(file, out var g))
        {
            return $"{file} is no longer generated";
        }
        var (cl, gl) = (c.Split('\n'), g.Split('\n'));
        var i = 0;
        while (i < cl.Length && i < gl.Length && cl[i] == gl[i])
        {
            i++;
        }
        return $"{file} line {i + 1}: committed `{(i < cl.Length ? cl[i].Trim() : "<end>")}`, generated `{(i < gl.Length ? gl[i].Trim() : "<end>")}`";
    }

    // Each generation draws a new model id; everything else is deterministic.
    private static string Normalize(string code) => System.Text.RegularExpressions.Regex.Replace(
        code.Replace("\r\n", "\n").TrimStart('\uFEFF'), @"modelId: new Guid\(""[0-9a-f-]+""\)", "modelId: <generated>");
}
