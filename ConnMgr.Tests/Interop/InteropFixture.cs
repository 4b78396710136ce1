using NUnit.Framework;
using NUnit.Framework.Interfaces;

namespace ConnMgr.Tests.Interop;

/// <summary>
/// One daemon process per fixture, shared by its tests; every test uses
/// accounts of its own, added with the CLI while the daemon runs. A failing
/// test gets the daemon's output from its own time in the test log.
/// </summary>
[Category("Interop")]
public abstract class InteropFixture
{
    // Punctuation that SCRAM must carry through untouched (',' and '=' are
    // attribute syntax in SCRAM messages, RFC 5802 section 5.1, but a password
    // only ever enters the key derivation).
    protected const string Password = "interop-Pa55,w=rd";

    private DaemonProcess? _daemon;
    private int _outputMark;

    private protected DaemonProcess Daemon => _daemon ?? throw new InvalidOperationException("the daemon did not start");

    [OneTimeSetUp]
    public async Task StartDaemon() => _daemon = await DaemonProcess.StartAsync();

    // NUnit runs this even when OneTimeSetUp failed; DaemonProcess.StartAsync
    // cleans up after itself then, and _daemon stays null.
    [OneTimeTearDown]
    public async Task StopDaemon()
    {
        if (_daemon is not null)
        {
            await _daemon.DisposeAsync();
            _daemon = null;
        }
    }

    [SetUp]
    public void MarkDaemonOutput() => _outputMark = _daemon?.OutputMark ?? 0;

    [TearDown]
    public void ShowDaemonOutputOnFailure()
    {
        if (_daemon is not null && TestContext.CurrentContext.Result.Outcome.Status == TestStatus.Failed)
        {
            TestContext.Out.WriteLine($"--- connmgr output during this test ---\n{_daemon.OutputSince(_outputMark)}");
        }
    }

    /// <summary>Adds the accounts with <c>connmgr user add</c> and returns their names.</summary>
    protected async Task<(string First, string Second)> AddUsersAsync(string first, string second)
    {
        await Daemon.AddUserAsync(first, Password);
        await Daemon.AddUserAsync(second, Password);
        return (first, second);
    }

    protected static string Bare(string user) => $"{user}@{ClientScripts.Domain}";
}
