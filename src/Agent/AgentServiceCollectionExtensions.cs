using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Scheduler.Hosting;

namespace Scheduler.Agent;

/// <summary>Hosting of an agent in a generic host.</summary>
public static class AgentServiceCollectionExtensions
{
    /// <summary>
    /// Adds the agent daemon (<see cref="AgentDaemon"/>) with its options, validated at start by
    /// <see cref="AgentOptionsValidator"/>: a host with bad agent options fails to start with
    /// <see cref="OptionsValidationException"/> naming every problem.
    /// </summary>
    public static IServiceCollection AddSchedulerAgent(this IServiceCollection services, Action<AgentOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        services.AddOptions<AgentOptions>().Configure(configure).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<AgentOptions>, AgentOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(new DaemonAnnouncements());
        services.TryAddSingleton<AgentDaemon>();
        services.AddHostedService(sp => sp.GetRequiredService<AgentDaemon>());
        return services;
    }
}
