using Microsoft.EntityFrameworkCore;

namespace Jackcwf.Api.Data;

public sealed class PostgresAppDbContext(DbContextOptions<PostgresAppDbContext> options) : AppDbContext(options)
{
    public override DatabaseProvider Provider => DatabaseProvider.PostgreSql;
}
