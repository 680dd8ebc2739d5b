using Sched.V1;
using Scheduler.Master.Loop;
using Scheduler.Master.Registry;
using Scheduler.Master.Security;
using Scheduler.Security;
using Grpc.Core;

namespace Scheduler.Master.Services;

/// <summary><c>sched.v1.Operator</c>. GetHealth, GetLeader, WhoAmI and CreateToken are answered
/// by every master; the rest by the leader's loop. Reads show the caller what it may see
/// (<see cref="ViewFilter"/>); writes are checked against the ACLs (<see cref="MasterSecurity"/>).</summary>
public sealed class OperatorService(MasterRuntime runtime) : Operator.OperatorBase
{
    public override Task<GetHealthResponse> GetHealth(GetHealthRequest request, ServerCallContext context) => Task.FromResult(Health());

    public override Task<GetLeaderResponse> GetLeader(GetLeaderRequest request, ServerCallContext context) => Task.FromResult(Leader());

    public override async Task<GetStateResponse> GetState(GetStateRequest request, ServerCallContext context)
    {
        var (state, filter, bound) = await Invoke(context, l => (l.GetState(), Filter(l, context), l.AnswerSizeBound));
        return AnswerPages.Page(filter.Apply(state), request, bound);
    }

    public override async Task<GetAgentsResponse> GetAgents(GetAgentsRequest request, ServerCallContext context)
    {
        var (agents, filter, bound) = await Invoke(context, l => (l.GetAgents(), Filter(l, context), l.AnswerSizeBound));
        if (filter.SeesAll)
        {
            return AnswerPages.Page(agents, request, bound);
        }
        var shown = new GetAgentsResponse();
        shown.Agents.AddRange(agents.Agents.Where(a => filter.Agent(a.Info.Id)));
        return AnswerPages.Page(shown, request, bound);
    }

    public override async Task<GetFrameworksResponse> GetFrameworks(GetFrameworksRequest request, ServerCallContext context)
    {
        var (frameworks, filter) = await Invoke(context, l => (l.GetFrameworks(), Filter(l, context)));
        if (filter.SeesAll)
        {
            return frameworks;
        }
        var shown = new GetFrameworksResponse();
        shown.Frameworks.AddRange(frameworks.Frameworks.Where(f => filter.Framework(f.Info.Id)));
        return shown;
    }

    public override async Task<GetTasksResponse> GetTasks(GetTasksRequest request, ServerCallContext context)
    {
        var (tasks, filter, bound) = await Invoke(context, l => (l.GetTasks(request), Filter(l, context), l.AnswerSizeBound));
        if (filter.SeesAll)
        {
            return AnswerPages.Page(tasks, request, bound);
        }
        var shown = new GetTasksResponse();
        shown.Tasks.AddRange(tasks.Tasks.Where(t => filter.Task(t.FrameworkId)).Select(filter.Shown));
        return AnswerPages.Page(shown, request, bound);
    }

    public override async Task<GetRolesResponse> GetRoles(GetRolesRequest request, ServerCallContext context)
    {
        var (roles, filter) = await Invoke(context, l => (l.GetRoles(), Filter(l, context)));
        if (filter.SeesAll)
        {
            return roles;
        }
        var shown = new GetRolesResponse();
        shown.Roles.AddRange(roles.Roles.Where(r => filter.Role(r.Name)));
        return shown;
    }

    public override async Task<GetQuotaResponse> GetQuota(GetQuotaRequest request, ServerCallContext context)
    {
        var (quota, filter) = await Invoke(context, l => (l.GetQuota(), Filter(l, context)));
        if (filter.SeesAll)
        {
            return quota;
        }
        var shown = new GetQuotaResponse();
        shown.Quotas.AddRange(quota.Quotas.Where(q => filter.Role(q.Role)));
        return shown;
    }

    public override async Task<UpdateQuotaResponse> UpdateQuota(UpdateQuotaRequest request, ServerCallContext context)
    {
        var caller = MasterSecurity.CallerOf(context);
        foreach (var quota in request.Quotas)
        {
            runtime.Security.Demand(caller, AclAction.UpdateQuota, quota.Role);
        }
        await Durable(await Invoke(context, l => l.UpdateQuota(request)));
        return new UpdateQuotaResponse();
    }

    public override async Task<UpdateWeightsResponse> UpdateWeights(UpdateWeightsRequest request, ServerCallContext context)
    {
        var caller = MasterSecurity.CallerOf(context);
        foreach (var role in request.Weights.Select(w => w.Role))
        {
            runtime.Security.Demand(caller, AclAction.UpdateWeights, role);
        }
        await Durable(await Invoke(context, l => l.UpdateWeights(request)));
        return new UpdateWeightsResponse();
    }

    public override Task<DrainAgentResponse> DrainAgent(DrainAgentRequest request, ServerCallContext context)
    {
        runtime.Security.Demand(MasterSecurity.CallerOf(context), AclAction.DrainAgent, request.AgentId);
        return Invoke(context, l => l.DrainAgent(request));
    }

