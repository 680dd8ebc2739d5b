using FsCheck;
using FsCheck.Fluent;
using Sched.V1;
using Scheduler.Protocol.Resources;
using Xunit;
using static Scheduler.Allocation.Tests.AllocatorHarness;

namespace Scheduler.Allocation.Tests;

/// <summary>
/// Invariants over random clusters and random event sequences. Each case is a sequence of choices
/// that FsCheck generates and, on a failure, shrinks (fewer choices, smaller choices; past its end
/// every choice is 0, the simplest), so a failing scenario is reported as a short one. The choices
/// build agents (reserved
/// parts, GPUs, draining), frameworks (roles, GPU capability, suppression), quotas and a sequence of
/// cycles, recoveries with and without filters, time steps, suppress/revive, agent churn, quota
/// changes and dynamic reservations (reserve/unreserve of held resources). A model of every holding is kept from the grants, and checked after every step.
/// </summary>
public class AllocatorPropertyTests
{
    private static readonly string[] Roles = ["a", "a/x", "a/y", "b", "c"];

    private sealed class Model
    {
        public Dictionary<string, ResourceSet> Totals { get; } = [];
        public Dictionary<(string Fw, string Role, string Agent), ResourceSet> Held { get; } = [];
        public Dictionary<(string Fw, string Agent), DateTimeOffset> Filters { get; } = [];
        public HashSet<(string Fw, string Role)> Suppressed { get; } = [];
        public Dictionary<string, FrameworkSpec> Frameworks { get; } = [];
        public HashSet<string> InactiveAgents { get; } = [];
        public HashSet<string> DrainingAgents { get; } = [];
        public Dictionary<string, ResourceSet> Limits { get; } = [];
        public List<string> Log { get; } = [];
        public Dictionary<string, string> Racks { get; } = [];
    }

    private static string RandomResources(Random r, bool allowReserved)
    {
        var parts = new List<string>
        {
            $"cpus:{r.Next(1, 9) + (r.Next(4) * 0.25)}",
            $"mem:{r.Next(1, 17) * 256}",
        };
        if (r.Next(3) == 0)
        {
            parts.Add($"disk:{r.Next(1, 10) * 1000}");
        }

        if (r.Next(2) == 0)
        {
            var begin = 31000 + r.Next(100);
            parts.Add($"ports:[{begin}-{begin + r.Next(50)}]");
        }

        if (r.Next(6) == 0)
        {
            parts.Add($"gpus:{r.Next(1, 3)}");
        }

        if (allowReserved && r.Next(3) == 0)
        {
            var role = Roles[r.Next(Roles.Length)];
            parts.Add($"cpus({role}):{r.Next(1, 4)}");
            parts.Add($"mem({role}):{r.Next(1, 8) * 128}");
        }

        return string.Join(';', parts);
    }

    /// <summary>The decisions of a scenario, read from a generated list of choices; past its end
    /// every choice is 0.</summary>
    private sealed class Choices(int[] values) : Random
    {
        private int _next;

        public override int Next() => Take();

        public override int Next(int maxValue) => maxValue <= 1 ? 0 : (int)((uint)Take() % (uint)maxValue);

        public override int Next(int minValue, int maxValue) => minValue + Next(maxValue - minValue);

        public override double NextDouble() => Next(1000) / 1000.0;

        protected override double Sample() => NextDouble();

        private int Take() => _next < values.Length ? values[_next++] : 0;
    }

    /// <summary>Lists of up to 600 choices; shrinking removes choices and makes them smaller.</summary>
    private static readonly Arbitrary<int[]> ScenarioChoices = Arb.From(
        Gen.Choose(0, 600).SelectMany(n => Gen.Choose(0, 1_000_000).ArrayOf(n)),
        ArbMap.Default.ArbFor<int[]>().Shrinker);

