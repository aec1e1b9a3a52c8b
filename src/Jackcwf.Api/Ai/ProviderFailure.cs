using System.ClientModel;
using System.ClientModel.Primitives;
using Anthropic;
using Microsoft.Extensions.AI;
using OpenAI;

namespace Jackcwf.Api.Ai;

/// <summary>What went wrong with a provider call, in the terms the API and the metrics use.</summary>
public sealed record ProviderFailure(string Kind, int HttpStatus, string Title, string Detail)
{
    /// <summary>How long the provider (or our circuit breaker) asked us to wait, when it said.</summary>
    public TimeSpan? RetryAfter { get; init; }

    /// <summary>Set when our circuit breaker refused the call without reaching the provider.</summary>
    public bool IsCircuitOpen { get; init; }

    /// <summary>Worth another attempt (rate limits, outages, timeouts) and a sign of an unwell endpoint.</summary>
    public bool Retryable => !IsCircuitOpen && Kind is "rate_limited" or "unavailable" or "timeout";

    /// <summary>Counts against the endpoint's circuit: what is worth a retry, and a stream cut after its first token (never retried).</summary>
    public bool EndpointUnwell => Retryable || Kind == "stream_broken";

    public static ProviderFailure Classify(Exception ex, string provider)
    {
        if (ex is ProviderException pe)
        {
            return pe.Failure;
        }
        var status = ex switch
        {
            ClientResultException c => c.Status,
            Anthropic.Exceptions.AnthropicApiException a => (int)a.StatusCode,
            HttpRequestException { StatusCode: { } s } => (int)s,
            _ => 0,
        };
        var name = ProviderDisplay(provider);
        ProviderFailure failure = ex switch
        {
            TimeoutException or TaskCanceledException or OperationCanceledException =>
                new("timeout", 504, "The model provider timed out", $"{name} did not answer in time. Try again in a moment."),
            _ when status is 401 or 403 =>
                new("auth", 502, "The model provider refused the credentials", $"{name} rejected this server's API key; an operator must fix the configuration."),
            _ when status == 429 =>
                new("rate_limited", 503, "The model provider is rate limiting", $"{name} is rate limiting this server. Try again shortly."),
            _ when status is 400 or 404 or 413 or 422 =>
                new("bad_request", 502, "The model provider rejected the request", $"{name} rejected the request (HTTP {status})."),
            _ when status is 502 or 503 or 529 =>
                new("unavailable", 503, "The model provider is unavailable", $"{name} is unavailable (HTTP {status}). Try again shortly."),
            _ when status == 504 =>
                new("timeout", 504, "The model provider timed out", $"{name} timed out (HTTP 504). Try again shortly."),
            _ when status >= 500 =>
                new("unavailable", 502, "The model provider failed", $"{name} returned an error (HTTP {status})."),
            HttpRequestException or System.Net.Sockets.SocketException or Anthropic.Exceptions.AnthropicIOException or IOException =>
                new("unavailable", 503, "The model provider is unreachable", $"Could not reach {name}. Try again shortly."),
            _ when status == 0 && ex is ClientResultException =>
                new("unavailable", 503, "The model provider is unreachable", $"Could not reach {name}. Try again shortly."),
            _ => new("other", 502, "The model provider failed", $"{name} failed while answering."),
        };
        return failure with { RetryAfter = RetryAfterOf(ex) };
    }

    /// <summary>A failure after some text was already streamed.</summary>
    public ProviderFailure MidStream() => this with { Kind = Kind is "other" or "unavailable" ? "stream_broken" : Kind };

    /// <summary>Our circuit breaker refused the call: the endpoint failed too often lately.</summary>
    public static ProviderFailure CircuitOpen(string provider, TimeSpan retryAfter) =>
        new("unavailable", 503, "The model provider is unavailable",
            $"{ProviderDisplay(provider)} failed repeatedly and is not being called for now. Try again in {Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds))} s.")
        {
            RetryAfter = retryAfter,
            IsCircuitOpen = true,
        };

    /// <summary>No token within the first-token timeout, or none within the idle timeout after the answer started.</summary>
    public static ProviderFailure Stalled(string provider, bool started, TimeSpan limit) => started
        ? new("timeout", 504, "The model provider stopped sending", $"{ProviderDisplay(provider)} sent nothing for {limit.TotalSeconds:0.#} s; the answer so far is kept.")
        : new("timeout", 504, "The model provider timed out", $"{ProviderDisplay(provider)} did not start answering within {limit.TotalSeconds:0.#} s.");

    /// <summary>The stream ended without a finish reason.</summary>
    public static ProviderFailure Incomplete(string provider, bool started) => started
        ? new("stream_broken", 502, "The model provider failed", $"{ProviderDisplay(provider)} ended the answer before it was complete.")
        : new("unavailable", 502, "The model provider failed", $"{ProviderDisplay(provider)} ended the stream without answering.");

    private static TimeSpan? RetryAfterOf(Exception ex)
    {
        if (ex is not ClientResultException c || c.GetRawResponse()?.Headers is not { } headers)
        {
            return null;
        }
        if (headers.TryGetValue("retry-after-ms", out var ms) && double.TryParse(ms, System.Globalization.CultureInfo.InvariantCulture, out var m) && m >= 0)
        {
            return TimeSpan.FromMilliseconds(m);
        }
        return headers.TryGetValue("retry-after", out var s) && double.TryParse(s, System.Globalization.CultureInfo.InvariantCulture, out var sec) && sec >= 0
            ? TimeSpan.FromSeconds(sec)
            : null;
    }

    private static string ProviderDisplay(string provider) => provider switch
    {
        Providers.OpenAI => "OpenAI",
        Providers.Anthropic => "Anthropic",
        Providers.Ollama => "The OpenAI-compatible model server",
        _ => "The model provider",
    };
}

/// <summary>A provider failure with no provider text in it (see <see cref="SanitizingChatClient"/>).</summary>
public sealed class ProviderException(ProviderFailure failure) : Exception(failure.Detail)
{
    public ProviderFailure Failure { get; } = failure;
}
