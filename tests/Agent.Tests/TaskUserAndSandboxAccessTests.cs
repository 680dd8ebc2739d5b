using Grpc.Core;
using Sched.V1;
using Scheduler.Agent.Files;
using Scheduler.Security;
using Xunit;

namespace Scheduler.Agent.Tests;

/// <summary><c>--allowed-task-users</c>, and who may read which sandboxes of the file service.</summary>
public class TaskUserAndSandboxAccessTests
{
    [Fact]
    public async Task A_task_whose_user_the_agent_does_not_allow_is_a_task_error_unauthorized()
    {
        await using var h = new AgentHarness();
        h.Options.AllowedTaskUsers.Add("sched-no-such-user");
        var root = AgentHarness.ShellTask("as-root", "true");
        root.Command.User = "root";
        var own = AgentHarness.ShellTask("as-agent-user", "true");
        h.Launch(root, own);
        foreach (var (id, user) in new[] { ("as-root", "root"), ("as-agent-user", Environment.UserName) })
        {
            var end = await h.WaitTerminalAsync(id);
            Assert.Equal((TaskState.TaskError, TaskStatus.Types.Reason.TaskUnauthorized), (end.State, end.Reason));
            Assert.Contains($"would run as user '{user}', which this agent does not allow (--allowed-task-users sched-no-such-user)", end.Message, StringComparison.Ordinal);
            Assert.False(Directory.Exists(Path.Combine(h.WorkDir, "sandboxes", "fw1", id)), "a refused task got a sandbox");
        }
    }

    [Fact]
    public async Task A_task_whose_user_is_allowed_runs()
    {
        await using var h = new AgentHarness();
        h.Options.AllowedTaskUsers.Add(Environment.UserName);
        h.Launch(AgentHarness.ShellTask("allowed", "true"));
        var end = await h.WaitTerminalAsync("allowed");
        Assert.True(end.State == TaskState.TaskFinished, $"{end.State} {end.Reason} {end.Message}");
    }

    [Fact]
    public void Sandbox_owners_are_kept_across_restarts_and_ignore_names_that_are_not_framework_ids()
    {
        var dir = Directory.CreateTempSubdirectory("owners-").FullName;
        try
        {
            new SandboxOwners(dir).Record("fw-a", "alice");
            new SandboxOwners(dir).Record("fw-anon", "");
            var reopened = new SandboxOwners(dir);
            Assert.Equal("alice", reopened.OwnerOf("fw-a"));
            Assert.Null(reopened.OwnerOf("fw-anon"));
            Assert.Null(reopened.OwnerOf("fw-unknown"));
            Assert.Null(reopened.OwnerOf(".."));
            reopened.Record("../escape", "mallory");
            Assert.False(File.Exists(Path.Combine(Path.GetDirectoryName(dir)!, "escape")));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Sandboxes_are_readable_by_their_owner_superusers_and_acl_holders_only()
    {
        var dir = Directory.CreateTempSubdirectory("owners-").FullName;
        try
        {
            var owners = new SandboxOwners(dir);
            owners.Record("fw-a", "alice");
            var policy = AclPolicyFile.Parse("""
                superusers: [admin]
                acls:
                  - principals: [carol]
                    actions: [access_sandboxes]
                    objects: [alice]
                default: deny
                """);
            var access = new SandboxAccess(Authorizer.Fixed(policy), owners);
            Caller Token(string p) => new(p, CallerKind.Token);
            Assert.True(access.MayRead(Token("alice"), "fw-a"));
            Assert.True(access.MayRead(Token("carol"), "fw-a"));
            Assert.True(access.MayRead(Token("admin"), "fw-a"));
            Assert.True(access.MayRead(Token("admin"), "fw-unknown"));
            Assert.False(access.MayRead(Token("bob"), "fw-a"));
            Assert.False(access.MayRead(Token("alice"), "fw-unknown"));
            Assert.False(access.MayRead(Caller.Anonymous, "fw-a"));
            access.Demand(Token("bob"), ""); // the root: its listing is filtered instead
            var denied = Assert.Throws<RpcException>(() => access.Demand(Token("bob"), "fw-a/t1/stdout"));
            Assert.Equal(StatusCode.PermissionDenied, denied.StatusCode);
            Assert.Contains("principal 'bob' may not access_sandboxes of framework fw-a (registered by principal 'alice')", denied.Status.Detail, StringComparison.Ordinal);
            Assert.Equal("fw-a", SandboxAccess.FrameworkOf("/fw-a/t1/stdout"));
            Assert.Null(SandboxAccess.FrameworkOf("/"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
