using Google.Protobuf;

namespace Scheduler.Rpc;

/// <summary>
/// The methods a server serves, by path. Built once at start-up, then read-only.
/// </summary>
public sealed class ServiceRegistry
{
    private readonly Dictionary<string, ServerMethodDefinition> _methods = new(StringComparer.Ordinal);

    public IReadOnlyCollection<ServerMethodDefinition> Methods => _methods.Values;

    public ServiceRegistry AddUnary<TRequest, TResponse>(Method<TRequest, TResponse> method, UnaryServerMethod<TRequest, TResponse> handler)
        where TRequest : class, IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>
        => Add(method, MethodType.Unary, handler);

    public ServiceRegistry AddServerStreaming<TRequest, TResponse>(Method<TRequest, TResponse> method, ServerStreamingServerMethod<TRequest, TResponse> handler)
        where TRequest : class, IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>
        => Add(method, MethodType.ServerStreaming, handler);

    public ServiceRegistry AddClientStreaming<TRequest, TResponse>(Method<TRequest, TResponse> method, ClientStreamingServerMethod<TRequest, TResponse> handler)
        where TRequest : class, IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>
        => Add(method, MethodType.ClientStreaming, handler);

    public ServiceRegistry AddDuplexStreaming<TRequest, TResponse>(Method<TRequest, TResponse> method, DuplexStreamingServerMethod<TRequest, TResponse> handler)
        where TRequest : class, IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>
        => Add(method, MethodType.DuplexStreaming, handler);

    public bool TryGet(string path, out ServerMethodDefinition definition) => _methods.TryGetValue(path, out definition!);

    public bool Contains(string path) => _methods.ContainsKey(path);

    private ServiceRegistry Add<TRequest, TResponse>(Method<TRequest, TResponse> method, MethodType expected, Delegate handler)
        where TRequest : class, IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>
    {
        ArgumentNullException.ThrowIfNull(method);
        ArgumentNullException.ThrowIfNull(handler);
        if (method.Type != expected)
        {
            throw new ArgumentException($"{method.FullName} is a {method.Type} method, not {expected}.", nameof(method));
        }
        if (!_methods.TryAdd(method.FullName, ServerMethodDefinition.Create(method, handler)))
        {
            throw new ArgumentException($"{method.FullName} is already mapped.", nameof(method));
        }
        return this;
    }
}

/// <summary>One served method: its descriptor and handler, with typed (de)serialisation.</summary>
public abstract class ServerMethodDefinition
{
    public abstract IMethod Method { get; }

    public abstract Delegate Handler { get; }

    /// <summary>Runs the handler for one call: reads requests, writes responses.</summary>
    internal abstract Task InvokeAsync(Internal.HttpServerCallContext call);

    internal static ServerMethodDefinition Create<TRequest, TResponse>(Method<TRequest, TResponse> method, Delegate handler)
        where TRequest : class, IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>
        => new ServerMethodDefinition<TRequest, TResponse>(method, handler);
}

/// <summary>A served method with its message types.</summary>
public sealed class ServerMethodDefinition<TRequest, TResponse> : ServerMethodDefinition
    where TRequest : class, IMessage<TRequest>
    where TResponse : class, IMessage<TResponse>
{
    internal ServerMethodDefinition(Method<TRequest, TResponse> method, Delegate handler)
    {
        TypedMethod = method;
        Handler = handler;
    }

    public Method<TRequest, TResponse> TypedMethod { get; }

    public override IMethod Method => TypedMethod;

    public override Delegate Handler { get; }

    internal override Task InvokeAsync(Internal.HttpServerCallContext call)
    {
        var parser = TypedMethod.RequestParser;
        switch (TypedMethod.Type)
        {
            case MethodType.Unary:
                return InvokeUnaryAsync(call, parser);
            case MethodType.ServerStreaming:
                return InvokeServerStreamingAsync(call, parser);
            case MethodType.ClientStreaming:
                return InvokeClientStreamingAsync(call, parser);
            default:
                {
                    // The handler's own task, not one wrapped in another state machine: a duplex
                    // call may stay open for the life of a client (one per connected agent).
                    var reader = new Internal.ServerStreamReader<TRequest>(call, parser);
                    var writer = new Internal.ServerStreamWriter<TResponse>(call);
                    return ((DuplexStreamingServerMethod<TRequest, TResponse>)Handler)(reader, writer, call);
                }
        }
    }

    private async Task InvokeUnaryAsync(Internal.HttpServerCallContext call, MessageParser<TRequest> parser)
    {
        var request = await ReadSingleAsync(call, parser).ConfigureAwait(false);
        var response = await ((UnaryServerMethod<TRequest, TResponse>)Handler)(request, call).ConfigureAwait(false);
        // No flush: Kestrel sends the message and the trailers together when the call ends.
        await call.WriteMessageAsync(response, flush: false, default).ConfigureAwait(false);
    }

    private async Task InvokeServerStreamingAsync(Internal.HttpServerCallContext call, MessageParser<TRequest> parser)
    {
        var request = await ReadSingleAsync(call, parser).ConfigureAwait(false);
        var writer = new Internal.ServerStreamWriter<TResponse>(call);
        await ((ServerStreamingServerMethod<TRequest, TResponse>)Handler)(request, writer, call).ConfigureAwait(false);
    }

    private async Task InvokeClientStreamingAsync(Internal.HttpServerCallContext call, MessageParser<TRequest> parser)
    {
        var reader = new Internal.ServerStreamReader<TRequest>(call, parser);
        var response = await ((ClientStreamingServerMethod<TRequest, TResponse>)Handler)(reader, call).ConfigureAwait(false);
        await call.WriteMessageAsync(response, flush: false, default).ConfigureAwait(false);
    }

    private static async ValueTask<TRequest> ReadSingleAsync(Internal.HttpServerCallContext call, MessageParser<TRequest> parser)
    {
        var request = await call.ReadMessageAsync(parser, call.ReadToken).ConfigureAwait(false)
            ?? throw new RpcException(new Status(StatusCode.Internal, "The request stream ended without a request message; this method takes exactly one."));
        if (await call.ReadMessageAsync(parser, call.ReadToken).ConfigureAwait(false) is not null)
        {
            throw new RpcException(new Status(StatusCode.Internal, "The request stream has more than one message; this method takes exactly one."));
        }
        return request;
    }
}
