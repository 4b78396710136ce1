using ConnMgr.Cli;
using ConnMgr.Core.Storage;
using ConnMgr.Tests.Core.Storage;
using NUnit.Framework;
using static ConnMgr.Tests.Core.Storage.StoreTestSupport;

namespace ConnMgr.Tests.Cli;

[TestFixture]
public class UserCommandTests
{
    private string _directory = null!;

    [SetUp]
    public void CreateDirectory() => _directory = CreateTempDirectory();

    [TearDown]
    public void DeleteDirectory() => StoreTestSupport.DeleteDirectory(_directory);

    private sealed record Outcome(int ExitCode, string Stdout, string Stderr);

    private async Task<Outcome> RunWithInput(string stdin, params string[] args)
    {
        using var input = new StringReader(stdin);
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await UserCommand.RunAsync(args, _directory, input, output, error, Fast());
        return new Outcome(code, output.ToString().ReplaceLineEndings("\n"), error.ToString().ReplaceLineEndings("\n"));
    }

    private Task<Outcome> Run(params string[] args) => RunWithInput("", args);

    private async Task<UserCredentials?> Credentials(string user)
    {
        await using var store = XmppStore.Open(_directory, options: Fast());
        return await store.GetCredentialsAsync(user);
    }

    [Test]
    public async Task Add_creates_a_user_that_can_log_in()
    {
        var outcome = await Run("add", "Alice", "--password", "secret");

        Assert.That(outcome, Is.EqualTo(new Outcome(0, "added alice\n", "")));
        Assert.That(Verifies((await Credentials("alice"))!.Sha256, "secret"), Is.True);
    }

    [Test]
    public async Task Add_accepts_the_option_first_and_reads_the_password_from_stdin_with_a_dash()
    {
        var outcome = await RunWithInput("from stdin\nignored\n", "add", "--password", "-", "bob");

        Assert.That(outcome.ExitCode, Is.EqualTo(0), outcome.Stderr);
        Assert.That(Verifies((await Credentials("bob"))!.Sha1, "from stdin"), Is.True);
    }

    [Test]
    public async Task Add_of_an_existing_user_fails_with_1()
    {
        await Run("add", "alice", "--password", "secret");
        var outcome = await Run("add", "ALICE", "--password", "other");

        Assert.That(outcome.ExitCode, Is.EqualTo(1));
        Assert.That(outcome.Stderr, Is.EqualTo("connmgr: user alice already exists\n"));
        Assert.That(Verifies((await Credentials("alice"))!.Sha256, "secret"), Is.True);
    }

    [TestCase("add", "alice")]
    [TestCase("add", "alice", "--password")]
    [TestCase("add", "--password", "secret")]
    [TestCase("add", "alice", "bob", "--password", "secret")]
    [TestCase("add", "alice", "--password", "a", "--password", "b")]
    [TestCase("add", "alice", "--pasword", "secret")]
    public async Task Add_with_a_wrong_form_prints_its_usage_and_exits_2(params string[] args)
    {
        var outcome = await Run(args);

        Assert.That(outcome.ExitCode, Is.EqualTo(2));
        Assert.That(outcome.Stderr, Does.StartWith("usage: connmgr user add NAME --password PASS"));
        Assert.That(Directory.GetFiles(_directory), Is.Empty, "a usage error touches no database");
    }

    [Test]
    public async Task Add_with_an_invalid_name_or_password_says_why_and_exits_2()
    {
        var name = await Run("add", "alice@localhost", "--password", "secret");
        var password = await Run("add", "alice", "--password", "bad\u0001");
        var noLine = await RunWithInput("", "add", "alice", "--password", "-");

        Assert.That(name, Is.EqualTo(new Outcome(2, "", "connmgr: invalid user name 'alice@localhost': it contains '@'\n")));
        Assert.That(password, Is.EqualTo(new Outcome(2, "", "connmgr: invalid password: it contains the control character U+0001\n")));
        Assert.That(noLine.ExitCode, Is.EqualTo(2));
        Assert.That(noLine.Stderr, Does.Contain("standard input"));
    }

    [Test]
    public async Task Passwd_changes_the_password_of_an_existing_user_only()
    {
        await Run("add", "alice", "--password", "old");

        Assert.That(await Run("passwd", "alice", "--password", "new"), Is.EqualTo(new Outcome(0, "changed the password of alice\n", "")));
        Assert.That(Verifies((await Credentials("alice"))!.Sha256, "new"), Is.True);
        Assert.That(await Run("passwd", "nobody", "--password", "new"), Is.EqualTo(new Outcome(1, "", "connmgr: no such user: nobody\n")));
        Assert.That((await Run("passwd", "alice")).Stderr, Does.StartWith("usage: connmgr user passwd NAME --password PASS"));
    }

    [Test]
    public async Task Remove_deletes_a_user_and_fails_with_1_for_an_unknown_one()
    {
        await Run("add", "alice", "--password", "secret");

        Assert.That(await Run("remove", "Alice"), Is.EqualTo(new Outcome(0, "removed alice\n", "")));
        Assert.That(await Credentials("alice"), Is.Null);
        Assert.That(await Run("remove", "alice"), Is.EqualTo(new Outcome(1, "", "connmgr: no such user: alice\n")));
    }

