using Grpc.Core;
using Scheduler.Hosting;

namespace Scheduler.Master.Services;

/// <summary>
/// The leader check of every <c>sched.v1</c> call, in one place: a master that does not lead
/// answers UNAVAILABLE with the leader's address in the <c>sched-leader</c> trailer (absent when
/// unknown), which the SDK, agents and CLI follow. <c>Operator.GetHealth</c>,
/// <c>Operator.GetLeader</c>, <c>Operator.WhoAmI</c>, <c>Operator.CreateToken</c> (the token key is
/// the cluster's), <c>grpc.health.v1.Health</c> and server reflection are answered by
/// every master. The term found is the call's (<see cref="MasterRuntime.TermOf"/>): handlers
/// do not check leadership again.
/// </summary>
public sealed class LeaderInterceptor(MasterRuntime runtime) : ServerCallInterceptor
{
    private static readonly HashSet<string> AnsweredByEveryMaster = new(StringComparer.Ordinal)
    {
        "/" + Sched.V1.Operator.Descriptor.FullName + "/GetHealth",
        "/" + Sched.V1.Operator.Descriptor.FullName + "/GetLeader",
        "/" + Sched.V1.Operator.Descriptor.FullName + "/WhoAmI",
        "/" + Sched.V1.Operator.Descriptor.FullName + "/CreateToken",
    };

    protected override Task<T> AroundAsync<T>(ServerCallContext context, Func<Task<T>> call)
    {
        if (context.Method.StartsWith("/sched.v1.", StringComparison.Ordinal) && !AnsweredByEveryMaster.Contains(context.Method))
        {
            context.UserState[MasterRuntime.TermKey] = runtime.Require();
        }
        return call();
    }
}
