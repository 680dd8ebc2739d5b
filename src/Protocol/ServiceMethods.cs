using Google.Protobuf.Reflection;
using Sched.V1;
using Scheduler.Rpc;

namespace Scheduler.Protocol;

/// <summary>Typed methods of <c>sched.v1.Scheduler</c>, built from the generated descriptors.</summary>
public static class SchedulerMethods
{
    public static readonly ServiceDescriptor Service = SchedulerReflection.Descriptor.FindTypeByName<ServiceDescriptor>("Scheduler");

    public static readonly Method<SubscribeRequest, Event> Subscribe = Method.FromDescriptor<SubscribeRequest, Event>(Service, "Subscribe");
    public static readonly Method<AcceptRequest, AcceptResponse> Accept = Method.FromDescriptor<AcceptRequest, AcceptResponse>(Service, "Accept");
    public static readonly Method<DeclineRequest, DeclineResponse> Decline = Method.FromDescriptor<DeclineRequest, DeclineResponse>(Service, "Decline");
    public static readonly Method<ReviveRequest, ReviveResponse> Revive = Method.FromDescriptor<ReviveRequest, ReviveResponse>(Service, "Revive");
    public static readonly Method<SuppressRequest, SuppressResponse> Suppress = Method.FromDescriptor<SuppressRequest, SuppressResponse>(Service, "Suppress");
    public static readonly Method<KillRequest, KillResponse> Kill = Method.FromDescriptor<KillRequest, KillResponse>(Service, "Kill");
    public static readonly Method<AcknowledgeRequest, AcknowledgeResponse> Acknowledge = Method.FromDescriptor<AcknowledgeRequest, AcknowledgeResponse>(Service, "Acknowledge");
    public static readonly Method<ReconcileRequest, ReconcileResponse> Reconcile = Method.FromDescriptor<ReconcileRequest, ReconcileResponse>(Service, "Reconcile");
    public static readonly Method<MessageRequest, MessageResponse> Message = Method.FromDescriptor<MessageRequest, MessageResponse>(Service, "Message");
    public static readonly Method<TeardownRequest, TeardownResponse> Teardown = Method.FromDescriptor<TeardownRequest, TeardownResponse>(Service, "Teardown");
    public static readonly Method<UpdateFrameworkRequest, UpdateFrameworkResponse> UpdateFramework = Method.FromDescriptor<UpdateFrameworkRequest, UpdateFrameworkResponse>(Service, "UpdateFramework");
}

/// <summary>Typed methods of <c>sched.v1.AgentLink</c>.</summary>
public static class AgentLinkMethods
{
    public static readonly ServiceDescriptor Service = AgentReflection.Descriptor.FindTypeByName<ServiceDescriptor>("AgentLink");

    public static readonly Method<AgentMessage, MasterMessage> Connect = Method.FromDescriptor<AgentMessage, MasterMessage>(Service, "Connect");
}

/// <summary>Typed methods of <c>sched.v1.AgentFiles</c>.</summary>
public static class AgentFilesMethods
{
    public static readonly ServiceDescriptor Service = AgentReflection.Descriptor.FindTypeByName<ServiceDescriptor>("AgentFiles");

    public static readonly Method<ListFilesRequest, ListFilesResponse> ListFiles = Method.FromDescriptor<ListFilesRequest, ListFilesResponse>(Service, "ListFiles");
    public static readonly Method<ReadFileRequest, ReadFileResponse> ReadFile = Method.FromDescriptor<ReadFileRequest, ReadFileResponse>(Service, "ReadFile");
    public static readonly Method<TailFileRequest, FileChunk> TailFile = Method.FromDescriptor<TailFileRequest, FileChunk>(Service, "TailFile");
}

/// <summary>Typed methods of <c>sched.v1.Operator</c>.</summary>
public static class OperatorMethods
{
    public static readonly ServiceDescriptor Service = OperatorReflection.Descriptor.FindTypeByName<ServiceDescriptor>("Operator");

    public static readonly Method<GetHealthRequest, GetHealthResponse> GetHealth = Method.FromDescriptor<GetHealthRequest, GetHealthResponse>(Service, "GetHealth");
    public static readonly Method<GetLeaderRequest, GetLeaderResponse> GetLeader = Method.FromDescriptor<GetLeaderRequest, GetLeaderResponse>(Service, "GetLeader");
    public static readonly Method<GetStateRequest, GetStateResponse> GetState = Method.FromDescriptor<GetStateRequest, GetStateResponse>(Service, "GetState");
    public static readonly Method<GetAgentsRequest, GetAgentsResponse> GetAgents = Method.FromDescriptor<GetAgentsRequest, GetAgentsResponse>(Service, "GetAgents");
    public static readonly Method<GetFrameworksRequest, GetFrameworksResponse> GetFrameworks = Method.FromDescriptor<GetFrameworksRequest, GetFrameworksResponse>(Service, "GetFrameworks");
    public static readonly Method<GetTasksRequest, GetTasksResponse> GetTasks = Method.FromDescriptor<GetTasksRequest, GetTasksResponse>(Service, "GetTasks");
    public static readonly Method<GetRolesRequest, GetRolesResponse> GetRoles = Method.FromDescriptor<GetRolesRequest, GetRolesResponse>(Service, "GetRoles");
    public static readonly Method<GetQuotaRequest, GetQuotaResponse> GetQuota = Method.FromDescriptor<GetQuotaRequest, GetQuotaResponse>(Service, "GetQuota");
    public static readonly Method<UpdateQuotaRequest, UpdateQuotaResponse> UpdateQuota = Method.FromDescriptor<UpdateQuotaRequest, UpdateQuotaResponse>(Service, "UpdateQuota");
    public static readonly Method<UpdateWeightsRequest, UpdateWeightsResponse> UpdateWeights = Method.FromDescriptor<UpdateWeightsRequest, UpdateWeightsResponse>(Service, "UpdateWeights");
    public static readonly Method<DrainAgentRequest, DrainAgentResponse> DrainAgent = Method.FromDescriptor<DrainAgentRequest, DrainAgentResponse>(Service, "DrainAgent");
    public static readonly Method<ReactivateAgentRequest, ReactivateAgentResponse> ReactivateAgent = Method.FromDescriptor<ReactivateAgentRequest, ReactivateAgentResponse>(Service, "ReactivateAgent");
    public static readonly Method<KillTaskRequest, KillTaskResponse> KillTask = Method.FromDescriptor<KillTaskRequest, KillTaskResponse>(Service, "KillTask");
    public static readonly Method<OperatorSubscribeRequest, OperatorEvent> Subscribe = Method.FromDescriptor<OperatorSubscribeRequest, OperatorEvent>(Service, "Subscribe");
    public static readonly Method<ReserveResourcesRequest, ReserveResourcesResponse> ReserveResources = Method.FromDescriptor<ReserveResourcesRequest, ReserveResourcesResponse>(Service, "ReserveResources");
    public static readonly Method<UnreserveResourcesRequest, UnreserveResourcesResponse> UnreserveResources = Method.FromDescriptor<UnreserveResourcesRequest, UnreserveResourcesResponse>(Service, "UnreserveResources");
}

/// <summary>Well-known metadata keys.</summary>
public static class MetadataKeys
{
    /// <summary>Trailer set by non-leading masters: the leader's <c>host:port</c> (empty if unknown).</summary>
    public const string Leader = "sched-leader";
}
