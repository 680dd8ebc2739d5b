using System.Globalization;
using System.Text.Json.Nodes;
using Sched.V1;
using Scheduler.Agent.Images;
using Scheduler.Agent.Isolation;
using Scheduler.Agent.Supervision;

namespace Scheduler.Agent.Execution;

/// <summary>
/// Runs a task in an OCI container: the image (see <see cref="ImageStore"/>) is unpacked once into
/// a shared read-only rootfs; each task gets a runtime bundle (<c>config.json</c> per the OCI
/// runtime spec: args, env, cwd, user, mounts with the sandbox at <c>/mnt/sandbox</c>, pid/mount/
/// ipc/uts namespaces with the host network, the container's cgroup and limits, no new
/// privileges, a default capability set) run by <c>runc</c> or <c>crun</c> under a supervisor.
/// </summary>
public sealed class OciExecutor(IIsolator isolator, SupervisorLauncher launcher, AgentOptions options, ImageStore images) : SupervisedExecutor(isolator, launcher)
{
    /// <summary>Below this a container's runtime init cannot start.</summary>
    public const long MinMemoryBytes = 8 * 1048576;

    private static readonly string[] DefaultCapabilities =
    [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
        "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
    ];

    public override string Name => "oci";

    public override ExecutorCapabilities Capabilities => new(true, true, true);

