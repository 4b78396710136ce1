using System.Text;
using ConnMgr.Core.Storage;
using Microsoft.Data.Sqlite;

namespace ConnMgr.Cli;

/// <summary>
/// <c>connmgr user ...</c>: manages the embedded core's users in the same SQLite file the daemon
/// uses, safely while it runs (the daemon reads credentials at each login and notices removals
/// within a second). Exit codes: 0 done, 1 the operation failed (user exists, no such user,
/// invalid import lines, database error), 2 usage error (wrong form, invalid name or password).
/// </summary>
internal static class UserCommand
{
    private const string AddUsage = "usage: connmgr user add NAME --password PASS";
    private const string PasswdUsage = "usage: connmgr user passwd NAME --password PASS";
    private const string RemoveUsage = "usage: connmgr user remove NAME";
    private const string ListUsage = "usage: connmgr user list";
    private const string ImportUsage = "usage: connmgr user import FILE";

    private const string FullUsage = """
        usage: connmgr user add NAME --password PASS
               connmgr user passwd NAME --password PASS
               connmgr user remove NAME
               connmgr user list
               connmgr user import FILE

        --password -   reads the password from the first line of standard input
                       (keeps it out of the process list and the shell history).
        import FILE    one NAME:PASSWORD per line, the first ':' separates them;
                       blank lines are skipped, existing users are left unchanged;
                       FILE '-' reads standard input.
        """;

    private const int Ok = 0;
    private const int Failed = 1;
    private const int UsageError = 2;

    /// <param name="args">Everything after <c>user</c> on the command line.</param>
    public static Task<int> RunAsync(string[] args, string dataDirectory, TextReader stdin, TextWriter stdout, TextWriter stderr)
        => RunAsync(args, dataDirectory, stdin, stdout, stderr, new XmppStoreOptions());

    /// <summary>As above, with store options (tests lower the PBKDF2 iteration count).</summary>
    internal static async Task<int> RunAsync(string[] args, string dataDirectory, TextReader stdin, TextWriter stdout, TextWriter stderr, XmppStoreOptions options)
    {
        if (args.Length == 0)
        {
            return Usage(stderr, FullUsage);
        }
        switch (args[0])
        {
            case "add":
            case "passwd":
            {
                var usage = args[0] == "add" ? AddUsage : PasswdUsage;
                if (!TryParseNameAndPassword(args, out var user, out var password))
                {
                    return Usage(stderr, usage);
                }
                if (password == "-")
                {
                    var line = await stdin.ReadLineAsync();
                    if (line is null)
                    {
                        await stderr.WriteLineAsync("connmgr: --password - found no line on standard input");
                        return UsageError;
                    }
                    password = line;
                }
                if (!ValidName(user, stderr, out var name) || !ValidPassword(password, stderr))
                {
                    return UsageError;
                }
                return await WithStoreAsync(dataDirectory, options, stderr, args[0] == "add"
                    ? async store => await store.AddUserAsync(name, password)
                        ? await Done(stdout, $"added {name}")
                        : await Fail(stderr, $"connmgr: user {name} already exists")
                    : async store => await store.SetPasswordAsync(name, password)
                        ? await Done(stdout, $"changed the password of {name}")
                        : await Fail(stderr, $"connmgr: no such user: {name}"));
            }
            case "remove":
            {
                if (args.Length != 2 || args[1].StartsWith("--", StringComparison.Ordinal))
                {
                    return Usage(stderr, RemoveUsage);
                }
                if (!ValidName(args[1], stderr, out var name))
                {
                    return UsageError;
                }
                return await WithStoreAsync(dataDirectory, options, stderr, async store => await store.RemoveUserAsync(name)
                    ? await Done(stdout, $"removed {name}")
                    : await Fail(stderr, $"connmgr: no such user: {name}"));
            }
            case "list":
            {
                if (args.Length != 1)
                {
                    return Usage(stderr, ListUsage);
                }
                return await WithStoreAsync(dataDirectory, options, stderr, async store =>
                {
                    foreach (var name in await store.ListUsersAsync())
                    {
                        await stdout.WriteLineAsync(name);
                    }
                    return Ok;
                });
            }
            case "import":
            {
                if (args.Length != 2 || args[1].StartsWith("--", StringComparison.Ordinal))
                {
                    return Usage(stderr, ImportUsage);
                }
                return await ImportAsync(args[1], dataDirectory, options, stdin, stdout, stderr);
            }
            case "help" or "-h" or "--help":
                await stdout.WriteLineAsync(FullUsage);
                return Ok;
            default:
                await stderr.WriteLineAsync($"connmgr: unknown user command '{Printable(args[0])}'");
                return Usage(stderr, FullUsage);
        }
    }

