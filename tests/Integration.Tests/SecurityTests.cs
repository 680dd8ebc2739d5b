using Google.Protobuf;
using Grpc.Core;
using Sched.V1;
using Scheduler.Channels;
using Scheduler.Cli.Cluster;
using Scheduler.FrameworkSdk;
using Scheduler.Protocol;
using Scheduler.Protocol.Resources;
using Scheduler.Security;
using Xunit;
using TaskStatus = Sched.V1.TaskStatus;

namespace Scheduler.Integration.Tests;

/// <summary>A secure local cluster (the default of <c>dev up</c>): a master process with a token
/// key and an ACL file, an agent presenting its token; principals alice, bob, carol and intruder
/// with tokens the admin issued over the wire.</summary>
public sealed class SecureCluster : IAsyncLifetime
{
    public const string Acls = """
        superusers: [admin]
        acls:
          - principals: [agent, intruder]
            actions: [register_agents, view_agents]
            objects: ["*"]
          - principals: ["*"]
            actions: [register_framework, run_task, view_agents, view_roles]
            objects: ["*"]
          - principals: [carol]
            actions: [view_frameworks, view_tasks, access_sandboxes]
            objects: [alice]
        default: deny
        """;

    private readonly string _dir = Path.Combine(Path.GetTempPath(), "sched-security-" + Guid.NewGuid().ToString("N")[..10]);

    public LocalCluster Cluster { get; private set; } = null!;

    public string Master => Cluster.MasterList;

    public string AgentId => Cluster.AgentInfo[0].Id;

    public Dictionary<string, string> Tokens { get; } = [];

    public string MasterLog => Path.Combine(_dir, "master.log");

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        await File.WriteAllTextAsync(Path.Combine(_dir, "acls.yaml"), Acls);
        Cluster = await LocalCluster.StartAsync(new LocalClusterOptions { Agents = 1, WorkDir = _dir, MasterArgs = [.. ClusterFixture.FastMasterArgs], Command = Schedctl.Command }, CancellationToken.None);
        Tokens["admin"] = Cluster.AdminToken!;
        using var admin = Channel(Tokens["admin"]);
        foreach (var principal in new[] { "alice", "bob", "carol", "intruder" })
        {
            var response = await admin.CreateCallInvoker().AsyncUnaryCall(OperatorMethods.CreateToken, null, Deadline(), new CreateTokenRequest { Principal = principal, TtlSeconds = 3600 });
            Tokens[principal] = response.Token;
        }
    }

    /// <summary>Clients' TLS: trusting the cluster's throwaway CA (<c>DIR/tls/ca.pem</c>).</summary>
    public Scheduler.Channels.Tls.ClientTls Tls => Scheduler.Channels.Tls.ClientTls.FromFiles(Cluster.CaFile)!;

    public Grpc.Net.Client.GrpcChannel Channel(string? token) => GrpcChannels.ForAddress(Master, new GrpcChannelSettings { BearerToken = token, Tls = Tls });

    public static CallOptions Deadline() => new(deadline: DateTime.UtcNow.AddSeconds(15));

    public async Task DisposeAsync()
    {
        if (Cluster is not null)
        {
            await Cluster.DisposeAsync();
        }
        Directory.Delete(_dir, recursive: true);
    }
}

public sealed class SecurityTests(SecureCluster secure) : IClassFixture<SecureCluster>
{
    private static readonly Marshaller<byte[]> Raw = Marshallers.Create(b => b, b => b);

