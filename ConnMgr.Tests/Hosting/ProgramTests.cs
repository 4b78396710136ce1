using System.Net;
using System.Net.Sockets;
using ConnMgr.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using NUnit.Framework;

namespace ConnMgr.Tests.Hosting;

public class ProgramTests
{
    private TempDirectory _dir = null!;

    [SetUp]
    public void SetUp() => _dir = new TempDirectory();

    [TearDown]
    public void TearDown() => _dir.Dispose();

    [Test]
    public async Task Check_config_accepts_the_defaults()
    {
        (int code, string stdout, string stderr) = await Run("check-config", "--DataDirectory=" + _dir.Path);
        Assert.Multiple(() =>
        {
            Assert.That(code, Is.EqualTo(0), stderr);
            Assert.That(stdout, Is.EqualTo("configuration OK\n"));
            Assert.That(stderr, Is.Empty);
        });
    }

    [Test]
    public async Task Check_config_accepts_the_sample_file()
    {
        string sample = Path.Combine(ConfigurationSourcesTests.RepositoryRoot(), "conf", "connmgr.json");
        (int code, string stdout, string stderr) = await Run("check-config", "--config", sample);
        Assert.Multiple(() =>
        {
            Assert.That(code, Is.EqualTo(0), stderr);
            Assert.That(stdout, Is.EqualTo("configuration OK\n"));
            Assert.That(stderr, Is.Empty);
        });
    }

    [Test]
    public async Task Check_config_prints_every_error_and_fails()
    {
        (int code, string stdout, string stderr) = await Run("check-config", "--Upstream:Links=0", "--Xmpp:Domain=Bad");
        Assert.Multiple(() =>
        {
            Assert.That(code, Is.EqualTo(1));
            Assert.That(stdout, Is.Empty);
            Assert.That(stderr, Does.Contain("connmgr: configuration error: Upstream:Links must be between 1 and 64 (got 0)\n"));
            Assert.That(stderr, Does.Contain("connmgr: configuration error: Xmpp:Domain must be a lowercase domain name"));
        });
    }

    [Test]
    public async Task Check_config_warns_about_unknown_keys_without_failing()
    {
        (int code, string stdout, string stderr) = await Run("check-config", "--Upstream:Link=3");
        Assert.Multiple(() =>
        {
            Assert.That(code, Is.EqualTo(0));
            Assert.That(stdout, Is.EqualTo("configuration OK\n"));
            Assert.That(stderr, Is.EqualTo("connmgr: warning: Upstream:Link is not a known setting and is ignored\n"));
        });
    }

    [Test]
    public async Task Check_config_names_a_missing_file()
    {
        string file = _dir.File("nope.json");
        (int code, _, string stderr) = await Run("check-config", "--config", file);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(stderr, Is.EqualTo($"connmgr: config file {file} not found\n"));
    }

    [Test]
    public async Task Check_config_names_a_file_that_is_not_json()
    {
        string file = _dir.File("bad.json");
        File.WriteAllText(file, "{ \"Edge\": ");
        (int code, _, string stderr) = await Run("check-config", "--config", file);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(stderr, Does.StartWith($"connmgr: config file {file} is not valid: "));
    }

    [TestCase("help")]
    [TestCase("--help")]
    [TestCase("-h")]
    public async Task Help_prints_usage(string arg)
    {
        (int code, string stdout, string stderr) = await Run(arg);
        Assert.That(code, Is.EqualTo(0));
        Assert.That(stdout, Does.StartWith("usage: connmgr"));
        Assert.That(stderr, Is.Empty);
    }

    [Test]
    public async Task Unknown_command_prints_usage_and_exits_2()
    {
        (int code, string stdout, string stderr) = await Run("frobnicate");
        Assert.That(code, Is.EqualTo(2));
        Assert.That(stdout, Is.Empty);
        Assert.That(stderr, Does.StartWith("connmgr: unknown command \"frobnicate\"\nusage: connmgr"));
    }

    [Test]
    public async Task User_command_gets_its_own_arguments_and_the_data_directory()
    {
        // Settings are taken out of the arguments (no "unexpected argument"
        // error) and the user lands in the store under the given directory.
        (int code, _, string stderr) = await Run("user", "add", "alice", "--password", "pw", "--DataDirectory", _dir.Path, "--Xmpp:Domain=x.example");
        Assert.That(stderr, Is.Empty);
        Assert.That(code, Is.EqualTo(0));
        (code, string stdout, _) = await Run("user", "list", "--DataDirectory", _dir.Path);
        Assert.That(code, Is.EqualTo(0));
        Assert.That(stdout, Is.EqualTo("alice\n"));
    }

    [Test]
    public async Task User_command_refuses_an_unusable_data_directory()
    {
        (int code, _, string stderr) = await Run("user", "list", "--DataDirectory=");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(stderr, Does.Contain("configuration error: DataDirectory must be a directory path"));
    }

    [Test]
    public async Task Run_with_a_bad_configuration_exits_1_with_the_key_and_no_stack_trace()
    {
        (int code, string stdout, string stderr) = await Run("--Upstream:Links=0", "--DataDirectory=" + _dir.Path, "--Logging:Level=None");
        Assert.Multiple(() =>
        {
            Assert.That(code, Is.EqualTo(1));
            Assert.That(stderr, Is.EqualTo("connmgr: configuration error: Upstream:Links must be between 1 and 64 (got 0)\n"));
            Assert.That(stdout, Is.Empty);
        });
    }

    [Test]
    public async Task Run_reports_a_port_in_use_and_exits_1()
    {
        using var occupant = new TcpListener(IPAddress.Loopback, 0);
        occupant.Start();
        int port = ((IPEndPoint)occupant.LocalEndpoint).Port;

        (int code, _, string stderr) = await Run("run", "--Edge:ListenAddress=127.0.0.1", $"--Edge:HttpPort={port}",
            "--DataDirectory=" + _dir.Path, "--Logging:Level=None");

        Assert.That(code, Is.EqualTo(1));
        Assert.That(stderr, Does.StartWith($"connmgr: cannot listen on 127.0.0.1:{port} (Edge:HttpPort): "));
        Assert.That(stderr, Does.Not.Contain("   at "), "no stack trace");
    }

    [Test]
    public async Task A_failed_background_service_makes_the_exit_status_non_zero()
    {
        IHost host = DaemonHost.Build(
            ["--Testing:EphemeralPorts=true", "--Edge:ListenAddress=127.0.0.1", "--DataDirectory=" + _dir.Path, "--Logging:Level=None"],
            (services, _) => services.AddHostedService<FailingService>());
        using var stderr = new StringWriter { NewLine = "\n" };

        int code = await Program.RunHostAsync(host, stderr);

        Assert.That(code, Is.EqualTo(1));
        Assert.That(stderr.ToString(), Is.EqualTo("connmgr: stopped because FailingService failed: deliberate\n"));
    }

    private sealed class FailingService : BackgroundService
    {
        protected override async Task ExecuteAsync(CancellationToken stoppingToken)
        {
            await Task.Yield();
            throw new InvalidOperationException("deliberate");
        }
    }

    private static async Task<(int Code, string Stdout, string Stderr)> Run(params string[] args)
    {
        using var stdout = new StringWriter { NewLine = "\n" };
        using var stderr = new StringWriter { NewLine = "\n" };
        int code = await Program.RunAsync(args, TextReader.Null, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }
}
