using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ConnMgr.Hosting;

/// <summary>
/// Tells when the daemon is ready to serve: every hosted service has started
/// and every listener that registered here has reported itself open. systemd
/// gets <c>READY=1</c> at that moment, so that units ordered after this one
/// start only once clients can connect.
/// </summary>
/// <remarks>
/// A component calls <see cref="Register"/> no later than its
/// <c>IHostedService.StartAsync</c>, and <see cref="ReadinessToken.SetReady"/> once
/// its socket is listening (possibly later, from a background task). A
/// component that cannot open calls <c>IHostApplicationLifetime.StopApplication</c>
/// or throws from <c>StartAsync</c>; the daemon then never reports ready.
/// </remarks>
internal sealed partial class ReadinessGate
{
    private readonly Lock _lock = new();
    private readonly List<ReadinessToken> _pending = [];
    private readonly ListenerEndpoints _endpoints;
    private readonly ILogger _logger;
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private bool _hostStarted;

    public ReadinessGate(IHostApplicationLifetime lifetime, ListenerEndpoints endpoints, ILogger<ReadinessGate> logger)
    {
        _endpoints = endpoints;
        _logger = logger;
        lifetime.ApplicationStarted.Register(OnHostStarted);
    }

    /// <summary>Completes when the daemon is ready.</summary>
    public Task Ready => _ready.Task;

    /// <summary>Every bound listener as <c>Key address:port</c>, for status lines.</summary>
    public string DescribeListeners() => string.Join(", ", _endpoints.All.Select(pair => $"{pair.Key} {pair.Value}"));

    /// <summary>Names of the registrations not yet ready.</summary>
    public IReadOnlyList<string> Pending
    {
        get
        {
            lock (_lock)
            {
                return _pending.Select(token => token.Name).ToArray();
            }
        }
    }

    /// <param name="name">What is waited for, for status lines: <c>Edge:ClientPort listener</c>.</param>
    public ReadinessToken Register(string name)
    {
        var token = new ReadinessToken(this, name);
        lock (_lock)
        {
            if (_ready.Task.IsCompleted)
            {
                throw new InvalidOperationException($"{name} registered for readiness after the daemon was already reported ready");
            }
            _pending.Add(token);
        }
        return token;
    }

    internal void Report(ReadinessToken token)
    {
        lock (_lock)
        {
            _pending.Remove(token);
            CompleteIfReady();
        }
    }

    private void OnHostStarted()
    {
        lock (_lock)
        {
            _hostStarted = true;
            CompleteIfReady();
        }
    }

    private void CompleteIfReady()
    {
        if (_hostStarted && _pending.Count == 0 && _ready.TrySetResult())
        {
            Log.Ready(_logger, DescribeListeners());
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 102, Level = LogLevel.Information, Message = "Ready; listening: {Listeners}")]
        public static partial void Ready(ILogger logger, string listeners);
    }
}

/// <summary>One component's part of the <see cref="ReadinessGate"/>.</summary>
internal sealed class ReadinessToken
{
    private readonly ReadinessGate _gate;
    private int _reported;

    internal ReadinessToken(ReadinessGate gate, string name)
    {
        _gate = gate;
        Name = name;
    }

    public string Name { get; }

    /// <summary>Reports the component ready. Later calls do nothing.</summary>
    public void SetReady()
    {
        if (Interlocked.Exchange(ref _reported, 1) == 0)
        {
            _gate.Report(this);
        }
    }
}
