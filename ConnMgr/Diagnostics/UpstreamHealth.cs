namespace ConnMgr.Diagnostics;

/// <summary>
/// How many upstream links are usable, for <c>/health</c>. The upstream link pool
/// implements it and replaces the default registration.
/// </summary>
internal interface IUpstreamHealth
{
    int LinksUp { get; }
}

/// <summary>The registration in force until an upstream pool exists: no link, never healthy.</summary>
internal sealed class NoUpstreamLinks : IUpstreamHealth
{
    public int LinksUp => 0;
}