    public override Task<ReactivateAgentResponse> ReactivateAgent(ReactivateAgentRequest request, ServerCallContext context)
    {
        runtime.Security.Demand(MasterSecurity.CallerOf(context), AclAction.DrainAgent, request.AgentId);
        return Invoke(context, l => l.ReactivateAgent(request));
    }

    public override async Task<MarkAgentGoneResponse> MarkAgentGone(MarkAgentGoneRequest request, ServerCallContext context)
    {
        runtime.Security.Demand(MasterSecurity.CallerOf(context), AclAction.MarkAgentGone, request.AgentId);
        var (response, durable) = await Invoke(context, l => l.MarkAgentGone(request));
        await Durable(durable);
        return response;
    }

    public override Task<KillTaskResponse> KillTask(KillTaskRequest request, ServerCallContext context)
    {
        var caller = MasterSecurity.CallerOf(context);
        return Invoke(context, l => l.KillTask(request, caller));
    }

    public override Task<TeardownFrameworkResponse> TeardownFramework(TeardownFrameworkRequest request, ServerCallContext context)
    {
        var caller = MasterSecurity.CallerOf(context);
        return Invoke(context, l => l.TeardownFramework(request, caller));
    }

    public override async Task<ReserveResourcesResponse> ReserveResources(ReserveResourcesRequest request, ServerCallContext context)
    {
        var caller = MasterSecurity.CallerOf(context);
        foreach (var resource in request.Resources)
        {
            if (!caller.IsAnonymous && resource.Reservation is { } reservation)
            {
                if (reservation.Principal.Length > 0 && reservation.Principal != caller.Principal)
                {
                    throw MasterErrors.PermissionDenied($"the reservation names principal '{reservation.Principal}' but the call is authenticated as '{caller.Principal}'; leave the principal out (it is the caller's)");
                }
                reservation.Principal = caller.Principal;
            }
            runtime.Security.Demand(caller, AclAction.Reserve, resource.Reservation?.Role ?? "");
        }
        var (response, durable) = await Invoke(context, l => l.ReserveResources(request));
        await durable;
        return response;
    }

    public override async Task<UnreserveResourcesResponse> UnreserveResources(UnreserveResourcesRequest request, ServerCallContext context)
    {
        var caller = MasterSecurity.CallerOf(context);
        foreach (var resource in request.Resources)
        {
            runtime.Security.DemandOnOwned(caller, AclAction.Unreserve, resource.Reservation?.Principal ?? "", $"the reservation of {resource.Name} for role '{resource.Reservation?.Role}'");
        }
        var (response, durable) = await Invoke(context, l => l.UnreserveResources(request));
        await durable;
        return response;
    }

    public override async Task<SetSecretResponse> SetSecret(SetSecretRequest request, ServerCallContext context)
    {
        runtime.Security.Demand(MasterSecurity.CallerOf(context), AclAction.ManageSecrets, request.Role);
        await Durable(await Invoke(context, l => l.SetSecret(request)));
        return new SetSecretResponse();
    }

    public override Task<ListSecretsResponse> ListSecrets(ListSecretsRequest request, ServerCallContext context)
    {
        var caller = MasterSecurity.CallerOf(context);
        if (request.Role.Length > 0)
        {
            runtime.Security.Demand(caller, AclAction.ManageSecrets, request.Role);
        }
        return Invoke(context, l => l.ListSecrets(request.Role, role => runtime.Security.Allows(caller, AclAction.ManageSecrets, role)));
    }

    public override async Task<DeleteSecretResponse> DeleteSecret(DeleteSecretRequest request, ServerCallContext context)
    {
        runtime.Security.Demand(MasterSecurity.CallerOf(context), AclAction.ManageSecrets, request.Role);
        await Durable(await Invoke(context, l => l.DeleteSecret(request)));
        return new DeleteSecretResponse();
    }

    public override Task<WhoAmIResponse> WhoAmI(WhoAmIRequest request, ServerCallContext context)
    {
        var caller = MasterSecurity.CallerOf(context);
        var response = new WhoAmIResponse
        {
            Principal = caller.Principal,
            AuthenticatedBy = caller.Kind.ToString().ToLowerInvariant(),
            Superuser = runtime.Security.Enforced && runtime.Security.IsSuperuser(caller),
        };
        for (var i = 0; i < request.Checks.Count; i++)
        {
            var check = request.Checks[i];
            if (!AclActions.TryParse(check.Action, out var action))
            {
                throw MasterErrors.InvalidArgument($"checks[{i}]: unknown action '{check.Action}'; the actions are {string.Join(", ", AclActions.Names)}");
            }
            response.Allowed.Add(runtime.Security.Allows(caller, action, check.Object));
        }
        return Task.FromResult(response);
    }

