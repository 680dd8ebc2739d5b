using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.IO.Compression;
using System.Text;

namespace Scheduler.Rpc.Internal;

/// <summary>
/// Wire-level pieces of the "gRPC over HTTP/2" specification shared by client and server:
/// the 5-byte message prefix, <c>grpc-timeout</c>, percent-encoded <c>grpc-message</c>,
/// the HTTP→gRPC status table and gzip message compression.
/// </summary>
internal static class GrpcProtocol
{
    public const string ContentType = "application/grpc";
    public const string StatusHeader = "grpc-status";
    public const string MessageHeader = "grpc-message";
    public const string TimeoutHeader = "grpc-timeout";
    public const string EncodingHeader = "grpc-encoding";
    public const string AcceptEncodingHeader = "grpc-accept-encoding";
    public const string AcceptEncodingValue = "identity,gzip";
    public const string Gzip = "gzip";
    public const string Identity = "identity";
    public const int HeaderSize = 5;

    /// <summary>True for <c>application/grpc</c>, <c>application/grpc+proto</c> and
    /// <c>application/grpc;…</c>.</summary>
    public static bool IsGrpcContentType(string? contentType)
    {
        if (contentType is null || !contentType.StartsWith(ContentType, StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }
        if (contentType.Length == ContentType.Length)
        {
            return true;
        }
        var rest = contentType.AsSpan(ContentType.Length);
        if (rest[0] == ';')
        {
            return true;
        }
        if (rest[0] != '+')
        {
            return false;
        }
        var sub = rest[1..];
        var semi = sub.IndexOf(';');
        if (semi >= 0)
        {
            sub = sub[..semi];
        }
        return sub.Trim().Equals("proto", StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>Writes the 5-byte prefix.</summary>
    public static void WriteHeader(Span<byte> destination, bool compressed, int length)
    {
        destination[0] = compressed ? (byte)1 : (byte)0;
        BinaryPrimitives.WriteUInt32BigEndian(destination[1..], (uint)length);
    }

    /// <summary>Reads a 5-byte prefix from the start of <paramref name="buffer"/>.</summary>
    public static bool TryReadHeader(in ReadOnlySequence<byte> buffer, out byte flag, out uint length)
    {
        if (buffer.Length < HeaderSize)
        {
            flag = 0;
            length = 0;
            return false;
        }
        Span<byte> header = stackalloc byte[HeaderSize];
        buffer.Slice(0, HeaderSize).CopyTo(header);
        flag = header[0];
        length = BinaryPrimitives.ReadUInt32BigEndian(header[1..]);
        return true;
    }

    /// <summary>Parses <c>grpc-timeout</c> (1–8 digits and a unit H M S m u n).</summary>
    public static bool TryParseTimeout(string? value, out TimeSpan timeout)
    {
        timeout = default;
        if (string.IsNullOrEmpty(value) || value.Length < 2 || value.Length > 9)
        {
            return false;
        }
        var digits = value.AsSpan(0, value.Length - 1);
        foreach (var c in digits)
        {
            if (c is < '0' or > '9')
            {
                return false;
            }
        }
        var amount = long.Parse(digits, NumberStyles.None, CultureInfo.InvariantCulture);
        long ticks;
        switch (value[^1])
        {
            case 'H': ticks = amount * TimeSpan.TicksPerHour; break;
            case 'M': ticks = amount * TimeSpan.TicksPerMinute; break;
            case 'S': ticks = amount * TimeSpan.TicksPerSecond; break;
            case 'm': ticks = amount * TimeSpan.TicksPerMillisecond; break;
            case 'u': ticks = amount * 10; break;
            case 'n': ticks = amount / 100; break;
            default: return false;
        }
        timeout = TimeSpan.FromTicks(ticks);
        return true;
    }

    /// <summary>Formats a timeout with at most 8 digits, choosing the finest unit that fits.</summary>
    public static string FormatTimeout(TimeSpan timeout)
    {
        if (timeout <= TimeSpan.Zero)
        {
            return "1n";
        }
        const long max = 99_999_999;
        var ticks = timeout.Ticks;
        // Rounding up keeps the server's deadline no earlier than the client's.
        if (ticks <= max / 100)
        {
            return (ticks * 100).ToString(CultureInfo.InvariantCulture) + "n";
        }
        var us = (ticks + 9) / 10;
        if (us <= max)
        {
            return us.ToString(CultureInfo.InvariantCulture) + "u";
        }
        var ms = (ticks + TimeSpan.TicksPerMillisecond - 1) / TimeSpan.TicksPerMillisecond;
        if (ms <= max)
        {
            return ms.ToString(CultureInfo.InvariantCulture) + "m";
        }
        var s = (ticks + TimeSpan.TicksPerSecond - 1) / TimeSpan.TicksPerSecond;
        if (s <= max)
        {
            return s.ToString(CultureInfo.InvariantCulture) + "S";
        }
        var m = (ticks + TimeSpan.TicksPerMinute - 1) / TimeSpan.TicksPerMinute;
        if (m <= max)
        {
            return m.ToString(CultureInfo.InvariantCulture) + "M";
        }
        var h = Math.Min(max, (ticks + TimeSpan.TicksPerHour - 1) / TimeSpan.TicksPerHour);
        return h.ToString(CultureInfo.InvariantCulture) + "H";
    }

    /// <summary>Percent-encodes a status message: UTF-8, with bytes outside 0x20–0x7E and '%' as %XX.</summary>
    public static string EncodeMessage(string message)
    {
        var needs = false;
        foreach (var c in message)
        {
            if (c is < ' ' or > '~' or '%')
            {
                needs = true;
                break;
            }
        }
        if (!needs)
        {
            return message;
        }
        var bytes = Encoding.UTF8.GetBytes(message);
        var sb = new StringBuilder(bytes.Length * 2);
        foreach (var b in bytes)
        {
            if (b is < 0x20 or > 0x7E or (byte)'%')
            {
                sb.Append('%').Append(b.ToString("X2", CultureInfo.InvariantCulture));
            }
            else
            {
                sb.Append((char)b);
            }
        }
        return sb.ToString();
    }

    /// <summary>Decodes a percent-encoded status message; malformed escapes are kept as is.</summary>
    public static string DecodeMessage(string? value)
    {
        if (string.IsNullOrEmpty(value))
        {
            return "";
        }
        if (!value.Contains('%', StringComparison.Ordinal))
        {
            return value;
        }
        var bytes = new List<byte>(value.Length);
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (c == '%' && i + 2 < value.Length
                && byte.TryParse(value.AsSpan(i + 1, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var b))
            {
                bytes.Add(b);
                i += 2;
            }
            else
            {
                foreach (var x in Encoding.UTF8.GetBytes(c.ToString()))
                {
                    bytes.Add(x);
                }
            }
        }
        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    /// <summary>The gRPC code for an HTTP status of a response that is not a gRPC answer.</summary>
    public static StatusCode FromHttpStatus(int httpStatus) => httpStatus switch
    {
        400 => StatusCode.Internal,
        401 => StatusCode.Unauthenticated,
        403 => StatusCode.PermissionDenied,
        404 => StatusCode.Unimplemented,
        429 or 502 or 503 or 504 => StatusCode.Unavailable,
        _ => StatusCode.Unknown,
    };

    /// <summary>Gzip-decompresses <paramref name="payload"/> into a pooled buffer of at most
    /// <paramref name="maxSize"/> bytes. Returns null when the result would be larger.</summary>
    public static byte[]? Decompress(in ReadOnlySequence<byte> payload, int maxSize, out int length)
    {
        using var input = new SequenceStream(payload);
        using var gzip = new GZipStream(input, CompressionMode.Decompress);
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(256, (int)Math.Min(payload.Length * 4, maxSize + 1L)));
        length = 0;
        try
        {
            while (true)
            {
                if (length == buffer.Length)
                {
                    if (buffer.Length > maxSize)
                    {
                        ArrayPool<byte>.Shared.Return(buffer);
                        return null;
                    }
                    var bigger = ArrayPool<byte>.Shared.Rent((int)Math.Min(buffer.Length * 2L, maxSize + 1L));
                    buffer.AsSpan(0, length).CopyTo(bigger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = bigger;
                }
                var n = gzip.Read(buffer, length, buffer.Length - length);
                if (n == 0)
                {
                    break;
                }
                length += n;
                if (length > maxSize)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    return null;
                }
            }
            return buffer;
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
    }

    /// <summary>Gzip-compresses <paramref name="data"/>.</summary>
    public static byte[] Compress(ReadOnlySpan<byte> data)
    {
        using var output = new MemoryStream(data.Length / 2 + 64);
        using (var gzip = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true))
        {
            gzip.Write(data);
        }
        return output.ToArray();
    }

    /// <summary>A read-only stream over a <see cref="ReadOnlySequence{T}"/>.</summary>
    private sealed class SequenceStream(ReadOnlySequence<byte> sequence) : Stream
    {
        private ReadOnlySequence<byte> _remaining = sequence;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var n = (int)Math.Min(buffer.Length, _remaining.Length);
            _remaining.Slice(0, n).CopyTo(buffer);
            _remaining = _remaining.Slice(n);
            return n;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
