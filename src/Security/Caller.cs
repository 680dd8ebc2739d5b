namespace Scheduler.Security;

/// <summary>How a caller proved who it is.</summary>
public enum CallerKind
{
    /// <summary>Nothing presented, on a master that allows anonymous calls.</summary>
    Anonymous,

    /// <summary>A signed bearer token (<c>authorization: Bearer …</c>).</summary>
    Token,

    /// <summary>A client certificate signed by the cluster's CA.</summary>
    Certificate,
}

/// <summary>The authenticated principal of one call.</summary>
public sealed record Caller(string Principal, CallerKind Kind)
{
    /// <summary>The caller of a master that allows anonymous calls and was shown no credentials.</summary>
    public static readonly Caller Anonymous = new("", CallerKind.Anonymous);

    public bool IsAnonymous => Kind == CallerKind.Anonymous;

    /// <summary>The principal as messages name it.</summary>
    public string Display => IsAnonymous ? "(anonymous)" : Principal;
}
