namespace ConnMgr.Edge.Upstream;

/// <summary>
/// Stream IDs this edge has sent <c>&lt;close/&gt;</c> for recently, so that a burst of
/// traffic for a ghost session (spec 0.1 point 2, 6.3) is answered with one close, not one per
/// stanza. Bounded: the oldest ID is forgotten first, and forgetting one only costs a second,
/// harmless close.
/// </summary>
internal sealed class RecentStreamIds
{
    private readonly Lock _lock = new();
    private readonly HashSet<string> _set;
    private readonly Queue<string> _order;
    private readonly int _capacity;

    public RecentStreamIds(int capacity)
    {
        _capacity = capacity;
        _set = new HashSet<string>(capacity, StringComparer.Ordinal);
        _order = new Queue<string>(capacity);
    }

    /// <summary>Adds the ID; false if it was already there.</summary>
    public bool Add(string streamId)
    {
        lock (_lock)
        {
            if (!_set.Add(streamId))
            {
                return false;
            }
            _order.Enqueue(streamId);
            if (_order.Count > _capacity)
            {
                _set.Remove(_order.Dequeue());
            }
            return true;
        }
    }

    public bool Contains(ReadOnlySpan<char> streamId)
    {
        lock (_lock)
        {
            return _set.GetAlternateLookup<ReadOnlySpan<char>>().Contains(streamId);
        }
    }
}
