#!/usr/bin/env bash
# Regenerates the EF Core compiled models of both contexts (src/Jackcwf.Api/Data/CompiledModels/
# Sqlite and Postgres) with `dotnet ef dbcontext optimize`, the local tool pinned in
# dotnet-tools.json. Run it after any change to the model (an entity, Data/EntityConfigurations/,
# AppDbContext), after adding the migration; CompiledModelTests fails until it is run.
#   scripts/regenerate-compiled-models.sh
set -euo pipefail
cd "$(dirname "$0")/.."
project=src/Jackcwf.Api
step() { printf '==> %s\n' "$*"; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

step "restoring the local dotnet-ef tool (dotnet-tools.json)"
dotnet tool restore >/dev/null || die "dotnet tool restore failed: check network access to NuGet, or run 'dotnet tool restore' to see why"

# The old models go first: a model that no longer matches the entities may not compile, and the
# build below must not depend on them (EF finds them by an assembly attribute, nothing names them).
step "removing the old compiled models from $project/Data/CompiledModels/"
rm -rf "$project/Data/CompiledModels/Sqlite" "$project/Data/CompiledModels/Postgres"

step "building $project (Debug)"
dotnet build "$project" -nologo -v q -clp:ErrorsOnly \
  || die "the build failed: fix the errors above (the compiled models are removed; 'git checkout $project/Data/CompiledModels' brings them back)"

for pair in SqliteAppDbContext:Sqlite PostgresAppDbContext:Postgres; do
  context=${pair%%:*}; folder=${pair#*:}
  step "dotnet ef dbcontext optimize --context $context -> $project/Data/CompiledModels/$folder/"
  dotnet dotnet-ef dbcontext optimize --no-build --project "$project" --startup-project "$project" \
    --context "$context" --output-dir "Data/CompiledModels/$folder" --namespace "Jackcwf.Api.Data.CompiledModels.$folder" \
    >/dev/null || die "optimize failed for $context: rerun the command above with --verbose to see why"
  count=$(find "$project/Data/CompiledModels/$folder" -name '*.cs' | wc -l)
  [ "$count" -gt 0 ] || die "optimize wrote nothing for $context"
  step "  $count files"
done

step "done: review 'git status $project/Data/CompiledModels' and commit the changes with the model change"
