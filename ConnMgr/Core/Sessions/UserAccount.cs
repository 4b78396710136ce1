using ConnMgr.Core.Storage;
using ConnMgr.Protocol;

namespace ConnMgr.Core.Sessions;

/// <summary>
/// What the core keeps in memory for one user while any session of theirs is authenticated, or
/// while another session is changing their roster: the bound resources, and the roster with the
/// lock that serialises its read-modify-write cycles (RFC 6121 subscription handling touches two
/// users' rosters from one session; each is changed under its own gate, never both at once).
/// </summary>
internal sealed class UserAccount
{
    private readonly Lock _lock = new();
    private ClientSession[] _resources = [];

    public UserAccount(Jid bareJid)
    {
        BareJid = bareJid;
        User = bareJid.Local!;
        BareJidText = bareJid.ToString();
    }

    /// <summary>The prepared localpart: the store's user name and the key of this account.</summary>
    public string User { get; }

    public Jid BareJid { get; }

    public string BareJidText { get; }

    /// <summary>Holders (sessions, subscription handlers); guarded by the registry's lock.</summary>
    internal int References { get; set; }

    /// <summary>Serialises roster changes; hold it while reading or writing <see cref="Roster"/>.</summary>
    public SemaphoreSlim RosterGate { get; } = new(1, 1);

    /// <summary>The roster by contact bare JID, loaded at first use; only under <see cref="RosterGate"/>.</summary>
    public Dictionary<string, RosterItem>? Roster { get; set; }

    /// <summary>The bound sessions, a snapshot safe to enumerate from any thread.</summary>
    public ClientSession[] Resources => Volatile.Read(ref _resources);

    public ClientSession? FindResource(ReadOnlySpan<char> resource)
    {
        foreach (var session in Resources)
        {
            if (resource.SequenceEqual(session.Jid!.Resource))
            {
                return session;
            }
        }
        return null;
    }

    /// <summary>Adds a bound session; returns the session it replaces (same resource), which the caller ends with conflict.</summary>
    public ClientSession? Bind(ClientSession session)
    {
        lock (_lock)
        {
            var resource = session.Jid!.Resource;
            var resources = _resources;
            for (var i = 0; i < resources.Length; i++)
            {
                if (resources[i].Jid!.Resource == resource)
                {
                    var replaced = resources[i];
                    var copy = (ClientSession[])resources.Clone();
                    copy[i] = session;
                    Volatile.Write(ref _resources, copy);
                    return replaced;
                }
            }
            Volatile.Write(ref _resources, [.. resources, session]);
            return null;
        }
    }

    /// <summary>Removes a session if it is still bound here (a replaced one no longer is).</summary>
    public void Unbind(ClientSession session)
    {
        lock (_lock)
        {
            var resources = _resources;
            var index = Array.IndexOf(resources, session);
            if (index < 0)
            {
                return;
            }
            var copy = new ClientSession[resources.Length - 1];
            resources.AsSpan(0, index).CopyTo(copy);
            resources.AsSpan(index + 1).CopyTo(copy.AsSpan(index));
            Volatile.Write(ref _resources, copy);
        }
    }
}
