namespace ConnMgr.Cli;

/// <summary>Placeholder until the embedded core's user commands are merged in.</summary>
internal static class UserCommand
{
    public static Task<int> RunAsync(string[] args, string dataDirectory, TextReader stdin, TextWriter stdout, TextWriter stderr)
    {
        stderr.WriteLine("user commands are not available in this build");
        return Task.FromResult(1);
    }
}
