using Sched.V1;
using Scheduler.Channels;
using Scheduler.Cli.Cluster;
using Scheduler.Integration.Tests;

namespace Scheduler.Jobs.Tests;

/// <summary>
/// The jobs framework on a secure cluster, as <c>dev up</c> starts it (a master with a token key and
/// ACLs that refuses anonymous callers, an agent with its token, the jobs process with the operator
/// token in <c>SCHED_TOKEN</c>): it subscribes, launches, and reads roles and quotas as that principal,
/// and its API serves only callers the masters authenticate as that principal or a superuser.
/// </summary>
public sealed class SecureJobsTests : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "jobs-secure-" + Guid.NewGuid().ToString("N")[..10]);
    private LocalCluster? _cluster;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        _cluster = await LocalCluster.StartAsync(new LocalClusterOptions
        {
            Agents = 1,
            Jobs = true,
            WorkDir = _dir,
            MasterArgs = [.. ClusterFixture.FastMasterArgs],
            Command = Schedctl.Command,
            StartTimeout = TimeSpan.FromSeconds(60),
        }, CancellationToken.None);
    }

    public async Task DisposeAsync()
    {
        if (_cluster is not null)
        {
            await _cluster.DisposeAsync();
        }
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task The_jobs_framework_presents_its_token_and_its_api_serves_only_its_principal_and_superusers()
    {
        var cluster = _cluster!;
        var tls = Scheduler.Channels.Tls.ClientTls.FromFiles(cluster.CaFile);
        Assert.NotNull(tls);
        // Everything is served over TLS: a plaintext client gets nowhere, on the masters or the Jobs API.
        using (var plaintext = GrpcChannels.ForAddress(cluster.MasterList))
        {
            var e = await Assert.ThrowsAsync<Grpc.Core.RpcException>(async () => await new Operator.OperatorClient(plaintext).GetRolesAsync(new GetRolesRequest(), deadline: DateTime.UtcNow.AddSeconds(10)));
            Assert.NotEqual(Grpc.Core.StatusCode.OK, e.StatusCode);
        }
        using (var plaintext = GrpcChannels.ForAddress(cluster.JobsAddress!))
        {
            var e = await Assert.ThrowsAsync<Grpc.Core.RpcException>(async () => await new Sched.V1.Jobs.JobsClient(plaintext).ListJobsAsync(new ListJobsRequest(), deadline: DateTime.UtcNow.AddSeconds(10)));
            Assert.NotEqual(Grpc.Core.StatusCode.OK, e.StatusCode);
        }
        using var anonymous = GrpcChannels.ForAddress(cluster.MasterList, new GrpcChannelSettings { Tls = tls });
        var refused = await Assert.ThrowsAsync<Grpc.Core.RpcException>(async () => await new Operator.OperatorClient(anonymous).GetRolesAsync(new GetRolesRequest()));
        Assert.Equal(Grpc.Core.StatusCode.Unauthenticated, refused.StatusCode);

        using var admin = GrpcChannels.ForAddress(cluster.MasterList, cluster.AdminChannel());
        var op = new Operator.OperatorClient(admin);
        await op.UpdateQuotaAsync(new UpdateQuotaRequest { Quotas = { new QuotaInfo { Role = "capped", Limits = { new Resource { Name = "cpus", Scalar = 0.5 } } } } });

        using var jobsChannel = GrpcChannels.ForAddress(cluster.JobsAddress!, cluster.AdminChannel());
        var jobs = new Sched.V1.Jobs.JobsClient(jobsChannel);
        await jobs.SubmitJobAsync(new SubmitJobRequest
        {
            JobFile = """
                name: capped
                type: service
                role: capped
                instances: 2
                task: {command: 'sleep 600', resources: {cpus: 0.5, mem: 32}, kill_grace: 1s}
                """,
        });
        JobInfo? last = null;
        await Poll.UntilAsync(async () =>
        {
            last = (await jobs.GetJobAsync(new GetJobRequest { Name = "capped" })).Job;
            return last.Instances.Count(i => i.State == "running") == 1
                && last.Instances.Any(i => i.PendingReason.StartsWith("role capped lacks 0.5 cpus under its quota limit", StringComparison.Ordinal));
        }, Timeout, () => $"one instance running and the other pending for the quota; last seen: {last}", TimeSpan.FromMilliseconds(200));

        // The Jobs API: no token, a token the masters do not accept, and another principal's token are refused.
        using (var none = GrpcChannels.ForAddress(cluster.JobsAddress!, new GrpcChannelSettings { Tls = tls }))
        {
            var e = await Assert.ThrowsAsync<Grpc.Core.RpcException>(async () => await new Sched.V1.Jobs.JobsClient(none).ListJobsAsync(new ListJobsRequest()));
            Assert.Equal(Grpc.Core.StatusCode.Unauthenticated, e.StatusCode);
        }
        using (var forged = GrpcChannels.ForAddress(cluster.JobsAddress!, new GrpcChannelSettings { BearerToken = "not-a-token", Tls = tls }))
        {
            var e = await Assert.ThrowsAsync<Grpc.Core.RpcException>(async () => await new Sched.V1.Jobs.JobsClient(forged).ListJobsAsync(new ListJobsRequest()));
            Assert.Equal(Grpc.Core.StatusCode.Unauthenticated, e.StatusCode);
        }
        var alice = await op.CreateTokenAsync(new CreateTokenRequest { Principal = "alice", TtlSeconds = 600 });
        using (var other = GrpcChannels.ForAddress(cluster.JobsAddress!, new GrpcChannelSettings { BearerToken = alice.Token, Tls = tls }))
        {
            var e = await Assert.ThrowsAsync<Grpc.Core.RpcException>(async () => await new Sched.V1.Jobs.JobsClient(other).StopJobAsync(new StopJobRequest { Name = "capped" }));
            Assert.Equal(Grpc.Core.StatusCode.PermissionDenied, e.StatusCode);
            Assert.Contains("principal 'alice' may not manage jobs", e.Status.Detail, StringComparison.Ordinal);
        }

        var framework = Assert.Single((await op.GetFrameworksAsync(new GetFrameworksRequest())).Frameworks, f => f.Info.Name == "jobs");
        Assert.Equal("admin", framework.Info.Principal);
        await jobs.StopJobAsync(new StopJobRequest { Name = "capped", Purge = true });
    }
}
