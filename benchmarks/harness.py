"""What the generation benchmarks share: one process per side, driven
over JSON lines, and its memory measured by the kernel.

Public API:
    rss_mb() -> resident memory now; PeakMemory(): the peak inside a block.
    answer(value): a side's process writes one result line.
    Worker(command, env): the parent's handle on a side's process:
        .started, .ask(command) -> value, .close().
"""
import json
import os
import subprocess
import sys


def rss_mb():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2 ** 20


class PeakMemory(object):
    """Largest resident memory inside the block: the kernel's own
    high-water mark (VmHWM), reset on entry through /proc/self/clear_refs,
    so it is exact and costs nothing while the block runs (a thread polling
    RSS would take CPU from the two cores both sides compute on)."""

    def __enter__(self):
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return self

    def __exit__(self, *exc):
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    self.peak = int(line.split()[1]) / 1024
                    break


def answer(value):
    sys.stdout.write('@@' + json.dumps(value) + '\n')
    sys.stdout.flush()


class Worker(object):
    """The parent's handle on a side's process."""

    def __init__(self, command, env):
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        env=env, text=True)
        self.started = self.read()

    def read(self):
        for line in self.process.stdout:
            if line.startswith('@@'):
                return json.loads(line[2:])
        raise RuntimeError('a benchmark process ended early (exit %s)' % self.process.wait())

    def ask(self, command):
        self.process.stdin.write(command + '\n')
        self.process.stdin.flush()
        return self.read()

    def close(self):
        self.process.stdin.close()
        self.process.wait()
