using BenchmarkDotNet.Running;
using ConnMgr.Benchmarks.Load;
using ConnMgr.Benchmarks.Memory;
using ConnMgr.Benchmarks.Scanner;

namespace ConnMgr.Benchmarks;

// In a namespace: the daemon's top-level Program (global namespace) is visible here through InternalsVisibleTo.
public static class Program
{
    // `load [options]` runs the XMPP load generator, `idle-memory` the idle-connection memory
    // measurement (it restarts itself with the same verb for its client side), `scanner-ratio`
    // the scanner against XmlReader side by side in one process; anything else goes to BenchmarkDotNet.
    public static async Task<int> Main(string[] args)
    {
        switch (args)
        {
            case ["load", ..]:
                LoadCommand.ConfigureThreadPool();
                return await LoadCommand.RunAsync(args[1..]);
            case ["idle-memory", ..]:
                return IdleConnectionsBenchmark.Run(args);
            case [ScannerRatioCommand.Verb, ..]:
                return ScannerRatioCommand.Run(args[1..]);
            default:
                BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
                return 0;
        }
    }
}
