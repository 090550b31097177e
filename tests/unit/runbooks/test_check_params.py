"""karpenter_diagnose's numeric options are checked before the cluster is read (runbooks.check_params)."""

import pytest
from ansible_collections.karpenter_eks.platform.plugins.module_utils import runbooks
from ansible_collections.karpenter_eks.platform.plugins.module_utils.errors import InputError

DEFAULTS = {
    "stuck_seconds": 300,
    "limit_factor": 2,
    "window_seconds": 900,
    "threshold": 5,
    "log_seconds": 900,
    "wait_timeout": 120,
    "watch_seconds": 0,
    "request_timeout": 30,
}


@pytest.mark.parametrize(
    "override",
    [{}, {"log_seconds": 0}, {"watch_seconds": 0}, {"since": 1796651105.5}, {"request_timeout": None}],
    ids=["defaults", "log_seconds-0-reads-no-log", "watch-once", "since", "unset"],
)
def test_what_the_runbooks_pass_is_accepted(override):
    runbooks.check_params(dict(DEFAULTS, **override))  # no exception


@pytest.mark.parametrize(
    "name, value",
    [
        ("log_seconds", -1),
        ("stuck_seconds", 0),
        ("threshold", "5"),
        ("limit_factor", True),
        ("window_seconds", 10**9),
        ("since", -3),
    ],
)
def test_out_of_range_values_are_refused_naming_the_option(name, value):
    with pytest.raises(InputError) as err:
        runbooks.check_params(dict(DEFAULTS, **{name: value}))
    assert str(err.value).startswith(name + " must be")
