using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Scheduler.Etcd;
using Scheduler.Hosting;
using Scheduler.Master.Services;
using Scheduler.Master.Telemetry;

namespace Scheduler.Master;

/// <summary>Hosting of a master in a generic host.</summary>
public static class MasterServiceCollectionExtensions
{
    /// <summary>
    /// Adds the master daemon: options (validated at start), its RPC services, the master loop,
    /// metrics, and the default registry/election/allocator (see <see cref="MasterComponents"/>).
    /// </summary>
    public static IServiceCollection AddSchedulerMaster(this IServiceCollection services, Action<MasterOptions> configure, Action<MasterComponents>? components = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        services.AddOptions<MasterOptions>().Configure(configure).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<MasterOptions>, MasterOptionsValidator>());
        services.AddOptions<MasterComponents>().Configure(MasterDefaults.Apply);
        if (components is not null)
        {
            services.Configure(components);
        }
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(new DaemonAnnouncements());
        services.TryAddSingleton(sp => new MasterRuntime(sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton(_ => new MasterMetrics());
        services.TryAddSingleton(sp =>
        {
            // Shared by the etcd election and registry store; only created when etcd is configured.
            var options = sp.GetRequiredService<IOptions<MasterOptions>>().Value;
            return new EtcdClient(new EtcdClientOptions
            {
                Endpoints = [.. options.EtcdEndpoints],
                Username = string.IsNullOrEmpty(options.EtcdUsername) ? null : options.EtcdUsername,
                Password = string.IsNullOrEmpty(options.EtcdUsername) ? null : options.EtcdPassword ?? "",
            });
        });
        services.TryAddSingleton<MasterDaemon>();
        services.AddHostedService(sp => sp.GetRequiredService<MasterDaemon>());
        return services;
    }
}
