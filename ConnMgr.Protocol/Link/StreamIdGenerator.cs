using System.Buffers;
using System.Security.Cryptography;

namespace ConnMgr.Protocol.Link;

/// <summary>
/// Stream IDs for client sessions, which the connection manager chooses (spec 5.1):
/// <c>&lt;cmName&gt;-&lt;8 random [A-Za-z0-9]&gt;&lt;counter in base 36&gt;</c>, e.g. <c>cm1-q8ZkP0aT1f</c>.
/// The CM-name prefix keeps them apart from other CMs' IDs and the '-' from Openfire's own
/// (alphanumeric) IDs; the process-wide counter makes them unique within a process; the random part
/// keeps a restarted CM (same name, counter from 1 again) from reusing an ID that a ghost session on
/// the server may still hold (spec 0.1 point 2). Thread-safe.
/// </summary>
public sealed class StreamIdGenerator
{
    /// <summary>Longest stream ID <see cref="IsSafe"/> accepts.</summary>
    public const int MaxLength = 64;

    /// <summary>
    /// Longest CM name: 40 + '-' + 8 random + 13 counter digits (a 64-bit counter in base 36) stays within
    /// <see cref="MaxLength"/>.
    /// </summary>
    public const int MaxCmNameLength = 40;

    /// <summary>8 characters of 62: 47 bits, so two boots' IDs with the same counter value practically never meet.</summary>
    private const int RandomLength = 8;

    private static readonly SearchValues<char> s_safeCharacters =
        SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-");

    private static readonly SearchValues<char> s_cmNameCharacters =
        SearchValues.Create("abcdefghijklmnopqrstuvwxyz0123456789.-");

    private static long s_counter;

    private static ReadOnlySpan<char> RandomAlphabet => "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

    private static ReadOnlySpan<char> Base36Digits => "0123456789abcdefghijklmnopqrstuvwxyz";

    private readonly string _cmName;
    private readonly Action<Span<char>> _fillRandom;
    private readonly Func<long> _nextCounter;

    /// <summary>An <see cref="ArgumentException"/> when <paramref name="cmName"/> fails <see cref="IsValidCmName"/>.</summary>
    public StreamIdGenerator(string cmName)
        : this(cmName, static random => RandomNumberGenerator.GetItems(RandomAlphabet, random), static () => Interlocked.Increment(ref s_counter))
    {
    }

    /// <summary>For tests: the random part and the counter are given.</summary>
    internal StreamIdGenerator(string cmName, Action<Span<char>> fillRandom, Func<long> nextCounter)
    {
        if (!IsValidCmName(cmName))
        {
            throw new ArgumentException(
                $"'{cmName}' is not a valid connection-manager name: use 1 to {MaxCmNameLength} characters of [a-z0-9.-], dot-separated labels that neither are empty nor start or end with '-'.",
                nameof(cmName));
        }
        _cmName = cmName;
        _fillRandom = fillRandom;
        _nextCounter = nextCounter;
    }

    /// <summary>
    /// A new stream ID. An ID whose Java hash is <see cref="int.MinValue"/> is skipped, since Openfire
    /// throws when routing to it (spec 0.1 point 9); that is one ID in 2^32.
    /// </summary>
    public string Next()
    {
        Span<char> id = stackalloc char[MaxLength];
        while (true)
        {
            _cmName.CopyTo(id);
            var length = _cmName.Length;
            id[length++] = '-';
            _fillRandom(id.Slice(length, RandomLength));
            length += RandomLength;
            length += WriteBase36((ulong)_nextCounter(), id[length..]);
            if (JavaStringHash.Compute(id[..length]) != int.MinValue)
            {
                return new string(id[..length]);
            }
        }
    }

    /// <summary>
    /// True for a non-empty ID of at most <see cref="MaxLength"/> characters of [A-Za-z0-9._-], the only
    /// ones that survive Openfire's XML escaping of IDs unchanged (spec 5.1).
    /// </summary>
    public static bool IsSafe(ReadOnlySpan<char> id)
        => !id.IsEmpty && id.Length <= MaxLength && !id.ContainsAnyExcept(s_safeCharacters);

    /// <summary>
    /// True for a CM name that is safe as the domain of the link JID and inside stream IDs: 1 to
    /// <see cref="MaxCmNameLength"/> characters of [a-z0-9.-] (spec 3.2), in dot-separated labels that are
    /// not empty and do not start or end with '-' (host-name rules, RFC 1123 section 2.1).
    /// </summary>
    public static bool IsValidCmName(string? name)
    {
        if (string.IsNullOrEmpty(name) || name.Length > MaxCmNameLength || name.AsSpan().ContainsAnyExcept(s_cmNameCharacters))
        {
            return false;
        }
        foreach (var label in name.AsSpan().Split('.'))
        {
            var text = name.AsSpan(label);
            if (text.IsEmpty || text[0] == '-' || text[^1] == '-')
            {
                return false;
            }
        }
        return true;
    }

    private static int WriteBase36(ulong value, Span<char> destination)
    {
        Span<char> digits = stackalloc char[13];
        var count = 0;
        do
        {
            digits[^++count] = Base36Digits[(int)(value % 36)];
            value /= 36;
        }
        while (value > 0);
        digits[^count..].CopyTo(destination);
        return count;
    }
}
