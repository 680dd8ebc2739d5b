using Grpc.Core;
using Sched.V1;
using Scheduler.FrameworkSdk;
using Scheduler.Jobs.Engine;
using Scheduler.Jobs.Spec;
using Scheduler.Master.Registry;

namespace Scheduler.Jobs.Api;

/// <summary>
/// <c>sched.v1.Jobs</c>: the jobs API over the engine. Refusals map to gRPC codes with messages
/// that say what to do: a bad job file is INVALID_ARGUMENT (file:line:column lines), an unknown
/// job NOT_FOUND, a change that conflicts with other jobs FAILED_PRECONDITION. Each call is
/// authorized on the roles of the jobs it touches (<see cref="JobsApiAuthorizer"/>); a listing
/// shows a restricted caller the jobs of its roles only.
/// </summary>
public sealed class JobsService : Sched.V1.Jobs.JobsBase
{
    private readonly Func<CancellationToken, Task<JobsTerm>> _term;
    private readonly JobsApiAuthorizer _authorizer;

    /// <param name="term">The active term; throws UNAVAILABLE (with the active instance's address) on a standby.</param>
    /// <param name="authorizer">Who may call.</param>
    internal JobsService(Func<CancellationToken, Task<JobsTerm>> term, JobsApiAuthorizer authorizer)
    {
        _term = term;
        _authorizer = authorizer;
    }

    public override Task<SubmitJobResponse> SubmitJob(SubmitJobRequest request, ServerCallContext context) =>
        Call(e => SubmittedRoles(e, request.JobFile, FileName(request.FileName)), e => e.Submit(request.JobFile, FileName(request.FileName)), context);

    public override Task<PlanJobResponse> PlanJob(PlanJobRequest request, ServerCallContext context) =>
        Call(e => SubmittedRoles(e, request.JobFile, FileName(request.FileName)), e => new PlanJobResponse { Plan = e.Plan(request.JobFile, FileName(request.FileName)) }, context);

    public override Task<GetJobResponse> GetJob(GetJobRequest request, ServerCallContext context) =>
        Call(e => RoleOf(e, request.Name), e => e.Get(request.Name, request.History), context);

    public override async Task<ListJobsResponse> ListJobs(ListJobsRequest request, ServerCallContext context)
    {
        var caller = await _authorizer.AuthenticateAsync(context);
        var term = await _term(context.CancellationToken);
        var all = term.Engine.List();
        if (caller.Unrestricted)
        {
            return all;
        }
        // Other principals see the jobs of the roles they may manage, and no others.
        var mine = await _authorizer.ManageableAsync(caller, all.Jobs.Select(j => j.Role), context.CancellationToken);
        var response = new ListJobsResponse();
        response.Jobs.Add(all.Jobs.Where(j => mine.Contains(j.Role)));
        return response;
    }

    public override Task<ScaleJobResponse> ScaleJob(ScaleJobRequest request, ServerCallContext context) =>
        CallWithActions(e => RoleOf(e, request.Name), (e, a) => e.Scale(request.Name, (int)Math.Min(request.Count, 100_000), a), context);

    public override Task<StopJobResponse> StopJob(StopJobRequest request, ServerCallContext context) =>
        CallWithActions(e => RoleOf(e, request.Name), (e, a) => e.Stop(request.Name, request.Purge, a), context);

    public override Task<RestartJobResponse> RestartJob(RestartJobRequest request, ServerCallContext context) =>
        CallWithActions(e => RoleOf(e, request.Name), (e, a) => e.Restart(request.Name, a), context);

    public override Task<StartInstanceResponse> StartInstance(StartInstanceRequest request, ServerCallContext context) =>
        Call(e => RoleOf(e, request.Name), e => e.StartInstance(request.Name, request.Instance), context);

    private static string FileName(string name) => string.IsNullOrWhiteSpace(name) ? "job.yaml" : name;

    /// <summary>The role of an existing job (none for an unknown one: the call answers NOT_FOUND).</summary>
    private static IEnumerable<string> RoleOf(JobsEngine engine, string name) => engine.RoleOf(name) is { } role ? [role] : [];

    /// <summary>A submitted file's role, and the job's present role when it moves the job to another.</summary>
    private static IEnumerable<string> SubmittedRoles(JobsEngine engine, string yaml, string fileName)
    {
        var spec = Run(() => JobFileParser.Parse(yaml, fileName));
        return engine.RoleOf(spec.Name) is { } present ? [spec.Role, present] : [spec.Role];
    }

    private async Task<T> CallWithActions<T>(Func<JobsEngine, IEnumerable<string>> roles, Func<JobsEngine, EngineActions, T> operation, ServerCallContext context)
    {
        var caller = await _authorizer.AuthenticateAsync(context);
        var cancellationToken = context.CancellationToken;
        var term = await _term(cancellationToken);
        await _authorizer.DemandAsync(caller, roles(term.Engine), cancellationToken);
        var actions = new EngineActions();
        var result = Run(() => operation(term.Engine, actions));
        // The change is saved; the kills are sent now (and again by the engine's tick if this fails).
        await term.Framework.ApplyAsync(term.Client, actions, cancellationToken);
        return result;
    }

    private async Task<T> Call<T>(Func<JobsEngine, IEnumerable<string>> roles, Func<JobsEngine, T> operation, ServerCallContext context)
    {
        var caller = await _authorizer.AuthenticateAsync(context);
        var term = await _term(context.CancellationToken);
        await _authorizer.DemandAsync(caller, roles(term.Engine), context.CancellationToken);
        return Run(() => operation(term.Engine));
    }

    private static T Run<T>(Func<T> operation)
    {
        try
        {
            return operation();
        }
        catch (JobFileException e)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, e.Message));
        }
        catch (KeyNotFoundException e)
        {
            throw new RpcException(new Status(StatusCode.NotFound, e.Message));
        }
        catch (ArgumentException e)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, e.Message));
        }
        catch (InvalidOperationException e)
        {
            throw new RpcException(new Status(StatusCode.FailedPrecondition, e.Message));
        }
        catch (RegistryFencedException e)
        {
            throw new RpcException(new Status(StatusCode.Unavailable, $"this jobs instance is no longer the active one; nothing was changed ({e.Message}); try again"));
        }
        catch (RegistryUnavailableException e)
        {
            throw new RpcException(new Status(StatusCode.Unavailable, $"the jobs state store did not confirm the change ({e.Message}); check the store (etcd) and try again"));
        }
    }
}
