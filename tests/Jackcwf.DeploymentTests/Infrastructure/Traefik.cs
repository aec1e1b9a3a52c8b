using System.Text.Json.Nodes;

namespace Jackcwf.DeploymentTests.Infrastructure;

public static class Traefik
{
    public static JsonObject Static() => YamlJson.ParseObject(Repo.Read("deployment", "traefik", "traefik.yml"));

    public static JsonObject Dynamic() => YamlJson.ParseObject(Repo.Read("deployment", "traefik", "dynamic", "dynamic.yml"));

    /// <summary>The dashboard router and the basic-auth middleware (HA stack).</summary>
    public static JsonObject Admin() => YamlJson.ParseObject(Repo.Read("deployment", "traefik", "dynamic", "admin.yml"));

    /// <summary>The static configuration of the single-node docker-compose.yml's Traefik.</summary>
    public static JsonObject SingleNodeStatic() => YamlJson.ParseObject(Repo.Read("deployment", "traefik", "single-node", "traefik.yml"));
}
