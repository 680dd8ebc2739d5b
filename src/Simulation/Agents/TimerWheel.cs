namespace Scheduler.Simulation;

/// <summary>What a <see cref="TimerWheel"/> entry does when it fires.</summary>
internal enum SimTimerKind
{
    Retry,
    Finish,
    KillDeadline,
}

/// <summary>One scheduled timer: its due tick, its agent and what to do.</summary>
internal sealed record SimTimer(long DueTick, SimulatedAgent Agent, SimTimerKind Kind, string Key, string Token, int Attempt, int Seq);

/// <summary>
/// A hashed timer wheel driven by one <see cref="PeriodicTimer"/>: every simulated agent's
/// status-update retries, task run times and kill deadlines share it, so thousands of agents and
/// hundreds of thousands of tasks cost one timer, not one <c>Task.Delay</c> each.
/// </summary>
internal sealed class TimerWheel
{
    private const int SlotCount = 1024;
    private readonly List<SimTimer>?[] _slots = new List<SimTimer>?[SlotCount];
    private readonly Lock _gate = new();
    private readonly TimeProvider _time;
    private readonly long _start;
    private long _current;

    public TimerWheel(TimeSpan tick, TimeProvider time)
    {
        if (tick <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(tick), "the timer wheel's tick must be positive");
        }
        Tick = tick;
        _time = time;
        _start = time.GetTimestamp();
    }

    public TimeSpan Tick { get; }

    private long NowTick => (long)(_time.GetElapsedTime(_start).Ticks / Tick.Ticks);

    /// <summary>Schedules a timer <paramref name="delay"/> from now (rounded up to the next tick).</summary>
    public void Schedule(TimeSpan delay, SimulatedAgent agent, SimTimerKind kind, string key, string token = "", int attempt = 0, int seq = 0)
    {
        var ticks = Math.Max(1, (long)Math.Ceiling(delay.Ticks / (double)Tick.Ticks));
        lock (_gate)
        {
            var due = Math.Max(_current + 1, NowTick + ticks);
            var slot = (int)(due & (SlotCount - 1));
            (_slots[slot] ??= []).Add(new SimTimer(due, agent, kind, key, token, attempt, seq));
        }
    }

    /// <summary>Advances the wheel every tick and fires what is due until cancelled.</summary>
    public async Task RunAsync(Action<SimTimer> fire, CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(Tick, _time);
        var due = new List<SimTimer>();
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
            {
                var target = NowTick;
                lock (_gate)
                {
                    while (_current < target)
                    {
                        _current++;
                        var list = _slots[(int)(_current & (SlotCount - 1))];
                        if (list is null || list.Count == 0)
                        {
                            continue;
                        }
                        var keep = 0;
                        for (var i = 0; i < list.Count; i++)
                        {
                            if (list[i].DueTick <= _current)
                            {
                                due.Add(list[i]);
                            }
                            else
                            {
                                list[keep++] = list[i];
                            }
                        }
                        list.RemoveRange(keep, list.Count - keep);
                    }
                }
                foreach (var t in due)
                {
                    fire(t);
                }
                due.Clear();
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }
}
