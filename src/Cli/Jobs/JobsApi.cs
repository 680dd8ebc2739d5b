using Scheduler.Channels;
using Google.Protobuf;
using Grpc.Core;
using Sched.V1;
using Scheduler.FrameworkSdk;
using Scheduler.Jobs;
using Scheduler.Protocol;

namespace Scheduler.Cli.Jobs;

/// <summary>
/// The CLI's way to the Jobs API: <c>--jobs HOST:PORT</c>, else <c>SCHED_JOBS</c>, else the
/// address the connected jobs framework advertises in its <c>sched.jobs.api</c> label
/// (<c>Operator.GetFrameworks</c> on the masters), so a dev cluster needs no flags.
/// </summary>
internal sealed class JobsApi : IDisposable
{
    private readonly MasterDirectory _directory;

    private JobsApi(string address, Scheduler.Channels.GrpcChannelSettings settings)
    {
        Address = address;
        _directory = new MasterDirectory([address], settings);
    }

    public string Address { get; }

    public static async Task<JobsApi> FindAsync(string? explicitAddress, MasterConnection masters, CancellationToken cancellationToken)
    {
        var address = explicitAddress;
        if (string.IsNullOrWhiteSpace(address))
        {
            address = Environment.GetEnvironmentVariable("SCHED_JOBS");
        }
        if (string.IsNullOrWhiteSpace(address))
        {
            var frameworks = await masters.CallAsync(OperatorMethods.GetFrameworks, new GetFrameworksRequest(), cancellationToken);
            address = frameworks.Frameworks
                .Where(f => f.Info.Labels.Any(l => l.Key == JobsHost.ApiLabel))
                .OrderByDescending(f => f.Connected)
                .Select(f => f.Info.Labels.First(l => l.Key == JobsHost.ApiLabel).Value)
                .FirstOrDefault();
            if (address is null)
            {
                throw new CliException($"no jobs framework is registered with the master at {masters.Current}; start one with 'schedctl jobs run' (dev up starts one), or name its API with --jobs HOST:PORT");
            }
        }
        return new JobsApi(address, masters.Settings);
    }

    public async Task<TResponse> CallAsync<TRequest, TResponse>(Method<TRequest, TResponse> method, TRequest request, CancellationToken cancellationToken)
        where TRequest : class, IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>
    {
        try
        {
            return await _directory.CallAsync(method, request, TimeSpan.FromSeconds(15), cancellationToken);
        }
        catch (RpcException e) when (e.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded)
        {
            throw new CliException($"cannot reach the jobs API at {Address} ({e.Status.Detail}); is the jobs framework running? ('schedctl frameworks' shows it)");
        }
        catch (RpcException e)
        {
            throw e.StatusCode switch
            {
                StatusCode.InvalidArgument => CliException.BadInput(e.Status.Detail),
                StatusCode.NotFound or StatusCode.FailedPrecondition => new CliException(e.Status.Detail),
                _ => MasterConnection.Describe(method, e),
            };
        }
    }

    public void Dispose() => _directory.Dispose();
}