    [Fact]
    public async Task Every_master_method_but_the_public_ones_refuses_a_call_without_valid_credentials()
    {
        var methods = new[] { Sched.V1.Scheduler.Descriptor, Operator.Descriptor, AgentLink.Descriptor }
            .SelectMany(s => s.Methods).ToList();
        Assert.True(methods.Count >= 30, $"only {methods.Count} methods found");
        var publicMethods = new HashSet<string> { "GetHealth", "GetLeader", "WhoAmI" };
        using var keysOfAnotherCluster = TokenKeys.Create();
        var credentials = new (string What, string? Token, string Reason)[]
        {
            ("no token", null, "presented none"),
            ("a garbage token", "not-a-token", "not a well-formed token"),
            ("a token of another cluster", keysOfAnotherCluster.Issue("admin", TimeSpan.FromHours(1), DateTimeOffset.UtcNow), "not signed by this cluster's token key"),
            ("an expired token", ExpiredAdminToken(), "expired"),
        };
        foreach (var (what, token, reason) in credentials)
        {
            using var channel = secure.Channel(token);
            var invoker = channel.CreateCallInvoker();
            foreach (var m in methods)
            {
                var type = m.IsClientStreaming ? (m.IsServerStreaming ? MethodType.DuplexStreaming : MethodType.ClientStreaming) : (m.IsServerStreaming ? MethodType.ServerStreaming : MethodType.Unary);
                var method = new Method<byte[], byte[]>(type, m.Service.FullName, m.Name, Raw, Raw);
                var error = await CallAsync(invoker, method);
                if (publicMethods.Contains(m.Name) && token is null)
                {
                    Assert.True(error is null, $"{m.FullName} with {what}: {error?.Status}");
                    continue;
                }
                if (publicMethods.Contains(m.Name))
                {
                    continue;
                }
                Assert.True(error?.StatusCode == StatusCode.Unauthenticated, $"{m.FullName} with {what} answered {error?.Status.ToString() ?? "OK"}, not UNAUTHENTICATED");
                Assert.Contains(reason, error!.Status.Detail, StringComparison.Ordinal);
                Assert.Contains("authorization: Bearer", error.Status.Detail, StringComparison.Ordinal);
            }
        }
        // Refused calls are audited too.
        var audit = (await File.ReadAllLinesAsync(secure.MasterLog)).Where(l => l.Contains(" audit ", StringComparison.Ordinal)).ToList();
        Assert.Contains(audit, l => l.Contains("audit principal=(anonymous) method=/sched.v1.Operator/UpdateQuota object=- result=Unauthenticated detail=the bearer token was refused: it expired", StringComparison.Ordinal));
        Assert.Contains(audit, l => l.Contains("audit principal=(anonymous) method=/sched.v1.Scheduler/Teardown object=- result=Unauthenticated", StringComparison.Ordinal));
    }

    private string ExpiredAdminToken()
    {
        using var keys = TokenKeys.LoadOrCreate(secure.Cluster.Credentials!.TokenKey);
        return keys.Issue("admin", TimeSpan.FromMinutes(1), DateTimeOffset.UtcNow.AddHours(-2));
    }

    private static async Task<RpcException?> CallAsync(CallInvoker invoker, Method<byte[], byte[]> method)
    {
        try
        {
            switch (method.Type)
            {
                case MethodType.Unary:
                    await invoker.AsyncUnaryCall(method, null, SecureCluster.Deadline(), []);
                    return null;
                case MethodType.ServerStreaming:
                {
                    using var call = invoker.AsyncServerStreamingCall(method, null, new CallOptions(deadline: DateTime.UtcNow.AddSeconds(3)), []);
                    await call.ResponseStream.MoveNext();
                    return null;
                }
                default:
                {
                    using var call = invoker.AsyncDuplexStreamingCall(method, null, new CallOptions(deadline: DateTime.UtcNow.AddSeconds(3)));
                    await call.ResponseStream.MoveNext();
                    return null;
                }
            }
        }
        catch (RpcException e) when (e.StatusCode is not (StatusCode.Unauthenticated or StatusCode.PermissionDenied) && e.StatusCode != StatusCode.Unavailable)
        {
            // Past authentication: the handler answered (bad empty request, deadline of a stream).
            return e.StatusCode == StatusCode.DeadlineExceeded ? null : e;
        }
        catch (RpcException e)
        {
            return e;
        }
    }

