using Grpc.Net.Client;
using Scheduler.Channels;
using Scheduler.Channels.Tls;

namespace Scheduler.LinkClient;

/// <summary>Channels of the agent's end of <c>AgentLink.Connect</c>, for the agent and the simulated agents alike.</summary>
public static class LinkChannels
{
    /// <summary>
    /// Transport of the link: keepalive pings sooner and a shorter wait for their answer than other
    /// clients, so that a connection to a master that stopped answering (frozen, or its host gone
    /// without a reset) fails in seconds even when no call is waiting on it.
    /// </summary>
    public static GrpcChannelSettings Settings => new()
    {
        KeepAlivePingDelay = TimeSpan.FromSeconds(3),
        KeepAlivePingTimeout = TimeSpan.FromSeconds(3),
    };

    /// <summary>A channel to the master at <paramref name="address"/> with <see cref="Settings"/>,
    /// with <paramref name="token"/> as call credentials and over TLS when <paramref name="tls"/> is given.</summary>
    public static GrpcChannel ForAddress(string address, string? token = null, ClientTls? tls = null)
    {
        var settings = Settings;
        settings.BearerToken = token;
        settings.Tls = tls;
        return GrpcChannels.ForAddress(address, settings);
    }
}
