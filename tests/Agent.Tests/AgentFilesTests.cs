using Scheduler.Agent.Files;
using Grpc.Core;
using Xunit;

namespace Scheduler.Agent.Tests;

public class AgentFilesTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("files-").FullName;
    private readonly AgentFilesService _files;

    public AgentFilesTests()
    {
        Directory.CreateDirectory(Path.Combine(_root, "sandboxes", "fw", "t1"));
        File.WriteAllText(Path.Combine(_root, "sandboxes", "fw", "t1", "stdout"), "hello\n");
        File.WriteAllText(Path.Combine(_root, "secret"), "no");
        File.CreateSymbolicLink(Path.Combine(_root, "sandboxes", "fw", "t1", "escape"), Path.Combine(_root, "secret"));
        File.CreateSymbolicLink(Path.Combine(_root, "sandboxes", "fw", "t1", "inside"), Path.Combine(_root, "sandboxes", "fw", "t1", "stdout"));
        _files = new AgentFilesService(Path.Combine(_root, "sandboxes"), TimeSpan.FromMilliseconds(50));
    }

    public void Dispose() => Directory.Delete(_root, true);

    [Theory]
    [InlineData("/etc/passwd")]
    [InlineData("fw/../../secret")]
    [InlineData("..")]
    [InlineData("fw/t1/escape")]
    public void Paths_leaving_the_sandboxes_are_denied(string path)
    {
        var e = Assert.Throws<RpcException>(() => _files.Resolve(path));
        Assert.Equal(StatusCode.PermissionDenied, e.StatusCode);
    }

    [Fact]
    public void Paths_inside_resolve_and_missing_ones_are_not_found()
    {
        Assert.EndsWith("fw/t1/stdout", _files.Resolve("fw/t1/stdout"));
        Assert.EndsWith("fw/t1/stdout", _files.Resolve("fw/t1/inside"));
        Assert.Equal(StatusCode.NotFound, Assert.Throws<RpcException>(() => _files.Resolve("fw/t1/nope")).StatusCode);
    }
}
