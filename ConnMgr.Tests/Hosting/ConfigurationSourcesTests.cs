using ConnMgr.Hosting;
using ConnMgr.Options;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using NUnit.Framework;

namespace ConnMgr.Tests.Hosting;

public class ConfigurationSourcesTests
{
    private static readonly Type[] s_deploymentOptions =
    [
        typeof(DaemonOptions), typeof(XmppOptions), typeof(EdgeOptions), typeof(TlsOptions),
        typeof(UpstreamOptions), typeof(CoreOptions), typeof(LoggingOptions),
    ];

    private TempDirectory _dir = null!;

    [SetUp]
    public void SetUp() => _dir = new TempDirectory();

    [TearDown]
    public void TearDown() => _dir.Dispose();

    [Test]
    public void Defaults_come_from_the_options_classes()
    {
        using var host = DaemonHost.Build([]);
        UpstreamOptions upstream = host.Services.GetRequiredService<IOptions<UpstreamOptions>>().Value;
        EdgeOptions edge = host.Services.GetRequiredService<IOptions<EdgeOptions>>().Value;
        Assert.Multiple(() =>
        {
            Assert.That(host.Services.GetRequiredService<IOptions<XmppOptions>>().Value.Domain, Is.EqualTo("localhost"));
            Assert.That(host.Services.GetRequiredService<IOptions<DaemonOptions>>().Value.DataDirectory, Is.EqualTo("data"));
            Assert.That(upstream.Links, Is.EqualTo(4));
            Assert.That(upstream.Port, Is.EqualTo(5262));
            Assert.That(edge.ClientPort, Is.EqualTo(5222));
            Assert.That(edge.ListenAddress, Is.EqualTo("::"));
            Assert.That(EdgeName.IsValid(edge.Name), Is.True, edge.Name);
        });
    }

    // The default CM name comes from the host name and must always be usable on the link (spec 3.2).
    [TestCase("vm", "vm")]
    [TestCase("Edge_Box-1", "edgebox-1")]
    [TestCase("edge7.rack12.datacenter-north.chat.example.com", "edge7.rack12.datacenter-north.chat")]
    [TestCase("a-very-long-single-label-host-name-for-a-cloud-vm-1234567890", "a-very-long-single-label-host-name-for-a")]
    [TestCase("-.-", "connmgr")]
    [TestCase("", "connmgr")]
    public void The_default_edge_name_is_the_host_name_cut_to_what_the_link_accepts(string hostName, string expected)
    {
        string name = EdgeName.FromHostName(hostName);
        Assert.That(name, Is.EqualTo(expected));
        Assert.That(EdgeName.IsValid(name), Is.True, name);
    }

    [Test, NonParallelizable]
    public void File_is_overridden_by_environment_which_is_overridden_by_arguments()
    {
        string file = _dir.File("connmgr.json");
        System.IO.File.WriteAllText(file, """
            {
              "Xmpp": { "Domain": "file.example" },
              "Edge": { "ClientPort": 6000, "DirectTlsPort": 6100 },
              "Upstream": { "Links": 2 }
            }
            """);
        using var environment = new EnvironmentVariables(
            ("CONNMGR_Edge__ClientPort", "6001"),
            ("CONNMGR_Upstream__Links", "3"));

        using var host = DaemonHost.Build(["--config", file, "--Upstream:Links=5", "--Edge:HttpPort", "6200"]);

        EdgeOptions edge = host.Services.GetRequiredService<IOptions<EdgeOptions>>().Value;
        Assert.Multiple(() =>
        {
            Assert.That(host.Services.GetRequiredService<IOptions<XmppOptions>>().Value.Domain, Is.EqualTo("file.example"), "file over default");
            Assert.That(edge.DirectTlsPort, Is.EqualTo(6100), "file over default");
            Assert.That(edge.ClientPort, Is.EqualTo(6001), "environment over file");
            Assert.That(host.Services.GetRequiredService<IOptions<UpstreamOptions>>().Value.Links, Is.EqualTo(5), "argument over environment");
            Assert.That(edge.HttpPort, Is.EqualTo(6200), "--Key value form");
            Assert.That(host.Services.GetRequiredService<IOptions<UpstreamOptions>>().Value.KeepaliveSeconds, Is.EqualTo(30), "default");
        });
    }

    [Test]
    public void Config_option_accepts_the_equals_form()
    {
        string file = _dir.File("c.json");
        System.IO.File.WriteAllText(file, """{ "Upstream": { "Links": 9 } }""");
        using ConfigurationManager configuration = DaemonConfiguration.Load(["--config=" + file]);
        Assert.That(configuration["Upstream:Links"], Is.EqualTo("9"));
    }

    [Test]
    public void Missing_file_is_named()
    {
        string file = _dir.File("absent.json");
        var e = Assert.Throws<ConfigurationLoadException>(() => DaemonConfiguration.Load(["--config", file]));
        Assert.That(e!.Message, Does.Contain(file).And.Contain("not found"));
    }

    [TestCase("{ \"Edge\": { \"ClientPort\": 1 ")]
    [TestCase("[1, 2]")]
    [TestCase("{ \"a\": 1, \"a\": 2 }")]
    [TestCase("not json")]
    public void Invalid_json_is_reported_with_the_file_name(string content)
    {
        string file = _dir.File("bad.json");
        System.IO.File.WriteAllText(file, content);
        var e = Assert.Throws<ConfigurationLoadException>(() => DaemonConfiguration.Load(["--config", file]));
        Assert.That(e!.Message, Does.StartWith($"config file {file} is not valid: "));
    }

