using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace Scheduler.Hosting.Tests;

/// <summary>
/// A raw HTTP/2 client connection over a socket (h2c, prior knowledge) for wire tests: opens
/// streams with any headers, sends any frames (also malformed ones), and records per stream the
/// response headers, body and trailers, or the reset. It acknowledges SETTINGS and PING and
/// returns every received DATA byte to the flow-control windows; it does not flow-control what it
/// sends (tests send little).
/// </summary>
public sealed class RawHttp2Connection : IAsyncDisposable
{
    public const byte Data = 0, Headers = 1, RstStream = 3, Settings = 4, Ping = 6, GoAway = 7, WindowUpdate = 8, Continuation = 9;
    public const byte EndStream = 0x1, Ack = 0x1, EndHeaders = 0x4, Padded = 0x8, PriorityFlag = 0x20;
    public const int MaxFrame = 16384;

    /// <summary>The client connection preface (RFC 9113 §3.4).</summary>
    public static readonly byte[] Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8.ToArray();

    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly SemaphoreSlim _writeLock = new(1);
    private readonly ConcurrentDictionary<int, RawStream> _streams = new();
    private readonly TaskCompletionSource<int> _goAway = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _ping = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Hpack _decoder = new();
    private readonly string _authority;
    private int _lastStreamId = -1;
    private Task _reader = Task.CompletedTask;