    public override Task<CreateTokenResponse> CreateToken(CreateTokenRequest request, ServerCallContext context)
    {
        var security = runtime.Security;
        var caller = MasterSecurity.CallerOf(context);
        if (security.Keys is null)
        {
            throw MasterErrors.FailedPrecondition("this master accepts no tokens (it runs with --insecure-allow-anonymous and no --token-key)");
        }
        if (caller.IsAnonymous)
        {
            throw new RpcException(new Status(StatusCode.Unauthenticated, "creating a token needs credentials: present an operator's token as 'authorization: Bearer TOKEN' metadata"));
        }
        if (string.IsNullOrWhiteSpace(request.Principal) || request.Principal.Any(char.IsControl) || request.Principal.Length > 128)
        {
            throw MasterErrors.InvalidArgument("principal must be a non-empty name of at most 128 printable characters");
        }
        if (!(request.TtlSeconds > 0) || request.TtlSeconds > security.MaxTokenTtl.TotalSeconds)
        {
            throw MasterErrors.InvalidArgument($"ttl must be more than 0 and at most {security.MaxTokenTtl.TotalDays:0.##} days (the master's --max-token-ttl); got {request.TtlSeconds} s");
        }
        security.Demand(caller, AclAction.CreateToken, request.Principal);
        var now = runtime.Time.GetUtcNow();
        var ttl = TimeSpan.FromSeconds(request.TtlSeconds);
        return Task.FromResult(new CreateTokenResponse
        {
            Token = security.Keys.Issue(request.Principal, ttl, now),
            ExpiresAt = (now + ttl).ToUnixTimeMilliseconds() / 1000.0,
        });
    }

    private ViewFilter Filter(MasterLoop loop, ServerCallContext context)
        => new(runtime.Security, MasterSecurity.CallerOf(context), runtime.Security.Enforced ? loop.FrameworkPrincipals() : new Dictionary<string, string>());

    private Task<T> Invoke<T>(ServerCallContext context, Func<MasterLoop, T> body) => MasterRuntime.TermOf(context).Loop.InvokeAsync(body);

    private async Task Durable(Task write)
    {
        try
        {
            await write;
        }
        catch (RegistryFencedException)
        {
            throw MasterErrors.NotLeader(runtime.LeaderHint());
        }
        catch (Exception e) when (e is not RpcException)
        {
            throw MasterErrors.Unavailable($"the change was applied but could not be persisted ({e.Message}); retry");
        }
    }

    private GetHealthResponse Health()
    {
        var loop = runtime.CurrentLoop;
        var role = loop is null ? "follower" : loop.Recovering ? "recovering" : runtime.Standalone ? "standalone" : "leader";
        return new GetHealthResponse
        {
            Healthy = true,
            Role = role,
            Version = runtime.Self?.Version ?? "",
            UptimeSeconds = (runtime.Time.GetUtcNow() - runtime.StartedAt).TotalSeconds,
            Master = runtime.Self,
            Memory = Telemetry.ProcessMemoryReader.Read(),
        };
    }

    private GetLeaderResponse Leader()
    {
        var loop = runtime.CurrentLoop;
        if (loop is not null)
        {
            return new GetLeaderResponse { Leader = loop.Self, IsSelf = true };
        }
        var leader = runtime.Election?.CurrentLeader;
        return new GetLeaderResponse { Leader = leader, IsSelf = false };
    }

    public override async Task Subscribe(OperatorSubscribeRequest request, IServerStreamWriter<OperatorEvent> responseStream, ServerCallContext context)
    {
        var term = MasterRuntime.TermOf(context);
        var (outbox, filter, principals) = await term.Loop.InvokeAsync(l =>
        {
            var known = runtime.Security.Enforced ? l.FrameworkPrincipals() : new Dictionary<string, string>();
            return (l.SubscribeOperator(), new ViewFilter(runtime.Security, MasterSecurity.CallerOf(context), known), known);
        });
        try
        {
            IServerStreamWriter<OperatorEvent> writer = filter.SeesAll ? responseStream : new FilteredWriter(responseStream, filter, principals);
            await runtime.DrainAsync(term, outbox, writer, context.CancellationToken);
        }
        finally
        {
            term.Loop.Post(l => l.UnsubscribeOperator(outbox));
        }
    }

    /// <summary>Writes the events the caller may see, learning new frameworks' principals as they come.</summary>
    private sealed class FilteredWriter(IServerStreamWriter<OperatorEvent> inner, ViewFilter filter, Dictionary<string, string> principals) : IServerStreamWriter<OperatorEvent>
    {
        public WriteOptions? WriteOptions
        {
            get => inner.WriteOptions;
            set => inner.WriteOptions = value;
        }

        public Task WriteAsync(OperatorEvent message) => WriteAsync(message, CancellationToken.None);

        public Task WriteAsync(OperatorEvent message, CancellationToken cancellationToken)
        {
            var info = message.FrameworkAdded?.Framework?.Info ?? message.FrameworkUpdated?.Framework?.Info;
            if (info is not null)
            {
                principals[info.Id] = info.Principal;
            }
            return filter.Apply(message) is { } shown ? inner.WriteAsync(shown, cancellationToken) : Task.CompletedTask;
        }
    }
}
