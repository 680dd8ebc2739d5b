using Google.Protobuf;
using Grpc.AspNetCore.Server;
using Sched.V1;
using Scheduler.Protocol;

namespace Scheduler.Hosting.Tests;

/// <summary>
/// A service with no .proto file, <c>test.Echo</c>, written the way Grpc.AspNetCore finds
/// methods: <see cref="BindServiceMethodAttribute"/> names <see cref="BindService"/>, which adds
/// Grpc.Core <see cref="Method{TRequest, TResponse}"/> objects. The handler of each is the public
/// virtual method of the same name declared on the attribute's type (Grpc.AspNetCore looks it up
/// by name and calls it on the served instance, as with a generated <c>…Base</c>), hence not sealed.
/// The Python interop scripts call it by raw path.
/// </summary>
[BindServiceMethod(typeof(EchoService), nameof(BindService))]
public class EchoService
{
    /// <summary>Client streaming: the chunks' data concatenated, offset = their count.</summary>
    public static readonly Method<FileChunk, FileChunk> CollectMethod =
        new(MethodType.ClientStreaming, "test.Echo", nameof(Collect), GrpcMethod.Marshaller<FileChunk>(), GrpcMethod.Marshaller<FileChunk>());

    /// <summary>Unary: the request itself.</summary>
    public static readonly Method<FileChunk, FileChunk> EchoMethod =
        new(MethodType.Unary, "test.Echo", nameof(Echo), GrpcMethod.Marshaller<FileChunk>(), GrpcMethod.Marshaller<FileChunk>());

    /// <summary>A method of the same service that no server maps.</summary>
    public static readonly Method<GetHealthRequest, GetHealthResponse> MissingMethod =
        new(MethodType.Unary, "test.Echo", "Missing", GrpcMethod.Marshaller<GetHealthRequest>(), GrpcMethod.Marshaller<GetHealthResponse>());

    /// <summary>Called by Grpc.AspNetCore with a null <paramref name="service"/> to discover the methods.</summary>
    public static void BindService(ServiceBinderBase binder, EchoService? service)
    {
        ArgumentNullException.ThrowIfNull(binder);
        binder.AddMethod(CollectMethod, service is null ? null : service.Collect);
        binder.AddMethod(EchoMethod, service is null ? null : service.Echo);
    }

    /// <summary>Also tells, in the trailer <c>x-grpc-encoding</c>, the request's message encoding.</summary>
    public virtual async Task<FileChunk> Collect(IAsyncStreamReader<FileChunk> requestStream, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(requestStream);
        ArgumentNullException.ThrowIfNull(context);
        using var all = new MemoryStream();
        var count = 0L;
        while (await requestStream.MoveNext(context.CancellationToken))
        {
            requestStream.Current.Data.WriteTo(all);
            count++;
        }
        var encoding = context.GetHttpContext().Request.Headers["grpc-encoding"].ToString();
        context.ResponseTrailers.Add("x-grpc-encoding", encoding.Length == 0 ? "identity" : encoding);
        return new FileChunk { Offset = count, Data = ByteString.CopyFrom(all.ToArray()) };
    }

    public virtual Task<FileChunk> Echo(FileChunk request, ServerCallContext context) => Task.FromResult(request);
}