    public override async Task<TaskHandle> StartAsync(TaskLaunch launch, CancellationToken cancellationToken)
    {
        var task = launch.Task;
        var runtime = RuntimeBinary(task.Container.Oci?.Runtime);
        if (Isolator is NoIsolator)
        {
            throw new TaskLaunchException(TaskStatus.Types.Reason.RuntimeUnavailable, "OCI containers need cgroups isolation (run the agent as root with --isolation auto|cgroups)");
        }
        var limits = ProcessExecutor.Limits(task, options);
        if (limits.MemBytes is > 0 and < MinMemoryBytes)
        {
            throw new TaskLaunchException(TaskStatus.Types.Reason.ContainerLaunchFailed,
                $"a memory limit of {limits.MemBytes / 1048576.0:0.#} MiB is below the {MinMemoryBytes / 1048576} MiB a container runtime needs to start; give the task more mem");
        }
        var reference = task.Container.Oci?.Image ?? "";
        if (reference.Length == 0)
        {
            throw new TaskLaunchException(TaskStatus.Types.Reason.TaskInvalid, "container.oci.image is empty; give an image reference (oci:DIR:TAG, oci-archive:FILE:TAG or NAME:TAG)", TaskState.TaskError);
        }
        ImageRootfs image;
        try
        {
            image = await images.PullAsync(reference, cancellationToken);
        }
        catch (ImageException e)
        {
            throw new TaskLaunchException(TaskStatus.Types.Reason.ImageFailed, e.Message);
        }
        var bundle = Path.Combine(launch.RunDir, "bundle");
        Directory.CreateDirectory(bundle);
        string cgroupsPath;
        try
        {
            cgroupsPath = Isolator.RuntimeCgroupsPath(launch.ContainerId)!;
        }
        catch (Exception e) when (e is IsolationException or IOException or UnauthorizedAccessException)
        {
            throw new TaskLaunchException(TaskStatus.Types.Reason.ContainerLaunchFailed, $"cannot prepare the container's cgroups: {e.Message}");
        }
        var config = BuildConfig(launch, image, limits, cgroupsPath);
        await File.WriteAllTextAsync(Path.Combine(bundle, "config.json"), config.ToJsonString(), cancellationToken);
        var stateRoot = Path.Combine(options.WorkDir, "meta", Path.GetFileName(runtime));
        var spec = new SupervisorSpec
        {
            Argv = RunCommand(runtime, stateRoot, bundle, launch.ContainerId),
            Env = new Dictionary<string, string> { ["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" },
            WorkingDir = bundle,
            Stdout = Path.Combine(launch.SandboxDir, "stdout"),
            Stderr = Path.Combine(launch.SandboxDir, "stderr"),
            Cgroup = Isolator.Layout(launch.ContainerId),
            ContainerId = launch.ContainerId,
            JoinCgroups = false,
            GraceSeconds = ProcessExecutor.GraceSeconds(task, options),
            Runtime = runtime,
            RuntimeRoot = stateRoot,
        };
        var handle = await Launcher.StartAsync(launch, spec, Name, cancellationToken);
        handle.MemLimitMiB = limits.MemBytes / 1048576.0;
        return handle;
    }

    /// <summary>
    /// <c>RUNTIME --root ROOT run [--keep] --bundle BUNDLE ID</c>. With runc, <c>--keep</c> leaves the
    /// stopped container (and its cgroups) to the supervisor, which reads the peak memory and OOM
    /// kills before deleting it; otherwise runc would remove the cgroups as the container exits and
    /// an OOM kill would look like a plain SIGKILL.
    /// </summary>
    internal static List<string> RunCommand(string runtime, string stateRoot, string bundle, string containerId)
    {
        var argv = new List<string> { runtime, "--root", stateRoot, "run" };
        if (Path.GetFileName(runtime) == "runc")
        {
            argv.Add("--keep");
        }
        argv.AddRange(["--bundle", bundle, containerId]);
        return argv;
    }

    /// <summary>The runtime to use: the task's, else the agent's (<c>auto</c>: crun on pure cgroup v2
    /// hosts when installed, else runc). Missing binaries fail with RUNTIME_UNAVAILABLE.</summary>
    internal string RuntimeBinary(string? requested)
    {
        var choice = string.IsNullOrEmpty(requested) ? options.Runtime : requested;
        if (choice == "auto")
        {
            choice = Isolator is CgroupV2Isolator && Find("crun") is not null ? "crun" : "runc";
        }
        return Find(choice) ?? throw new TaskLaunchException(TaskStatus.Types.Reason.RuntimeUnavailable,
            $"the OCI runtime '{choice}' is not installed (not found in PATH); install it or choose another runtime");
    }

    private static string? Find(string program)
    {
        if (program.Contains('/', StringComparison.Ordinal))
        {
            return File.Exists(program) ? program : null;
        }
        var path = Environment.GetEnvironmentVariable("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin";
        return path.Split(':', StringSplitOptions.RemoveEmptyEntries).Concat(["/usr/sbin", "/usr/bin", "/sbin"])
            .Select(d => Path.Combine(d, program)).FirstOrDefault(File.Exists);
    }

    internal static JsonObject BuildConfig(TaskLaunch launch, ImageRootfs image, ContainerLimits limits, string cgroupsPath)
    {
        var command = launch.Task.Command ?? new CommandInfo();
        var args = new List<string>();
        if (command.Shell)
        {
            args.AddRange(["/bin/sh", "-c", command.Value]);
        }
        else if (!string.IsNullOrEmpty(command.Value))
        {
            args.Add(command.Value);
            args.AddRange(command.Arguments.Skip(1));
        }
        else
        {
            args.AddRange(image.Entrypoint);
            args.AddRange(command.Arguments.Count > 0 ? command.Arguments : image.Cmd);
        }
        if (args.Count == 0)
        {
            throw new TaskLaunchException(TaskStatus.Types.Reason.TaskInvalid, "no command: the task gives none and the image has no entrypoint or cmd", TaskState.TaskError);
        }
        var env = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var e in image.Env)
        {
            var eq = e.IndexOf('=');
            if (eq > 0)
            {
                env[e[..eq]] = e[(eq + 1)..];
            }
        }
        foreach (var kv in TaskEnvironment.Build(launch, "/mnt/sandbox"))
        {
            if (kv.Key != "PATH" || !env.ContainsKey("PATH"))
            {
                env[kv.Key] = kv.Value;
            }
        }
        var (uid, gid) = ParseUser(string.IsNullOrEmpty(command.User) ? image.User : command.User);
        var cwd = !string.IsNullOrEmpty(command.WorkingDir) ? command.WorkingDir : image.WorkingDir.Length > 0 ? image.WorkingDir : "/";
        var caps = new JsonArray(DefaultCapabilities.Select(c => (JsonNode)c).ToArray());
        var resources = new JsonObject
        {
            ["devices"] = new JsonArray(new JsonObject { ["allow"] = false, ["access"] = "rwm" }),
        };
        if (limits.Cpus > 0)
        {
            resources["cpu"] = new JsonObject
            {
                ["shares"] = Math.Max(2, (long)Math.Round(limits.Cpus * 1024)),
                ["quota"] = Math.Max(1000, (long)Math.Round(limits.Cpus * 100000)),
                ["period"] = 100000,
            };
        }
        if (limits.MemBytes > 0)
        {
            resources["memory"] = new JsonObject { ["limit"] = limits.MemBytes, ["swap"] = limits.MemBytes };
        }
        if (limits.Pids > 0)
        {
            resources["pids"] = new JsonObject { ["limit"] = limits.Pids };
        }
        return new JsonObject
        {
            ["ociVersion"] = "1.0.2",
            ["process"] = new JsonObject
            {
                ["terminal"] = false,
                ["user"] = new JsonObject { ["uid"] = uid, ["gid"] = gid },
                ["args"] = new JsonArray(args.Select(a => (JsonNode)a).ToArray()),
                ["env"] = new JsonArray(env.Select(kv => (JsonNode)(kv.Key + "=" + kv.Value)).ToArray()),
                ["cwd"] = cwd,
                ["noNewPrivileges"] = true,
                ["capabilities"] = new JsonObject
                {
                    ["bounding"] = caps.DeepClone(),
                    ["effective"] = caps.DeepClone(),
                    ["permitted"] = caps.DeepClone(),
                },
            },
            ["root"] = new JsonObject { ["path"] = image.RootfsDir, ["readonly"] = true },
            ["hostname"] = string.IsNullOrEmpty(launch.Task.Container.Hostname) ? "task" : launch.Task.Container.Hostname,
            ["mounts"] = new JsonArray([
                Mount("/proc", "proc", "proc", ["nosuid", "noexec", "nodev"]),
                Mount("/dev", "tmpfs", "tmpfs", ["nosuid", "strictatime", "mode=755", "size=65536k"]),
                Mount("/dev/pts", "devpts", "devpts", ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]),
                Mount("/dev/shm", "tmpfs", "shm", ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
                Mount("/dev/mqueue", "mqueue", "mqueue", ["nosuid", "noexec", "nodev"]),
                Mount("/sys", "sysfs", "sysfs", ["nosuid", "noexec", "nodev", "ro"]),
                Mount("/tmp", "tmpfs", "tmpfs", ["nosuid", "nodev", "mode=1777"]),
                Mount("/mnt/sandbox", "bind", launch.SandboxDir, ["rbind", "rw"]),
                // Persistent volumes over their mount points in the sandbox (after the sandbox itself).
                .. launch.Volumes.Select(v => (JsonNode)Mount("/mnt/sandbox/" + v.ContainerPath, "bind", v.HostPath, ["rbind", v.ReadOnly ? "ro" : "rw"]))]),
            ["linux"] = new JsonObject
            {
                ["namespaces"] = new JsonArray(
                    new JsonObject { ["type"] = "pid" },
                    new JsonObject { ["type"] = "mount" },
                    new JsonObject { ["type"] = "ipc" },
                    new JsonObject { ["type"] = "uts" }),
                ["cgroupsPath"] = cgroupsPath,
                ["resources"] = resources,
                ["maskedPaths"] = new JsonArray("/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"),
                ["readonlyPaths"] = new JsonArray("/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"),
            },
        };
    }

    private static JsonObject Mount(string destination, string type, string source, string[] opts) => new()
    {
        ["destination"] = destination,
        ["type"] = type,
        ["source"] = source,
        ["options"] = new JsonArray(opts.Select(o => (JsonNode)o).ToArray()),
    };

    private static (long Uid, long Gid) ParseUser(string user)
    {
        if (string.IsNullOrEmpty(user) || user == "root")
        {
            return (0, 0);
        }
        var parts = user.Split(':');
        if (long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var uid))
        {
            var gid = parts.Length > 1 && long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var g) ? g : uid;
            return (uid, gid);
        }
        throw new TaskLaunchException(TaskStatus.Types.Reason.TaskInvalid, $"container user '{user}' must be numeric (UID or UID:GID)", TaskState.TaskError);
    }
}
