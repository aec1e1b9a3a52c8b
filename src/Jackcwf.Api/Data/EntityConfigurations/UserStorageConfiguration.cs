using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Jackcwf.Api.Data.EntityConfigurations;

internal sealed class UserStorageConfiguration : IEntityTypeConfiguration<UserStorage>
{
    public void Configure(EntityTypeBuilder<UserStorage> e)
    {
        e.ToTable("user_storage");
        e.HasKey(s => s.UserId);
        e.HasOne<AppUser>().WithMany().HasForeignKey(s => s.UserId).OnDelete(DeleteBehavior.Cascade);
    }
}
