using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace ConnMgr.Diagnostics;

/// <summary>
/// What systemd told this process through its environment (sd_notify(3),
/// systemd.service(5)). Read once at start; tests build their own.
/// </summary>
internal sealed class SystemdSettings(string? notifySocket, TimeSpan? watchdogInterval)
{
    /// <summary><c>NOTIFY_SOCKET</c>: a socket path, or an abstract name starting with <c>@</c>; null outside a <c>Type=notify</c> unit.</summary>
    public string? NotifySocket { get; } = string.IsNullOrEmpty(notifySocket) ? null : notifySocket;

    /// <summary>How often to send <c>WATCHDOG=1</c>: half of <c>WATCHDOG_USEC</c>, as sd_watchdog_enabled(3) advises; null when there is no watchdog.</summary>
    public TimeSpan? WatchdogInterval { get; } = watchdogInterval;

    public static SystemdSettings FromEnvironment()
    {
        TimeSpan? interval = null;
        string? pid = Environment.GetEnvironmentVariable("WATCHDOG_PID");
        bool forUs = string.IsNullOrEmpty(pid) || pid == Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
        if (forUs
            && ulong.TryParse(Environment.GetEnvironmentVariable("WATCHDOG_USEC"), NumberStyles.None, CultureInfo.InvariantCulture, out ulong usec)
            && usec > 0)
        {
            interval = TimeSpan.FromMicroseconds(usec / 2.0);
        }
        return new SystemdSettings(Environment.GetEnvironmentVariable("NOTIFY_SOCKET"), interval);
    }
}

/// <summary>
/// The sending half of sd_notify(3): newline-separated <c>KEY=VALUE</c> assignments
/// in one datagram on the unix socket named by <c>NOTIFY_SOCKET</c>.
/// </summary>
internal sealed class SdNotifySocket : IDisposable
{
    private readonly Socket _socket = new(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
    private readonly UnixDomainSocketEndPoint _target;

    public SdNotifySocket(string notifySocket)
    {
        // "@name" is a socket in Linux's abstract namespace, whose address starts with a NUL byte.
        _target = new UnixDomainSocketEndPoint(notifySocket.StartsWith('@') ? "\0" + notifySocket[1..] : notifySocket);
    }

    /// <summary>Sends one notification, e.g. <c>READY=1\nSTATUS=ready</c>. Throws <see cref="SocketException"/> on failure.</summary>
    public void Send(string assignments) => _socket.SendTo(Encoding.UTF8.GetBytes(assignments), SocketFlags.None, _target);

    public void Dispose() => _socket.Dispose();
}
