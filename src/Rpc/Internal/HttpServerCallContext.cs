using System.Buffers;
using System.IO.Pipelines;
using Google.Protobuf;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Scheduler.Rpc.Internal;

/// <summary>
/// One server call on a Kestrel HTTP/2 stream: reads length-prefixed request messages straight
/// from the request <see cref="PipeReader"/>, writes response messages straight into the response
/// <see cref="PipeWriter"/>, and ends the call with <c>grpc-status</c> trailers (or a
/// trailers-only response when nothing was written).
/// </summary>
internal sealed class HttpServerCallContext : ServerCallContext, IDisposable
{
    private readonly HttpContext _http;
    private readonly RpcServerOptions _options;
    private readonly ILogger _logger;
    private readonly string _method;
    private readonly CancellationToken _serverStopping;
    private CancellationTokenSource? _cts;
    private readonly bool _requestGzip;
    private Metadata? _requestHeaders;
    private Metadata? _responseTrailers;
    private DateTime _deadline = DateTime.MaxValue;
    private SemaphoreSlim? _writeGate;
    private CancellationTokenRegistration _readCancellation;
    private bool _readsFollowCall;
    private bool _bodyWritten;
    private bool _headersWritten;
    private bool _completed;

    public HttpServerCallContext(HttpContext http, string method, RpcServerOptions options, ILogger logger, bool requestGzip, CancellationToken serverStopping)
    {
        _http = http;
        _method = method;
        _options = options;
        _logger = logger;
        _requestGzip = requestGzip;
        _serverStopping = serverStopping;
    }

    public override string Method => _method;

    public override string Peer
    {
        get
        {
            var c = _http.Connection;
            var ip = c.RemoteIpAddress;
            if (ip is null)
            {
                return "unknown";
            }
            return ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6
                ? $"ipv6:[{ip}]:{c.RemotePort}"
                : $"ipv4:{ip}:{c.RemotePort}";
        }
    }

    public override DateTime Deadline => _deadline;

    /// <remarks>Created on first use: most unary handlers never look at it, and a linked token
    /// source per call is measurable at tens of thousands of calls per second.</remarks>
    public override CancellationToken CancellationToken => (_cts ?? CreateCancellation()).Token;

    /// <summary>The token for the call's own reads: the full token once created, otherwise the
    /// request-aborted token (enough for a unary request body).</summary>
    internal CancellationToken ReadToken => _cts?.Token ?? _http.RequestAborted;

    private CancellationTokenSource CreateCancellation()
    {
        var cts = CancellationTokenSource.CreateLinkedTokenSource(_http.RequestAborted, _serverStopping);
        var existing = Interlocked.CompareExchange(ref _cts, cts, null);
        if (existing is not null)
        {
            cts.Dispose();
            return existing;
        }
        return cts;
    }

    /// <summary>Makes the call's cancellation (client reset, deadline, server stop) end a pending
    /// read of the request stream: one registration for the life of the call, so a stream reader
    /// can pass its own token to each read without linking a token source per read.</summary>
    internal void CancelReadsWithCall()
    {
        if (_readsFollowCall)
        {
            return;
        }
        _readsFollowCall = true;
        _readCancellation = CancellationToken.UnsafeRegister(static s => CancelPendingRead((System.IO.Pipelines.PipeReader)s!), _http.Request.BodyReader);
    }

    internal static void CancelPendingRead(System.IO.Pipelines.PipeReader reader)
    {
        try
        {
            reader.CancelPendingRead();
        }
        catch (System.IO.IOException)
        {
            // The client has already reset the stream: there is no read left to end, and the
            // call sees the reset itself. Throwing here would fail whoever cancelled the call
            // (a server stop cancels every call at once).
        }
        catch (InvalidOperationException)
        {
            // The request body has already completed; nothing is pending.
        }
    }

    public override void Cancel() => (_cts ?? CreateCancellation()).Cancel();

    /// <summary>True when the call was cancelled: client reset, deadline, server stop or the handler.</summary>
    public bool IsCancelled => _http.RequestAborted.IsCancellationRequested || _serverStopping.IsCancellationRequested || (_cts?.IsCancellationRequested ?? false);

    public override Metadata RequestHeaders => _requestHeaders ??= ReadRequestHeaders();

    public override Metadata ResponseTrailers => _responseTrailers ??= [];

    public override Status Status { get; set; } = Status.DefaultSuccess;

    /// <summary>True once the deadline has passed.</summary>
    public bool DeadlineExceeded => _deadline != DateTime.MaxValue && DateTime.UtcNow >= _deadline;

    public bool RequestAborted => _http.RequestAborted.IsCancellationRequested;

    public void SetDeadline(TimeSpan timeout)
    {
        // Cap absurd values (99999999H) to what a timer can hold; such a deadline never fires anyway.
        if (timeout > TimeSpan.FromDays(30))
        {
            return;
        }
        _deadline = DateTime.UtcNow + timeout;
        (_cts ?? CreateCancellation()).CancelAfter(timeout);
    }

