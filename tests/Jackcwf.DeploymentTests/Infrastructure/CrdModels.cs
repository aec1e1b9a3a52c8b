using k8s.Models;
using YamlDotNet.Serialization;

// Minimal, strict models of the custom resources the manifests use. KubernetesYaml's strict mode
// rejects any field these classes do not declare, so a misspelled field fails the tests. Only the
// fields of the upstream CRDs that Jackcwf uses (or is likely to use) are declared.
namespace Jackcwf.DeploymentTests.Infrastructure;

public abstract class CustomResource
{
    public string? ApiVersion { get; set; }
    public string? Kind { get; set; }
    public V1ObjectMeta? Metadata { get; set; }
}

// monitoring.coreos.com/v1 ServiceMonitor
public sealed class ServiceMonitor : CustomResource
{
    public ServiceMonitorSpec? Spec { get; set; }
}

public sealed class ServiceMonitorSpec
{
    public string? JobLabel { get; set; }
    public V1LabelSelector? Selector { get; set; }
    public NamespaceSelector? NamespaceSelector { get; set; }
    public List<ServiceMonitorEndpoint>? Endpoints { get; set; }
}

public sealed class NamespaceSelector
{
    public bool? Any { get; set; }
    public List<string>? MatchNames { get; set; }
}

public sealed class ServiceMonitorEndpoint
{
    public string? Port { get; set; }
    public string? Path { get; set; }
    public string? Scheme { get; set; }
    public string? Interval { get; set; }
    public string? ScrapeTimeout { get; set; }
    public bool? HonorLabels { get; set; }
}

// monitoring.coreos.com/v1 PrometheusRule
public sealed class PrometheusRule : CustomResource
{
    public PrometheusRuleSpec? Spec { get; set; }
}

public sealed class PrometheusRuleSpec
{
    public List<RuleGroup>? Groups { get; set; }
}

public sealed class RuleGroup
{
    public string? Name { get; set; }
    public string? Interval { get; set; }
    public int? Limit { get; set; }
    public List<Rule>? Rules { get; set; }
}

public sealed class Rule
{
    public string? Alert { get; set; }
    public string? Record { get; set; }
    public string? Expr { get; set; }
    public string? For { get; set; }

    [YamlMember(Alias = "keep_firing_for", ApplyNamingConventions = false)]
    public string? KeepFiringFor { get; set; }

    public Dictionary<string, string>? Labels { get; set; }
    public Dictionary<string, string>? Annotations { get; set; }
}

// gateway.networking.k8s.io/v1 HTTPRoute
public sealed class HttpRoute : CustomResource
{
    public HttpRouteSpec? Spec { get; set; }
}

public sealed class HttpRouteSpec
{
    public List<ParentReference>? ParentRefs { get; set; }
    public List<string>? Hostnames { get; set; }
    public List<HttpRouteRule>? Rules { get; set; }
}

public sealed class ParentReference
{
    public string? Group { get; set; }
    public string? Kind { get; set; }
    public string? Name { get; set; }
    public string? Namespace { get; set; }
    public string? SectionName { get; set; }
    public int? Port { get; set; }
}

public sealed class HttpRouteRule
{
    public List<HttpRouteMatch>? Matches { get; set; }
    public List<HttpBackendRef>? BackendRefs { get; set; }
    public HttpRouteTimeouts? Timeouts { get; set; }
}

public sealed class HttpRouteMatch
{
    public HttpPathMatch? Path { get; set; }
    public string? Method { get; set; }
}

public sealed class HttpPathMatch
{
    public string? Type { get; set; }
    public string? Value { get; set; }
}

public sealed class HttpBackendRef
{
    public string? Group { get; set; }
    public string? Kind { get; set; }
    public string? Name { get; set; }
    public string? Namespace { get; set; }
    public int? Port { get; set; }
    public int? Weight { get; set; }
}

public sealed class HttpRouteTimeouts
{
    public string? Request { get; set; }
    public string? BackendRequest { get; set; }
}

// monitoring.coreos.com/v1 PodMonitor (the CloudNativePG instances)
public sealed class PodMonitor : CustomResource
{
    public PodMonitorSpec? Spec { get; set; }
}

public sealed class PodMonitorSpec
{
    public V1LabelSelector? Selector { get; set; }
    public NamespaceSelector? NamespaceSelector { get; set; }
    public List<PodMetricsEndpoint>? PodMetricsEndpoints { get; set; }
}

public sealed class PodMetricsEndpoint
{
    public string? Port { get; set; }
    public string? Path { get; set; }
    public string? Interval { get; set; }
    public string? ScrapeTimeout { get; set; }
}

// CloudNativePG and Barman Cloud kinds: loaded as maps here; CrdSchemas validates them strictly
// against the upstream CRDs (a hand-written model of the 470 kB Cluster schema would drift).
public sealed class CnpgCluster : CustomResource
{
    public Dictionary<string, object>? Spec { get; set; }
}

public sealed class CnpgScheduledBackup : CustomResource
{
    public Dictionary<string, object>? Spec { get; set; }
}

public sealed class BarmanObjectStore : CustomResource
{
    public Dictionary<string, object>? Spec { get; set; }
}
