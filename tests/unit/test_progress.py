"""Status lines of long module work: the module side (plugins/module_utils/progress.py) writes them, the action
plugins' side (plugins/plugin_utils/progress_action.py) reads and prints them while the module runs."""

import json
import threading

import pytest
from ansible_collections.karpenter_eks.platform.plugins.module_utils import progress
from ansible_collections.karpenter_eks.platform.plugins.module_utils.kube import engine
from ansible_collections.karpenter_eks.platform.plugins.module_utils.kube.resource import NODEPOOL
from ansible_collections.karpenter_eks.platform.plugins.plugin_utils import progress_action


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_without_a_file_nothing_is_written(tmp_path):
    p = progress.Progress(None)
    assert not p.enabled
    assert p.update("waiting", 1, 2) is False


def test_lines_are_throttled_except_on_a_phase_change_or_when_forced(tmp_path):
    clock, path = Clock(), tmp_path / "p.jsonl"
    p = progress.Progress(str(path), min_interval=1.0, clock=clock)
    assert p.update("writing NodePools", 1, 10) is True
    assert p.update("writing NodePools", 2, 10) is False  # same phase, too soon
    clock.now += 1.0
    assert p.update("writing NodePools", 3, 10) is True
    assert p.update("waiting for NodePools to be Ready", 0, 10) is True  # a new phase at once
    assert p.update("waiting for NodePools to be Ready", 10, 10, force=True) is True
    assert [(x["phase"], x["done"]) for x in lines(path)] == [
        ("writing NodePools", 1),
        ("writing NodePools", 3),
        ("waiting for NodePools to be Ready", 0),
        ("waiting for NodePools to be Ready", 10),
    ]


def test_pending_names_are_bounded_and_counted(tmp_path):
    path = tmp_path / "p.jsonl"
    p = progress.Progress(str(path))
    p.update("waiting", 3, 12, ["np-%02d" % i for i in range(9, 0, -1)])
    (line,) = lines(path)
    assert line["pending"] == ["np-01", "np-02", "np-03", "np-04", "np-05"] and line["more"] == 4
    assert progress.format_status(line) == ("waiting: 3/12 (waiting for: np-01, np-02, np-03, np-04, np-05 and 4 more)")


def test_an_unwritable_file_never_fails_the_work(tmp_path):
    p = progress.Progress(str(tmp_path / "missing-dir" / "p.jsonl"))
    assert p.update("writing", 1, 2) is False
    assert not p.enabled  # and it stops trying


def test_the_process_reporter_comes_from_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "p.jsonl"
    monkeypatch.setenv(progress.ENV_VAR, str(path))
    progress.configure(None)
    try:
        assert progress.update("reading NodePools", 5) is True
        assert lines(path) == [{"phase": "reading NodePools", "done": 5}]
    finally:
        progress.configure(None)


class FakeWatchApi:
    """watch_until delivers the given events, as the client does, and records nothing else."""

    def __init__(self, events):
        self.events = events

    def watch_until(self, path, predicate, version, timeout, on_list=None):
        for etype, obj in self.events:
            if predicate(etype, obj):
                return True
        return False


def nodepool(name, ready, generation=1):
    cond = {"type": "Ready", "status": "True" if ready else "False", "observedGeneration": generation}
    return {"metadata": {"name": name, "generation": generation}, "status": {"conditions": [cond]}}


def test_wait_ready_reports_what_it_sees(tmp_path):
    path = tmp_path / "p.jsonl"
    progress.configure(progress.Progress(str(path), min_interval=0))
    try:
        plan = [
            engine.PlanItem(engine.Desired(i, {"metadata": {"name": n}}, NODEPOOL), "create")
            for i, n in enumerate(("a", "b", "c"))
        ]
        for item in plan:
            item.result = nodepool(item.name, False)
        api = FakeWatchApi([("MODIFIED", nodepool("b", True)), ("MODIFIED", nodepool("a", True))])
        assert engine.wait_ready(api, NODEPOOL, plan, 10, "1") == ["c"]
        seen = [(x["done"], x["total"], x.get("pending")) for x in lines(path)]
        assert seen == [(0, 3, ["a", "b", "c"]), (1, 3, ["a", "c"]), (2, 3, ["c"])]
        assert {x["phase"] for x in lines(path)} == {"waiting for NodePools to be Ready"}
    finally:
        progress.configure(None)


def test_last_status_skips_an_incomplete_last_line(tmp_path):
    path = tmp_path / "p.jsonl"
    assert progress_action.last_status(str(path)) is None  # no file yet
    path.write_text('{"phase": "writing", "done": 1}\n{"phase": "writ')
    assert progress_action.last_status(str(path)) == {"phase": "writing", "done": 1}


def test_the_ticker_prints_the_newest_status_until_stopped(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text("")
    printed, two = [], threading.Event()

    def emit(text):
        printed.append(text)
        if len(printed) >= 2:
            two.set()

    ticker = progress_action.Ticker(str(path), "localhost", "Apply the NodePools", 0.05, emit=emit).start()
    try:
        assert two.wait(5)
        path.write_text('{"phase": "waiting for NodePools to be Ready", "done": 2, "total": 5}\n')
        deadline = threading.Event()
        while not any("2/5" in p for p in printed) and not deadline.wait(0.05):
            pass
    finally:
        ticker.stop()
    count = len(printed)
    assert printed[0].startswith("[localhost] Apply the NodePools: still running - ")
    assert any(
        p.startswith("[localhost] Apply the NodePools: waiting for NodePools to be Ready: 2/5 - ") for p in printed
    )
    deadline = threading.Event()
    deadline.wait(0.2)
    assert len(printed) == count  # nothing after stop()


@pytest.mark.parametrize(
    "kind, plural", [("NodePool", "NodePools"), ("EC2NodeClass", "EC2NodeClasses"), ("ConfigMap", "ConfigMaps")]
)
def test_kinds_are_named_in_the_plural(kind, plural):
    from ansible_collections.karpenter_eks.platform.plugins.module_utils.kube.resource import Resource

    assert engine.plural(Resource.of("v1", kind, kind.lower() + "s")) == plural
