namespace ConnMgr.Protocol.Link;

/// <summary>
/// Java's <c>String.hashCode()</c>, which Openfire uses to pick the link that carries a client's traffic
/// towards the connection manager (spec 8.2).
/// </summary>
public static class JavaStringHash
{
    /// <summary>
    /// s[0]*31^(n-1) + s[1]*31^(n-2) + ... + s[n-1] over UTF-16 code units, wrapping at 32 bits as Java's
    /// int arithmetic does.
    /// </summary>
    public static int Compute(ReadOnlySpan<char> value)
    {
        var hash = 0;
        foreach (var c in value)
        {
            hash = unchecked(31 * hash + c);
        }
        return hash;
    }

    /// <summary>
    /// <c>abs(streamID.hashCode()) % linkCount</c> evaluated with Java semantics: the index into the
    /// CM's link list that Openfire uses for this stream (spec 8.2). Java's <c>Math.abs(Integer.MIN_VALUE)</c>
    /// is <c>Integer.MIN_VALUE</c> (C#'s <see cref="Math.Abs(int)"/> throws instead), so for an ID whose
    /// hash is MIN_VALUE the result is 0 when <paramref name="linkCount"/> is a power of two and negative
    /// otherwise, where Openfire's list lookup throws (spec 0.1 point 9).
    /// <see cref="StreamIdGenerator"/> never issues such an ID.
    /// </summary>
    public static int OpenfireLinkIndex(string streamId, int linkCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(linkCount);
        var hash = Compute(streamId);
        var abs = hash == int.MinValue ? int.MinValue : Math.Abs(hash);
        return abs % linkCount;
    }
}
