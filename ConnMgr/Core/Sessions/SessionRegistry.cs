using System.Collections.Concurrent;
using ConnMgr.Protocol;

namespace ConnMgr.Core.Sessions;

/// <summary>
/// All client sessions by stream ID (global across CMs, like Openfire's maps, spec 5.1) and the
/// in-memory accounts of users with authenticated sessions.
/// </summary>
internal sealed class SessionRegistry
{
    private readonly ConcurrentDictionary<string, ClientSession> _sessions = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, ClientSession>.AlternateLookup<ReadOnlySpan<char>> _sessionsBySpan;
    private readonly ConcurrentDictionary<ClientSession, byte> _unbound = new(ReferenceEqualityComparer.Instance);
    private readonly Lock _accountsLock = new();
    private readonly Dictionary<string, UserAccount> _accounts = new(StringComparer.Ordinal);
    private readonly Dictionary<string, UserAccount>.AlternateLookup<ReadOnlySpan<char>> _accountsBySpan;

    public SessionRegistry()
    {
        _sessionsBySpan = _sessions.GetAlternateLookup<ReadOnlySpan<char>>();
        _accountsBySpan = _accounts.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    public int Count => _sessions.Count;

    public ICollection<ClientSession> All => _sessions.Values;

    /// <summary>Sessions that have not bound a resource yet, for the pre-bind timeout (spec 5.4).</summary>
    public ICollection<ClientSession> Unbound => _unbound.Keys;

    public bool TryAdd(ClientSession session)
    {
        if (!_sessions.TryAdd(session.StreamId, session))
        {
            return false;
        }
        _unbound.TryAdd(session, 0);
        return true;
    }

    public void MarkBound(ClientSession session) => _unbound.TryRemove(session, out _);

    public void Remove(ClientSession session)
    {
        _sessions.TryRemove(new KeyValuePair<string, ClientSession>(session.StreamId, session));
        _unbound.TryRemove(session, out _);
    }

    public ClientSession? Find(ReadOnlySpan<char> streamId) => _sessionsBySpan.TryGetValue(streamId, out var session) ? session : null;

    public ClientSession? Find(string streamId) => _sessions.TryGetValue(streamId, out var session) ? session : null;

    /// <summary>The account of a user, created if needed; pair every call with <see cref="Release"/>.</summary>
    public UserAccount Acquire(Jid bareJid)
    {
        lock (_accountsLock)
        {
            if (!_accounts.TryGetValue(bareJid.Local!, out var account))
            {
                account = new UserAccount(bareJid);
                _accounts.Add(account.User, account);
            }
            account.References++;
            return account;
        }
    }

    public void Release(UserAccount account)
    {
        lock (_accountsLock)
        {
            if (--account.References == 0)
            {
                _accounts.Remove(account.User);
            }
        }
    }

    /// <summary>The account of a user who is online (or being changed), without taking a reference.</summary>
    public UserAccount? FindAccount(ReadOnlySpan<char> user)
    {
        lock (_accountsLock)
        {
            return _accountsBySpan.TryGetValue(user, out var account) ? account : null;
        }
    }
}