    private RawHttp2Connection(Socket socket, IPEndPoint server)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: false);
        _authority = server.ToString();
    }

    /// <summary>Completes with the GOAWAY error code when the server sends one.</summary>
    public Task<int> GoAwayAsync => _goAway.Task;

    /// <summary>Completes when the server has closed the connection (or reading it failed).</summary>
    public Task Closed => _reader;

    /// <summary>Completes when the server sends a PING (not an acknowledgement).</summary>
    public Task PingReceived => _ping.Task;

    /// <summary>Whether PINGs are acknowledged (true); false plays a peer that went silent.</summary>
    public bool AnswerPings { get; set; } = true;

    /// <summary>Connects, sends the preface and SETTINGS (large receive windows, no push).</summary>
    public static async Task<RawHttp2Connection> ConnectAsync(IPEndPoint server)
    {
        var socket = new Socket(server.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(server);
        var c = new RawHttp2Connection(socket, server);
        var settings = new byte[12];
        BinaryPrimitives.WriteUInt16BigEndian(settings, 0x2); // ENABLE_PUSH = 0
        BinaryPrimitives.WriteUInt16BigEndian(settings.AsSpan(6), 0x4); // INITIAL_WINDOW_SIZE
        BinaryPrimitives.WriteUInt32BigEndian(settings.AsSpan(8), 16 << 20);
        await c.SendBytesAsync([.. Preface, .. Frame(Settings, 0, 0, settings), .. WindowUpdateFrame(0, 16 << 20)]);
        c._reader = Task.Run(c.ReadLoopAsync);
        return c;
    }

    /// <summary>Opens a stream with a POST to <paramref name="path"/> and the given content type
    /// (null: none) and extra headers; <paramref name="endStream"/> half-closes it at once.</summary>
    public async Task<RawStream> OpenAsync(string path, string? contentType = "application/grpc", IEnumerable<(string, string)>? extra = null, bool endStream = false)
    {
        var headers = new List<(string, string)> { (":method", "POST"), (":scheme", "http"), (":path", path), (":authority", _authority), ("te", "trailers") };
        if (contentType is not null)
        {
            headers.Add(("content-type", contentType));
        }
        headers.AddRange(extra ?? []);
        var block = Hpack.Encode(headers);
        await _writeLock.WaitAsync();
        try
        {
            // Stream ids must reach the server in increasing order: allocate under the write lock.
            var stream = new RawStream(_lastStreamId += 2);
            _streams[stream.Id] = stream;
            await _stream.WriteAsync(Frame(Headers, (byte)(EndHeaders | (endStream ? EndStream : 0)), stream.Id, block));
            return stream;
        }
        finally
        {
            _writeLock.Release();
        }
    }

    /// <summary>Sends <paramref name="data"/> on the stream in DATA frames of at most 16 KiB.</summary>
    public async Task SendDataAsync(RawStream stream, ReadOnlyMemory<byte> data, bool endStream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var frames = new List<byte>();
        do
        {
            var n = Math.Min(MaxFrame, data.Length);
            var last = n == data.Length;
            frames.AddRange(Frame(Data, (byte)(last && endStream ? EndStream : 0), stream.Id, data.Span[..n]));
            data = data[n..];
        }
        while (data.Length > 0);
        await SendBytesAsync([.. frames]);
    }

    /// <summary>Writes bytes as they are (a frame, many, or garbage).</summary>
    public async Task SendBytesAsync(byte[] bytes)
    {
        await _writeLock.WaitAsync();
        try
        {
            await _stream.WriteAsync(bytes);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    /// <summary>One frame: 9-byte header then payload.</summary>
    public static byte[] Frame(byte type, byte flags, int streamId, ReadOnlySpan<byte> payload)
    {
        var f = new byte[9 + payload.Length];
        f[0] = (byte)(payload.Length >> 16);
        f[1] = (byte)(payload.Length >> 8);
        f[2] = (byte)payload.Length;
        f[3] = type;
        f[4] = flags;
        BinaryPrimitives.WriteInt32BigEndian(f.AsSpan(5), streamId);
        payload.CopyTo(f.AsSpan(9));
        return f;
    }

    /// <summary>A gRPC length-prefixed message.</summary>
    public static byte[] GrpcMessage(ReadOnlySpan<byte> payload, byte flag = 0, uint? declaredLength = null)
    {
        var b = new byte[5 + payload.Length];
        b[0] = flag;
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(1), declaredLength ?? (uint)payload.Length);
        payload.CopyTo(b.AsSpan(5));
        return b;
    }

    private static byte[] WindowUpdateFrame(int streamId, int increment)
    {
        var p = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(p, increment);
        return Frame(WindowUpdate, 0, streamId, p);
    }

    private async Task ReadLoopAsync()
    {
        var header = new byte[9];
        var block = new List<byte>();
        var blockStream = 0;
        var blockEnds = false;
        try
        {
            while (true)
            {
                await _stream.ReadExactlyAsync(header);
                var length = (header[0] << 16) | (header[1] << 8) | header[2];
                var (type, flags) = (header[3], header[4]);
                var id = BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(5)) & 0x7FFFFFFF;
                var payload = new byte[length];
                await _stream.ReadExactlyAsync(payload);
                switch (type)
                {
                    case Data:
                        if (length > 0)
                        {
                            await SendBytesAsync([.. WindowUpdateFrame(0, length), .. (flags & EndStream) == 0 ? WindowUpdateFrame(id, length) : []]);
                        }
                        if (_streams.TryGetValue(id, out var ds))
                        {
                            ds.OnData(Unpad(payload, flags), (flags & EndStream) != 0);
                        }
                        break;
                    case Headers:
                        var fragment = Unpad(payload, flags);
                        if ((flags & PriorityFlag) != 0)
                        {
                            fragment = fragment[5..];
                        }
                        block.Clear();
                        block.AddRange(fragment);
                        (blockStream, blockEnds) = (id, (flags & EndStream) != 0);
                        if ((flags & EndHeaders) != 0)
                        {
                            OnHeaderBlock(blockStream, block, blockEnds);
                        }
                        break;
                    case Continuation:
                        block.AddRange(payload);
                        if ((flags & EndHeaders) != 0)
                        {
                            OnHeaderBlock(blockStream, block, blockEnds);
                        }
                        break;
                    case RstStream:
                        if (_streams.TryGetValue(id, out var rs))
                        {
                            rs.OnReset(BinaryPrimitives.ReadInt32BigEndian(payload));
                        }
                        break;
                    case Settings when (flags & Ack) == 0:
                        await SendBytesAsync(Frame(Settings, Ack, 0, []));
                        break;
                    case Ping when (flags & Ack) == 0:
                        _ping.TrySetResult();
                        if (AnswerPings)
                        {
                            await SendBytesAsync(Frame(Ping, Ack, 0, payload));
                        }
                        break;
                    case GoAway:
                        _goAway.TrySetResult(BinaryPrimitives.ReadInt32BigEndian(payload.AsSpan(4)));
                        break;
                }
            }
        }
        catch (Exception e) when (e is IOException or EndOfStreamException or SocketException or ObjectDisposedException)
        {
            // The connection ended: what has not ended by now never will.
        }
        finally
        {
            foreach (var s in _streams.Values)
            {
                s.OnConnectionLost();
            }
        }
    }

    private void OnHeaderBlock(int id, List<byte> block, bool endStream)
    {
        var headers = _decoder.Decode(block.ToArray());
        if (_streams.TryGetValue(id, out var s))
        {
            s.OnHeaders(headers, endStream);
        }
    }

    private static byte[] Unpad(byte[] payload, byte flags)
        => (flags & Padded) == 0 ? payload : payload[1..(payload.Length - payload[0])];

    public async ValueTask DisposeAsync()
    {
        _socket.Dispose();
        await _reader;
        _stream.Dispose();
        _writeLock.Dispose();
    }
}

