using System.Collections.Concurrent;
using ConnMgr.Core.Sessions;
using ConnMgr.Protocol.Link;

namespace ConnMgr.Core.Links;

/// <summary>
/// One connection manager: the authenticated links whose stream headers named the same CM domain
/// (spec 1, 8.2) and the client sessions created through them. It lives from its first link's
/// handshake until its last link closes; then all its sessions end (unlike Openfire 5.x, whose
/// race leaves them as ghosts, spec 0.1 point 2).
/// </summary>
internal sealed class ConnectionManagerGroup
{
    private readonly Lock _lock = new();
    private CoreLink[] _links = [];
    private bool _retired;

    public ConnectionManagerGroup(string domain) => Domain = domain;

    /// <summary>The CM domain: the domain part of its links' JIDs, e.g. <c>cm1</c>.</summary>
    public string Domain { get; }

    /// <summary>The sessions created through this CM, by stream ID.</summary>
    public ConcurrentDictionary<string, ClientSession> Sessions { get; } = new(StringComparer.Ordinal);

    public int LinkCount => Volatile.Read(ref _links).Length;

    /// <summary>
    /// Adds a link and returns how many the group has with it, counted under the lock (links that
    /// authenticate at once each see their own number); 0 when the group has already lost its last
    /// link and is being torn down.
    /// </summary>
    public int TryAdd(CoreLink link)
    {
        lock (_lock)
        {
            if (_retired)
            {
                return 0;
            }
            _links = [.. _links, link];
            return _links.Length;
        }
    }

    /// <summary>Removes a link; true when it was the last one, which retires the group for good.</summary>
    public bool Remove(CoreLink link)
    {
        lock (_lock)
        {
            var index = Array.IndexOf(_links, link);
            if (index < 0)
            {
                return false;
            }
            var links = new CoreLink[_links.Length - 1];
            _links.AsSpan(0, index).CopyTo(links);
            _links.AsSpan(index + 1).CopyTo(links.AsSpan(index));
            _links = links;
            _retired = links.Length == 0;
            return _retired;
        }
    }

    /// <summary>
    /// The link to move a session to when its own link has died: the one Openfire would choose,
    /// <c>abs(hash(streamID)) % N</c> over the live links (spec 8.2), so the choice is stable while
    /// the set of links is. Null when none is left.
    /// </summary>
    public CoreLink? PickLink(string streamId)
    {
        var links = Volatile.Read(ref _links);
        if (links.Length == 0)
        {
            return null;
        }
        // Stream IDs with a hash of int.MinValue give a negative index for some N (spec 0.1 point 9).
        var index = JavaStringHash.OpenfireLinkIndex(streamId, links.Length);
        return links[index < 0 ? 0 : index];
    }
}
