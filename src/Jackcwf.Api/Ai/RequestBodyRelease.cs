namespace Jackcwf.Api.Ai;

/// <summary>
/// Lets go of a provider request's body once its response arrived with a success status. The HTTP/1.1
/// connection keeps the request it is answering until the response's body is read to the end, so a
/// streamed answer kept its request's content (the SDK's request model: options, every message of the
/// prompt) for as long as it streamed, though the body was sent in full before the response began. A
/// success is never sent again (nothing retries it), and nothing reads a sent request's content.
/// </summary>
internal sealed class RequestBodyRelease : DelegatingHandler
{
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var response = await base.SendAsync(request, cancellationToken);
        if (response.IsSuccessStatusCode && response.Version.Major == 1)
        {
            // HTTP/1.x sends the whole body before it reads the response; HTTP/2 and 3 may still be sending it.
            request.Content = null;
        }
        return response;
    }
}
