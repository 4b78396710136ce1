using System.Net.Sockets;
using System.Text;
using ConnMgr.Diagnostics;
using ConnMgr.Hosting;
using ConnMgr.Tests.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using NUnit.Framework;

namespace ConnMgr.Tests.Diagnostics;

public class SystemdNotifierTests
{
    private TempDirectory _dir = null!;
    private Socket _systemd = null!;
    private string _socketPath = null!;

    [SetUp]
    public void SetUp()
    {
        _dir = new TempDirectory();
        _socketPath = _dir.File("notify");
        _systemd = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        _systemd.Bind(new UnixDomainSocketEndPoint(_socketPath));
    }

    [TearDown]
    public void TearDown()
    {
        _systemd.Dispose();
        _dir.Dispose();
    }

    [Test]
    public async Task Ready_watchdog_and_stopping_reach_the_notify_socket()
    {
        var settings = new SystemdSettings(_socketPath, TimeSpan.FromMilliseconds(20));
        TestDaemon daemon = await TestDaemon.StartAsync(extra: (services, _) => services.AddSingleton(settings));
        int httpPort, corePort;
        var messages = new List<string>();
        try
        {
            httpPort = daemon.Endpoint("Edge:HttpPort").Port;
            corePort = daemon.Endpoint("Core:Port").Port;
            messages.Add(await Receive());
            while (!messages.Any(m => m.StartsWith("READY=1", StringComparison.Ordinal)) || !messages.Contains("WATCHDOG=1"))
            {
                messages.Add(await Receive());
            }
        }
        finally
        {
            await daemon.DisposeAsync();
        }
        while (!messages[^1].StartsWith("STOPPING=1", StringComparison.Ordinal))
        {
            messages.Add(await Receive());
        }

        Assert.Multiple(() =>
        {
            Assert.That(messages[0], Is.EqualTo("STATUS=starting"));
            Assert.That(messages.Where(m => m.StartsWith("READY=1", StringComparison.Ordinal)),
                Is.EqualTo(new[] { $"READY=1\nSTATUS=ready; listening: Core:Port 127.0.0.1:{corePort}, Edge:HttpPort 127.0.0.1:{httpPort}" }));
            Assert.That(messages[^1], Is.EqualTo("STOPPING=1\nSTATUS=stopping: draining connections"));
        });
    }

    [Test]
    public async Task Ready_is_sent_only_when_the_gate_opens()
    {
        var settings = new SystemdSettings(_socketPath, watchdogInterval: null);
        ReadinessToken? pending = null;
        await using TestDaemon daemon = await TestDaemon.StartAsync(extra: (services, _) =>
        {
            services.AddSingleton(settings);
            services.AddHostedService(provider => new RegisteringService(() => pending = provider.GetRequiredService<ReadinessGate>().Register("late listener")));
        });
        Assert.That(await Receive(), Is.EqualTo("STATUS=starting"));
        Assert.That(daemon.Get<ReadinessGate>().Ready.IsCompleted, Is.False);

        pending!.SetReady();

        Assert.That(await Receive(), Does.StartWith("READY=1\nSTATUS=ready"));
    }

    [Test]
    public void Abstract_socket_names_are_supported()
    {
        string name = "connmgr-test-" + Guid.NewGuid().ToString("N");
        using var receiver = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        receiver.Bind(new UnixDomainSocketEndPoint("\0" + name));
        using (var notify = new SdNotifySocket("@" + name))
        {
            notify.Send("READY=1");
        }
        var buffer = new byte[256];
        receiver.ReceiveTimeout = 30_000;
        int length = receiver.Receive(buffer);
        Assert.That(Encoding.UTF8.GetString(buffer, 0, length), Is.EqualTo("READY=1"));
    }

    [Test, NonParallelizable]
    public void Watchdog_interval_is_half_of_watchdog_usec_and_only_for_this_process()
    {
        using (new EnvironmentVariables(("NOTIFY_SOCKET", "/run/x"), ("WATCHDOG_USEC", "30000000"), ("WATCHDOG_PID", Environment.ProcessId.ToString())))
        {
            SystemdSettings settings = SystemdSettings.FromEnvironment();
            Assert.That(settings.NotifySocket, Is.EqualTo("/run/x"));
            Assert.That(settings.WatchdogInterval, Is.EqualTo(TimeSpan.FromSeconds(15)));
        }
        using (new EnvironmentVariables(("NOTIFY_SOCKET", null), ("WATCHDOG_USEC", "30000000"), ("WATCHDOG_PID", "1")))
        {
            SystemdSettings settings = SystemdSettings.FromEnvironment();
            Assert.That(settings.NotifySocket, Is.Null);
            Assert.That(settings.WatchdogInterval, Is.Null);
        }
    }

    private async Task<string> Receive()
    {
        var buffer = new byte[4096];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        int length = await _systemd.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
        return Encoding.UTF8.GetString(buffer, 0, length);
    }

    private sealed class RegisteringService(Action register) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken)
        {
            register();
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