    [Fact]
    public async Task Tenants_cannot_take_over_see_kill_or_requota_each_others_work()
    {
        var t = secure.Tokens;
        await using var alice = new TestFramework(secure.Master, "alice-fw", role: "eng/web", token: t["alice"], tls: secure.Tls);
        var frameworkId = await alice.SubscribedAsync();
        var task = await alice.LaunchAsync(new TaskBuilder("alice-1").Mock(TimeSpan.FromMinutes(5)).Cpus(0.1).Mem(16).Env("DB_PASSWORD", "hunter2"));
        await alice.WaitForStateAsync(task.TaskId, TaskState.TaskRunning);

        // Take-over by re-subscription with alice's framework id.
        await using (var thief = new TestFramework(secure.Master, "thief", role: "eng/web", frameworkId: frameworkId, token: t["bob"], tls: secure.Tls))
        {
            var refused = await Assert.ThrowsAnyAsync<Exception>(() => thief.Client.WaitForSubscriptionAsync().WaitAsync(TimeSpan.FromSeconds(20)));
            Assert.Contains("registered by principal 'alice'", refused.ToString(), StringComparison.Ordinal);
            thief.TeardownOnDispose = false;
        }
        // Alice's subscription was not disturbed.
        Assert.True(alice.Client.IsConnected, "alice's framework lost its subscription to a refused take-over");

        using var bobChannel = secure.Channel(t["bob"]);
        var bob = bobChannel.CreateCallInvoker();
        var frameworks = await bob.AsyncUnaryCall(OperatorMethods.GetFrameworks, null, SecureCluster.Deadline(), new GetFrameworksRequest());
        Assert.DoesNotContain(frameworks.Frameworks, f => f.Info.Id == frameworkId);
        var tasks = await bob.AsyncUnaryCall(OperatorMethods.GetTasks, null, SecureCluster.Deadline(), new GetTasksRequest());
        Assert.Empty(tasks.Tasks);
        var state = await bob.AsyncUnaryCall(OperatorMethods.GetState, null, SecureCluster.Deadline(), new GetStateRequest());
        Assert.Empty(state.Tasks);
        Assert.NotEmpty(state.Agents);

        var kill = await Assert.ThrowsAsync<RpcException>(async () => await bob.AsyncUnaryCall(OperatorMethods.KillTask, null, SecureCluster.Deadline(), new KillTaskRequest { TaskId = "alice-1" }));
        Assert.Equal(StatusCode.PermissionDenied, kill.StatusCode);
        Assert.Contains("principal 'bob' may not kill_task", kill.Status.Detail, StringComparison.Ordinal);
        var teardown = await Assert.ThrowsAsync<RpcException>(async () => await bob.AsyncUnaryCall(OperatorMethods.TeardownFramework, null, SecureCluster.Deadline(), new TeardownFrameworkRequest { FrameworkId = frameworkId }));
        Assert.Equal(StatusCode.PermissionDenied, teardown.StatusCode);
        var quota = await Assert.ThrowsAsync<RpcException>(async () => await bob.AsyncUnaryCall(OperatorMethods.UpdateQuota, null, SecureCluster.Deadline(), new UpdateQuotaRequest { Quotas = { new QuotaInfo { Role = "eng" } } }));
        Assert.Equal(StatusCode.PermissionDenied, quota.StatusCode);
        Assert.Contains("principal 'bob' may not update_quota on role 'eng'", quota.Status.Detail, StringComparison.Ordinal);

        // carol may view alice's tasks (an ACL) but not their environment values.
        using var carolChannel = secure.Channel(t["carol"]);
        var seen = await carolChannel.CreateCallInvoker().AsyncUnaryCall(OperatorMethods.GetTasks, null, SecureCluster.Deadline(), new GetTasksRequest());
        var shown = Assert.Single(seen.Tasks, x => x.TaskId == "alice-1");
        Assert.Equal("(hidden)", shown.Info.Command.Env["DB_PASSWORD"]);
        // The owner sees them.
        using var aliceChannel = secure.Channel(t["alice"]);
        var own = await aliceChannel.CreateCallInvoker().AsyncUnaryCall(OperatorMethods.GetTasks, null, SecureCluster.Deadline(), new GetTasksRequest());
        Assert.Equal("hunter2", Assert.Single(own.Tasks, x => x.TaskId == "alice-1").Info.Command.Env["DB_PASSWORD"]);

        // The admin may do all of it.
        using var adminChannel = secure.Channel(t["admin"]);
        await adminChannel.CreateCallInvoker().AsyncUnaryCall(OperatorMethods.KillTask, null, SecureCluster.Deadline(), new KillTaskRequest { TaskId = "alice-1" });
        await alice.WaitForStateAsync("alice-1", TaskState.TaskKilled);

        // Every mutation, allowed or denied, left an audit record.
        var log = string.Join("\n", (await File.ReadAllLinesAsync(secure.MasterLog)).Where(l => l.Contains(" audit ", StringComparison.Ordinal)));
        void Recorded(string record) => Assert.True(log.Contains(record, StringComparison.Ordinal), $"no audit record '{record}' in:\n{log}");
        Recorded("audit principal=bob method=/sched.v1.Operator/UpdateQuota object=roles=eng result=PermissionDenied");
        Recorded("audit principal=bob method=/sched.v1.Operator/KillTask object=task_id=alice-1 result=PermissionDenied");
        Recorded("audit principal=admin method=/sched.v1.Operator/KillTask object=task_id=alice-1 result=OK");
        Recorded("audit principal=alice method=/sched.v1.Scheduler/Subscribe object=framework=alice-fw roles=eng/web result=OK");
        Recorded($"audit principal=bob method=/sched.v1.Scheduler/Subscribe object=framework=thief framework_id={frameworkId} roles=eng/web result=PermissionDenied");
    }

