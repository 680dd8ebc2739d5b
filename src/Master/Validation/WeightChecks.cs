using Sched.V1;

namespace Scheduler.Master.Validation;

/// <summary>Bounds on role weights. A weight is a relative share (DRF divides a role's dominant
/// share by it); beyond a ratio of a million between roles it says nothing more, and extreme
/// values only distort the fixed-point share arithmetic.</summary>
public static class WeightChecks
{
    public const double Min = 0.001;
    public const double Max = 1000;

    /// <summary>Null when the weight is within bounds, else what is wrong and what to do.</summary>
    public static string? Problem(WeightInfo weight)
    {
        ArgumentNullException.ThrowIfNull(weight);
        return double.IsFinite(weight.Weight) && weight.Weight >= Min && weight.Weight <= Max
            ? null
            : $"weight of role '{weight.Role}' must be a number from {Min} to {Max} (got {weight.Weight}); weights are relative shares, e.g. 1 for most roles and 2 for one that should get twice as much";
    }
}
