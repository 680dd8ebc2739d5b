using System.Net;
using System.Net.Sockets;
using Scheduler.Agent;
using Scheduler.Master.Registry;

namespace Scheduler.Cli.Daemons;

/// <summary>
/// Checks a daemon makes before it starts, so that the commonest start-up failures are one line
/// saying what is wrong and what to do (a <see cref="CliException"/>), not a host's stack trace:
/// a work dir that cannot be written, one another daemon holds, a listen address in use. The
/// daemon itself still takes its lock and binds its port; these checks only answer first.
/// </summary>
public static class DaemonPreflight
{
    /// <summary>Creates <paramref name="workDir"/> when missing and checks it can be written.</summary>
    public static void WorkDir(string workDir, string daemon)
    {
        try
        {
            Directory.CreateDirectory(workDir);
            var probe = Path.Combine(workDir, $".write-test-{Environment.ProcessId}");
            File.WriteAllBytes(probe, []);
            File.Delete(probe);
        }
        catch (UnauthorizedAccessException)
        {
            throw new CliException($"cannot use the work dir {workDir}: permission denied; run the {daemon} as a user who may write there (or as root), or choose another --work-dir");
        }
        catch (IOException e)
        {
            throw new CliException($"cannot use the work dir {workDir}: {e.Message.TrimEnd('.')}; choose another --work-dir");
        }
    }

    /// <summary>Refuses a work dir whose registry another master holds.</summary>
    public static async Task MasterLockAsync(string workDir)
    {
        try
        {
            await using var store = FileRegistryStore.Open(workDir);
        }
        catch (RegistryLockedException e)
        {
            throw new CliException(e.Message);
        }
    }

    /// <summary>Refuses a work dir another agent holds (the message names its pid).</summary>
    public static void AgentLock(string workDir)
    {
        try
        {
            using var held = WorkDirLock.Acquire(workDir);
        }
        catch (WorkDirLockedException e)
        {
            throw new CliException(e.Message);
        }
    }

    /// <summary>Checks that <paramref name="listen"/> (host:port, port 0 is always free) can be bound.</summary>
    public static void Listen(string listen, string option)
    {
        var colon = listen.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(listen.AsSpan(colon + 1), out var port) || port == 0)
        {
            return;
        }
        var host = listen[..colon].Trim('[', ']');
        var address = host is "localhost" ? IPAddress.Loopback : host is "*" or "0.0.0.0" ? IPAddress.Any : IPAddress.TryParse(host, out var ip) ? ip : null;
        if (address is null)
        {
            return;
        }
        var probe = new TcpListener(address, port);
        try
        {
            probe.Start();
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            throw new CliException($"cannot listen on {listen}: the address is already in use (another master, agent or program holds it; 'ss -ltnp sport = :{port}' names it); stop that or choose another {option}");
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressNotAvailable)
        {
            throw new CliException($"cannot listen on {listen}: no network interface of this host has the address {host}; choose another {option}");
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AccessDenied)
        {
            throw new CliException($"cannot listen on {listen}: permission denied (ports below 1024 need root); choose another {option}");
        }
        finally
        {
            probe.Stop();
        }
    }
}