    [Fact]
    public async Task Schedctl_given_the_dev_clusters_ca_and_admin_token_can_act_and_without_the_ca_is_told_what_to_give()
    {
        var dir = secure.Cluster.WorkDir;
        var ca = Path.Combine(dir, "tls", "ca.pem");
        Assert.Equal(ca, secure.Cluster.CaFile);
        // The daemons' certificates name the loopback host every way a client may call it.
        using (var master = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPem(File.ReadAllText(Path.Combine(dir, "tls", "master.pem"))))
        {
            var names = master.Extensions.OfType<System.Security.Cryptography.X509Certificates.X509SubjectAlternativeNameExtension>().Single();
            Assert.Contains("localhost", names.EnumerateDnsNames());
            Assert.Contains(System.Net.IPAddress.Loopback, names.EnumerateIPAddresses());
            Assert.Contains(System.Net.IPAddress.IPv6Loopback, names.EnumerateIPAddresses());
        }
        var adminToken = Path.Combine(dir, "admin.token");
        var withoutCa = await Schedctl.RunAsync(TimeSpan.FromSeconds(60), "--master", secure.Master, "--token-file", adminToken, "agents");
        Assert.True(withoutCa.ExitCode != 0, withoutCa.ToString());
        Assert.Contains("serves TLS and this client has no CA to check it with: give the cluster's CA file with --tls-ca or SCHED_TLS_CA", withoutCa.Stderr, StringComparison.Ordinal);
        var withCa = await Schedctl.RunAsync(TimeSpan.FromSeconds(60), "--master", secure.Master, "--token-file", adminToken, "--tls-ca", ca, "agents", "--json");
        Assert.True(withCa.ExitCode == 0, withCa.ToString());
        Assert.Contains(secure.AgentId, withCa.Stdout, StringComparison.Ordinal);
        // A CA of another cluster: the master's certificate does not chain to it.
        var otherCa = Path.Combine(dir, "test-certificates", "other-ca.pem");
        using (var other = Scheduler.Channels.Tls.CertificateIssuer.Create("another cluster", DateTimeOffset.UtcNow, TimeSpan.FromDays(1)))
        {
            other.WriteAuthority(otherCa);
        }
        var wrongCa = await Schedctl.RunAsync(TimeSpan.FromSeconds(60), "--master", secure.Master, "--token-file", adminToken, "--tls-ca", otherCa, "agents");
        Assert.True(wrongCa.ExitCode != 0, wrongCa.ToString());
        Assert.DoesNotContain(secure.AgentId, wrongCa.Stdout, StringComparison.Ordinal);
        Assert.Contains("serves a certificate that does not chain to the CA given", wrongCa.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_python_grpcio_framework_given_the_ca_and_a_token_runs_a_task_and_without_the_token_is_refused()
    {
        var stubs = Path.Combine(secure.Cluster.WorkDir, "python-stubs");
        Directory.CreateDirectory(stubs);
        var plugin = (await Schedctl.RunProcessAsync(new System.Diagnostics.ProcessStartInfo("/bin/sh") { ArgumentList = { "-c", "command -v grpc_python_plugin" } }, TimeSpan.FromSeconds(10))).Stdout.Trim();
        Assert.False(string.IsNullOrEmpty(plugin), "grpc_python_plugin is not installed (protobuf-compiler-grpc)");
        var protos = Path.Combine(Schedctl.RepoRoot, "protos");
        var protoc = new System.Diagnostics.ProcessStartInfo("protoc") { ArgumentList = { "-I", protos, "--python_out=" + stubs, "--grpc_out=" + stubs, "--plugin=protoc-gen-grpc=" + plugin } };
        foreach (var file in Directory.GetFiles(Path.Combine(protos, "sched", "v1"), "*.proto"))
        {
            protoc.ArgumentList.Add(file);
        }
        var generated = await Schedctl.RunProcessAsync(protoc, TimeSpan.FromSeconds(60));
        Assert.True(generated.ExitCode == 0, generated.ToString());
        File.WriteAllText(Path.Combine(stubs, "sched", "__init__.py"), "");
        File.WriteAllText(Path.Combine(stubs, "sched", "v1", "__init__.py"), "");
        var script = Path.Combine(Schedctl.RepoRoot, "tests", "Integration.Tests", "python", "hello_framework.py");
        System.Diagnostics.ProcessStartInfo Python(string? token)
        {
            var info = new System.Diagnostics.ProcessStartInfo("/usr/bin/python3") { ArgumentList = { script, stubs, secure.Master } };
            info.Environment["SCHED_TLS_CA"] = secure.Cluster.CaFile;
            info.Environment["SCHED_TOKEN"] = token ?? "";
            return info;
        }
        // The CA as DIR/tls/ca.pem and the admin token as standard metadata: a whole framework's life.
        var run = await Schedctl.RunProcessAsync(Python(secure.Tokens["admin"]), TimeSpan.FromSeconds(90));
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("acknowledged py-", run.Stdout, StringComparison.Ordinal);
        Assert.EndsWith("done", run.Stdout.Trim(), StringComparison.Ordinal);
        // Over TLS but without a token: GetHealth is public, Subscribe is refused with what to present.
        var anonymous = await Schedctl.RunProcessAsync(Python(null), TimeSpan.FromSeconds(60));
        Assert.True(anonymous.ExitCode != 0, anonymous.ToString());
        Assert.Contains("UNAUTHENTICATED", anonymous.Stderr, StringComparison.Ordinal);
        Assert.Contains("authorization: Bearer TOKEN", anonymous.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Sandboxes_are_served_over_tls_to_their_owner_superusers_and_acl_holders_only()
    {
        await using var alice = new TestFramework(secure.Master, "alice-sandbox", role: "eng", token: secure.Tokens["alice"], tls: secure.Tls);
        var frameworkId = await alice.SubscribedAsync();
        await alice.LaunchAsync(new TaskBuilder("alice-log").User("nobody").Shell("echo alice-private-output").Cpus(0.1).Mem(16));
        await alice.WaitForStateAsync("alice-log", TaskState.TaskFinished, TimeSpan.FromSeconds(60));
        var agent = secure.Cluster.AgentInfo[0].Address;
        var path = $"{frameworkId}/alice-log/stdout";
        async Task<string> ReadAsync(GrpcChannelSettings settings, string file)
        {
            using var channel = GrpcChannels.ForAddress(agent, settings);
            var answer = await channel.CreateCallInvoker().AsyncUnaryCall(AgentFilesMethods.ReadFile, null, SecureCluster.Deadline(), new ReadFileRequest { Path = file });
            return answer.Data.ToStringUtf8();
        }
        async Task<List<string>> RootAsync(string token)
        {
            using var channel = GrpcChannels.ForAddress(agent, new GrpcChannelSettings { BearerToken = token, Tls = secure.Tls });
            var answer = await channel.CreateCallInvoker().AsyncUnaryCall(AgentFilesMethods.ListFiles, null, SecureCluster.Deadline(), new ListFilesRequest { Path = "" });
            return [.. answer.Files.Select(f => f.Path)];
        }

        // The owner, an ACL holder (carol: access_sandboxes on alice) and the superuser read it.
        foreach (var who in new[] { "alice", "carol", "admin" })
        {
            Assert.Contains("alice-private-output", await ReadAsync(new GrpcChannelSettings { BearerToken = secure.Tokens[who], Tls = secure.Tls }, path), StringComparison.Ordinal);
        }
        Assert.Contains(frameworkId, await RootAsync(secure.Tokens["alice"]));
        // Another tenant neither reads it nor sees the framework in a listing of the root.
        var denied = await Assert.ThrowsAsync<RpcException>(() => ReadAsync(new GrpcChannelSettings { BearerToken = secure.Tokens["bob"], Tls = secure.Tls }, path));
        Assert.Equal(StatusCode.PermissionDenied, denied.StatusCode);
        Assert.Contains($"principal 'bob' may not access_sandboxes of framework {frameworkId} (registered by principal 'alice')", denied.Status.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain(frameworkId, await RootAsync(secure.Tokens["bob"]));
        var listing = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            using var channel = GrpcChannels.ForAddress(agent, new GrpcChannelSettings { BearerToken = secure.Tokens["bob"], Tls = secure.Tls });
            await channel.CreateCallInvoker().AsyncUnaryCall(AgentFilesMethods.ListFiles, null, SecureCluster.Deadline(), new ListFilesRequest { Path = frameworkId });
        });
        Assert.Equal(StatusCode.PermissionDenied, listing.StatusCode);
        // No credentials: UNAUTHENTICATED; a token of another cluster's key likewise.
        var anonymous = await Assert.ThrowsAsync<RpcException>(() => ReadAsync(new GrpcChannelSettings { Tls = secure.Tls }, path));
        Assert.Equal(StatusCode.Unauthenticated, anonymous.StatusCode);
        using var otherKeys = TokenKeys.Create();
        var forged = await Assert.ThrowsAsync<RpcException>(() => ReadAsync(new GrpcChannelSettings { BearerToken = otherKeys.Issue("admin", TimeSpan.FromMinutes(5), DateTimeOffset.UtcNow), Tls = secure.Tls }, path));
        Assert.Equal(StatusCode.Unauthenticated, forged.StatusCode);
        // Plaintext does not reach the file service at all.
        var plaintext = await Assert.ThrowsAsync<RpcException>(() => ReadAsync(new GrpcChannelSettings { BearerToken = secure.Tokens["alice"] }, path));
        Assert.NotEqual(StatusCode.OK, plaintext.StatusCode);
    }

    [Fact]
    public async Task A_task_as_root_or_the_agents_own_user_without_an_acl_fails_unauthorized()
    {
        await using var alice = new TestFramework(secure.Master, "alice-root", role: "eng", token: secure.Tokens["alice"], tls: secure.Tls);
        await alice.SubscribedAsync();
        foreach (var (id, user) in new[] { ("as-root", "root"), ("as-agent-user", "") })
        {
            var builder = new TaskBuilder(id).Shell("true").Cpus(0.1).Mem(16);
            if (user.Length > 0)
            {
                builder.User(user);
            }
            await alice.LaunchAsync(builder);
            var status = await alice.WaitForUpdateAsync(u => u.TaskId == id && u.State == TaskState.TaskError);
            Assert.Equal(TaskStatus.Types.Reason.TaskUnauthorized, status.Reason);
            Assert.Contains("principal 'alice' may not run_task", status.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_secret_reaches_its_task_as_env_and_file_and_nowhere_else()
    {
        const string Value = "s3cr3t-Xy9-never-shown";
        using var adminChannel = secure.Channel(secure.Tokens["admin"]);
        var admin = adminChannel.CreateCallInvoker();
        await admin.AsyncUnaryCall(OperatorMethods.SetSecret, null, SecureCluster.Deadline(), new SetSecretRequest { Role = "eng/db", Name = "db-password", Value = Google.Protobuf.ByteString.CopyFromUtf8(Value) });
        using (var bobChannel = secure.Channel(secure.Tokens["bob"]))
        {
            var denied = await Assert.ThrowsAsync<RpcException>(async () => await bobChannel.CreateCallInvoker().AsyncUnaryCall(OperatorMethods.SetSecret, null, SecureCluster.Deadline(), new SetSecretRequest { Role = "eng/db", Name = "db-password", Value = Google.Protobuf.ByteString.CopyFromUtf8("mine") }));
            Assert.Equal(StatusCode.PermissionDenied, denied.StatusCode);
            Assert.Contains("manage_secrets on role 'eng/db'", denied.Status.Detail, StringComparison.Ordinal);
        }
        var listed = await admin.AsyncUnaryCall(OperatorMethods.ListSecrets, null, SecureCluster.Deadline(), new ListSecretsRequest { Role = "eng/db" });
        Assert.Equal("db-password", Assert.Single(listed.Secrets).Name);

        // The task compares digests: the value itself must appear nowhere but in its environment and file.
        var hash = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(Value))).ToLowerInvariant();
        await using var alice = new TestFramework(secure.Master, "alice-db", role: "eng/db", token: secure.Tokens["alice"], tls: secure.Tls);
        var frameworkId = await alice.SubscribedAsync();
        await alice.LaunchAsync(new TaskBuilder("uses-secret").User("nobody").Cpus(0.1).Mem(32)
            .Shell($"test \"$(printf %s \"$DB_PASSWORD\" | sha256sum | cut -c1-64)\" = {hash} && test \"$(sha256sum < .secrets/db | cut -c1-64)\" = {hash} && test \"$(stat -c %a .secrets/db)\" = 400")
            .Secret("db-password", env: "DB_PASSWORD", file: "db"));
        var ended = await alice.WaitForUpdateAsync(u => u.TaskId == "uses-secret" && u.State is TaskState.TaskFinished or TaskState.TaskFailed or TaskState.TaskError, TimeSpan.FromSeconds(60));
        Assert.True(ended.State == TaskState.TaskFinished, $"the task did not see its secret: {ended.State} {ended.Reason} {ended.Message}");
        await alice.LaunchAsync(new TaskBuilder("missing-secret").User("nobody").Shell("true").Cpus(0.1).Mem(32).Secret("no-such", env: "X"));
        var refused = await alice.WaitForStateAsync("missing-secret", TaskState.TaskError);
        Assert.Contains("role 'eng/db' has none of that name", refused.Message, StringComparison.Ordinal);

        // The file is gone with the task, and the value is in no answer and no log line.
        var agentDir = Path.Combine(secure.Cluster.WorkDir, "agent1");
        Assert.Empty(Directory.EnumerateDirectories(agentDir, ".secrets", SearchOption.AllDirectories));
        var state = await admin.AsyncUnaryCall(OperatorMethods.GetState, null, SecureCluster.Deadline(), new GetStateRequest());
        var tasks = await admin.AsyncUnaryCall(OperatorMethods.GetTasks, null, SecureCluster.Deadline(), new GetTasksRequest { IncludeCompleted = true });
        Assert.Contains(tasks.Tasks, t => t.TaskId == "uses-secret" && t.Info.Secrets.Count == 1);
        foreach (var answer in new Google.Protobuf.IMessage[] { state, tasks, listed })
        {
            Assert.DoesNotContain(Value, Google.Protobuf.JsonFormatter.Default.Format(answer), StringComparison.Ordinal);
            Assert.DoesNotContain(Value, answer.ToByteString().ToStringUtf8(), StringComparison.Ordinal);
        }
        Assert.DoesNotContain(alice.Updates, u => u.Message.Contains(Value, StringComparison.Ordinal));
        foreach (var log in Directory.EnumerateFiles(secure.Cluster.WorkDir, "*.log"))
        {
            Assert.DoesNotContain(Value, await File.ReadAllTextAsync(log), StringComparison.Ordinal);
        }
        // In the registry only as ciphertext.
        foreach (var file in Directory.EnumerateFiles(Path.Combine(secure.Cluster.WorkDir, "master"), "*", SearchOption.AllDirectories).Where(f => Path.GetFileName(f) != "LOCK"))
        {
            Assert.DoesNotContain(Value, await File.ReadAllTextAsync(file), StringComparison.Ordinal);
        }
        _ = frameworkId;
    }

    [Fact]
    public async Task Agents_cannot_be_impersonated()
    {
        var resources = ResourceText.Parse("cpus:64;mem:65536");
        // Over TLS an agent needs a client certificate of the cluster's CA: a token alone is not enough.
        var noCertificate = await RegisterAsync(new GrpcChannelSettings { BearerToken = secure.Tokens["intruder"], Tls = secure.Tls }, "", resources);
        Assert.Equal(StatusCode.Unauthenticated, noCertificate?.StatusCode);
        Assert.Contains("--tls-cert", noCertificate!.Status.Detail, StringComparison.Ordinal);
        // A principal without register_agents cannot register an agent at all, certificate or not.
        var denied = await RegisterAsync(WithCertificate("bob-host", secure.Tokens["bob"]), "", resources);
        Assert.Equal(StatusCode.PermissionDenied, denied?.StatusCode);
        Assert.Contains("principal 'bob' may not register_agents", denied!.Status.Detail, StringComparison.Ordinal);
        // One that may register agents (a certificate naming 'intruder') cannot take the id of an
        // agent another principal registered.
        var taken = await RegisterAsync(WithCertificate("intruder", null), secure.AgentId, resources);
        Assert.Equal(StatusCode.PermissionDenied, taken?.StatusCode);
        Assert.Contains($"agent {secure.AgentId} is registered by principal 'agent'", taken!.Status.Detail, StringComparison.Ordinal);
        // The real agent is still registered and active.
        using var admin = secure.Channel(secure.Tokens["admin"]);
        var agents = await admin.CreateCallInvoker().AsyncUnaryCall(OperatorMethods.GetAgents, null, SecureCluster.Deadline(), new GetAgentsRequest());
        var real = Assert.Single(agents.Agents, a => a.Info.Id == secure.AgentId);
        Assert.Equal(AgentStatus.AgentActive, real.Status);
        Assert.DoesNotContain(agents.Agents, a => a.Info.Hostname == "impostor");
    }

    /// <summary>Channel settings presenting a client certificate for <paramref name="commonName"/>
    /// issued by the cluster's CA (files under the cluster's work dir), and a token when given.</summary>
    private GrpcChannelSettings WithCertificate(string commonName, string? token)
    {
        var dir = Path.Combine(secure.Cluster.WorkDir, "test-certificates");
        var (certificate, key) = (Path.Combine(dir, commonName + ".pem"), Path.Combine(dir, commonName + "-key.pem"));
        using (var ca = Scheduler.Channels.Tls.CertificateIssuer.LoadOrCreate(secure.Cluster.CaFile!, Path.Combine(secure.Cluster.Credentials!.TlsDir, "ca-key.pem"), "unused", DateTimeOffset.UtcNow, TimeSpan.FromDays(1), TimeSpan.Zero))
        using (var issued = ca.IssueForLoopback(commonName))
        {
            Scheduler.Channels.Tls.CertificateIssuer.WritePem(issued, certificate, key);
        }
        return new GrpcChannelSettings { BearerToken = token, Tls = Scheduler.Channels.Tls.ClientTls.FromFiles(secure.Cluster.CaFile, certificate, key) };
    }

    private async Task<RpcException?> RegisterAsync(GrpcChannelSettings settings, string agentId, IEnumerable<Resource> resources)
    {
        using var channel = GrpcChannels.ForAddress(secure.Master, settings);
        using var call = channel.CreateCallInvoker().AsyncDuplexStreamingCall(AgentLinkMethods.Connect, null, SecureCluster.Deadline());
        var info = new AgentInfo { Id = agentId, Hostname = "impostor" };
        info.Resources.AddRange(resources);
        try
        {
            try
            {
                await call.RequestStream.WriteAsync(new AgentMessage { Register = new AgentMessage.Types.Register { AgentInfo = info } });
            }
            catch (RpcException)
            {
                // The server may end the call before the request is written; its status is in the response.
            }
            while (await call.ResponseStream.MoveNext())
            {
                if (call.ResponseStream.Current.MessageCase == MasterMessage.MessageOneofCase.Registered)
                {
                    return null;
                }
            }
            return null;
        }
        catch (RpcException e)
        {
            return e;
        }
    }
}