    public override Task WriteResponseHeadersAsync(Metadata responseHeaders)
    {
        ArgumentNullException.ThrowIfNull(responseHeaders);
        if (_headersWritten || _http.Response.HasStarted)
        {
            throw new InvalidOperationException("Response headers can only be sent once per call.");
        }
        var headers = _http.Response.Headers;
        foreach (var e in responseHeaders)
        {
            if (!MetadataCodec.IsReserved(e.Key))
            {
                AddField(headers, e.Key, MetadataCodec.ToHeaderValue(e));
            }
        }
        _headersWritten = true;
        return _http.Response.StartAsync(CancellationToken);
    }

    /// <summary>The request body; read it through <see cref="TryTakeMessage"/>.</summary>
    internal PipeReader RequestReader => _http.Request.BodyReader;

    /// <summary>Reads the next request message; null at the end of the request stream.</summary>
    public async ValueTask<T?> ReadMessageAsync<T>(MessageParser<T> parser, CancellationToken cancellationToken)
        where T : class, IMessage<T>
    {
        var reader = _http.Request.BodyReader;
        while (true)
        {
            var result = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            if (TryTakeMessage(reader, result, parser, cancellationToken, out var message))
            {
                return message;
            }
        }
    }

    /// <summary>Takes the next message out of <paramref name="result"/> (a read of
    /// <paramref name="reader"/>) and advances the reader: true with the message, or with null at
    /// the end of the request stream; false when more data must be read first. Synchronous, so a
    /// stream reader can await the pipe itself (one state machine per pending read, not two).</summary>
    internal bool TryTakeMessage<T>(PipeReader reader, in ReadResult result, MessageParser<T> parser, CancellationToken cancellationToken, out T? message)
        where T : class, IMessage<T>
    {
        var buffer = result.Buffer;
        if (GrpcProtocol.TryReadHeader(buffer, out var flag, out var length))
        {
            if (length > (uint)_options.MaxReceiveMessageSize)
            {
                reader.AdvanceTo(buffer.Start);
                throw new RpcException(new Status(StatusCode.ResourceExhausted,
                    $"Received message larger than max ({length} vs. {_options.MaxReceiveMessageSize})"));
            }
            if (buffer.Length >= GrpcProtocol.HeaderSize + length)
            {
                var payload = buffer.Slice(GrpcProtocol.HeaderSize, length);
                try
                {
                    message = Parse(parser, flag, payload);
                }
                finally
                {
                    reader.AdvanceTo(payload.End);
                }
                return true;
            }
        }
        if (result.IsCompleted)
        {
            var leftover = buffer.Length;
            reader.AdvanceTo(buffer.End);
            if (leftover > 0)
            {
                throw new RpcException(new Status(StatusCode.Internal, $"Incomplete message: the request stream ended inside a message ({leftover} bytes of it received)."));
            }
            message = null;
            return true;
        }
        if (result.IsCanceled)
        {
            throw new OperationCanceledException(cancellationToken);
        }
        reader.AdvanceTo(buffer.Start, buffer.End);
        message = null;
        return false;
    }

    private T Parse<T>(MessageParser<T> parser, byte flag, in ReadOnlySequence<byte> payload)
        where T : class, IMessage<T>
    {
        if (flag > 1)
        {
            throw new RpcException(new Status(StatusCode.Internal, $"Invalid message prefix: compressed-flag byte is {flag} (must be 0 or 1)."));
        }
        try
        {
            if (flag == 0)
            {
                return parser.ParseFrom(payload);
            }
            if (!_requestGzip)
            {
                throw new RpcException(new Status(StatusCode.Internal, "Request message is marked compressed but the call has no grpc-encoding."));
            }
            byte[]? raw;
            int rawLength;
            try
            {
                raw = GrpcProtocol.Decompress(payload, _options.MaxReceiveMessageSize, out rawLength);
            }
            catch (InvalidDataException ex)
            {
                throw new RpcException(new Status(StatusCode.Internal, "Failed to decompress the gzip request message: " + ex.Message));
            }
            if (raw is null)
            {
                throw new RpcException(new Status(StatusCode.ResourceExhausted,
                    $"Received message larger than max after decompression (limit {_options.MaxReceiveMessageSize})"));
            }
            try
            {
                return parser.ParseFrom(raw.AsSpan(0, rawLength));
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(raw);
            }
        }
        catch (InvalidProtocolBufferException ex)
        {
            throw new RpcException(new Status(StatusCode.Internal, $"Failed to deserialize the request message ({typeof(T).Name}): {ex.Message}"));
        }
    }

    /// <summary>Serialises writes of a streaming response: concurrent writers queue instead of
    /// interleaving frames. (Unary responses are written once, by the server itself.)</summary>
    public void SerialiseWrites() => _writeGate ??= new SemaphoreSlim(1, 1);