    /// <summary>Runs one scenario; returns the log of grants (for determinism checks).</summary>
    private static List<string> RunScenario(int[] choices)
    {
        var r = new Choices(choices);
        var h = new AllocatorHarness(choices.Length);
        var m = new Model();
        var agentCount = r.Next(1, 12);
        var nextAgent = 0;

        void AddAgent()
        {
            var id = $"ag{nextAgent++}";
            var resources = RandomResources(r, allowReserved: true);
            var draining = r.Next(10) == 0;
            var rack = r.Next(2) == 0 ? "r1" : "r2";
            h.Allocator.AddAgent(Agent(id, resources, "rack:" + rack, draining), []);
            m.Racks[id] = rack;
            m.Totals[id] = ResourceSet.Parse(resources);
            if (draining)
            {
                m.DrainingAgents.Add(id);
            }
        }

        for (var i = 0; i < agentCount; i++)
        {
            AddAgent();
        }

        var frameworkCount = r.Next(1, 6);
        for (var i = 0; i < frameworkCount; i++)
        {
            var roles = Roles.Where(_ => r.Next(3) == 0).ToArray();
            if (roles.Length == 0)
            {
                roles = [Roles[r.Next(Roles.Length)]];
            }

            var caps = r.Next(2) == 0 ? new[] { FrameworkCapability.GpuResources } : [];
            OfferConstraint[] constraints = r.Next(4) == 0 ? [new OfferConstraint { Attribute = "rack", Op = OfferConstraint.Types.Op.Equals, Value = "r1" }] : [];
            var suppressed = roles.Where(_ => r.Next(5) == 0).ToArray();
            var spec = Framework($"fw{i}", roles, caps, constraints, suppressed: suppressed);
            h.Allocator.AddFramework(spec, []);
            m.Frameworks[spec.FrameworkId] = spec;
            foreach (var s in suppressed)
            {
                m.Suppressed.Add((spec.FrameworkId, s));
            }
        }

        void SetQuota()
        {
            var role = Roles[r.Next(Roles.Length)];
            var guarantee = r.Next(2) == 0 ? $"cpus:{r.Next(1, 6)}" : "";
            var limitCpus = r.Next(2, 12);
            var limit = r.Next(2) == 0 ? $"cpus:{Math.Max(limitCpus, guarantee.Length > 0 ? int.Parse(guarantee[5..]) : 0)};mem:{r.Next(4, 20) * 256}" : "";
            h.Allocator.UpdateQuota(Quota(role, guarantee, limit));
            if (limit.Length > 0)
            {
                m.Limits[role] = ResourceSet.Parse(limit);
            }
            else
            {
                m.Limits.Remove(role);
            }
        }

        for (var i = r.Next(3); i > 0; i--)
        {
            SetQuota();
        }

        var steps = r.Next(10, 40);
        for (var step = 0; step < steps; step++)
        {
            switch (r.Next(14))
            {
                case 0:
                case 1:
                case 2:
                case 3:
                    h.Time.Advance(TimeSpan.FromMilliseconds(r.Next(0, 300)));
                    CheckGrants(h, m, h.Allocator.Allocate(force: r.Next(4) == 0));
                    break;
                case 4:
                case 5:
                case 6:
                    Recover(h, m, r);
                    break;
                case 7:
                    h.Time.Advance(TimeSpan.FromSeconds(r.Next(1, 8)));
                    break;
                case 8:
                    {
                        var fw = m.Frameworks.Values.ElementAt(r.Next(m.Frameworks.Count));
                        var role = fw.Roles[r.Next(fw.Roles.Count)];
                        if (r.Next(2) == 0)
                        {
                            h.Allocator.SuppressOffers(fw.FrameworkId, [role]);
                            m.Suppressed.Add((fw.FrameworkId, role));
                        }
                        else
                        {
                            h.Allocator.ReviveOffers(fw.FrameworkId, [role]);
                            m.Suppressed.Remove((fw.FrameworkId, role));
                            foreach (var key in m.Filters.Keys.Where(k => k.Fw == fw.FrameworkId).ToList())
                            {
                                m.Filters.Remove(key);
                            }
                        }

                        break;
                    }

                case 9:
                    {
                        var agent = m.Totals.Keys.ElementAt(r.Next(m.Totals.Count));
                        if (m.InactiveAgents.Remove(agent))
                        {
                            h.Allocator.ActivateAgent(agent);
                        }
                        else
                        {
                            h.Allocator.DeactivateAgent(agent);
                            m.InactiveAgents.Add(agent);
                        }

                        break;
                    }

                case 10:
                    if (r.Next(2) == 0 || m.Totals.Count == 1)
                    {
                        AddAgent();
                    }
                    else
                    {
                        var agent = m.Totals.Keys.ElementAt(r.Next(m.Totals.Count));
                        h.Allocator.RemoveAgent(agent);
                        m.Totals.Remove(agent);
                        m.InactiveAgents.Remove(agent);
                        m.DrainingAgents.Remove(agent);
                        foreach (var key in m.Held.Keys.Where(k => k.Agent == agent).ToList())
                        {
                            m.Held.Remove(key);
                        }

                        foreach (var key in m.Filters.Keys.Where(k => k.Agent == agent).ToList())
                        {
                            m.Filters.Remove(key);
                        }
                    }

                    break;
                case 11:
                case 12:
                    ReserveOrUnreserve(h, m, r);
                    break;
                default:
                    SetQuota();
                    break;
            }

            CheckAccounting(h, m);
        }

        return m.Log;
    }

