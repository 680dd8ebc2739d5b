using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace Scheduler.Rpc;

/// <summary>The four kinds of gRPC call.</summary>
public enum MethodType
{
    Unary,
    ClientStreaming,
    ServerStreaming,
    DuplexStreaming,
}

/// <summary>Untyped view of a method, for routing and diagnostics.</summary>
public interface IMethod
{
    MethodType Type { get; }

    /// <summary>Fully qualified service name, e.g. <c>sched.v1.Scheduler</c>.</summary>
    string ServiceName { get; }

    /// <summary>Method name, e.g. <c>Subscribe</c>.</summary>
    string Name { get; }

    /// <summary>The HTTP/2 path, <c>/sched.v1.Scheduler/Subscribe</c>.</summary>
    string FullName { get; }
}

/// <summary>
/// A typed gRPC method. Build it from the generated protobuf descriptor with
/// <c>Method.FromDescriptor</c> so its path and kind can never drift
/// from the .proto file.
/// </summary>
public sealed class Method<TRequest, TResponse> : IMethod
    where TRequest : class, IMessage<TRequest>
    where TResponse : class, IMessage<TResponse>
{
    public Method(MethodType type, string serviceName, string name, MessageParser<TRequest> requestParser, MessageParser<TResponse> responseParser)
    {
        Type = type;
        ServiceName = serviceName;
        Name = name;
        FullName = "/" + serviceName + "/" + name;
        RequestParser = requestParser;
        ResponseParser = responseParser;
    }

    public MethodType Type { get; }

    public string ServiceName { get; }

    public string Name { get; }

    public string FullName { get; }

    public MessageParser<TRequest> RequestParser { get; }

    public MessageParser<TResponse> ResponseParser { get; }

    public override string ToString() => FullName;
}

/// <summary>Factory for typed methods from protobuf descriptors.</summary>
public static class Method
{
    /// <summary>
    /// Builds a typed method from a service method descriptor; throws when the CLR types do not
    /// match the descriptor's input/output messages.
    /// </summary>
    public static Method<TRequest, TResponse> FromDescriptor<TRequest, TResponse>(MethodDescriptor descriptor)
        where TRequest : class, IMessage<TRequest>, new()
        where TResponse : class, IMessage<TResponse>, new()
    {
        ArgumentNullException.ThrowIfNull(descriptor);
        if (descriptor.InputType.ClrType != typeof(TRequest))
        {
            throw new ArgumentException($"{descriptor.FullName}: request type is {descriptor.InputType.ClrType}, not {typeof(TRequest)}.", nameof(descriptor));
        }
        if (descriptor.OutputType.ClrType != typeof(TResponse))
        {
            throw new ArgumentException($"{descriptor.FullName}: response type is {descriptor.OutputType.ClrType}, not {typeof(TResponse)}.", nameof(descriptor));
        }
        var type = (descriptor.IsClientStreaming, descriptor.IsServerStreaming) switch
        {
            (false, false) => MethodType.Unary,
            (true, false) => MethodType.ClientStreaming,
            (false, true) => MethodType.ServerStreaming,
            (true, true) => MethodType.DuplexStreaming,
        };
        return new Method<TRequest, TResponse>(
            type,
            descriptor.Service.FullName,
            descriptor.Name,
            new MessageParser<TRequest>(() => new TRequest()),
            new MessageParser<TResponse>(() => new TResponse()));
    }

    /// <summary>Looks up <paramref name="service"/>.<paramref name="name"/> and builds the typed method.</summary>
    public static Method<TRequest, TResponse> FromDescriptor<TRequest, TResponse>(ServiceDescriptor service, string name)
        where TRequest : class, IMessage<TRequest>, new()
        where TResponse : class, IMessage<TResponse>, new()
    {
        ArgumentNullException.ThrowIfNull(service);
        var md = service.FindMethodByName(name)
            ?? throw new ArgumentException($"Service {service.FullName} has no method {name}.", nameof(name));
        return FromDescriptor<TRequest, TResponse>(md);
    }
}
