using System.Net;

namespace ConnMgr.Protocol.Proxy;

/// <summary>What the proxy says the connection is (PROXY protocol v2 command; v1 only knows Proxy).</summary>
public enum ProxyCommand : byte
{
    /// <summary>The proxy opened the connection itself (a health check): use the real endpoints.</summary>
    Local = 0,

    /// <summary>The proxy relays a client: use the addresses in the header, when it carries some.</summary>
    Proxy = 1,
}

/// <summary>Address family announced by the header (v1 TCP4/TCP6/UNKNOWN, v2 high nibble of byte 14).</summary>
public enum ProxyAddressFamily : byte
{
    Unspecified = 0,
    InterNetwork = 1,
    InterNetworkV6 = 2,
    Unix = 3,
}

/// <summary>
/// A parsed PROXY protocol header. <see cref="Source"/> and <see cref="Destination"/> are set only
/// when the receiver must use them: a PROXY command over TCP (v1 TCP4/TCP6, v2 family INET or
/// INET6 with transport STREAM). Every other valid header (LOCAL, UNKNOWN, UNSPEC, AF_UNIX,
/// datagram) means "keep the socket's own endpoints", as the specification's fallback to UNSPEC asks.
/// </summary>
public readonly record struct ProxyHeader(
    byte Version,
    ProxyCommand Command,
    ProxyAddressFamily Family,
    IPEndPoint? Source,
    IPEndPoint? Destination)
{
    public bool HasAddresses => Source is not null;
}
