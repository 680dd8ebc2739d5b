using Google.Protobuf;

namespace Sched.V1;

/// <summary>A request of a paged operator answer (see GetStateRequest in operator.proto).</summary>
public interface IPagedRequest
{
    string PageToken { get; set; }

    uint PageBytes { get; set; }
}

/// <summary>One page of a paged operator answer.</summary>
public interface IPagedResponse
{
    string NextPageToken { get; set; }
}

public sealed partial class GetStateRequest : IPagedRequest;

public sealed partial class GetAgentsRequest : IPagedRequest;

public sealed partial class GetTasksRequest : IPagedRequest;

public sealed partial class GetStateResponse : IPagedResponse;

public sealed partial class GetAgentsResponse : IPagedResponse;

public sealed partial class GetTasksResponse : IPagedResponse;

/// <summary>Reads a paged operator answer whole.</summary>
public static class Pages
{
    /// <summary>Calls <paramref name="call"/> for the first page and again with each
    /// <c>next_page_token</c> until there is none; returns the pages merged into one answer
    /// (repeated fields concatenated in page order).</summary>
    public static async Task<TResponse> AllAsync<TRequest, TResponse>(TRequest request, Func<TRequest, Task<TResponse>> call)
        where TRequest : IMessage<TRequest>, IDeepCloneable<TRequest>, IPagedRequest
        where TResponse : IMessage<TResponse>, IPagedResponse, new()
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(call);
        var next = request.Clone();
        var all = new TResponse();
        while (true)
        {
            var page = await call(next).ConfigureAwait(false);
            all.MergeFrom(page);
            if (page.NextPageToken.Length == 0)
            {
                all.NextPageToken = "";
                return all;
            }
            if (page.NextPageToken == next.PageToken)
            {
                throw new InvalidOperationException($"the master answered page token '{page.NextPageToken}' with itself as the next one");
            }
            next.PageToken = page.NextPageToken;
        }
    }
}
