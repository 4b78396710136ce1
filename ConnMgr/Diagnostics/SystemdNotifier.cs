using System.Net.Sockets;
using ConnMgr.Hosting;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ConnMgr.Diagnostics;

/// <summary>
/// Keeps systemd informed in a <c>Type=notify</c> unit: <c>READY=1</c> once the
/// <see cref="ReadinessGate"/> opens, <c>STOPPING=1</c> as soon as shutdown begins,
/// <c>WATCHDOG=1</c> at half the <c>WatchdogSec</c> period from start to the
/// end of shutdown, and a <c>STATUS=</c> line with each. Does nothing when
/// <c>NOTIFY_SOCKET</c> is unset.
/// </summary>
/// <remarks>
/// Registered before the other hosted services, so it stops last and the
/// watchdog keeps being fed while they drain.
/// </remarks>
internal sealed partial class SystemdNotifier(
    SystemdSettings settings,
    ReadinessGate readiness,
    IHostApplicationLifetime lifetime,
    ILogger<SystemdNotifier> logger) : IHostedService, IDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private SdNotifySocket? _socket;
    private CancellationTokenRegistration _onStopping;
    private Task _notifying = Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (settings.NotifySocket is null)
        {
            return Task.CompletedTask;
        }
        _socket = new SdNotifySocket(settings.NotifySocket);
        Send("STATUS=starting");
        _onStopping = lifetime.ApplicationStopping.Register(() => Send("STOPPING=1\nSTATUS=stopping: draining connections"));
        _notifying = NotifyAsync(_stop.Token);
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stop.CancelAsync();
        await _notifying;
    }

    public void Dispose()
    {
        _onStopping.Dispose();
        _socket?.Dispose();
        _stop.Dispose();
    }

    private async Task NotifyAsync(CancellationToken stop)
    {
        Task watchdog = settings.WatchdogInterval is { } interval ? FeedWatchdogAsync(interval, stop) : Task.CompletedTask;
        try
        {
            await readiness.Ready.WaitAsync(stop);
            string listening = readiness.DescribeListeners();
            Send(listening.Length == 0 ? "READY=1\nSTATUS=ready" : "READY=1\nSTATUS=ready; listening: " + listening);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
        await watchdog;
    }

    private async Task FeedWatchdogAsync(TimeSpan interval, CancellationToken stop)
    {
        Log.WatchdogEnabled(logger, interval.TotalSeconds);
        using var timer = new PeriodicTimer(interval);
        Send("WATCHDOG=1");
        try
        {
            while (await timer.WaitForNextTickAsync(stop))
            {
                Send("WATCHDOG=1");
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
    }

    private void Send(string assignments)
    {
        try
        {
            _socket?.Send(assignments);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // systemd's own sd_notify ignores delivery failures as well; a lost
            // READY or WATCHDOG surfaces as a start or watchdog timeout in the journal.
            Log.NotifyFailed(logger, settings.NotifySocket, assignments, e);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 130, Level = LogLevel.Warning, Message = "Could not notify systemd on {Socket} ({Assignments})")]
        public static partial void NotifyFailed(ILogger logger, string? socket, string assignments, Exception exception);

        [LoggerMessage(EventId = 131, Level = LogLevel.Debug, Message = "systemd watchdog enabled: WATCHDOG=1 every {Seconds} s")]
        public static partial void WatchdogEnabled(ILogger logger, double seconds);
    }
}