    private static void Recover(AllocatorHarness h, Model m, Random r)
    {
        if (m.Held.Count == 0)
        {
            return;
        }

        var key = m.Held.Keys.ElementAt(r.Next(m.Held.Count));
        var held = m.Held[key];

        // Recover all of it, or a part: half of each scalar (rounded to milli-units) and all non-scalars.
        var part = r.Next(2) == 0
            ? held
            : ResourceSet.From(held.Select(x =>
            {
                if (x.ValueCase == Resource.ValueOneofCase.Scalar)
                {
                    x.Scalar = FixedScalar.Round(x.Scalar / 2);
                }

                return x;
            }).Where(x => x.ValueCase != Resource.ValueOneofCase.Scalar || x.Scalar > 0));
        var refuse = r.Next(3) == 0 ? (TimeSpan?)null : TimeSpan.FromSeconds(r.Next(0, 10));
        h.Allocator.RecoverResources(key.Fw, key.Agent, part.WithAllocationRole(key.Role).ToList(), refuse);
        var rest = held - part;
        if (rest.IsEmpty)
        {
            m.Held.Remove(key);
        }
        else
        {
            m.Held[key] = rest;
        }

        if (refuse is { } t && t > TimeSpan.Zero)
        {
            m.Filters[(key.Fw, key.Agent)] = h.Time.GetUtcNow() + t;
        }
    }

    /// <summary>
    /// A RESERVE (part of an unreserved scalar a framework holds becomes dynamically reserved for
    /// the role it holds it under) or an UNRESERVE (part of a held dynamic reservation becomes
    /// unreserved), applied as the master does: UpdateAllocation, then sometimes UpdateAgent with
    /// the new total. The model's holding and total change the same way.
    /// </summary>
    private static void ReserveOrUnreserve(AllocatorHarness h, Model m, Random r)
    {
        var unreserve = r.Next(2) == 0;
        var candidates = m.Held.Where(kv => kv.Value.Any(x => x.ValueCase == Resource.ValueOneofCase.Scalar
            && (unreserve ? x.Reservation?.Type == Reservation.Types.Type.Dynamic : x.Reservation is null))).ToList();
        if (candidates.Count == 0)
        {
            return;
        }

        var (key, held) = candidates[r.Next(candidates.Count)];
        var pieces = held.AsEnumerable().Where(x => x.ValueCase == Resource.ValueOneofCase.Scalar
            && (unreserve ? x.Reservation?.Type == Reservation.Types.Type.Dynamic : x.Reservation is null)).ToList();
        var piece = pieces[r.Next(pieces.Count)];
        if (r.Next(2) == 0 && FixedScalar.Round(piece.Scalar / 2) > 0)
        {
            piece.Scalar = FixedScalar.Round(piece.Scalar / 2);
        }

        var from = ResourceSet.From([piece]);
        var to = unreserve
            ? from.WithoutReservations()
            : from.WithReservation(new Reservation { Type = Reservation.Types.Type.Dynamic, Role = key.Role, Principal = "p" });
        h.Allocator.UpdateAllocation(key.Fw, key.Agent, from.WithAllocationRole(key.Role).ToList(), to.WithAllocationRole(key.Role).ToList());
        m.Held[key] = held - from + to;
        m.Totals[key.Agent] = m.Totals[key.Agent] - from + to;
        m.Log.Add($"{(unreserve ? "unreserve" : "reserve")}:{key.Fw}/{key.Role}@{key.Agent}={from}");
        if (r.Next(2) == 0)
        {
            var attributes = new List<Sched.V1.Attribute> { new() { Name = "rack", Text = m.Racks[key.Agent] } };
            h.Allocator.UpdateAgent(new AgentSpec(key.Agent, key.Agent + ".local", m.Totals[key.Agent].ToList(), attributes, m.DrainingAgents.Contains(key.Agent)));
        }
    }