/// <summary>One stream of a <see cref="RawHttp2Connection"/>: what the server answered on it.</summary>
public sealed class RawStream(int id)
{
    private readonly TaskCompletionSource<RawStream> _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _firstMessage = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly MemoryStream _body = new();

    public int Id { get; } = id;

    public IReadOnlyList<(string Name, string Value)> ResponseHeaders { get; private set; } = [];

    public IReadOnlyList<(string Name, string Value)>? Trailers { get; private set; }

    /// <summary>The RST_STREAM error code, when the server reset the stream.</summary>
    public int? ResetCode { get; private set; }

    /// <summary>The connection closed before the stream ended.</summary>
    public bool ConnectionLost { get; private set; }

    /// <summary>Completes when the stream has ended: END_STREAM, reset, or connection lost.</summary>
    public Task<RawStream> Ended => _ended.Task;

    /// <summary>Completes when a whole first gRPC message has arrived.</summary>
    public Task FirstMessage => _firstMessage.Task;

    public int? HttpStatus => Header(ResponseHeaders, ":status") is { } s ? int.Parse(s, System.Globalization.CultureInfo.InvariantCulture) : null;

    /// <summary>grpc-status from the trailers, or from the headers of a trailers-only response.</summary>
    public int? GrpcStatus => Header(Trailers ?? ResponseHeaders, "grpc-status") is { } s ? int.Parse(s, System.Globalization.CultureInfo.InvariantCulture) : null;

    public string? GrpcMessage => Header(Trailers ?? ResponseHeaders, "grpc-message");

    public byte[] Body
    {
        get
        {
            lock (_body)
            {
                return _body.ToArray();
            }
        }
    }

    /// <summary>How the stream ended, for assertion messages.</summary>
    public string Outcome => ResetCode is { } r ? $"reset {r}" : ConnectionLost ? "connection lost"
        : $"http {HttpStatus} grpc-status {GrpcStatus} '{GrpcMessage}'";

    public static string? Header(IReadOnlyList<(string Name, string Value)> headers, string name)
        => headers.FirstOrDefault(h => h.Name == name).Value;

    internal void OnHeaders(List<(string, string)> headers, bool endStream)
    {
        if (ResponseHeaders.Count == 0)
        {
            ResponseHeaders = headers;
        }
        else
        {
            Trailers = headers;
        }
        if (endStream)
        {
            _ended.TrySetResult(this);
        }
    }

    internal void OnData(byte[] data, bool endStream)
    {
        lock (_body)
        {
            _body.Write(data);
            if (_body.Length >= 5 && _body.Length >= 5 + BinaryPrimitives.ReadUInt32BigEndian(_body.GetBuffer().AsSpan(1, 4)))
            {
                _firstMessage.TrySetResult();
            }
        }
        if (endStream)
        {
            _ended.TrySetResult(this);
        }
    }

    internal void OnReset(int code)
    {
        // After a complete response, RST_STREAM(NO_ERROR) only says the server stopped reading
        // the request: the stream has already ended.
        if (_ended.Task.IsCompleted)
        {
            return;
        }
        ResetCode = code;
        _ended.TrySetResult(this);
    }

    internal void OnConnectionLost()
    {
        ConnectionLost = !_ended.Task.IsCompleted;
        _ended.TrySetResult(this);
        _firstMessage.TrySetException(new IOException($"stream {Id}: the connection closed before a whole message arrived"));
    }
}
