# syntax=docker/dockerfile:1
# Jackcwf container image: the React UI built with Node, the service published with the .NET SDK,
# and a runtime on the ASP.NET image as a non-root user that works with a read-only root filesystem.
#   docker build -t jackcwf-backend:latest .
#   docker build --build-arg APP_VERSION=1.2.3 --build-arg GIT_COMMIT=$(git rev-parse HEAD) -t jackcwf-backend:1.2.3 .

# ---- 1. Web UI (Vite writes the build to ../src/Jackcwf.Api/wwwroot) ----
FROM node:20-bookworm-slim AS web
WORKDIR /src/web
# Manifests first: the npm ci layer is reused until the dependencies change.
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web/ ./
RUN npm run build

# ---- 2. Service ----
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY global.json Directory.Build.props Directory.Packages.props ./
COPY src/ src/
COPY --from=web /src/src/Jackcwf.Api/wwwroot src/Jackcwf.Api/wwwroot/
# The cache mount keeps downloaded packages between builds (BuildKit); UseAppHost=false because the
# image runs `dotnet Jackcwf.Api.dll`; SkipWebBuild=true because the Node stage above built wwwroot
# (this stage has no npm).
# -a $TARGETARCH publishes for the image's platform, so the assemblies are precompiled (ReadyToRun, see
# Jackcwf.Api.csproj): the service starts with about a third less CPU.
ARG TARGETARCH
RUN --mount=type=cache,id=nuget,target=/root/.nuget/packages \
    dotnet publish src/Jackcwf.Api/Jackcwf.Api.csproj -c Release -a "$TARGETARCH" --self-contained false -o /app -p:UseAppHost=false -p:SkipWebBuild=true

# ---- 3. Runtime ----
FROM mcr.microsoft.com/dotnet/aspnet:10.0 AS runtime
ARG APP_VERSION=0.0.0-local
ARG GIT_COMMIT=unknown
LABEL org.opencontainers.image.title="jackcwf" \
      org.opencontainers.image.description="Self-hosted, highly available AI conversation platform" \
      org.opencontainers.image.version="${APP_VERSION}" \
      org.opencontainers.image.revision="${GIT_COMMIT}"
WORKDIR /app
# Application files stay owned by root (read-only for the app user). The only writable paths are
# /tmp (mount a tmpfs / emptyDir when the root filesystem is read-only) and /app/data, where the
# SQLite database lives when DATABASE_URL is unset (mount a volume there).
RUN mkdir -p /app/data && chown "$APP_UID:$APP_UID" /app/data
COPY --from=build /app ./
# PORT is the service's listening port (docs/configuration.md); APP_VERSION and GIT_COMMIT feed
# jackcwf_build_info.
ENV PORT=8080 \
    APP_VERSION=${APP_VERSION} \
    GIT_COMMIT=${GIT_COMMIT}
EXPOSE 8080
# APP_UID (1654) is the non-root user the ASP.NET images define.
USER $APP_UID
# No curl in the image: the service probes its own /health/ready and exits 0 (ready) or 1.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["dotnet", "Jackcwf.Api.dll", "healthcheck"]
# CMD (not ENTRYPOINT) so `command: ["dotnet", "Jackcwf.Api.dll", "migrate"]` replaces it whole.
CMD ["dotnet", "Jackcwf.Api.dll"]