    [TestCase]
    [TestCase("alice", "bob")]
    [TestCase("--force", "alice")]
    public async Task Remove_with_a_wrong_form_prints_its_usage_and_exits_2(params string[] rest)
    {
        var outcome = await Run(["remove", .. rest]);

        Assert.That(outcome.ExitCode, Is.EqualTo(2));
        Assert.That(outcome.Stderr, Is.EqualTo("usage: connmgr user remove NAME\n"));
    }

    [Test]
    public async Task List_prints_one_name_per_line_sorted()
    {
        Assert.That(await Run("list"), Is.EqualTo(new Outcome(0, "", "")));
        foreach (var name in new[] { "carol", "alice", "bob" })
        {
            await Run("add", name, "--password", "secret");
        }

        Assert.That(await Run("list"), Is.EqualTo(new Outcome(0, "alice\nbob\ncarol\n", "")));
        Assert.That(await Run("list", "extra"), Is.EqualTo(new Outcome(2, "", "usage: connmgr user list\n")));
    }

    [Test]
    public async Task Import_adds_users_skips_existing_and_reports_bad_lines_by_number()
    {
        await Run("add", "existing", "--password", "secret");
        var file = Path.Combine(_directory, "users.txt");
        await File.WriteAllTextAsync(file, string.Join("\n",
            "alice:wonderland",
            "bob:pass:with:colons",
            "",
            "no colon here",
            "existing:other",
            "bad name:x",
            ":nameless",
            "carol:",
            "Dave:\u0007",
            "erin:secret\r"));

        var outcome = await Run("import", file);

        Assert.That(outcome.ExitCode, Is.EqualTo(1));
        Assert.That(outcome.Stdout, Is.EqualTo("added 3, skipped 1 existing, 5 invalid\n"));
        Assert.That(outcome.Stderr, Is.EqualTo(string.Join("\n",
            "connmgr: line 4: expected NAME:PASSWORD",
            "connmgr: line 6: invalid user name 'bad name': it contains whitespace",
            "connmgr: line 7: expected NAME:PASSWORD",
            "connmgr: line 8: invalid password: it is empty",
            "connmgr: line 9: invalid password: it contains the control character U+0007",
            "")));
        Assert.That((await Run("list")).Stdout, Is.EqualTo("alice\nbob\nerin\nexisting\n"));
        Assert.That(Verifies((await Credentials("bob"))!.Sha256, "pass:with:colons"), Is.True);
        Assert.That(Verifies((await Credentials("existing"))!.Sha256, "secret"), Is.True, "import never overwrites");
    }

    [Test]
    public async Task Import_reads_standard_input_with_a_dash_and_succeeds_with_0()
    {
        var lines = string.Join("\n", Enumerable.Range(0, 25).Select(i => $"user{i}:password{i}"));

        var outcome = await RunWithInput("\uFEFF" + lines + "\n", "import", "-");

        Assert.That(outcome, Is.EqualTo(new Outcome(0, "added 25, skipped 0 existing, 0 invalid\n", "")));
        Assert.That(Verifies((await Credentials("user0"))!.Sha256, "password0"), Is.True);
        Assert.That((await Run("import", "-")).Stdout, Is.EqualTo("added 0, skipped 0 existing, 0 invalid\n"));
    }

    [Test]
    public async Task Import_of_a_missing_file_fails_with_1_and_a_usage_error_with_2()
    {
        var missing = await Run("import", Path.Combine(_directory, "missing.txt"));
        var usage = await Run("import");

        Assert.That(missing.ExitCode, Is.EqualTo(1));
        Assert.That(missing.Stderr, Does.StartWith("connmgr: cannot read "));
        Assert.That(usage, Is.EqualTo(new Outcome(2, "", "usage: connmgr user import FILE\n")));
    }

    [Test]
    public async Task No_or_unknown_subcommand_prints_the_full_usage_and_exits_2()
    {
        var none = await Run();
        var unknown = await Run("frobnicate");
        var help = await Run("--help");

        Assert.Multiple(() =>
        {
            Assert.That(none.ExitCode, Is.EqualTo(2));
            Assert.That(none.Stderr, Does.StartWith("usage: connmgr user add NAME --password PASS"));
            Assert.That(none.Stderr, Does.Contain("connmgr user import FILE"));
            Assert.That(unknown.ExitCode, Is.EqualTo(2));
            Assert.That(unknown.Stderr, Does.StartWith("connmgr: unknown user command 'frobnicate'\nusage: "));
            Assert.That(help.ExitCode, Is.EqualTo(0));
            Assert.That(help.Stdout, Does.Contain("connmgr user remove NAME"));
        });
    }

    [Test]
    public async Task A_database_that_cannot_be_opened_fails_with_1()
    {
        Directory.CreateDirectory(Path.Combine(_directory, XmppStore.DatabaseFileName));

        var outcome = await Run("list");

        Assert.That(outcome.ExitCode, Is.EqualTo(1));
        Assert.That(outcome.Stderr, Does.StartWith($"connmgr: cannot open the user database in {_directory}"));
    }
}
