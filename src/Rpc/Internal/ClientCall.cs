using System.Buffers;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using Google.Protobuf;

namespace Scheduler.Rpc.Internal;

/// <summary>
/// One client call over an HTTP/2 stream of the channel's <see cref="HttpMessageInvoker"/>.
/// Reads length-prefixed response messages through one pooled buffer; the final status comes
/// from the trailers (or from the headers of a trailers-only response), and every failure ends
/// as an <see cref="RpcException"/>.
/// </summary>
internal sealed class ClientCall<TRequest, TResponse> : IAsyncStreamReader<TResponse>, IClientStreamWriter<TRequest>
    where TRequest : class, IMessage<TRequest>
    where TResponse : class, IMessage<TResponse>
{
    private const int InitialBuffer = 4096;

    private readonly RpcChannel _channel;
    private readonly Method<TRequest, TResponse> _method;
    private readonly CallOptions _options;
    private readonly CancellationTokenSource _cts;
    private readonly DateTime _deadline;
    private readonly TaskCompletionSource<Metadata> _headers = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private StreamingRequestContent? _requestContent;
    private Task<HttpResponseMessage>? _sendTask;
    private Task<bool>? _responseReady;
    private HttpResponseMessage? _response;
    private Stream? _responseStream;
    private bool _responseGzip;
    private byte[]? _buffer;
    private int _start;
    private int _end;
    private TResponse? _current;
    private Status? _status;
    private Metadata? _trailers;
    private RpcException? _failure;
    private SemaphoreSlim? _writeGate;
    private TaskCompletionSource? _finished;
    private bool _writesCompleted;
    private int _disposed;

    public ClientCall(RpcChannel channel, Method<TRequest, TResponse> method, CallOptions options)
    {
        _channel = channel;
        _method = method;
        _options = options;
        _cts = options.CancellationToken.CanBeCanceled
            ? CancellationTokenSource.CreateLinkedTokenSource(options.CancellationToken)
            : new CancellationTokenSource();
        _deadline = options.Deadline is { } d ? d.ToUniversalTime() : DateTime.MaxValue;
        if (_deadline != DateTime.MaxValue)
        {
            var left = _deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
            {
                _cts.Cancel();
            }
            else if (left < TimeSpan.FromDays(30))
            {
                _cts.CancelAfter(left);
            }
        }
    }

    public Task<Metadata> ResponseHeadersTask => _headers.Task;

    public TResponse Current => _current ?? throw new InvalidOperationException("No current message: call MoveNext first and check that it returned true.");

    public Status GetStatus() => _status ?? throw new InvalidOperationException("The call has not completed yet; its status is not known.");

    public Metadata GetTrailers() => _trailers ?? throw new InvalidOperationException("The call has not completed yet; its trailers are not known.");

    // ---- starting ----

    /// <summary>Starts a call with one request message (unary or server streaming).</summary>
    public void StartSingle(TRequest request)
    {
        try
        {
            var frame = MessageFramer.Frame(request, _channel.Options.MaxSendMessageSize, Gzip, out var length);
            _sendTask = SendAsync(new FramedMessageContent(frame, length));
        }
        catch (Exception ex)
        {
            _sendTask = Task.FromException<HttpResponseMessage>(ex);
        }
        WatchHeaders();
    }

    /// <summary>Streaming responses are read only when the caller asks for messages, but
    /// <c>ResponseHeadersAsync</c> must complete as soon as the headers arrive: process them
    /// in the background.</summary>
    private void WatchHeaders()
    {
        if (_method.Type is MethodType.ServerStreaming or MethodType.DuplexStreaming)
        {
            _responseReady = EnsureResponseCoreAsync();
            // Observed by the reader; keep an unread failure from surfacing as unobserved.
            _responseReady.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
    }

    /// <summary>Starts a call whose request is a stream (client or duplex streaming).</summary>
    public void StartStreaming()
    {
        _requestContent = new StreamingRequestContent();
        _writeGate = new SemaphoreSlim(1, 1);
        _finished = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _sendTask = SendAsync(_requestContent);
        WatchHeaders();
    }

    private bool Gzip => _channel.Options.RequestCompression is { } c && c.Equals(GrpcProtocol.Gzip, StringComparison.OrdinalIgnoreCase);

    private Task<HttpResponseMessage> SendAsync(HttpContent content)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, _channel.GetUri(_method))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = content,
        };
        var headers = request.Headers;
        headers.TryAddWithoutValidation("te", "trailers");
        headers.TryAddWithoutValidation("user-agent", RpcChannel.UserAgent);
        headers.TryAddWithoutValidation(GrpcProtocol.AcceptEncodingHeader, GrpcProtocol.AcceptEncodingValue);
        if (Gzip)
        {
            headers.TryAddWithoutValidation(GrpcProtocol.EncodingHeader, GrpcProtocol.Gzip);
        }
        if (_deadline != DateTime.MaxValue)
        {
            headers.TryAddWithoutValidation(GrpcProtocol.TimeoutHeader, GrpcProtocol.FormatTimeout(_deadline - DateTime.UtcNow));
        }
        if (_options.Headers is { } metadata)
        {
            foreach (var e in metadata)
            {
                if (!MetadataCodec.IsReserved(e.Key))
                {
                    headers.TryAddWithoutValidation(e.Key, MetadataCodec.ToHeaderValue(e));
                }
            }
        }
        return _channel.Invoker.SendAsync(request, _cts.Token);
    }

    // ---- response side ----

    /// <summary>Waits for the response headers; false when the call already ended (trailers-only
    /// or HTTP error — the status is then set).</summary>
    private ValueTask<bool> EnsureResponseAsync()
    {
        if (_responseStream is not null)
        {
            return new ValueTask<bool>(true);
        }
        if (_responseReady is not null)
        {
            return new ValueTask<bool>(_responseReady);
        }
        if (_status is not null)
        {
            return _failure is null ? new ValueTask<bool>(false) : ValueTask.FromException<bool>(_failure);
        }
        return new ValueTask<bool>(EnsureResponseCoreAsync());
    }

    private async Task<bool> EnsureResponseCoreAsync()
    {
        HttpResponseMessage response;
        try
        {
            response = await _sendTask!.ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            throw Fail(ex);
        }
        _response = response;
        var responseHeaders = new Metadata();
        foreach (var h in response.Headers.NonValidated)
        {
            foreach (var v in h.Value)
            {
                MetadataCodec.AddReceived(responseHeaders, h.Key, v);
            }
        }
        if (response.StatusCode != HttpStatusCode.OK)
        {
            var code = GrpcProtocol.FromHttpStatus((int)response.StatusCode);
            var detail = $"Bad gRPC response. HTTP status code: {(int)response.StatusCode}";
            if (TryGetHeader(response.Headers, GrpcProtocol.MessageHeader) is { } m)
            {
                detail += " (" + GrpcProtocol.DecodeMessage(m) + ")";
            }
            _headers.TrySetResult(responseHeaders);
            throw Error(new Status(code, detail), responseHeaders);
        }
        if (TryGetHeader(response.Headers, GrpcProtocol.StatusHeader) is { } statusText)
        {
            // Trailers-only response: the status and trailers are in the headers.
            _headers.TrySetResult(responseHeaders);
            var status = new Status(ParseStatus(statusText), GrpcProtocol.DecodeMessage(TryGetHeader(response.Headers, GrpcProtocol.MessageHeader)));
            var ex = Finish(status, responseHeaders);
            if (ex is not null)
            {
                throw ex;
            }
            return false;
        }
        var contentType = response.Content.Headers.ContentType?.ToString();
        if (!GrpcProtocol.IsGrpcContentType(contentType))
        {
            _headers.TrySetResult(responseHeaders);
            throw Error(new Status(StatusCode.Internal, $"Bad gRPC response. Content-Type '{contentType}' is not application/grpc."), responseHeaders);
        }
        _responseGzip = TryGetHeader(response.Headers, GrpcProtocol.EncodingHeader) is { } enc && enc.Equals(GrpcProtocol.Gzip, StringComparison.OrdinalIgnoreCase);
        _headers.TrySetResult(responseHeaders);
        try
        {
            _responseStream = await response.Content.ReadAsStreamAsync(_cts.Token).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            throw Fail(ex);
        }
        return true;
    }

    /// <summary>Reads the next response message, or null at the end of the stream (status OK).</summary>
    private async ValueTask<TResponse?> ReadMessageAsync(CancellationToken cancellationToken)
    {
        if (_status is not null)
        {
            // The call has ended: its error again, or the end of the stream.
            return _failure is null ? null : throw _failure;
        }
        if (!await EnsureResponseAsync().ConfigureAwait(false))
        {
            return null;
        }
        try
        {
            _buffer ??= ArrayPool<byte>.Shared.Rent(InitialBuffer);
            if (!await FillAsync(GrpcProtocol.HeaderSize, cancellationToken).ConfigureAwait(false))
            {
                if (_end > _start)
                {
                    throw Error(new Status(StatusCode.Internal, $"Incomplete message: the response stream ended inside a message header ({_end - _start} bytes)."), []);
                }
                var ex = FinishFromTrailers();
                if (ex is not null)
                {
                    throw ex;
                }
                return null;
            }
            var flag = _buffer[_start];
            var length = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(_buffer.AsSpan(_start + 1, 4));
            var max = _channel.Options.MaxReceiveMessageSize;
            if (length > (uint)max)
            {
                throw Error(new Status(StatusCode.ResourceExhausted, $"Received message larger than max ({length} vs. {max})"), []);
            }
            if (flag > 1)
            {
                throw Error(new Status(StatusCode.Internal, $"Invalid message prefix: compressed-flag byte is {flag}."), []);
            }
            var total = GrpcProtocol.HeaderSize + (int)length;
            if (!await FillAsync(total, cancellationToken).ConfigureAwait(false))
            {
                throw Error(new Status(StatusCode.Internal, $"Incomplete message: the response stream ended inside a {length}-byte message."), []);
            }
            var payload = new ReadOnlySpan<byte>(_buffer, _start + GrpcProtocol.HeaderSize, (int)length);
            _start += total;
            return Parse(payload, flag == 1, max);
        }
        catch (RpcException)
        {
            throw;
        }
        catch (Exception ex)
        {
            throw Fail(ex);
        }
    }

    private TResponse Parse(ReadOnlySpan<byte> payload, bool compressed, int max)
    {
        try
        {
            if (!compressed)
            {
                return _method.ResponseParser.ParseFrom(payload);
            }
            if (!_responseGzip)
            {
                throw Error(new Status(StatusCode.Internal, "Response message is marked compressed but the response has no supported grpc-encoding."), []);
            }
            var raw = GrpcProtocol.Decompress(new ReadOnlySequence<byte>(payload.ToArray()), max, out var rawLength)
                ?? throw Error(new Status(StatusCode.ResourceExhausted, $"Received message larger than max after decompression (limit {max})"), []);
            try
            {
                return _method.ResponseParser.ParseFrom(raw.AsSpan(0, rawLength));
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(raw);
            }
        }
        catch (InvalidProtocolBufferException ex)
        {
            throw Error(new Status(StatusCode.Internal, $"Failed to deserialize the response message ({typeof(TResponse).Name}): {ex.Message}"), []);
        }
        catch (InvalidDataException ex)
        {
            throw Error(new Status(StatusCode.Internal, "Failed to decompress the gzip response message: " + ex.Message), []);
        }
    }

    /// <summary>Ensures <paramref name="count"/> unread bytes in the buffer; false at end of stream.</summary>
    private async ValueTask<bool> FillAsync(int count, CancellationToken cancellationToken)
    {
        while (_end - _start < count)
        {
            var buffer = _buffer!;
            if (buffer.Length - _start < count)
            {
                var target = buffer.Length >= count ? buffer : ArrayPool<byte>.Shared.Rent(count);
                Buffer.BlockCopy(buffer, _start, target, 0, _end - _start);
                if (!ReferenceEquals(target, buffer))
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    _buffer = target;
                }
                _end -= _start;
                _start = 0;
                buffer = target;
            }
            int n;
            if (cancellationToken.CanBeCanceled)
            {
                using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _cts.Token);
                n = await _responseStream!.ReadAsync(buffer.AsMemory(_end), linked.Token).ConfigureAwait(false);
            }
            else
            {
                n = await _responseStream!.ReadAsync(buffer.AsMemory(_end), _cts.Token).ConfigureAwait(false);
            }
            if (n == 0)
            {
                return false;
            }
            _end += n;
        }
        return true;
    }

    private RpcException? FinishFromTrailers()
    {
        var trailers = new Metadata();
        var th = _response!.TrailingHeaders;
        foreach (var h in th.NonValidated)
        {
            foreach (var v in h.Value)
            {
                MetadataCodec.AddReceived(trailers, h.Key, v);
            }
        }
        var statusText = TryGetHeader(th, GrpcProtocol.StatusHeader);
        var status = statusText is null
            ? new Status(StatusCode.Internal, "The response ended without a grpc-status trailer.")
            : new Status(ParseStatus(statusText), GrpcProtocol.DecodeMessage(TryGetHeader(th, GrpcProtocol.MessageHeader)));
        return Finish(status, trailers);
    }

    // ---- completion ----

    /// <summary>Records the final status (first one wins), releases the stream; returns the
    /// exception to throw for a non-OK status.</summary>
    private RpcException? Finish(Status status, Metadata trailers, bool fromReader = true)
    {
        lock (_headers)
        {
            if (_status is null)
            {
                _status = status;
                _trailers = trailers;
                if (status.StatusCode != StatusCode.OK)
                {
                    _failure = new RpcException(status, trailers);
                }
            }
        }
        _headers.TrySetResult([]);
        _finished?.TrySetResult();
        Release(abort: _status.Value.StatusCode != StatusCode.OK, fromReader);
        return _failure;
    }

    /// <summary>Finishes with an error status; returns the exception to throw.</summary>
    private RpcException Error(Status status, Metadata trailers) => Finish(status, trailers) ?? _failure ?? new RpcException(status, trailers);

    /// <summary>Maps a transport or cancellation exception to the call's final RpcException.</summary>
    private RpcException Fail(Exception ex)
    {
        if (ex is RpcException rpc)
        {
            // E.g. a request too large to send: that is the call's outcome.
            Finish(rpc.Status, rpc.Trailers);
            return _failure ?? rpc;
        }
        Status status;
        var byCaller = _options.CancellationToken.IsCancellationRequested || Volatile.Read(ref _disposed) == 1;
        if (!byCaller && _deadline != DateTime.MaxValue && (_cts.IsCancellationRequested || DateTime.UtcNow >= _deadline))
        {
            // Our own timer (CancelAfter) is the only other source of cancellation.
            status = new Status(StatusCode.DeadlineExceeded, "Deadline exceeded.");
        }
        else if (_cts.IsCancellationRequested || ex is OperationCanceledException)
        {
            status = new Status(StatusCode.Cancelled, "Call cancelled by the client.");
        }
        else if (ex is HttpProtocolException hpe)
        {
            status = hpe.ErrorCode switch
            {
                0x7 => new Status(StatusCode.Unavailable, "The server refused the stream (REFUSED_STREAM): " + hpe.Message),
                0x8 => new Status(StatusCode.Cancelled, "The server cancelled the stream: " + hpe.Message),
                0xb => new Status(StatusCode.ResourceExhausted, "The server answered ENHANCE_YOUR_CALM: " + hpe.Message),
                0xc => new Status(StatusCode.PermissionDenied, "Inadequate security: " + hpe.Message),
                _ => new Status(StatusCode.Internal, "HTTP/2 protocol error: " + hpe.Message),
            };
        }
        else if (ex is ObjectDisposedException)
        {
            status = new Status(StatusCode.Unavailable, "The channel was disposed.");
        }
        else if (ex is HttpRequestException { InnerException: SocketException se })
        {
            status = new Status(StatusCode.Unavailable, $"Error connecting to {_channel.Address.Authority}: {se.Message}");
        }
        else if (ex is HttpRequestException or IOException)
        {
            status = new Status(StatusCode.Unavailable, $"Error talking to {_channel.Address.Authority}: {Describe(ex)}");
        }
        else
        {
            status = new Status(StatusCode.Internal, $"Call failed: {Describe(ex)}");
        }
        _headers.TrySetException(new RpcException(status));
        return Finish(status, []) ?? new RpcException(status);
    }

    private static string Describe(Exception ex)
    {
        var text = ex.Message;
        for (var inner = ex.InnerException; inner is not null; inner = inner.InnerException)
        {
            text += " → " + inner.Message;
        }
        return text;
    }

    private void Release(bool abort, bool returnBuffer)
    {
        _requestContent?.Abort((Exception?)_failure ?? new InvalidOperationException("The call has completed; no more messages can be written."));
        if (abort)
        {
            try
            {
                _cts.Cancel();
            }
            catch (ObjectDisposedException)
            {
            }
        }
        _response?.Dispose();
        // Only the reading side may recycle its buffer: a concurrent Dispose must not pull it
        // from under a read in progress.
        if (returnBuffer)
        {
            var buffer = Interlocked.Exchange(ref _buffer, null);
            if (buffer is not null)
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
    }

    /// <summary>Cancels the call if it is still running.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }
        if (_status is null)
        {
            Finish(new Status(StatusCode.Cancelled, "Call disposed by the client."), [], fromReader: false);
        }
        if (_response is null && _sendTask is { IsCompleted: false })
        {
            // Headers still on their way: release the response as soon as it arrives.
            _sendTask.ContinueWith(static t => t.Result.Dispose(), CancellationToken.None, TaskContinuationOptions.OnlyOnRanToCompletion | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
        else if (_sendTask is { IsCompletedSuccessfully: true })
        {
            _sendTask.Result.Dispose();
        }
    }

    // ---- public faces ----

    public async Task<TResponse> UnaryResponseAsync()
    {
        var message = await ReadMessageAsync(default).ConfigureAwait(false);
        if (message is null)
        {
            // The status was OK (Finish already recorded it); report the protocol violation.
            throw new RpcException(new Status(StatusCode.Internal, "The server ended the call with OK but sent no response message."), _trailers ?? []);
        }
        var next = await ReadMessageAsync(default).ConfigureAwait(false);
        if (next is not null)
        {
            throw Error(new Status(StatusCode.Internal, "The server sent more than one response message for a call that takes one."), []);
        }
        return message;
    }

    public async Task<bool> MoveNext(CancellationToken cancellationToken = default)
    {
        if (_failure is not null)
        {
            throw _failure;
        }
        var message = await ReadMessageAsync(cancellationToken).ConfigureAwait(false);
        _current = message;
        return message is not null;
    }

    public async Task WriteAsync(TRequest message, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (_failure is not null)
        {
            throw _failure;
        }
        if (_status is not null)
        {
            throw new InvalidOperationException("The call has completed; no more messages can be written.");
        }
        if (_writesCompleted)
        {
            throw new InvalidOperationException("CompleteAsync was called; no more messages can be written.");
        }
        // Concurrent writers queue rather than interleave frames.
        var gate = _writeGate ?? throw new InvalidOperationException("This call has no request stream.");
        if (!gate.Wait(0, CancellationToken.None))
        {
            await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        byte[]? frame = null;
        try
        {
            frame = MessageFramer.Frame(message, _channel.Options.MaxSendMessageSize, Gzip, out var length);
            var stream = await _requestContent!.StreamTask.WaitAsync(_cts.Token).ConfigureAwait(false);
            var token = _cts.Token;
            if (cancellationToken.CanBeCanceled)
            {
                using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, token);
                await stream.WriteAsync(frame.AsMemory(0, length), linked.Token).ConfigureAwait(false);
                await stream.FlushAsync(linked.Token).ConfigureAwait(false);
            }
            else
            {
                await stream.WriteAsync(frame.AsMemory(0, length), token).ConfigureAwait(false);
                await stream.FlushAsync(token).ConfigureAwait(false);
            }
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.ResourceExhausted && _status is null)
        {
            // Too large to send: the message was not sent and the call stays usable.
            throw;
        }
        catch (Exception ex) when (ex is not RpcException)
        {
            if (_failure is null && !_cts.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                // A write usually fails because the server has ended the call (e.g. it rejected
                // the message) and reset the stream: its status, not the reset, is the answer.
                try
                {
                    // (Duplex: once a response body has started, its status comes with the
                    // messages the caller reads, so there is nothing more to wait for here.)
                    var outcome = _responseReady is null ? _finished!.Task : Task.WhenAny(_finished!.Task, _responseReady);
                    await outcome.WaitAsync(TimeSpan.FromSeconds(2), CancellationToken.None).ConfigureAwait(false);
                }
                catch (TimeoutException)
                {
                }
            }
            throw _failure ?? Fail(ex);
        }
        finally
        {
            if (frame is not null)
            {
                ArrayPool<byte>.Shared.Return(frame);
            }
            gate.Release();
        }
    }

    public Task CompleteAsync()
    {
        _writesCompleted = true;
        _requestContent?.Complete();
        return Task.CompletedTask;
    }

    // ---- helpers ----

    private static StatusCode ParseStatus(string text)
        => int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var code) && code is >= 0 and <= 16
            ? (StatusCode)code
            : StatusCode.Unknown;

    private static string? TryGetHeader(HttpHeaders headers, string name)
        => headers.NonValidated.TryGetValues(name, out var values) ? values.ToString() : null;
}
