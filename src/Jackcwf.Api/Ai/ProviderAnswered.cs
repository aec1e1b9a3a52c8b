namespace Jackcwf.Api.Ai;

/// <summary>
/// Tells a caller the moment a provider has accepted a call: its HTTP response headers arrived with a
/// success status, before its first token. The /v1 gateway sends a stream's own headers then, so a
/// client sees the stream open while the model is still thinking, and a provider that refuses the call
/// (429, 5xx, 401) still gets its status code through (after the pipeline's retries and fallbacks).
/// The listener is carried in the caller's execution context, so calls made elsewhere (chat
/// generations, other requests) never see it.
/// </summary>
internal static class ProviderAnswered
{
    private static readonly AsyncLocal<Action?> Listener = new();

    /// <summary>Calls <paramref name="onAnswered"/> for every provider call accepted in this execution context until disposed.</summary>
    public static Scope Listen(Action onAnswered)
    {
        var previous = Listener.Value;
        Listener.Value = onAnswered;
        return new Scope(previous);
    }

    public readonly struct Scope(Action? previous) : IDisposable
    {
        public void Dispose() => Listener.Value = previous;
    }

    /// <summary>The handler on the providers' HttpClient (<see cref="ChatClientProvider.HttpClientName"/>).</summary>
    public sealed class Handler : DelegatingHandler
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var response = await base.SendAsync(request, cancellationToken);
            if (response.IsSuccessStatusCode)
            {
                Listener.Value?.Invoke();
            }
            return response;
        }
    }
}
