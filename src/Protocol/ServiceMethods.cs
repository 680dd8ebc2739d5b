using Google.Protobuf;
using Google.Protobuf.Reflection;
using Grpc.Core;
using Sched.V1;

namespace Scheduler.Protocol;

/// <summary>Typed methods of <c>sched.v1.Scheduler</c>, for code that calls any method of the
/// service the same way (the SDK's redirect-following call, the CLI). Built from the generated
/// descriptors, so paths and kinds cannot drift from the .proto file; the generated
/// <c>Scheduler.SchedulerClient</c> and <c>Scheduler.SchedulerBase</c> use the same paths.</summary>
public static class SchedulerMethods
{
    public static readonly ServiceDescriptor Service = global::Sched.V1.Scheduler.Descriptor;

    public static readonly Method<SubscribeRequest, Event> Subscribe = GrpcMethod.Of<SubscribeRequest, Event>(Service, "Subscribe");
    public static readonly Method<AcceptRequest, AcceptResponse> Accept = GrpcMethod.Of<AcceptRequest, AcceptResponse>(Service, "Accept");
    public static readonly Method<DeclineRequest, DeclineResponse> Decline = GrpcMethod.Of<DeclineRequest, DeclineResponse>(Service, "Decline");
    public static readonly Method<ReviveRequest, ReviveResponse> Revive = GrpcMethod.Of<ReviveRequest, ReviveResponse>(Service, "Revive");
    public static readonly Method<SuppressRequest, SuppressResponse> Suppress = GrpcMethod.Of<SuppressRequest, SuppressResponse>(Service, "Suppress");
    public static readonly Method<KillRequest, KillResponse> Kill = GrpcMethod.Of<KillRequest, KillResponse>(Service, "Kill");
    public static readonly Method<AcknowledgeRequest, AcknowledgeResponse> Acknowledge = GrpcMethod.Of<AcknowledgeRequest, AcknowledgeResponse>(Service, "Acknowledge");
    public static readonly Method<ReconcileRequest, ReconcileResponse> Reconcile = GrpcMethod.Of<ReconcileRequest, ReconcileResponse>(Service, "Reconcile");
    public static readonly Method<MessageRequest, MessageResponse> Message = GrpcMethod.Of<MessageRequest, MessageResponse>(Service, "Message");
    public static readonly Method<TeardownRequest, TeardownResponse> Teardown = GrpcMethod.Of<TeardownRequest, TeardownResponse>(Service, "Teardown");
    public static readonly Method<UpdateFrameworkRequest, UpdateFrameworkResponse> UpdateFramework = GrpcMethod.Of<UpdateFrameworkRequest, UpdateFrameworkResponse>(Service, "UpdateFramework");
}

/// <summary>Typed methods of <c>sched.v1.AgentLink</c>.</summary>
public static class AgentLinkMethods
{
    public static readonly ServiceDescriptor Service = global::Sched.V1.AgentLink.Descriptor;

    public static readonly Method<AgentMessage, MasterMessage> Connect = GrpcMethod.Of<AgentMessage, MasterMessage>(Service, "Connect");
}

/// <summary>Typed methods of <c>sched.v1.AgentFiles</c>.</summary>
public static class AgentFilesMethods
{
    public static readonly ServiceDescriptor Service = global::Sched.V1.AgentFiles.Descriptor;

    public static readonly Method<ListFilesRequest, ListFilesResponse> ListFiles = GrpcMethod.Of<ListFilesRequest, ListFilesResponse>(Service, "ListFiles");
    public static readonly Method<ReadFileRequest, ReadFileResponse> ReadFile = GrpcMethod.Of<ReadFileRequest, ReadFileResponse>(Service, "ReadFile");
    public static readonly Method<TailFileRequest, FileChunk> TailFile = GrpcMethod.Of<TailFileRequest, FileChunk>(Service, "TailFile");
}

/// <summary>Typed methods of <c>sched.v1.Operator</c>.</summary>
public static class OperatorMethods
{
    public static readonly ServiceDescriptor Service = global::Sched.V1.Operator.Descriptor;

