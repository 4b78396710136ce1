namespace ConnMgr.Protocol.Proxy;

/// <summary>
/// The bytes at the start of a connection are not a valid PROXY protocol header. The message names
/// what is wrong; the receiver must drop the connection (the specification forbids guessing).
/// </summary>
public sealed class ProxyProtocolException(string message) : FormatException(message);