    /// <summary>Accepts <c>NAME --password PASS</c> with the option before or after the name.</summary>
    private static bool TryParseNameAndPassword(string[] args, out string user, out string password)
    {
        string? foundUser = null, foundPassword = null;
        for (var i = 1; i < args.Length; i++)
        {
            if (args[i] == "--password" && i + 1 < args.Length && foundPassword is null)
            {
                foundPassword = args[++i];
            }
            else if (!args[i].StartsWith("--", StringComparison.Ordinal) && foundUser is null)
            {
                foundUser = args[i];
            }
            else
            {
                foundUser = foundPassword = null;
                break;
            }
        }
        user = foundUser ?? "";
        password = foundPassword ?? "";
        return foundUser is not null && foundPassword is not null;
    }

    private static async Task<int> ImportAsync(string source, string dataDirectory, XmppStoreOptions options, TextReader stdin, TextWriter stdout, TextWriter stderr)
    {
        TextReader reader;
        try
        {
            // File.OpenText skips a UTF-8 byte order mark.
            reader = source == "-" ? stdin : File.OpenText(source);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            await stderr.WriteLineAsync($"connmgr: cannot read {source}: {e.Message}");
            return Failed;
        }

        var invalidLines = 0;
        async IAsyncEnumerable<(string User, string Password)> Entries()
        {
            var number = 0;
            while (await reader.ReadLineAsync() is { } line)
            {
                number++;
                if (number == 1)
                {
                    line = line.TrimStart('\uFEFF');
                }
                if (string.IsNullOrWhiteSpace(line))
                {
                    continue;
                }
                var colon = line.IndexOf(':');
                string? problem = null;
                if (colon <= 0)
                {
                    problem = "expected NAME:PASSWORD";
                }
                else if (!UserNames.TryNormalize(line[..colon], out _, out var nameError))
                {
                    problem = $"invalid user name '{Printable(line[..colon])}': it {nameError}";
                }
                else if (!UserNames.TryNormalizePassword(line[(colon + 1)..], out _, out var passwordError))
                {
                    problem = $"invalid password: it {passwordError}";
                }
                if (problem is not null)
                {
                    invalidLines++;
                    await stderr.WriteLineAsync($"connmgr: line {number}: {problem}");
                    continue;
                }
                yield return (line[..colon], line[(colon + 1)..]);
            }
        }

        try
        {
            return await WithStoreAsync(dataDirectory, options, stderr, async store =>
            {
                var result = await store.ImportUsersAsync(Entries());
                var invalid = invalidLines + result.Invalid;
                await stdout.WriteLineAsync($"added {result.Added}, skipped {result.SkippedExisting} existing, {invalid} invalid");
                // Invalid lines fail the command so a script notices; everything valid was imported.
                return invalid == 0 ? Ok : Failed;
            });
        }
        finally
        {
            if (!ReferenceEquals(reader, stdin))
            {
                reader.Dispose();
            }
        }
    }

    private static async Task<int> WithStoreAsync(string dataDirectory, XmppStoreOptions options, TextWriter stderr, Func<XmppStore, Task<int>> action)
    {
        XmppStore store;
        try
        {
            store = XmppStore.Open(dataDirectory, options: options);
        }
        catch (Exception e) when (e is SqliteException or IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            await stderr.WriteLineAsync($"connmgr: cannot open the user database in {dataDirectory}: {e.Message}");
            return Failed;
        }
        await using (store)
        {
            try
            {
                return await action(store);
            }
            catch (Exception e) when (e is SqliteException or IOException)
            {
                await stderr.WriteLineAsync($"connmgr: {store.DatabasePath}: {e.Message}");
                return Failed;
            }
        }
    }

    private static bool ValidName(string user, TextWriter stderr, out string name)
    {
        if (UserNames.TryNormalize(user, out var normalized, out var error))
        {
            name = normalized;
            return true;
        }
        stderr.WriteLine($"connmgr: invalid user name '{Printable(user)}': it {error}");
        name = "";
        return false;
    }

    private static bool ValidPassword(string password, TextWriter stderr)
    {
        if (UserNames.TryNormalizePassword(password, out _, out var error))
        {
            return true;
        }
        stderr.WriteLine($"connmgr: invalid password: it {error}");
        return false;
    }

    private static int Usage(TextWriter stderr, string usage)
    {
        stderr.WriteLine(usage);
        return UsageError;
    }

    private static async Task<int> Done(TextWriter stdout, string message)
    {
        await stdout.WriteLineAsync(message);
        return Ok;
    }

    private static async Task<int> Fail(TextWriter stderr, string message)
    {
        await stderr.WriteLineAsync(message);
        return Failed;
    }

    /// <summary>Escapes control characters so a bad name cannot play tricks on the terminal.</summary>
    private static string Printable(string text)
    {
        if (!text.Any(char.IsControl))
        {
            return text;
        }
        var escaped = new StringBuilder(text.Length + 8);
        foreach (var c in text)
        {
            escaped.Append(char.IsControl(c) ? $"\\u{(int)c:X4}" : c);
        }
        return escaped.ToString();
    }
}