    private static void CheckGrants(AllocatorHarness h, Model m, IReadOnlyList<OfferGrant> grants)
    {
        var now = h.Time.GetUtcNow();
        var seen = new HashSet<(string, string, string)>();
        foreach (var g in grants)
        {
            m.Log.Add($"{now.Ticks}:{g.FrameworkId}/{g.Role}@{g.AgentId}={ResourceSet.From(g.Resources)}");
            var spec = m.Frameworks[g.FrameworkId];
            Assert.Contains(g.Role, spec.Roles);
            Assert.True(seen.Add((g.FrameworkId, g.Role, g.AgentId)), "one grant per (framework, role, agent) per cycle");
            Assert.NotEmpty(g.Resources);
            Assert.All(g.Resources, x => Assert.Equal(g.Role, x.AllocationRole));

            // Reserved resources only to their role or its sub-roles.
            foreach (var x in g.Resources.Where(x => x.Reservation is not null))
            {
                Assert.True(RoleName.IsSelfOrDescendant(g.Role, x.Reservation.Role), $"{x.Reservation.Role} reservation offered to {g.Role}");
            }

            Assert.DoesNotContain((g.FrameworkId, g.Role), m.Suppressed);
            Assert.DoesNotContain(g.AgentId, m.InactiveAgents);
            Assert.DoesNotContain(g.AgentId, m.DrainingAgents);
            if (m.Filters.TryGetValue((g.FrameworkId, g.AgentId), out var until))
            {
                Assert.True(now >= until, $"{g.FrameworkId} re-offered {g.AgentId} at {now:O}, filtered until {until:O}");
            }

            if (m.Totals[g.AgentId].Scalar("gpus") > 0)
            {
                Assert.Contains(FrameworkCapability.GpuResources, spec.Capabilities);
            }

            if (spec.Constraints.Count > 0)
            {
                Assert.Equal("r1", m.Racks[g.AgentId]);
            }

            var key = (g.FrameworkId, g.Role, g.AgentId);
            var resources = ResourceSet.From(g.Resources.Select(StripRole));
            m.Held[key] = m.Held.TryGetValue(key, out var before) ? before + resources : resources;
        }

        // No role ever receives unreserved quota resources beyond a limit on its path.
        foreach (var (limitRole, limit) in m.Limits)
        {
            foreach (var name in new[] { "cpus", "mem" })
            {
                var max = limit.Scalar(name);
                if (max == 0 && limit.ScalarFixed(name) == 0 && !limit.Names.Contains(name))
                {
                    continue;
                }

                var grew = grants.Any(g => RoleName.IsSelfOrDescendant(g.Role, limitRole)
                    && g.Resources.Any(x => x.Name == name && x.Reservation is null && x.Scalar > 0));
                if (grew)
                {
                    Assert.True(Consumption(m, limitRole, name) <= max + 1e-9, $"role {limitRole} {name} consumption {Consumption(m, limitRole, name)} > limit {max}");
                }
            }
        }
    }

