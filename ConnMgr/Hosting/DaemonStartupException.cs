namespace ConnMgr.Hosting;

/// <summary>
/// A start-up failure the operator can fix (a port in use, an unreadable data
/// file). Throw it from a hosted service's <c>StartAsync</c> with a message naming
/// the key or file involved: the daemon prints the message, without a stack
/// trace, and exits with status 1.
/// </summary>
internal sealed class DaemonStartupException(string message, Exception? inner = null) : Exception(message, inner);
