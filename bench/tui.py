"""The TUI under a firehose: keypress-to-screen latency, CPU use, time to first frame.

A separate process plays the trainer with the real bus classes (Publisher + ControlServer)
and publishes step events at ``--rate`` per second; the app runs headless (Textual's
``run_test``) in this process, so this process's CPU time is the app's alone. Measured:

* keypress-to-screen latency: a number key is pressed, the time until the first paint whose
  status line shows the new screen (what a terminal would draw), p50 / p99, both while
  flooded and while idle (the baseline: the same app with nothing arriving); each screen's
  first visit is also shown apart;
* CPU use of the app, as a share of one core, while flooded and while idle (heartbeats only);
* time to first frame: from creating the app to its first screen drawn (headless), and the
  import time of the app module in a fresh interpreter.

    python bench/tui.py            # 1000 events/s for 5 s
    python bench/tui.py --full     # 1000 events/s for 30 s (the issue's figure)
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from realm.bus import ControlServer, Publisher  # noqa: E402
from realm.protocol import (  # noqa: E402
    ErrorReply,
    QuestInfo,
    QuestStarted,
    SnapshotRequest,
    StepMetrics,
    TrainerInfo,
    TrainerStarted,
)

KEYS = ("2", "1", "7", "5", "4", "1")
NAMES = {"1": "1 Hero", "2": "2 Battle", "4": "4 Quests", "5": "5 Vault", "7": "7 Watchtower"}
HEARTBEAT_S = 0.5


def _trainer(pub: str, ctl: str, rate: int, seconds: float, go, done) -> None:
    publisher = Publisher(pub, run="bench")

    def handle(request):
        return publisher.snapshot() if isinstance(request, SnapshotRequest) else ErrorReply(message="bench")

    server = ControlServer(ctl, handle, publisher, heartbeat_s=HEARTBEAT_S).start()
    info = TrainerInfo(
        model="builtin:dio-nano", device="cpu", parameters=412_000, pid=1, started=time.time(), steps_per_level=1000
    )
    publisher.emit(TrainerStarted(trainer=info, step=0))
    total = int(rate * seconds)
    publisher.emit(QuestStarted(quest=QuestInfo(name="firehose", examples=total), total_steps=total))
    go.wait()
    start = time.perf_counter()
    step = 0
    while step < total:
        due = min(total, int((time.perf_counter() - start) * rate))
        while step < due:
            step += 1
            publisher.emit(
                StepMetrics(
                    step=step,
                    loss=3.0 / (1 + step / 500),
                    lr=3e-3,
                    grad_norm=0.5,
                    tokens=4096,
                    tokens_per_s=1e5,
                    examples_per_s=400.0,
                    quest_step=step,
                    quest_total=total,
                )
            )
        time.sleep(0.005)
    done.wait()  # heartbeats only from here: the idle phase
    server.stop()
    publisher.close()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class PaintClock:
    """Watches the app's paints (``App._display``: what a terminal driver would write).

    With ``expect`` set to a screen's name, ``seen_at`` becomes the time of the first paint
    whose status line shows it: the moment the player sees the new screen.
    """

    def __init__(self, app, bar_type) -> None:
        self.paints = 0
        self.expect: str | None = None
        self.seen_at: float | None = None
        original = app._display

        def display(screen, renderable):
            original(screen, renderable)
            self.paints += 1
            if self.expect is not None and self.seen_at is None and _shows(app, bar_type, self.expect):
                self.seen_at = time.perf_counter()

        app._display = display


def _shows(app, bar_type, name: str) -> bool:
    bars = app.screen.query(bar_type)
    return bool(bars) and name in str(bars.first().render())


@dataclass(frozen=True)
class Press:
    ms: float
    first_visit: bool  # the screen's first showing: Textual composes and mounts it


async def _press_latencies(app, paints: PaintClock, until: float, shown: set[str]) -> list[Press]:
    """Send keys as the terminal driver does; time each until the new screen is painted.

    (``Pilot.press`` waits for the process to go idle, which a flooded app never does.)
    ``shown``: the screens shown so far, updated.
    """
    from textual import events

    latencies = []
    i = 0
    while time.monotonic() < until:
        key = KEYS[i % len(KEYS)]
        i += 1
        paints.expect, paints.seen_at = NAMES[key], None
        t0 = time.perf_counter()
        app._driver.send_message(events.Key(key, key))
        while paints.seen_at is None:
            await asyncio.sleep(0.0005)
        latencies.append(Press((paints.seen_at - t0) * 1000, key not in shown))
        shown.add(key)
        await asyncio.sleep(0.1)  # a quick player, not a key-repeat storm
    return latencies


async def _run(rate: int, seconds: float, idle_s: float) -> dict:
    from realm.tui.app import RealmApp
    from realm.tui.widgets.status_bar import StatusBar

    folder = Path(tempfile.mkdtemp(prefix="realm-bench-"))
    pub, ctl = f"ipc://{folder}/pub", f"ipc://{folder}/ctl"
    ctx = mp.get_context("spawn")
    go, done = ctx.Event(), ctx.Event()
    trainer = ctx.Process(target=_trainer, args=(pub, ctl, rate, seconds, go, done), daemon=True)
    trainer.start()
    results: dict = {}
    try:
        t_create = time.perf_counter()
        app = RealmApp(pub, ctl, heartbeat_s=HEARTBEAT_S)
        async with app.run_test(size=(80, 24)) as pilot:
            results["first_frame_ms"] = (time.perf_counter() - t_create) * 1000
            paints = PaintClock(app, StatusBar)
            while not app.mirror.connected:
                await pilot.pause(0.02)
            # flooded: events at `rate`, keys pressed throughout
            go.set()
            cpu0, wall0 = time.process_time(), time.perf_counter()
            shown = {"1"}
            results["flood_latency"] = await _press_latencies(app, paints, time.monotonic() + seconds, shown)
            results["flood_cpu"] = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
            while (
                app.mirror.state.battle.quest_step < int(rate * seconds) and time.perf_counter() - wall0 < seconds + 30
            ):
                await pilot.pause(0.05)
            results["flood_seq"] = app.mirror.seq
            results["flood_resyncs"] = app.mirror.snapshots - 1
            results["frames"] = app.frames
            done.set()
            # idle, baseline latency: nothing but heartbeats arrives
            results["idle_latency"] = await _press_latencies(app, paints, time.monotonic() + min(seconds, 5), shown)
            await pilot.press("1")
            await pilot.pause(0.5)
            cpu0, wall0 = time.process_time(), time.perf_counter()
            await asyncio.sleep(idle_s)
            results["idle_cpu"] = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
    finally:
        done.set()
        go.set()
        trainer.join(timeout=10)
        if trainer.is_alive():
            trainer.terminate()
    return results


async def _baseline_latency(seconds: float) -> list[float]:
    """The floor: a bare Textual app with the same modes, each a status line and a footer."""
    from textual.app import App
    from textual.binding import Binding
    from textual.screen import Screen
    from textual.widgets import Footer, Static

    from realm.tui.widgets.status_bar import StatusBar

    def make(name: str):
        class Bare(Screen):
            def compose(self):
                yield StatusBar(name)
                yield Static("body")
                yield Footer()

            def on_mount(self):
                self.query_one(StatusBar).update(name)

        return Bare

    class BareApp(App):
        MODES = {name: make(name) for name in NAMES.values()}
        DEFAULT_MODE = NAMES["1"]
        BINDINGS = [Binding(k, f"switch_mode('{n}')", n) for k, n in NAMES.items()] + [Binding("q", "quit", "Quit")]

    app = BareApp()
    async with app.run_test(size=(80, 24)):
        paints = PaintClock(app, StatusBar)
        return await _press_latencies(app, paints, time.monotonic() + seconds, {"1"})


def _import_ms() -> float:
    code = "import time; t = time.perf_counter(); import realm.tui.app; print((time.perf_counter() - t) * 1000)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    return float(out.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=1000, help="events per second (default 1000)")
    parser.add_argument("--seconds", type=float, default=5.0, help="flood duration (default 5)")
    parser.add_argument("--full", action="store_true", help="flood for 30 s")
    parser.add_argument("--idle", type=float, default=5.0, help="seconds of idle CPU measurement (default 5)")
    args = parser.parse_args()
    seconds = 30.0 if args.full else args.seconds
    r = asyncio.run(_run(args.rate, seconds, args.idle))
    bare = [p.ms for p in asyncio.run(_baseline_latency(min(seconds, 5)))]
    flood = [p.ms for p in r["flood_latency"]]
    warm = [p.ms for p in r["flood_latency"] if not p.first_visit]
    first = [p.ms for p in r["flood_latency"] + r["idle_latency"] if p.first_visit]
    idle = [p.ms for p in r["idle_latency"]]
    p50f, p99f, p50i, p99i = _pct(flood, 0.5), _pct(flood, 0.99), _pct(idle, 0.5), _pct(idle, 0.99)
    load = os.getloadavg()[0]
    print(
        f"TUI bench: {args.rate} events/s for {seconds:g} s, 80x24 headless, {mp.cpu_count()} CPU(s), load {load:.1f}"
    )
    print(f"  events applied      {r['flood_seq']:,} (re-syncs {r['flood_resyncs']}), repaints {r['frames']:,}")
    print(f"  key→screen flooded  p50 {p50f:6.1f} ms  p99 {p99f:6.1f} ms  ({len(flood)} presses; goal p99 < 100 ms)")
    print(
        f"    screens seen before  p50 {_pct(warm, 0.5):6.1f} ms  p99 {_pct(warm, 0.99):6.1f} ms  ({len(warm)} presses)"
    )
    print(
        f"    first visits      {' '.join(f'{ms:.0f}' for ms in first)} ms  (a screen's first showing: the app"
        " composes the screens ahead, after the first frame)"
    )
    print(f"  key→screen idle     p50 {p50i:6.1f} ms  p99 {p99i:6.1f} ms  ({len(idle)} presses)")
    print(
        f"  bare Textual app    p50 {_pct(bare, 0.5):6.1f} ms  p99 {_pct(bare, 0.99):6.1f} ms  ({len(bare)} presses;"
        " the same mode switch in an app with nothing but a status line and Textual's Footer)"
    )
    print(f"  flooded / idle      p50 x{p50f / p50i:.2f}  p99 x{p99f / p99i:.2f}")
    print(f"  idle / bare Textual p50 x{p50i / _pct(bare, 0.5):.2f}  p99 x{p99i / _pct(bare, 0.99):.2f}")
    print(f"  CPU flooded         {r['flood_cpu'] * 100:5.1f} % of a core")
    print(f"  CPU idle            {r['idle_cpu'] * 100:5.1f} % of a core (goal < 3 %)")
    print(
        f"  first frame         {r['first_frame_ms']:.0f} ms after creating the app (headless);"
        f" importing the app: {_import_ms():.0f} ms"
    )
    print(f"  mean latency        flooded {statistics.mean(flood):.1f} ms, idle {statistics.mean(idle):.1f} ms")


if __name__ == "__main__":
    main()
