using Grpc.Core;
using Sched.V1;
using Scheduler.FrameworkSdk;
using Scheduler.Jobs.Engine;
using Scheduler.Jobs.Spec;

namespace Scheduler.Jobs.Api;

/// <summary>
/// <c>sched.v1.Jobs</c>: the jobs API over the engine. Refusals map to gRPC codes with messages
/// that say what to do: a bad job file is INVALID_ARGUMENT (file:line:column lines), an unknown
/// job NOT_FOUND, a change that conflicts with other jobs FAILED_PRECONDITION.
/// </summary>
public sealed class JobsService : Sched.V1.Jobs.JobsBase
{
    private readonly JobsEngine _engine;
    private readonly JobsFramework _framework;
    private readonly Func<SchedulerClient> _client;

    public JobsService(JobsEngine engine, JobsFramework framework, Func<SchedulerClient> client)
    {
        _engine = engine;
        _framework = framework;
        _client = client;
    }

    public override Task<SubmitJobResponse> SubmitJob(SubmitJobRequest request, ServerCallContext context) =>
        Call(() => _engine.Submit(request.JobFile, FileName(request.FileName)));

    public override Task<PlanJobResponse> PlanJob(PlanJobRequest request, ServerCallContext context) =>
        Call(() => new PlanJobResponse { Plan = _engine.Plan(request.JobFile, FileName(request.FileName)) });

    public override Task<GetJobResponse> GetJob(GetJobRequest request, ServerCallContext context) =>
        Call(() => _engine.Get(request.Name, request.History));

    public override Task<ListJobsResponse> ListJobs(ListJobsRequest request, ServerCallContext context) =>
        Call(_engine.List);

    public override Task<ScaleJobResponse> ScaleJob(ScaleJobRequest request, ServerCallContext context) =>
        CallWithActions(a => _engine.Scale(request.Name, (int)Math.Min(request.Count, 100_000), a), context.CancellationToken);

    public override Task<StopJobResponse> StopJob(StopJobRequest request, ServerCallContext context) =>
        CallWithActions(a => _engine.Stop(request.Name, request.Purge, a), context.CancellationToken);

    public override Task<RestartJobResponse> RestartJob(RestartJobRequest request, ServerCallContext context) =>
        CallWithActions(a => _engine.Restart(request.Name, a), context.CancellationToken);

    public override Task<StartInstanceResponse> StartInstance(StartInstanceRequest request, ServerCallContext context) =>
        Call(() => _engine.StartInstance(request.Name, request.Instance));

    private static string FileName(string name) => string.IsNullOrWhiteSpace(name) ? "job.yaml" : name;

    private async Task<T> CallWithActions<T>(Func<EngineActions, T> operation, CancellationToken cancellationToken)
    {
        var actions = new EngineActions();
        var result = await Call(() => operation(actions));
        // The change is saved; the kills are sent now (and again by the engine's tick if this fails).
        await _framework.ApplyAsync(_client(), actions, cancellationToken);
        return result;
    }

    private static Task<T> Call<T>(Func<T> operation)
    {
        try
        {
            return Task.FromResult(operation());
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
    }
}
