namespace Scheduler.LocalEtcd;

/// <summary>The etcd binary is not installed.</summary>
public sealed class EtcdNotInstalledException(string message) : Exception(message);
