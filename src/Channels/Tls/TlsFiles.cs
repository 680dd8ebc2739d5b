namespace Scheduler.Channels.Tls;

/// <summary>The PEM files of a daemon's or client's TLS (<c>--tls-cert --tls-key --tls-ca</c>);
/// null members are not given.</summary>
/// <param name="Certificate">The certificate it serves (daemons) and presents to servers.</param>
/// <param name="Key">The certificate's private key.</param>
/// <param name="Ca">The CA (root and intermediates) peers' certificates must chain to.</param>
public sealed record TlsFiles(string? Certificate, string? Key, string? Ca)
{
    /// <summary>Whether any file is given.</summary>
    public bool Any => !string.IsNullOrWhiteSpace(Certificate) || !string.IsNullOrWhiteSpace(Key) || !string.IsNullOrWhiteSpace(Ca);
}
