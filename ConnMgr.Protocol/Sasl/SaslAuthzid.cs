namespace ConnMgr.Protocol.Sasl;

/// <summary>The authorization-identity policy shared by SCRAM and PLAIN.</summary>
public static class SaslAuthzid
{
    /// <summary>
    /// True when the client asks for no authorization identity, or for its own bare JID
    /// (<c>username@domain</c>). RFC 6120 section 6.3.8 says a client acting as itself sends none, but
    /// several clients send their own JID; acting for anyone else (proxy authorization) is not offered.
    /// Both parts compare ignoring case (ordinal, simple case mapping), because a JID's localpart and
    /// domain are case-mapped (RFC 7622 sections 3.2 and 3.3): <c>User@Example.com</c> is the same JID.
    /// </summary>
    public static bool IsAcceptable(string? authzid, string username, string? domain)
    {
        if (string.IsNullOrEmpty(authzid))
        {
            return true;
        }
        if (domain is null)
        {
            return false;
        }
        var id = authzid.AsSpan();
        return id.Length == username.Length + 1 + domain.Length
            && id[..username.Length].Equals(username, StringComparison.OrdinalIgnoreCase)
            && id[username.Length] == '@'
            && id[(username.Length + 1)..].Equals(domain, StringComparison.OrdinalIgnoreCase);
    }
}
