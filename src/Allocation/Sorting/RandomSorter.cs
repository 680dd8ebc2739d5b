using Scheduler.Allocation.Internal;

namespace Scheduler.Allocation.Sorting;

/// <summary>
/// Mesos' random sorter: at every <see cref="Sort"/>, each level of the role tree is put in a
/// weighted random order (a node goes first with probability proportional to its weight:
/// exponential keys −ln(u)/weight, smallest first), drawn from the injected seeded
/// <see cref="Random"/>. Allocations do not move anything until the next sort.
/// </summary>
internal sealed class RandomSorter : RoleTreeSorter
{
    private readonly Random _random;

    public RandomSorter(Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        _random = random;
    }

    protected override void OnAllocationChanged(ClientNode client)
    {
    }

    public override void Sort()
    {
        Shuffle(Root);
        Stale = false;
    }

    private void Shuffle(ContainerNode container)
    {
        for (var i = 0; i < container.KidCount; i++)
        {
            var kid = container.Kid(i);
            if (kid is ContainerNode inner)
            {
                Shuffle(inner);
            }

            kid.Share = -Math.Log(1.0 - _random.NextDouble()) / kid.Weight;
        }

        container.SortKids();
    }
}