    private static double Consumption(Model m, string role, string name)
    {
        var reserved = m.Totals.Values.Sum(t => t.Where(x => x.Reservation is not null && RoleName.IsSelfOrDescendant(x.Reservation.Role, role)).Scalar(name));
        var allocated = m.Held.Where(kv => RoleName.IsSelfOrDescendant(kv.Key.Role, role)).Sum(kv => kv.Value.Unreserved().Scalar(name));
        return reserved + allocated;
    }

    private static void CheckAccounting(AllocatorHarness h, Model m)
    {
        foreach (var (agent, total) in m.Totals)
        {
            var free = ResourceSet.From(h.Allocator.GetFree(agent));
            var held = m.Held.Where(kv => kv.Key.Agent == agent).Aggregate(ResourceSet.Empty, (acc, kv) => acc + kv.Value);
            Assert.True((free + held).Equals(total), $"agent {agent}: free {free} + held {held} != total {total}");
            foreach (var fw in m.Frameworks.Keys)
            {
                var mine = m.Held.Where(kv => kv.Key.Agent == agent && kv.Key.Fw == fw).Aggregate(ResourceSet.Empty, (acc, kv) => acc + kv.Value);
                Assert.Equal(mine, ResourceSet.From(h.Allocator.GetHeld(fw, agent).Select(StripRole)));
            }
        }
    }

    [Fact]
    public void Random_clusters_and_event_sequences_keep_every_invariant() =>
        Prop.ForAll(ScenarioChoices, choices =>
        {
            try
            {
                RunScenario(choices);
            }
            catch (Exception e)
            {
                throw new InvalidOperationException($"scenario of {choices.Length} choices [{string.Join(", ", choices)}]: {e.Message}", e);
            }
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(300));

    [Fact]
    public void A_failing_scenario_shrinks_to_a_short_one()
    {
        // A planted failure: any scenario that makes a grant on agent ag1. Shrinking must report a
        // scenario of a few choices, not the hundreds it was found with.
        var failure = Assert.ThrowsAny<Exception>(() => Prop.ForAll(ScenarioChoices, choices =>
            Assert.DoesNotContain(RunScenario(choices), l => l.Contains("@ag1=", StringComparison.Ordinal)))
            .Check(Config.QuickThrowOnFailure.WithMaxTest(100)));
        var lists = System.Text.RegularExpressions.Regex.Matches(failure.Message, @"\[\|(?<list>[^\]]*)\|\]");
        Assert.True(lists.Count >= 2, failure.Message);
        int Length(System.Text.RegularExpressions.Match m) => m.Groups["list"].Value.Split(';', StringSplitOptions.RemoveEmptyEntries).Length;
        var (original, shrunk) = (Length(lists[0]), Length(lists[^1]));
        Assert.True(shrunk < original && shrunk <= 40, $"shrunk from {original} to {shrunk} choices: {failure.Message}");
    }

    [Fact]
    public void The_scenarios_do_reserve_and_unreserve()
    {
        var log = Enumerable.Range(0, 60).SelectMany(seed => RunScenario(RandomChoices(seed))).ToList();
        Assert.Contains(log, l => l.StartsWith("reserve:", StringComparison.Ordinal));
        Assert.Contains(log, l => l.StartsWith("unreserve:", StringComparison.Ordinal));
    }

    [Fact]
    public void The_same_choices_give_the_same_offers() =>
        Prop.ForAll(ScenarioChoices, choices => RunScenario(choices).SequenceEqual(RunScenario(choices)))
            .Check(Config.QuickThrowOnFailure.WithMaxTest(50));

    private static int[] RandomChoices(int seed)
    {
        var random = new Random(seed);
        return [.. Enumerable.Range(0, 600).Select(_ => random.Next(1_000_000))];
    }
}
