using Sched.V1;
using Scheduler.Channels;
using Scheduler.Protocol;
using Scheduler.Security;

namespace Scheduler.Hosting.Tests;

/// <summary>
/// Bearer-token authentication of <see cref="GrpcServer"/> (<see cref="AuthenticationInterceptor"/>
/// with <see cref="BearerTokens"/>) over loopback, with tokens signed by a <see cref="TokenKeys"/>
/// made here: who a valid token names, every kind of refusal with its reason, and that a token
/// remembered as valid is not served past its expiry.
/// </summary>
public sealed class BearerTokenTests : IDisposable
{
    private readonly TokenKeys _keys = TokenKeys.Create();

    public void Dispose() => _keys.Dispose();

    private Task<TestServer> StartAsync(bool allowAnonymous = false) => TestServer.StartAsync(new GrpcServerOptions
    {
        Authentication = new ServerAuthentication
        {
            Tokens = _keys.ValidationParameters(),
            AllowAnonymous = allowAnonymous,
            IsPublicMethod = m => m == "/grpc.health.v1.Health/Check",
            Hint = "present a test token",
        },
    });

    private static async Task<GetHealthResponse> CallerAsync(Grpc.Net.Client.GrpcChannel channel)
        => await channel.AsyncUnaryCall(OperatorMethods.GetHealth, new GetHealthRequest(), new CallOptions(new Metadata { { "x-mode", "caller" } }, DateTime.UtcNow.AddSeconds(10)));

    private string Token(string principal, TimeSpan? ttl = null, DateTimeOffset? issued = null)
        => _keys.Issue(principal, ttl ?? TimeSpan.FromHours(1), issued ?? DateTimeOffset.UtcNow);

    [Fact]
    public async Task A_valid_token_names_its_principal_on_every_call_and_each_token_its_own()
    {
        await using var server = await StartAsync();
        using var alice = server.Channel(new GrpcChannelSettings { BearerToken = Token("alice") });
        using var bob = server.Channel(new GrpcChannelSettings { BearerToken = Token("bob") });
        for (var i = 0; i < 3; i++)
        {
            var a = await CallerAsync(alice);
            Assert.Equal(("alice", "Token"), (a.Role, a.Version));
            var b = await CallerAsync(bob);
            Assert.Equal(("bob", "Token"), (b.Role, b.Version));
        }
    }

    [Theory]
    [InlineData("expired", "the bearer token was refused: it expired at ")]
    [InlineData("other-key", "the bearer token was refused: it was not signed by this cluster's token key")]
    [InlineData("garbage", "the bearer token was refused: it is not a well-formed token")]
    [InlineData("none", "/sched.v1.Operator/GetHealth needs credentials and the call presented none")]
    public async Task A_call_without_a_valid_token_is_refused_with_the_reason_and_what_to_present(string kind, string reason)
    {
        await using var server = await StartAsync();
        using var other = TokenKeys.Create();
        var token = kind switch
        {
            "expired" => Token("alice", TimeSpan.FromMinutes(1), DateTimeOffset.UtcNow.AddHours(-1)),
            "other-key" => other.Issue("alice", TimeSpan.FromHours(1), DateTimeOffset.UtcNow),
            "garbage" => "not.a-token",
            _ => null,
        };
        using var channel = server.Channel(new GrpcChannelSettings { BearerToken = token });
        // Twice: a refusal is not remembered, nor turned into a pass the second time.
        for (var i = 0; i < 2; i++)
        {
            var e = await Assert.ThrowsAsync<RpcException>(() => CallerAsync(channel));
            Assert.Equal(StatusCode.Unauthenticated, e.StatusCode);
            Assert.StartsWith(reason, e.Status.Detail, StringComparison.Ordinal);
            Assert.EndsWith("; present a test token", e.Status.Detail, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_refused_token_is_refused_even_where_anonymous_callers_are_let_in()
    {
        await using var server = await StartAsync(allowAnonymous: true);
        using var anonymous = server.Channel();
        Assert.Equal("(anonymous)", (await CallerAsync(anonymous)).Role);
        using var expired = server.Channel(new GrpcChannelSettings { BearerToken = Token("alice", TimeSpan.FromMinutes(1), DateTimeOffset.UtcNow.AddHours(-1)) });
        var e = await Assert.ThrowsAsync<RpcException>(() => CallerAsync(expired));
        Assert.Equal(StatusCode.Unauthenticated, e.StatusCode);
    }

    [Fact]
    public async Task A_token_remembered_as_valid_is_not_accepted_after_it_expires()
    {
        var now = DateTimeOffset.UtcNow;
        var clock = new ManualClock(now);
        var tokens = new BearerTokens(_keys.ValidationParameters(), clock);
        var header = BearerTokens.Prefix + Token("alice", TimeSpan.FromMinutes(10), now);

        var (valid, refusal) = await tokens.ValidateAsync(header);
        Assert.Null(refusal);
        Assert.Equal("alice", valid!.Caller!.Principal);
        Assert.True(tokens.TryGetValid(header, out var remembered));
        Assert.Same(valid, remembered);

        clock.Now = now.AddMinutes(9);
        Assert.True(tokens.TryGetValid(header, out _));
        clock.Now = now.AddMinutes(10).AddSeconds(1);
        Assert.False(tokens.TryGetValid(header, out _));
        Assert.False(tokens.TryGetValid(header, out _));
    }

    [Fact]
    public async Task A_token_already_expired_by_the_servers_clock_is_not_remembered()
    {
        var now = DateTimeOffset.UtcNow;
        // The token check allows 30 s of clock skew; the cache allows none.
        var clock = new ManualClock(now.AddMinutes(1).AddSeconds(5));
        var tokens = new BearerTokens(_keys.ValidationParameters(), clock);
        var header = BearerTokens.Prefix + Token("alice", TimeSpan.FromMinutes(1), now);
        var (valid, _) = await tokens.ValidateAsync(header);
        Assert.NotNull(valid);
        Assert.False(tokens.TryGetValid(header, out _));
    }

    private sealed class ManualClock(DateTimeOffset now) : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = now;

        public override DateTimeOffset GetUtcNow() => Now;
    }
}
