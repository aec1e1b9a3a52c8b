using System.Text.Json.Nodes;

namespace Jackcwf.DeploymentTests.Infrastructure;

public static class Traefik
{
    public static JsonObject Static() => YamlJson.ParseObject(Repo.Read("deployment", "traefik", "traefik.yml"));

    public static JsonObject Dynamic() => YamlJson.ParseObject(Repo.Read("deployment", "traefik", "dynamic", "dynamic.yml"));
}