    public static readonly Method<GetHealthRequest, GetHealthResponse> GetHealth = GrpcMethod.Of<GetHealthRequest, GetHealthResponse>(Service, "GetHealth");
    public static readonly Method<GetLeaderRequest, GetLeaderResponse> GetLeader = GrpcMethod.Of<GetLeaderRequest, GetLeaderResponse>(Service, "GetLeader");
    public static readonly Method<GetStateRequest, GetStateResponse> GetState = GrpcMethod.Of<GetStateRequest, GetStateResponse>(Service, "GetState");
    public static readonly Method<GetAgentsRequest, GetAgentsResponse> GetAgents = GrpcMethod.Of<GetAgentsRequest, GetAgentsResponse>(Service, "GetAgents");
    public static readonly Method<GetFrameworksRequest, GetFrameworksResponse> GetFrameworks = GrpcMethod.Of<GetFrameworksRequest, GetFrameworksResponse>(Service, "GetFrameworks");
    public static readonly Method<GetTasksRequest, GetTasksResponse> GetTasks = GrpcMethod.Of<GetTasksRequest, GetTasksResponse>(Service, "GetTasks");
    public static readonly Method<GetRolesRequest, GetRolesResponse> GetRoles = GrpcMethod.Of<GetRolesRequest, GetRolesResponse>(Service, "GetRoles");
    public static readonly Method<GetQuotaRequest, GetQuotaResponse> GetQuota = GrpcMethod.Of<GetQuotaRequest, GetQuotaResponse>(Service, "GetQuota");
    public static readonly Method<UpdateQuotaRequest, UpdateQuotaResponse> UpdateQuota = GrpcMethod.Of<UpdateQuotaRequest, UpdateQuotaResponse>(Service, "UpdateQuota");
    public static readonly Method<UpdateWeightsRequest, UpdateWeightsResponse> UpdateWeights = GrpcMethod.Of<UpdateWeightsRequest, UpdateWeightsResponse>(Service, "UpdateWeights");
    public static readonly Method<DrainAgentRequest, DrainAgentResponse> DrainAgent = GrpcMethod.Of<DrainAgentRequest, DrainAgentResponse>(Service, "DrainAgent");
    public static readonly Method<ReactivateAgentRequest, ReactivateAgentResponse> ReactivateAgent = GrpcMethod.Of<ReactivateAgentRequest, ReactivateAgentResponse>(Service, "ReactivateAgent");
    public static readonly Method<MarkAgentGoneRequest, MarkAgentGoneResponse> MarkAgentGone = GrpcMethod.Of<MarkAgentGoneRequest, MarkAgentGoneResponse>(Service, "MarkAgentGone");
    public static readonly Method<KillTaskRequest, KillTaskResponse> KillTask = GrpcMethod.Of<KillTaskRequest, KillTaskResponse>(Service, "KillTask");
    public static readonly Method<OperatorSubscribeRequest, OperatorEvent> Subscribe = GrpcMethod.Of<OperatorSubscribeRequest, OperatorEvent>(Service, "Subscribe");
    public static readonly Method<ReserveResourcesRequest, ReserveResourcesResponse> ReserveResources = GrpcMethod.Of<ReserveResourcesRequest, ReserveResourcesResponse>(Service, "ReserveResources");
    public static readonly Method<UnreserveResourcesRequest, UnreserveResourcesResponse> UnreserveResources = GrpcMethod.Of<UnreserveResourcesRequest, UnreserveResourcesResponse>(Service, "UnreserveResources");
    public static readonly Method<WhoAmIRequest, WhoAmIResponse> WhoAmI = GrpcMethod.Of<WhoAmIRequest, WhoAmIResponse>(Service, "WhoAmI");
    public static readonly Method<CreateTokenRequest, CreateTokenResponse> CreateToken = GrpcMethod.Of<CreateTokenRequest, CreateTokenResponse>(Service, "CreateToken");
    public static readonly Method<TeardownFrameworkRequest, TeardownFrameworkResponse> TeardownFramework = GrpcMethod.Of<TeardownFrameworkRequest, TeardownFrameworkResponse>(Service, "TeardownFramework");
    public static readonly Method<SetSecretRequest, SetSecretResponse> SetSecret = GrpcMethod.Of<SetSecretRequest, SetSecretResponse>(Service, "SetSecret");
    public static readonly Method<ListSecretsRequest, ListSecretsResponse> ListSecrets = GrpcMethod.Of<ListSecretsRequest, ListSecretsResponse>(Service, "ListSecrets");
    public static readonly Method<DeleteSecretRequest, DeleteSecretResponse> DeleteSecret = GrpcMethod.Of<DeleteSecretRequest, DeleteSecretResponse>(Service, "DeleteSecret");
}

