using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Scheduler.Channels.Tls;

/// <summary>
/// A certificate and its private key read from PEM files, reloaded when either file changes: each
/// read of <see cref="Current"/> compares the files' modification times and sizes with those last
/// loaded (two <c>stat</c> calls, done once per TLS handshake, not per call). A change that does
/// not load (the certificate rewritten before its key, say) keeps the previous certificate until
/// the pair loads again. Thread-safe.
/// </summary>
public sealed class CertificateFile
{
    private readonly Lock _lock = new();
    private X509Certificate2 _current;
    private (DateTime, long, DateTime, long) _stamp;

    /// <summary>Loads the pair now.</summary>
    /// <exception cref="TlsFileException">When a file is missing or the pair does not load.</exception>
    public CertificateFile(string certificatePath, string keyPath)
    {
        ArgumentException.ThrowIfNullOrEmpty(certificatePath);
        ArgumentException.ThrowIfNullOrEmpty(keyPath);
        CertificatePath = Path.GetFullPath(certificatePath);
        KeyPath = Path.GetFullPath(keyPath);
        _stamp = Stamp();
        _current = Load(CertificatePath, KeyPath);
    }

    public string CertificatePath { get; }

    public string KeyPath { get; }

    /// <summary>The certificate as the files hold it now (or the last pair that loaded).</summary>
    public X509Certificate2 Current
    {
        get
        {
            lock (_lock)
            {
                (DateTime, long, DateTime, long) stamp;
                try
                {
                    stamp = Stamp();
                }
                catch (IOException)
                {
                    return _current;
                }
                if (stamp != _stamp)
                {
                    try
                    {
                        _current = Load(CertificatePath, KeyPath);
                        _stamp = stamp;
                        Reloaded?.Invoke(_current);
                    }
                    catch (TlsFileException)
                    {
                        // Half-written files: keep serving the previous pair; the next read retries.
                    }
                }
                return _current;
            }
        }
    }

    /// <summary>Raised (under the lock, on the reading thread) after a changed pair loaded.</summary>
    public event Action<X509Certificate2>? Reloaded;

    /// <summary>Reads a PEM certificate and its PEM private key (PKCS#8, RSA or EC).</summary>
    /// <exception cref="TlsFileException">What is wrong with which file.</exception>
    public static X509Certificate2 Load(string certificatePath, string keyPath)
    {
        TlsFileException.RequireFile(certificatePath, "certificate");
        TlsFileException.RequireFile(keyPath, "private key");
        try
        {
            return X509Certificate2.CreateFromPemFile(certificatePath, keyPath);
        }
        catch (CryptographicException e)
        {
            throw new TlsFileException($"cannot load the certificate {certificatePath} with the key {keyPath}: {e.Message} (both must be PEM, and the key must be the certificate's)", e);
        }
        catch (ArgumentException e)
        {
            throw new TlsFileException($"cannot load the certificate {certificatePath} with the key {keyPath}: {e.Message} (both must be PEM, and the key must be the certificate's)", e);
        }
    }

    private (DateTime, long, DateTime, long) Stamp()
    {
        var certificate = new FileInfo(CertificatePath);
        var key = new FileInfo(KeyPath);
        return (certificate.LastWriteTimeUtc, certificate.Exists ? certificate.Length : -1, key.LastWriteTimeUtc, key.Exists ? key.Length : -1);
    }
}
