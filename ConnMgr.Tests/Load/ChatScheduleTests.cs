using ConnMgr.Benchmarks.Load;
using NUnit.Framework;

namespace ConnMgr.Tests.Load;

public sealed class ChatScheduleTests
{
    [Test]
    public void EveryUserSendsExactlyOncePerTurnOfTheWheel()
    {
        var schedule = new ChatSchedule(slotCount: 2000, neighbours: 8, populationFirst: 1, populationCount: 5000, seed: 1);
        for (var user = 0; user < 5000; user++)
            schedule.Add(user);
        var calls = new int[5000];
        for (var turn = 0; turn < 3; turn++)
        {
            for (var tick = 0; tick < schedule.SlotCount; tick++)
            {
                schedule.Advance(user =>
                {
                    calls[user]++;
                    return true;
                });
            }
            Assert.That(calls, Is.All.EqualTo(turn + 1), $"after turn {turn + 1}");
        }
    }

    [Test]
    public void SendersAreSpreadEvenlyOverTheInterval()
    {
        // 20,000 users over 100 slots: 200 per slot on average, binomial sd ~14; every slot within 6 sd.
        var schedule = new ChatSchedule(slotCount: 100, neighbours: 8, populationFirst: 0, populationCount: 20_000, seed: 5);
        for (var user = 0; user < 20_000; user++)
            schedule.Add(user);
        var perSlot = new List<int>();
        for (var tick = 0; tick < 100; tick++)
            perSlot.Add(schedule.Advance(_ => true));
        Assert.That(perSlot.Sum(), Is.EqualTo(20_000));
        Assert.That(perSlot, Is.All.InRange(200 - 84, 200 + 84));
    }

    [Test]
    public void UsersThatAreGoneLeaveTheWheel()
    {
        var schedule = new ChatSchedule(slotCount: 10, neighbours: 8, populationFirst: 0, populationCount: 100, seed: 2);
        for (var user = 0; user < 100; user++)
            schedule.Add(user);
        for (var tick = 0; tick < 10; tick++)
            schedule.Advance(user => user % 2 == 0);
        Assert.That(schedule.Scheduled, Is.EqualTo(50));
        var called = new List<int>();
        for (var tick = 0; tick < 10; tick++)
            schedule.Advance(user => { called.Add(user); return true; });
        Assert.That(called.Order(), Is.EqualTo(Enumerable.Range(0, 50).Select(i => i * 2)));
    }

    [Test]
    public void NeighboursAreTheEightAroundAUserChosenUniformly()
    {
        var schedule = new ChatSchedule(slotCount: 1, neighbours: 8, populationFirst: 1, populationCount: 1000, seed: 3);
        var random = new Random(4);
        var counts = new Dictionary<int, int>();
        for (var n = 0; n < 80_000; n++)
        {
            var to = schedule.PickNeighbour(500, random);
            counts[to] = counts.GetValueOrDefault(to) + 1;
        }
        Assert.That(counts.Keys.Order(), Is.EqualTo(new[] { 496, 497, 498, 499, 501, 502, 503, 504 }));
        // 10,000 expected each; binomial sd ~95.
        Assert.That(counts.Values, Is.All.InRange(9_500, 10_500));
    }

    [Test]
    public void NeighboursWrapAroundThePopulation()
    {
        var schedule = new ChatSchedule(slotCount: 1, neighbours: 8, populationFirst: 1, populationCount: 1000, seed: 3);
        var random = new Random(4);
        var seen = new HashSet<int>();
        for (var n = 0; n < 2000; n++)
            seen.Add(schedule.PickNeighbour(1, random));
        Assert.That(seen.Order(), Is.EqualTo(new[] { 2, 3, 4, 5, 997, 998, 999, 1000 }));
    }

    [Test]
    public void SmallPopulationMakesEveryOtherUserANeighbour()
    {
        var schedule = new ChatSchedule(slotCount: 1, neighbours: 8, populationFirst: 10, populationCount: 4, seed: 3);
        var random = new Random(4);
        var seen = new HashSet<int>();
        for (var n = 0; n < 1000; n++)
            seen.Add(schedule.PickNeighbour(11, random));
        Assert.That(seen.Order(), Is.EqualTo(new[] { 10, 12, 13 }));
    }

    [Test]
    public void OddNeighbourCountTakesOneMoreAfterThanBefore()
    {
        var schedule = new ChatSchedule(slotCount: 1, neighbours: 3, populationFirst: 0, populationCount: 100, seed: 3);
        var random = new Random(4);
        var seen = new HashSet<int>();
        for (var n = 0; n < 1000; n++)
            seen.Add(schedule.PickNeighbour(50, random));
        Assert.That(seen.Order(), Is.EqualTo(new[] { 49, 51, 52 }));
    }
}
