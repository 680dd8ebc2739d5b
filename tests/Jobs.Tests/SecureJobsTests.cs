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
        // The dev cluster's policy plus one rule: alice manages the jobs of role eng (and its sub-roles).
        await File.WriteAllTextAsync(Path.Combine(_dir, "acls.yaml"), DevCredentials.DefaultAcls.Replace("default: deny", """
              - principals: [alice]
                actions: [manage_jobs]
                objects: [eng]
            default: deny
            """, StringComparison.Ordinal));
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

    [Fact]
    public async Task A_principal_manages_through_the_jobs_api_only_the_jobs_of_roles_the_acls_give_it()
    {
        var cluster = _cluster!;
        var tls = Scheduler.Channels.Tls.ClientTls.FromFiles(cluster.CaFile);
        using var admin = GrpcChannels.ForAddress(cluster.MasterList, cluster.AdminChannel());
        var op = new Operator.OperatorClient(admin);
        var aliceToken = (await op.CreateTokenAsync(new CreateTokenRequest { Principal = "alice", TtlSeconds = 600 })).Token;

        // The masters answer the checks the Jobs API asks of them.
        using (var asAlice = GrpcChannels.ForAddress(cluster.MasterList, new GrpcChannelSettings { BearerToken = aliceToken, Tls = tls }))
        {
            var aliceOp = new Operator.OperatorClient(asAlice);
            var who = await aliceOp.WhoAmIAsync(new WhoAmIRequest
            {
                Checks = { new AclCheck { Action = "manage_jobs", Object = "eng/batch" }, new AclCheck { Action = "manage_jobs", Object = "ops" } },
            });
            Assert.Equal(("alice", false), (who.Principal, who.Superuser));
            Assert.Equal([true, false], who.Allowed);
            var bad = await Assert.ThrowsAsync<Grpc.Core.RpcException>(async () => await aliceOp.WhoAmIAsync(new WhoAmIRequest { Checks = { new AclCheck { Action = "manage_job", Object = "eng" } } }));
            Assert.Equal(Grpc.Core.StatusCode.InvalidArgument, bad.StatusCode);
            Assert.Contains("unknown action 'manage_job'", bad.Status.Detail, StringComparison.Ordinal);
            Assert.Contains("manage_jobs", bad.Status.Detail, StringComparison.Ordinal);
        }

        static string Job(string name, string role) => $$"""
            name: {{name}}
            type: service
            role: {{role}}
            task: {command: 'sleep 600', resources: {cpus: 0.1, mem: 16}, kill_grace: 1s}
            """;
        using var adminJobsChannel = GrpcChannels.ForAddress(cluster.JobsAddress!, cluster.AdminChannel());
        var adminJobs = new Sched.V1.Jobs.JobsClient(adminJobsChannel);
        await adminJobs.SubmitJobAsync(new SubmitJobRequest { JobFile = Job("ops-web", "ops") });

        using var aliceJobsChannel = GrpcChannels.ForAddress(cluster.JobsAddress!, new GrpcChannelSettings { BearerToken = aliceToken, Tls = tls });
        var alice = new Sched.V1.Jobs.JobsClient(aliceJobsChannel);
        await alice.SubmitJobAsync(new SubmitJobRequest { JobFile = Job("eng-web", "eng") });
        await alice.ScaleJobAsync(new ScaleJobRequest { Name = "eng-web", Count = 2 });
        JobInfo? seen = null;
        await Poll.UntilAsync(async () =>
        {
            seen = (await alice.GetJobAsync(new GetJobRequest { Name = "eng-web" })).Job;
            return seen.Instances.Count(i => i.State == "running") == 2;
        }, Timeout, () => $"alice's two instances running; last seen: {seen}", TimeSpan.FromMilliseconds(200));

        // Her listing holds her role's jobs only; another role's job is refused by name, and so is
        // a job file for that role, new or moving her own job there.
        Assert.Equal(["eng-web"], (await alice.ListJobsAsync(new ListJobsRequest())).Jobs.Select(j => j.Name));
        Assert.Equal(["eng-web", "ops-web"], (await adminJobs.ListJobsAsync(new ListJobsRequest())).Jobs.Select(j => j.Name).Order(StringComparer.Ordinal));
        foreach (var call in new Func<Task>[]
        {
            async () => await alice.GetJobAsync(new GetJobRequest { Name = "ops-web" }),
            async () => await alice.StopJobAsync(new StopJobRequest { Name = "ops-web" }),
            async () => await alice.SubmitJobAsync(new SubmitJobRequest { JobFile = Job("ops-two", "ops") }),
            async () => await alice.SubmitJobAsync(new SubmitJobRequest { JobFile = Job("eng-web", "ops") }),
            async () => await alice.PlanJobAsync(new PlanJobRequest { JobFile = Job("ops-web", "eng") }),
        })
        {
            var e = await Assert.ThrowsAsync<Grpc.Core.RpcException>(call);
            Assert.Equal(Grpc.Core.StatusCode.PermissionDenied, e.StatusCode);
            Assert.Contains("principal 'alice' may not manage jobs of role 'ops'", e.Status.Detail, StringComparison.Ordinal);
            Assert.Contains("manage_jobs", e.Status.Detail, StringComparison.Ordinal);
        }
        Assert.Equal("ops", (await adminJobs.GetJobAsync(new GetJobRequest { Name = "ops-web" })).Job.Summary.Role);
        Assert.Equal("eng", (await adminJobs.GetJobAsync(new GetJobRequest { Name = "eng-web" })).Job.Summary.Role);
        var unknown = await Assert.ThrowsAsync<Grpc.Core.RpcException>(async () => await adminJobs.GetJobAsync(new GetJobRequest { Name = "ops-two" }));
        Assert.Equal(Grpc.Core.StatusCode.NotFound, unknown.StatusCode);

        await alice.StopJobAsync(new StopJobRequest { Name = "eng-web", Purge = true });
        await adminJobs.StopJobAsync(new StopJobRequest { Name = "ops-web", Purge = true });
    }
}
