"""The directory where prometheus_client's multiprocess mode keeps the metric values of run.py's processes.

prometheus_client decides where values live when it is first imported: with PROMETHEUS_MULTIPROC_DIR
set, in memory-mapped files there, one per process and metric type, which the worker answering
/metrics sums. So run.py prepares the directory before it imports the application and before it
forks, and every worker inherits both the variable and the directory.
"""

import glob
import os
import shutil
import tempfile

VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# What prometheus_client writes there: <type>_<pid>.db, and gauge_<mode>_<pid>.db for gauges.
VALUE_FILES = ("counter_*.db", "gauge_*.db", "histogram_*.db", "summary_*.db")


class MetricsDirectory:
    """The operator's PROMETHEUS_MULTIPROC_DIR, or a temporary directory this process made and removes."""

    def __init__(self, path: str, made: bool):
        self.path = path
        self.made = made
        self.owner_pid = os.getpid()

    @classmethod
    def prepare(cls, env=os.environ) -> "MetricsDirectory":
        """Set PROMETHEUS_MULTIPROC_DIR for this process and its workers; raises OSError when unusable.

        An operator's directory is emptied of an earlier run's values first (stale counters would be
        added to the new ones, and a new worker could reuse an old pid's file); without one, a new
        temporary directory is made.
        """
        given = env.get(VARIABLE, "").strip()
        if given:
            os.makedirs(given, exist_ok=True)
            for pattern in VALUE_FILES:
                for stale in glob.glob(os.path.join(glob.escape(given), pattern)):
                    os.remove(stale)
            directory = cls(given, made=False)
        else:
            directory = cls(tempfile.mkdtemp(prefix="accounts-metrics-"), made=True)
        env[VARIABLE] = directory.path
        return directory

    def worker_exited(self, pid: int) -> None:
        """Drop a reaped worker's live gauges (its counters stay: totals never go down)."""
        from prometheus_client import multiprocess  # imported only once the variable is set

        multiprocess.mark_process_dead(pid, self.path)

    def cleanup(self) -> None:
        """Remove the directory if this process made it; workers, and an operator's directory, are left alone."""
        if self.made and os.getpid() == self.owner_pid:
            shutil.rmtree(self.path, ignore_errors=True)
