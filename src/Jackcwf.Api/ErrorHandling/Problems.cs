using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;

namespace Jackcwf.Api.Web;

/// <summary>
/// Problem details with a stable <c>type</c> URI and short <c>code</c> (the metrics' error_type).
/// Every expected failure goes through here, so clients and dashboards see the same vocabulary.
/// </summary>
public static class Problems
{
    public const string TypeBase = "https://jackcwf.dev/problems/";

    public static ProblemDetails Create(int status, string code, string title, string? detail = null) => new()
    {
        Status = status,
        Type = TypeBase + code.Replace('_', '-'),
        Title = title,
        Detail = detail,
        Extensions = { ["code"] = code },
    };

    public static ProblemHttpResult Result(int status, string code, string title, string? detail = null) =>
        TypedResults.Problem(Create(status, code, title, detail));

    public static ProblemHttpResult NotFound(string what = "resource") =>
        Result(StatusCodes.Status404NotFound, "not_found", "Not found", $"No such {what}.");

    public static ProblemHttpResult Conflict(string detail) =>
        Result(StatusCodes.Status409Conflict, "conflict", "Conflict", detail);

    /// <summary>A count or size limit of the account was reached (409): <c>limit</c> names it, as the metrics do.</summary>
    public static ProblemHttpResult LimitReached(string code, string limit, string title, string detail)
    {
        var problem = Create(StatusCodes.Status409Conflict, code, title, detail);
        problem.Extensions["limit"] = limit;
        return TypedResults.Problem(problem);
    }

    public static ValidationProblem Invalid(string field, string message) =>
        TypedResults.ValidationProblem(new Dictionary<string, string[]> { [field] = [message] },
            detail: $"{field}: {message}", title: "The request is invalid", type: TypeBase + "validation",
            extensions: new Dictionary<string, object?> { ["code"] = "validation" });

    public static ValidationProblem Invalid(Dictionary<string, string[]> errors) =>
        TypedResults.ValidationProblem(errors, detail: string.Join(" ", errors.Select(e => $"{e.Key}: {string.Join(" ", e.Value)}")),
            title: "The request is invalid", type: TypeBase + "validation",
            extensions: new Dictionary<string, object?> { ["code"] = "validation" });
}
