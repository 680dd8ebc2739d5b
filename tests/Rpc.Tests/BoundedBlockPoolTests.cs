using System.Buffers;
using Scheduler.Rpc.Internal;
using Xunit;

namespace Scheduler.Rpc.Tests;

/// <summary>The server's I/O buffer pool keeps at most its bound of returned blocks.</summary>
public sealed class BoundedBlockPoolTests
{
    [Fact]
    public void A_burst_leaves_at_most_the_bound_pooled_and_pooled_blocks_are_reused()
    {
        using var pool = new BoundedBlockPool(maxRetained: 8);
        var burst = Enumerable.Range(0, 100).Select(_ => pool.Rent()).ToList();
        Assert.All(burst, b => Assert.Equal(BoundedBlockPool.BlockSize, b.Memory.Length));
        Assert.Equal(100, burst.Select(b => b.Memory).Distinct().Count());
        foreach (var b in burst)
        {
            b.Dispose();
        }
        Assert.Equal(8, pool.Retained);

        var again = Enumerable.Range(0, 8).Select(_ => pool.Rent()).ToList();
        Assert.Equal(0, pool.Retained);
        Assert.All(again, b => Assert.Contains(burst, old => ReferenceEquals(old, b)));
        var fresh = pool.Rent();
        Assert.DoesNotContain(burst, old => ReferenceEquals(old, fresh));
    }

    [Fact]
    public void Oversized_requests_are_refused_with_the_limit()
    {
        using var pool = new BoundedBlockPool(maxRetained: 8);
        Assert.Equal(BoundedBlockPool.BlockSize, pool.Rent(-1).Memory.Length);
        Assert.Equal(BoundedBlockPool.BlockSize, pool.Rent(100).Memory.Length);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => pool.Rent(BoundedBlockPool.BlockSize + 1));
        Assert.Contains("4096", e.Message, StringComparison.Ordinal);
    }
}
