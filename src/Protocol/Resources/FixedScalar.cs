namespace Scheduler.Protocol.Resources;

/// <summary>
/// Scalar resource quantities as fixed-point integers with three decimal places (milli-units), so
/// that adding and subtracting many fractional cpus never drifts (0.1 + 0.2 − 0.3 is exactly 0).
/// The wire keeps doubles; conversion happens at the boundary and rounds to the nearest milli-unit.
/// </summary>
public static class FixedScalar
{
    /// <summary>Milli-units per unit.</summary>
    public const long Scale = 1000;

    /// <summary>The largest quantity representable (about 9.2e15 units).</summary>
    public const double MaxValue = long.MaxValue / (double)Scale / 2;

    /// <summary>Converts a finite, non-negative quantity to milli-units, rounding to the nearest.</summary>
    /// <exception cref="ArgumentOutOfRangeException">NaN, infinite, negative or too large.</exception>
    public static long ToFixed(double value)
    {
        if (double.IsNaN(value) || double.IsInfinity(value))
        {
            throw new ArgumentOutOfRangeException(nameof(value), value, "A scalar quantity must be a finite number.");
        }

        if (value < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(value), value, "A scalar quantity must not be negative.");
        }

        if (value > MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(value), value, $"A scalar quantity must be at most {MaxValue:G}.");
        }

        return (long)Math.Round(value * Scale, MidpointRounding.AwayFromZero);
    }

    /// <summary>Converts milli-units back to a double (exact for the three decimals).</summary>
    public static double ToDouble(long milli) => milli / (double)Scale;

    /// <summary>Milli-units as text with up to three decimals, invariant culture (<c>0.5</c>, <c>4096</c>).</summary>
    public static string Format(long milli) => ToDouble(milli).ToString("0.###", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Rounds a quantity to three decimals, the precision the scheduler accounts in.</summary>
    public static double Round(double value) => ToDouble(ToFixed(value));
}
