namespace ConnMgr.Benchmarks.Load;

/// <summary>
/// When each logged-in user sends its next chat message, as one timer wheel for the whole process (never a
/// timer per client). The wheel turns once per send interval: a user joins a random slot when it logs in and
/// stays there, so it sends exactly once per turn and the senders of one interval are spread evenly over it,
/// like amoc's one_to_one scenario where every user sends on its own period from its own login.
/// </summary>
/// <remarks>
/// <see cref="Add"/> is called from login completions on any thread; <see cref="Advance"/> only from the
/// heartbeat. A lock guards the slots: both hold it for microseconds.
/// </remarks>
internal sealed class ChatSchedule
{
    private readonly List<int>[] _slots;
    private readonly Random _random;
    private readonly Lock _lock = new();
    private readonly int _neighbours;
    private readonly int _populationFirst;
    private readonly int _populationCount;
    private int _current;
    private int _scheduled;

    /// <param name="slotCount">Heartbeat ticks per send interval (interval / tick).</param>
    /// <param name="neighbours">How many users around each one it writes to (amoc's one_to_one uses a
    /// handful of neighbours so conversations stay between the same pairs).</param>
    /// <param name="populationFirst">Index of the first user in the whole run (all processes).</param>
    /// <param name="populationCount">Users in the whole run; neighbours wrap around inside it.</param>
    public ChatSchedule(int slotCount, int neighbours, int populationFirst, int populationCount, int seed)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(slotCount);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(neighbours);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(populationCount);
        _slots = new List<int>[slotCount];
        for (var i = 0; i < slotCount; i++)
            _slots[i] = [];
        _neighbours = neighbours;
        _populationFirst = populationFirst;
        _populationCount = populationCount;
        _random = new Random(seed);
    }

    public int SlotCount => _slots.Length;

    /// <summary>Users currently on the wheel.</summary>
    public int Scheduled => Volatile.Read(ref _scheduled);

    /// <summary>Puts <paramref name="user"/> (a local client number) in a random slot; returns the slot.</summary>
    public int Add(int user)
    {
        lock (_lock)
        {
            var slot = _random.Next(_slots.Length);
            _slots[slot].Add(user);
            _scheduled++;
            return slot;
        }
    }

    /// <summary>
    /// Moves the wheel one tick and calls <paramref name="send"/> for each user of the slot reached; a user
    /// for which it returns false (disconnected) leaves the wheel. Returns how many users were called.
    /// </summary>
    public int Advance(Func<int, bool> send)
    {
        lock (_lock)
        {
            var slot = _slots[_current];
            _current = _current + 1 == _slots.Length ? 0 : _current + 1;
            var called = slot.Count;
            for (var i = slot.Count - 1; i >= 0; i--)
            {
                if (!send(slot[i]))
                {
                    slot[i] = slot[^1];
                    slot.RemoveAt(slot.Count - 1);
                    _scheduled--;
                }
            }
            return called;
        }
    }

    /// <summary>
    /// The global index of one of <paramref name="userIndex"/>'s neighbours, chosen uniformly: the users at
    /// offsets ±1, ±2 ... ±neighbours/2 (one more after than before for an odd count) in the population ring,
    /// never the user itself. A population smaller than the neighbourhood makes every other user a neighbour.
    /// </summary>
    public int PickNeighbour(int userIndex, Random random)
    {
        var others = _populationCount - 1;
        if (others <= 0)
            return userIndex;
        var count = Math.Min(_neighbours, others);
        var k = random.Next(count);
        int offset;
        if (count == others)
        {
            offset = k + 1;
        }
        else
        {
            // k = 0, 1, 2, 3 ... map to +1, -1, +2, -2 ...
            var distance = k / 2 + 1;
            offset = (k & 1) == 0 ? distance : -distance;
        }
        var position = (userIndex - _populationFirst + offset) % _populationCount;
        if (position < 0)
            position += _populationCount;
        return _populationFirst + position;
    }
}