    /// <summary>Writes one response message. Concurrent writes are serialised; callers that care
    /// about order await each write before the next.</summary>
    public async Task WriteMessageAsync<T>(T message, bool flush, CancellationToken cancellationToken)
        where T : IMessage<T>
    {
        ArgumentNullException.ThrowIfNull(message);
        var gate = _writeGate;
        if (gate is not null && !gate.Wait(0, CancellationToken.None))
        {
            await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        try
        {
            if (_completed)
            {
                throw new InvalidOperationException("The call has completed; no more messages can be written.");
            }
            cancellationToken.ThrowIfCancellationRequested();
            if (IsCancelled)
            {
                throw new OperationCanceledException("The call was cancelled.");
            }
            var size = message.CalculateSize();
            if (size > _options.MaxSendMessageSize)
            {
                throw new RpcException(new Status(StatusCode.ResourceExhausted,
                    $"Sending message larger than max ({size} vs. {_options.MaxSendMessageSize})"));
            }
            var writer = _http.Response.BodyWriter;
            var span = writer.GetSpan(GrpcProtocol.HeaderSize + size);
            GrpcProtocol.WriteHeader(span, compressed: false, size);
            if (span.Length >= GrpcProtocol.HeaderSize + size)
            {
                message.WriteTo(span.Slice(GrpcProtocol.HeaderSize, size));
                writer.Advance(GrpcProtocol.HeaderSize + size);
            }
            else
            {
                writer.Advance(GrpcProtocol.HeaderSize);
                message.WriteTo(writer);
            }
            _bodyWritten = true;
            if (flush)
            {
                var token = CancellationToken;
                var result = await writer.FlushAsync(token).ConfigureAwait(false);
                if (result.IsCanceled)
                {
                    throw new OperationCanceledException(token);
                }
            }
        }
        finally
        {
            gate?.Release();
        }
    }

    /// <summary>Ends the call with <paramref name="status"/>: trailers, or trailers-only headers
    /// when no message was written.</summary>
    public void Complete(Status status)
    {
        _completed = true;
        var response = _http.Response;
        if (!_bodyWritten && !response.HasStarted)
        {
            // Trailers-only: status in the (only) HEADERS frame, with END_STREAM.
            var headers = response.Headers;
            headers[GrpcProtocol.StatusHeader] = ((int)status.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture);
            if (!string.IsNullOrEmpty(status.Detail))
            {
                headers[GrpcProtocol.MessageHeader] = GrpcProtocol.EncodeMessage(status.Detail);
            }
            if (_responseTrailers is not null)
            {
                foreach (var e in _responseTrailers)
                {
                    if (!MetadataCodec.IsReserved(e.Key))
                    {
                        AddField(headers, e.Key, MetadataCodec.ToHeaderValue(e));
                    }
                }
            }
            return;
        }
        var trailers = _http.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpResponseTrailersFeature>()?.Trailers
            ?? throw new InvalidOperationException("The HTTP/2 response does not support trailers.");
        trailers[GrpcProtocol.StatusHeader] = StatusText(status.StatusCode);
        if (!string.IsNullOrEmpty(status.Detail))
        {
            trailers[GrpcProtocol.MessageHeader] = GrpcProtocol.EncodeMessage(status.Detail);
        }
        if (_responseTrailers is not null)
        {
            foreach (var e in _responseTrailers)
            {
                if (!MetadataCodec.IsReserved(e.Key))
                {
                    AddField(trailers, e.Key, MetadataCodec.ToHeaderValue(e));
                }
            }
        }
    }

    /// <summary>Adds a header or trailer value, keeping earlier values of the key and empty
    /// values (the Append helpers drop empty strings, but an empty metadata value is valid).</summary>
    private static void AddField(IHeaderDictionary fields, string key, string value)
        => fields[key] = Microsoft.Extensions.Primitives.StringValues.Concat(fields[key], value);

    private static string StatusText(StatusCode code) => code switch
    {
        StatusCode.OK => "0",
        _ => ((int)code).ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    /// <summary>Adds trailers from a handler's <see cref="RpcException"/>.</summary>
    public void AddTrailers(Metadata trailers)
    {
        if (trailers.Count == 0)
        {
            return;
        }
        var own = ResponseTrailers;
        foreach (var e in trailers)
        {
            own.Add(e);
        }
    }

    private Metadata ReadRequestHeaders()
    {
        var metadata = new Metadata();
        foreach (var h in _http.Request.Headers)
        {
            foreach (var v in h.Value)
            {
                MetadataCodec.AddReceived(metadata, h.Key, v);
            }
        }
        return metadata;
    }

    public void Dispose()
    {
        _readCancellation.Dispose();
        _cts?.Dispose();
        _writeGate?.Dispose();
    }

    internal ILogger Logger => _logger;
}
