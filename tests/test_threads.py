"""The default torch thread count (device.cpu_threads): the cores this process may use, less those
other processes keep busy now, read from /proc/stat (a fake reader here, then the real one)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from makemore import device

TICKS = 25  # clock ticks of one core over the sample (100 a second, a quarter of a second)


def fake_proc(before: dict, after: dict, own=(0, 0)):
    """A reader of /proc/stat and /proc/self/stat, and a sleep: before it, each core at `before`
    (busy, idle) clock ticks and this process at own[0]; after it, `after` and own[1]."""
    slept = []

    def stat(cores):
        lines = [f"cpu  {sum(b for b, _ in cores.values())} 0 0 {sum(i for _, i in cores.values())} 0 0 0 0 0 0"]
        # busy ticks split over user, system and irq, idle ones over idle and iowait, as Linux writes them
        lines += [f"cpu{n} {b - b // 2 - b // 4} 0 {b // 2} {i - i // 3} {i // 3} {b // 4} 0 0 0 0" for n, (b, i) in cores.items()]
        return "\n".join(lines + ["intr 12345 0 0", "ctxt 999", "btime 1700000000", "processes 40"]) + "\n"

    def read(path):
        if path == "/proc/stat":
            return stat(after if slept else before)
        if path == "/proc/self/stat":  # a command name with a space and a parenthesis, as a process may have
            return f"4242 (python x) y) S 1 4242 4242 0 -1 4194304 900 0 0 0 {own[bool(slept)]} 0 0 0 20 0 3 0 100 0 0\n"
        raise FileNotFoundError(path)

    return read, slept.append


def cores_over_the_sample(busy: dict, start=(1000, 5000)) -> tuple[dict, dict]:
    """/proc/stat before and after a sample in which core n was busy for busy[n] of its TICKS."""
    before = {n: start for n in busy}
    return before, {n: (start[0] + b, start[1] + TICKS - b) for n, b in busy.items()}


@pytest.fixture
def four_cores(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(device.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)


def test_an_idle_machine_gives_every_core(four_cores):
    read, sleep = fake_proc(*cores_over_the_sample({0: 0, 1: 0, 2: 1, 3: 0}))
    assert device.cpu_threads(read=read, sleep=sleep) == (4, "4 cores, 0.0 busy elsewhere")


def test_one_busy_neighbour_takes_one_thread(four_cores):
    read, sleep = fake_proc(*cores_over_the_sample({0: 0, 1: TICKS, 2: 0, 3: 0}))
    assert device.cpu_threads(read=read, sleep=sleep) == (3, "4 cores, 1.0 busy elsewhere")
    read, sleep = fake_proc(*cores_over_the_sample({0: 12, 1: 0, 2: 13, 3: 0}))  # one busy process moving between cores
    assert device.cpu_threads(read=read, sleep=sleep)[0] == 3


def test_this_process_is_not_a_neighbour(four_cores):
    # core 0 busy all along, all of it this process's own ticks (its threads, say): nobody else's
    read, sleep = fake_proc(*cores_over_the_sample({0: TICKS, 1: 0, 2: 0, 3: 0}), own=(700, 700 + TICKS))
    assert device.cpu_threads(read=read, sleep=sleep) == (4, "4 cores, 0.0 busy elsewhere")
    read, sleep = fake_proc(*cores_over_the_sample({0: TICKS, 1: TICKS, 2: 0, 3: 0}), own=(700, 700 + TICKS))
    assert device.cpu_threads(read=read, sleep=sleep)[0] == 3


def test_a_fully_busy_machine_still_gives_one_thread(four_cores):
    read, sleep = fake_proc(*cores_over_the_sample({0: TICKS, 1: TICKS, 2: TICKS, 3: TICKS}))
    assert device.cpu_threads(read=read, sleep=sleep) == (1, "4 cores, 4.0 busy elsewhere")


def test_only_the_cores_this_process_may_use_count(four_cores, monkeypatch):
    monkeypatch.setattr(device.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    read, sleep = fake_proc(*cores_over_the_sample({0: 0, 1: 0, 2: TICKS, 3: TICKS}))  # busy, but out of reach
    assert device.cpu_threads(read=read, sleep=sleep) == (2, "2 cores, 0.0 busy elsewhere")
    read, sleep = fake_proc(*cores_over_the_sample({0: TICKS, 1: 0, 2: TICKS, 3: TICKS}))
    assert device.cpu_threads(read=read, sleep=sleep) == (1, "2 cores, 1.0 busy elsewhere")


def test_the_reading_spans_a_short_wait(four_cores):
    read, sleep = fake_proc(*cores_over_the_sample({0: 0, 1: TICKS, 2: 0, 3: 0}))
    waits = []
    device.cpu_threads(read=read, sleep=lambda s: (waits.append(s), sleep(s)))
    assert len(waits) == 1 and 0.1 <= waits[0] <= 0.5  # a current reading, not a wait the user notices


def test_without_proc_the_load_average_and_then_all_cores(four_cores, monkeypatch):
    def no_proc(path):
        raise FileNotFoundError(path)

    monkeypatch.setattr(device.os, "getloadavg", lambda: (2.6, 0.0, 0.0), raising=False)
    assert device.cpu_threads(read=no_proc) == (1, "4 cores, load 2.6")
    monkeypatch.setattr(device.os, "getloadavg", lambda: (0.2, 0.0, 0.0), raising=False)
    assert device.cpu_threads(read=no_proc) == (4, "4 cores, load 0.2")
    monkeypatch.delattr(device.os, "getloadavg", raising=False)
    assert device.cpu_threads(read=no_proc) == (4, "4 cores, no load figures")
    assert device.cpu_threads(read=lambda path: "not what Linux writes") == (4, "4 cores, no load figures")


def test_asked_for_threads_and_omp_num_threads_come_first_without_a_reading(four_cores, monkeypatch):
    def unread(path):
        raise AssertionError(f"{path} read although the count was given")

    assert device.cpu_threads(3, read=unread) == (3, "--threads")
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert device.cpu_threads(read=unread) == (2, "OMP_NUM_THREADS")
    assert device.cpu_threads(5, read=unread) == (5, "--threads")
    monkeypatch.setenv("OMP_NUM_THREADS", "0")  # not a count: the machine decides
    read, sleep = fake_proc(*cores_over_the_sample({0: 0, 1: 0, 2: 0, 3: 0}))
    assert device.cpu_threads(read=read, sleep=sleep)[0] == 4


def test_one_core_is_one_thread_without_a_reading(four_cores, monkeypatch):
    monkeypatch.setattr(device.os, "sched_getaffinity", lambda pid: {3}, raising=False)
    assert device.cpu_threads(read=lambda path: pytest.fail(f"{path} read with one core")) == (1, "1 core")


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="no /proc/stat here (macOS, Windows): the default is the load average")
def test_a_real_busy_process_takes_a_thread_from_the_default(monkeypatch):
    """Judged on two of this process's cores, the neighbour pinned to one of them: that core is
    busy whatever else this machine runs, so the reading with it is at most one thread; the reading
    before it must have been two, or the machine was too busy to show a step down."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        pytest.skip("one core: the default is one thread whatever else runs")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    mine = os.sched_getaffinity(0)
    os.sched_setaffinity(0, set(cores[:2]))
    neighbour = None
    try:
        for _ in range(8):  # other processes come and go: wait up to 2 s for both cores to be free
            idle = device.cpu_threads()
            if idle[0] == 2:
                break
        else:
            pytest.skip(f"other processes keep these two cores busy ({idle[1]}): no idle reading to step down from")
        spin = f"import os\nos.sched_setaffinity(0, {{{cores[0]}}})\nprint('spinning', flush=True)\nwhile True:\n    pass\n"
        neighbour = subprocess.Popen([sys.executable, "-c", spin], stdout=subprocess.PIPE, text=True)
        assert neighbour.stdout.readline() == "spinning\n"
        busy = device.cpu_threads()
        assert busy[0] == 1, f"beside a busy process: {busy}; before it: {idle}"
        assert device.busy_elsewhere({cores[0]}) > 0.8  # its core, whoever else runs there, has no idle time
    finally:
        if neighbour is not None:
            neighbour.kill()
            neighbour.wait()
        os.sched_setaffinity(0, mine)
