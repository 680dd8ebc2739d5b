using System.Reflection;
using Google.Protobuf;
using Grpc.AspNetCore.Server.Model;
using Grpc.Core;

namespace Scheduler.Hosting;

/// <summary>
/// Binds a service's methods as Grpc.AspNetCore's own binder does (the generated
/// <c>BindService</c> named by <see cref="BindServiceMethodAttribute"/>, the handler called on the
/// service instance), but with request deserialisers that answer a request they cannot parse with
/// INVALID_ARGUMENT ("cannot parse sched.v1.X: reason"). Grpc.AspNetCore answers any exception of
/// a deserialiser as a handler exception (UNKNOWN, "Exception was thrown by handler.") and has no
/// hook for it; an <see cref="RpcException"/> thrown there keeps its status.
/// </summary>
/// <remarks>Replaces Grpc.AspNetCore's binder for every service of a <see cref="GrpcServer"/>
/// (reflection and health included): two providers of one method would map it twice.</remarks>
internal sealed class StrictParsingMethodProvider<TService> : IServiceMethodProvider<TService>
    where TService : class
{
    public void OnServiceMethodDiscovery(ServiceMethodProviderContext<TService> context)
    {
        var (bindType, bindName) = FindBindAttribute(typeof(TService)) ?? default;
        if (bindType is null)
        {
            return; // Not a generated service: nothing to bind (Grpc.AspNetCore logs that it has no methods).
        }
        var bind = bindType.GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static)
            .SingleOrDefault(m => m.Name == bindName && m.GetParameters() is [{ } binder, { } impl]
                && binder.ParameterType == typeof(ServiceBinderBase) && impl.ParameterType.IsAssignableFrom(typeof(TService)))
            ?? throw new InvalidOperationException($"{bindType} has no method {bindName}(ServiceBinderBase, {typeof(TService).Name}) to bind {typeof(TService)} with.");
        bind.Invoke(null, [new Binder(context), null]);
    }

    private static (Type Type, string Name)? FindBindAttribute(Type type)
    {
        for (var t = type; t is not null; t = t.BaseType)
        {
            if (t.GetCustomAttribute<BindServiceMethodAttribute>(inherit: false) is { } attribute)
            {
                return (attribute.BindType, attribute.BindMethodName);
            }
        }
        return null;
    }

    /// <summary>Receives the generated <c>BindService</c>'s methods (with a null service, so null
    /// handlers) and adds each with a strict request marshaller and an invoker calling the method
    /// of that name on the service instance of the call.</summary>
    private sealed class Binder(ServiceMethodProviderContext<TService> context) : ServiceBinderBase
    {
        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, UnaryServerMethod<TRequest, TResponse>? handler)
        {
            var target = Handler(method, typeof(TRequest), typeof(ServerCallContext));
            context.AddUnaryMethod(Strict(method), Metadata(target), target.CreateDelegate<UnaryServerMethod<TService, TRequest, TResponse>>());
        }

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ClientStreamingServerMethod<TRequest, TResponse>? handler)
        {
            var target = Handler(method, typeof(IAsyncStreamReader<TRequest>), typeof(ServerCallContext));
            context.AddClientStreamingMethod(Strict(method), Metadata(target), target.CreateDelegate<ClientStreamingServerMethod<TService, TRequest, TResponse>>());
        }

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ServerStreamingServerMethod<TRequest, TResponse>? handler)
        {
            var target = Handler(method, typeof(TRequest), typeof(IServerStreamWriter<TResponse>), typeof(ServerCallContext));
            context.AddServerStreamingMethod(Strict(method), Metadata(target), target.CreateDelegate<ServerStreamingServerMethod<TService, TRequest, TResponse>>());
        }

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, DuplexStreamingServerMethod<TRequest, TResponse>? handler)
        {
            var target = Handler(method, typeof(IAsyncStreamReader<TRequest>), typeof(IServerStreamWriter<TResponse>), typeof(ServerCallContext));
            context.AddDuplexStreamingMethod(Strict(method), Metadata(target), target.CreateDelegate<DuplexStreamingServerMethod<TService, TRequest, TResponse>>());
        }

        private static MethodInfo Handler(IMethod method, params Type[] parameters)
            => typeof(TService).GetMethod(method.Name, BindingFlags.Public | BindingFlags.Instance, parameters)
                ?? throw new InvalidOperationException($"{typeof(TService)} has no public method {method.Name}({string.Join(", ", parameters.Select(p => p.Name))}) for {method.FullName}.");

        /// <summary>The service's and the method's attributes, as Grpc.AspNetCore's binder gives them
        /// to the endpoint (authorization, CORS and the like read them).</summary>
        private static List<object> Metadata(MethodInfo handler)
            => [.. typeof(TService).GetCustomAttributes(inherit: true), .. handler.GetCustomAttributes(inherit: true)];
    }

    private static Method<TRequest, TResponse> Strict<TRequest, TResponse>(Method<TRequest, TResponse> method)
        where TRequest : class
        where TResponse : class
        => new(method.Type, method.ServiceName, method.Name, StrictRequests.Of(method.RequestMarshaller), method.ResponseMarshaller);
}

/// <summary>Request marshallers whose deserialiser answers bytes it cannot parse with INVALID_ARGUMENT.</summary>
internal static class StrictRequests
{
    /// <summary><paramref name="inner"/>, with any failure of its deserialiser (but an
    /// <see cref="RpcException"/>, which keeps its status) turned into INVALID_ARGUMENT
    /// "cannot parse TYPE: reason", TYPE the protobuf message's full name.</summary>
    public static Marshaller<T> Of<T>(Marshaller<T> inner)
        where T : class
    {
        var name = MessageName(typeof(T));
        var deserialize = inner.ContextualDeserializer;
        return new Marshaller<T>(inner.ContextualSerializer, context =>
        {
            try
            {
                return deserialize(context);
            }
            catch (Exception e) when (e is not RpcException and not OperationCanceledException)
            {
                throw new RpcException(new Status(StatusCode.InvalidArgument, $"cannot parse {name}: {e.Message}"));
            }
        });
    }

    private static string MessageName(Type type)
        => typeof(IMessage).IsAssignableFrom(type)
            && type.GetProperty("Descriptor", BindingFlags.Public | BindingFlags.Static)?.GetValue(null) is Google.Protobuf.Reflection.MessageDescriptor descriptor
            ? descriptor.FullName
            : type.Name;
}
