using System.Collections.Concurrent;
using System.Threading;

namespace ConnMgr.Protocol.Sasl;

/// <summary>
/// SaltedPassword per (hash, password, salt, iteration count), shared by many <see cref="ScramClient"/>s,
/// so a load generator logging the same accounts in again and again runs PBKDF2 once per account, as a
/// real client that remembers its keys would (RFC 5802 section 5.1 allows caching them). It holds
/// passwords in memory: for load generators and tests, not for interactive clients. Thread-safe.
/// </summary>
public sealed class ScramSaltedPasswordCache
{
    private readonly record struct Key(ScramHash Hash, int Iterations, string Salt, string Password);

    private readonly ConcurrentDictionary<Key, byte[]> _entries = new();
    private readonly int _capacity;
    private int _count;

    /// <param name="capacity">Entries kept before the cache empties itself and starts over; default 100,000
    /// (about 20 MB with short passwords).</param>
    public ScramSaltedPasswordCache(int capacity = 100_000)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        _capacity = capacity;
    }

    public int Count => Volatile.Read(ref _count);

    /// <summary>The cached SaltedPassword, or a newly derived one (which is then cached).</summary>
    public byte[] GetOrDerive(ScramHash hash, string normalizedPassword, ReadOnlySpan<byte> salt, int iterations)
    {
        var key = new Key(hash, iterations, Convert.ToBase64String(salt), normalizedPassword);
        if (_entries.TryGetValue(key, out var saltedPassword))
        {
            return saltedPassword;
        }
        saltedPassword = ScramCredential.SaltedPassword(normalizedPassword, hash, salt, iterations);
        if (Interlocked.Increment(ref _count) > _capacity)
        {
            _entries.Clear();
            Volatile.Write(ref _count, 1);
        }
        _entries[key] = saltedPassword;
        return saltedPassword;
    }
}
