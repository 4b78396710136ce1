using System.Runtime.Versioning;
using ConnMgr.Hosting;
using ConnMgr.Options;
using NUnit.Framework;

namespace ConnMgr.Tests.Hosting;

public class LinkSecretProviderTests
{
    private TempDirectory _dir = null!;

    [SetUp]
    public void SetUp() => _dir = new TempDirectory();

    [TearDown]
    public void TearDown() => _dir.Dispose();

    [Test]
    [UnsupportedOSPlatform("windows")]
    public void Generates_a_32_byte_hex_secret_readable_by_the_owner_only()
    {
        string data = Path.Combine(_dir.Path, "data");
        string secret = LinkSecretProvider.ReadOrCreate(data);

        string file = Path.Combine(data, LinkSecretProvider.FileName);
        Assert.Multiple(() =>
        {
            Assert.That(secret, Does.Match("^[0-9a-f]{64}$"));
            Assert.That(File.ReadAllText(file), Is.EqualTo(secret + Environment.NewLine));
            Assert.That(File.GetUnixFileMode(file), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite));
            Assert.That(File.GetUnixFileMode(data), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute));
            Assert.That(Directory.GetFiles(data), Has.Length.EqualTo(1), "no temporary file left behind");
        });
    }

    [Test]
    public void Reads_the_same_secret_on_every_later_start()
    {
        string first = LinkSecretProvider.ReadOrCreate(_dir.Path);
        Assert.That(LinkSecretProvider.ReadOrCreate(_dir.Path), Is.EqualTo(first));
    }

    [Test]
    public async Task Concurrent_first_starts_agree_on_one_secret()
    {
        string data = Path.Combine(_dir.Path, "race");
        string[] secrets = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() => LinkSecretProvider.ReadOrCreate(data))));
        Assert.That(secrets.Distinct().ToArray(), Has.Length.EqualTo(1));
        Assert.That(Directory.GetFiles(data), Has.Length.EqualTo(1));
    }

    [Test]
    public void A_damaged_file_stops_start_up_with_its_path()
    {
        string file = _dir.File(LinkSecretProvider.FileName);
        File.WriteAllBytes(file, [0x00, 0xff]);
        var e = Assert.Throws<DaemonStartupException>(() => LinkSecretProvider.ReadOrCreate(_dir.Path));
        Assert.That(e!.Message, Does.StartWith(file + " must hold the link secret"));
    }

    [Test]
    public async Task Configured_secret_wins_and_no_file_is_written()
    {
        await using TestDaemon daemon = TestDaemon.Build(["--Upstream:Secret=configured"]);
        Assert.That(daemon.Get<LinkSecretProvider>().GetSecret(), Is.EqualTo("configured"));
        Assert.That(File.Exists(Path.Combine(daemon.DataDirectory, LinkSecretProvider.FileName)), Is.False);
    }

    [Test]
    public async Task Without_a_configured_secret_the_file_in_the_data_directory_is_used()
    {
        await using TestDaemon daemon = TestDaemon.Build();
        string secret = daemon.Get<LinkSecretProvider>().GetSecret();
        Assert.That(File.ReadAllText(Path.Combine(daemon.DataDirectory, LinkSecretProvider.FileName)).Trim(), Is.EqualTo(secret));
    }
}
