using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace ConnMgr.Edge.Transport;

/// <summary>
/// Counts unauthenticated connections per client address (after the PROXY header), so one host
/// cannot hold every pre-login slot. The stream layer acquires a slot when a stream opens (over
/// the limit: a policy-violation stream error and <see cref="CloseReason.PerIpCap"/>) and
/// releases it when the client authenticates or goes away; every successful acquire must be
/// released exactly once.
/// </summary>
/// <remarks>
/// IPv6 clients are counted per /64: one end site normally gets a whole /64, so counting single
/// addresses would let one host take 2^64 slots. IPv4-mapped IPv6 addresses count as IPv4.
/// </remarks>
internal sealed class IpConnectionTracker
{
    private readonly Dictionary<UInt128, int> _counts = [];
    private readonly Lock _lock = new();

    public IpConnectionTracker(int maxUnauthenticatedPerIp)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxUnauthenticatedPerIp, 1);
        MaxUnauthenticatedPerIp = maxUnauthenticatedPerIp;
    }

    public int MaxUnauthenticatedPerIp { get; }

    public bool TryAcquireUnauthenticated(IPAddress address)
    {
        var key = KeyOf(address);
        lock (_lock)
        {
            _counts.TryGetValue(key, out var count);
            if (count >= MaxUnauthenticatedPerIp)
            {
                return false;
            }
            _counts[key] = count + 1;
            return true;
        }
    }

    public void ReleaseUnauthenticated(IPAddress address)
    {
        var key = KeyOf(address);
        lock (_lock)
        {
            if (!_counts.TryGetValue(key, out var count))
            {
                throw new InvalidOperationException($"No unauthenticated connection from {address} to release.");
            }
            if (count == 1)
            {
                _counts.Remove(key);
            }
            else
            {
                _counts[key] = count - 1;
            }
        }
    }

    public int GetUnauthenticatedCount(IPAddress address)
    {
        var key = KeyOf(address);
        lock (_lock)
        {
            return _counts.GetValueOrDefault(key);
        }
    }

    /// <summary>Number of distinct addresses (IPv6: /64 prefixes) holding at least one slot.</summary>
    public int AddressCount
    {
        get
        {
            lock (_lock)
            {
                return _counts.Count;
            }
        }
    }

    private static UInt128 KeyOf(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }
        Span<byte> bytes = stackalloc byte[16];
        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            address.TryWriteBytes(bytes, out _);
            // Upper half all ones: that /64 lies in ff00::/8 (multicast), never a client's source
            // address, so IPv4 keys cannot collide with IPv6 ones.
            return new UInt128(ulong.MaxValue, BinaryPrimitives.ReadUInt32BigEndian(bytes));
        }
        address.TryWriteBytes(bytes, out _);
        return new UInt128(BinaryPrimitives.ReadUInt64BigEndian(bytes), 0);
    }
}
