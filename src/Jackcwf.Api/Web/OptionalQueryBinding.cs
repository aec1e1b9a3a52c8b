using Microsoft.AspNetCore.Http.Metadata;

namespace Jackcwf.Api.Web;

/// <summary>
/// An optional query value of a parsed type (<c>int? limit</c>, <c>bool? archived</c>, <c>Guid? userId</c>)
/// that does not parse answers the same 400 problem naming the field as a required one. The endpoints'
/// request delegates are generated at build time (the Request Delegate Generator), which throws
/// <see cref="BadHttpRequestException"/> for a required value that does not parse
/// (<see cref="RouteHandlerOptions.ThrowOnBadRequest"/>) but for an optional one only sets 400 and
/// answers with no body; it then still runs the endpoint's filters, so this one finds the value and throws.
/// </summary>
public static class OptionalQueryBinding
{
    /// <summary>Add to each endpoint with an optional parsed query parameter.</summary>
    public static RouteHandlerBuilder ReportsUnparsedQuery(this RouteHandlerBuilder builder) =>
        builder.AddEndpointFilter(static (ic, next) =>
        {
            if (ic.HttpContext.Response.StatusCode == StatusCodes.Status400BadRequest
                && ic.HttpContext.GetEndpoint()?.Metadata.GetOrderedMetadata<IParameterBindingMetadata>() is { } parameters)
            {
                var query = ic.HttpContext.Request.Query;
                foreach (var p in parameters)
                {
                    // A value that parsed is not null; one that did not is left null (its default).
                    if (p.HasTryParse && p.ParameterInfo.Position < ic.Arguments.Count && ic.Arguments[p.ParameterInfo.Position] is null
                        && query.TryGetValue(p.Name, out var raw) && !string.IsNullOrEmpty(raw))
                    {
                        var type = Nullable.GetUnderlyingType(p.ParameterInfo.ParameterType) ?? p.ParameterInfo.ParameterType;
                        throw new BadHttpRequestException($"Failed to bind parameter \"{type.Name}? {p.Name}\" from \"{raw}\".");
                    }
                }
            }
            return next(ic);
        });
}