    [TestCase(new[] { "stray" }, "unexpected argument \"stray\"")]
    [TestCase(new[] { "-x" }, "unexpected argument \"-x\"")]
    [TestCase(new[] { "--" }, "unexpected argument \"--\"")]
    [TestCase(new[] { "--=1" }, "unexpected argument \"--=1\"")]
    [TestCase(new[] { "--Upstream:Links" }, "missing value after --Upstream:Links")]
    [TestCase(new[] { "--config" }, "missing value after --config")]
    [TestCase(new[] { "--config=" }, "--config needs a file name")]
    [TestCase(new[] { "--config", "a.json", "--config", "b.json" }, "--config given more than once")]
    public void Malformed_arguments_are_refused(string[] args, string message)
    {
        var e = Assert.Throws<ConfigurationLoadException>(() => DaemonConfiguration.ParseArguments(args));
        Assert.That(e!.Message, Does.Contain(message));
    }

    [Test]
    public void Arguments_are_normalised_and_config_is_taken_out()
    {
        (string? file, string[] settings) = DaemonConfiguration.ParseArguments(
            ["--Edge:Name", "a", "--config", "x.json", "--Upstream:Secret=p=q", "--Xmpp:Domain", "--weird"]);
        Assert.Multiple(() =>
        {
            Assert.That(file, Is.EqualTo(Path.GetFullPath("x.json")));
            Assert.That(settings, Is.EqualTo(new[] { "--Edge:Name=a", "--Upstream:Secret=p=q", "--Xmpp:Domain=--weird" }));
        });
    }

    [Test]
    public void Sample_file_sets_every_key_to_its_default_and_its_comments_are_ignored()
    {
        string sample = Path.Combine(RepositoryRoot(), "conf", "connmgr.json");
        using var fromFile = DaemonHost.Build(["--config", sample]);
        using var builtIn = DaemonHost.Build([]);

        Assert.That(StartupValidation.Validate(fromFile.Services), Is.Empty);
        Assert.That(OptionsRegistration.FindUnknownKeys(fromFile.Services.GetRequiredService<IConfiguration>()), Is.Empty);
        foreach (Type type in s_deploymentOptions)
        {
            Assert.That(Describe(fromFile, type), Is.EqualTo(Describe(builtIn, type)), type.Name);
        }
        // Every key except the host-derived Edge:Name and the test switches appears in the file.
        IConfiguration file = new ConfigurationBuilder().AddJsonFile(sample).Build();
        foreach (Type type in s_deploymentOptions)
        {
            var options = (SectionOptions)Activator.CreateInstance(type)!;
            foreach (var property in SectionOptions.KeysOf(type).Where(p => options.Key(p.Name) != "Edge:Name"))
            {
                string key = options.Key(property.Name);
                Assert.That(file.AsEnumerable().Any(pair => string.Equals(pair.Key, key, StringComparison.OrdinalIgnoreCase)), key);
            }
        }
    }

    [Test]
    public void Unknown_keys_in_our_sections_are_found_and_comments_and_other_sections_are_not()
    {
        IConfiguration configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Upstream:Link"] = "3",
            ["Edge:ClientPort"] = "5222",
            ["Edge:ClientPort:Extra"] = "1",
            ["Logging:LogLevel:Default"] = "Debug",
            ["Edge://"] = "comment",
            ["Edge://:0"] = "comment line",
            ["//"] = "comment",
            ["DataDirectory"] = "x",
            ["DataDirektory"] = "y",
            ["SomeoneElses:Key"] = "z",
        }).Build();
        Assert.That(OptionsRegistration.FindUnknownKeys(configuration),
            Is.EqualTo(new[] { "DataDirektory", "Edge:ClientPort:Extra", "Logging:LogLevel:Default", "Upstream:Link" }));
    }

    private static string Describe(Microsoft.Extensions.Hosting.IHost host, Type optionsType)
    {
        object accessor = host.Services.GetRequiredService(typeof(IOptions<>).MakeGenericType(optionsType));
        object options = accessor.GetType().GetProperty(nameof(IOptions<object>.Value))!.GetValue(accessor)!;
        return string.Join("; ", SectionOptions.KeysOf(optionsType).Select(p => $"{p.Name}={p.GetValue(options)}"));
    }

    internal static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory); dir is not null; dir = dir.Parent)
        {
            if (System.IO.File.Exists(Path.Combine(dir.FullName, "ConnMgr.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException("ConnMgr.sln not found above " + TestContext.CurrentContext.TestDirectory);
    }
}

/// <summary>Sets process environment variables for one test and restores them; use only in [NonParallelizable] tests.</summary>
internal sealed class EnvironmentVariables : IDisposable
{
    private readonly List<(string Name, string? Old)> _saved = [];

    public EnvironmentVariables(params (string Name, string? Value)[] variables)
    {
        foreach ((string name, string? value) in variables)
        {
            _saved.Add((name, Environment.GetEnvironmentVariable(name)));
            Environment.SetEnvironmentVariable(name, value);
        }
    }

    public void Dispose()
    {
        foreach ((string name, string? old) in _saved)
        {
            Environment.SetEnvironmentVariable(name, old);
        }
    }
}