/// <summary>Well-known metadata keys.</summary>
public static class MetadataKeys
{
    /// <summary>Trailer set by non-leading masters on UNAVAILABLE: the leader's <c>host:port</c>.
    /// Absent when no leader is known (gRPC servers, Grpc.AspNetCore among them, do not send
    /// metadata with an empty value): a client then tries the next master.</summary>
    public const string Leader = "sched-leader";
}

/// <summary>Builds <see cref="Method{TRequest, TResponse}"/> objects from protobuf descriptors, with
/// marshallers that serialise straight into and out of the call's buffers.</summary>
public static class GrpcMethod
{
    /// <summary>The method <paramref name="name"/> of <paramref name="service"/>; throws when it does
    /// not exist or its message types are not <typeparamref name="TRequest"/> and <typeparamref name="TResponse"/>.</summary>
    public static Method<TRequest, TResponse> Of<TRequest, TResponse>(ServiceDescriptor service, string name)
        where TRequest : class, IMessage<TRequest>, new()
        where TResponse : class, IMessage<TResponse>, new()
    {
        ArgumentNullException.ThrowIfNull(service);
        var md = service.FindMethodByName(name)
            ?? throw new ArgumentException($"Service {service.FullName} has no method {name}.", nameof(name));
        if (md.InputType.ClrType != typeof(TRequest) || md.OutputType.ClrType != typeof(TResponse))
        {
            throw new ArgumentException($"{md.FullName} takes {md.InputType.ClrType} and returns {md.OutputType.ClrType}, not {typeof(TRequest)} → {typeof(TResponse)}.", nameof(name));
        }
        var type = (md.IsClientStreaming, md.IsServerStreaming) switch
        {
            (false, false) => MethodType.Unary,
            (true, false) => MethodType.ClientStreaming,
            (false, true) => MethodType.ServerStreaming,
            (true, true) => MethodType.DuplexStreaming,
        };
        return new Method<TRequest, TResponse>(type, service.FullName, md.Name, Marshaller<TRequest>(), Marshaller<TResponse>());
    }

    /// <summary>The protobuf marshaller of <typeparamref name="T"/> (buffer-writer based, no copy).</summary>
    public static Marshaller<T> Marshaller<T>()
        where T : class, IMessage<T>, new()
    {
        var parser = new MessageParser<T>(() => new T());
        return Marshallers.Create<T>(
            (message, context) =>
            {
                context.SetPayloadLength(message.CalculateSize());
                message.WriteTo(context.GetBufferWriter());
                context.Complete();
            },
            context => parser.ParseFrom(context.PayloadAsReadOnlySequence()));
    }
}

/// <summary>Typed methods of <c>sched.v1.Jobs</c> (served by the jobs framework).</summary>
public static class JobsMethods
{
    public static readonly ServiceDescriptor Service = global::Sched.V1.Jobs.Descriptor;

    public static readonly Method<SubmitJobRequest, SubmitJobResponse> SubmitJob = GrpcMethod.Of<SubmitJobRequest, SubmitJobResponse>(Service, "SubmitJob");
    public static readonly Method<PlanJobRequest, PlanJobResponse> PlanJob = GrpcMethod.Of<PlanJobRequest, PlanJobResponse>(Service, "PlanJob");
    public static readonly Method<GetJobRequest, GetJobResponse> GetJob = GrpcMethod.Of<GetJobRequest, GetJobResponse>(Service, "GetJob");
    public static readonly Method<ListJobsRequest, ListJobsResponse> ListJobs = GrpcMethod.Of<ListJobsRequest, ListJobsResponse>(Service, "ListJobs");
    public static readonly Method<ScaleJobRequest, ScaleJobResponse> ScaleJob = GrpcMethod.Of<ScaleJobRequest, ScaleJobResponse>(Service, "ScaleJob");
    public static readonly Method<StopJobRequest, StopJobResponse> StopJob = GrpcMethod.Of<StopJobRequest, StopJobResponse>(Service, "StopJob");
    public static readonly Method<RestartJobRequest, RestartJobResponse> RestartJob = GrpcMethod.Of<RestartJobRequest, RestartJobResponse>(Service, "RestartJob");
    public static readonly Method<StartInstanceRequest, StartInstanceResponse> StartInstance = GrpcMethod.Of<StartInstanceRequest, StartInstanceResponse>(Service, "StartInstance");
}
