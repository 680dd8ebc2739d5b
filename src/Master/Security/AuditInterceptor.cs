using Google.Protobuf;
using Google.Protobuf.Reflection;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.Extensions.Logging;
using Scheduler.Hosting;
using Scheduler.Master.Telemetry;

namespace Scheduler.Master.Security;

/// <summary>
/// One structured log record (<c>audit principal=… method=… object=… result=…</c>) per mutating
/// call, allowed or denied, including the calls refused before they reached a handler. Streams
/// that register something (a framework's Subscribe) are recorded when they start and when they
/// end. Reads are not recorded.
/// </summary>
public sealed class AuditInterceptor(ILogger logger) : Interceptor
{
    /// <summary>Fields of a request that name what the call acts on, in the order they are reported.</summary>
    private static readonly string[] ObjectFields = ["framework_id", "task_id", "agent_id", "role", "principal"];

    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        if (!MethodAccess.IsMutating(context.Method))
        {
            return await continuation(request, context).ConfigureAwait(false);
        }
        try
        {
            var response = await continuation(request, context).ConfigureAwait(false);
            Record(context, request, StatusCode.OK, "");
            return response;
        }
        catch (Exception e)
        {
            Record(context, request, ServerCallInterceptor.OutcomeOf(context, e), (e as RpcException)?.Status.Detail ?? e.GetType().Name);
            throw;
        }
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        if (!MethodAccess.IsMutating(context.Method))
        {
            await continuation(request, responseStream, context).ConfigureAwait(false);
            return;
        }
        var started = new StartedWriter<TResponse>(responseStream, () => Record(context, request, StatusCode.OK, "stream started"));
        try
        {
            await continuation(request, started, context).ConfigureAwait(false);
            Record(context, request, StatusCode.OK, "stream ended");
        }
        catch (Exception e)
        {
            Record(context, request, ServerCallInterceptor.OutcomeOf(context, e), (e as RpcException)?.Status.Detail ?? e.GetType().Name);
            throw;
        }
    }

    public override async Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            await continuation(requestStream, responseStream, context).ConfigureAwait(false);
        }
        catch (Exception e) when (e is RpcException { StatusCode: StatusCode.Unauthenticated or StatusCode.PermissionDenied } rpc)
        {
            Record(context, null, rpc.StatusCode, rpc.Status.Detail);
            throw;
        }
    }

    private void Record(ServerCallContext context, object? request, StatusCode result, string detail)
    {
        var caller = MasterSecurity.CallerOf(context);
        MasterLog.Audit(logger, caller.Display, context.Method, ObjectOf(request as IMessage), result.ToString(), detail);
    }

    /// <summary>What the request names: <c>framework_id=… role=…</c>, from its top-level fields and
    /// those of a nested framework_info.</summary>
    public static string ObjectOf(IMessage? request)
    {
        if (request is null)
        {
            return "-";
        }
        var parts = new List<string>();
        Collect(request, parts);
        if (request.Descriptor.FindFieldByName("framework_info") is { } infoField && infoField.Accessor.GetValue(request) is Sched.V1.FrameworkInfo info)
        {
            parts.Add("framework=" + info.Name);
            if (info.Id.Length > 0)
            {
                parts.Add("framework_id=" + info.Id);
            }
            if (info.Roles.Count > 0)
            {
                parts.Add("roles=" + string.Join(",", info.Roles));
            }
        }
        // Roles of repeated entries (UpdateQuota's quotas, UpdateWeights' weights, resources' reservations).
        var roles = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var field in request.Descriptor.Fields.InFieldNumberOrder().Where(f => f.IsRepeated && f.FieldType == FieldType.Message))
        {
            foreach (var item in ((System.Collections.IList)field.Accessor.GetValue(request)).OfType<IMessage>())
            {
                var role = item.Descriptor.FindFieldByName("role")?.Accessor.GetValue(item) as string
                    ?? (item.Descriptor.FindFieldByName("reservation")?.Accessor.GetValue(item) as Sched.V1.Reservation)?.Role;
                if (role is { Length: > 0 })
                {
                    roles.Add(role);
                }
            }
        }
        if (roles.Count > 0)
        {
            parts.Add("roles=" + string.Join(",", roles));
        }
        return parts.Count == 0 ? "-" : string.Join(" ", parts);
    }

    private static void Collect(IMessage message, List<string> parts)
    {
        foreach (var name in ObjectFields)
        {
            if (message.Descriptor.FindFieldByName(name) is { FieldType: FieldType.String, IsRepeated: false } field
                && field.Accessor.GetValue(message) is string { Length: > 0 } value)
            {
                parts.Add($"{name}={value}");
            }
        }
    }

    /// <summary>Calls <c>onFirst</c> before the first message goes out.</summary>
    private sealed class StartedWriter<T>(IServerStreamWriter<T> inner, Action onFirst) : IServerStreamWriter<T>
    {
        private Action? _onFirst = onFirst;

        public WriteOptions? WriteOptions
        {
            get => inner.WriteOptions;
            set => inner.WriteOptions = value;
        }

        public Task WriteAsync(T message) => WriteAsync(message, CancellationToken.None);

        public Task WriteAsync(T message, CancellationToken cancellationToken)
        {
            Interlocked.Exchange(ref _onFirst, null)?.Invoke();
            return inner.WriteAsync(message, cancellationToken);
        }
    }
}
