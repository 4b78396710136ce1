using BenchmarkDotNet.Running;
using ConnMgr.Benchmarks.Load;

// `load [options]` runs the XMPP load generator; anything else goes to BenchmarkDotNet.
if (args.Length > 0 && args[0] == "load")
{
    LoadCommand.ConfigureThreadPool();
    return await LoadCommand.RunAsync(args[1..]);
}

BenchmarkSwitcher.FromAssembly(typeof(LoadCommand).Assembly).Run(args);
return 0;
