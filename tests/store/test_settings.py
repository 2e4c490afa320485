import pytest
from pydantic import ValidationError

from aerovision.api.services import Services
from aerovision.params import defaults
from aerovision.store.settings import get_tool_settings, update_tool_settings

SPEC_DEFAULTS = {
    "template": {
        "method": "TM_CCOEFF_NORMED",
        "threshold": 0.8,
        "max_results": 20,
        "use_grayscale": True,
    },
    "feature": {"detector": "SIFT", "matcher": "FLANN", "ratio_threshold": 0.75, "max_matches": 200},
    "surface": {
        "relative_sampling_step": 0.05,
        "relative_distance_step": 0.05,
        "num_angles": 30,
        "use_icp": True,
        "icp_tolerance": 0.005,
        "icp_iterations": 100,
    },
}


@pytest.mark.parametrize("tool", list(SPEC_DEFAULTS))
def test_defaults_are_the_spec_table(services: Services, tool: str) -> None:
    assert defaults(tool) == SPEC_DEFAULTS[tool]
    assert get_tool_settings(services.db, tool) == SPEC_DEFAULTS[tool]


def test_partial_update_keeps_other_fields_and_persists(services: Services) -> None:
    new = update_tool_settings(services.db, "template", {"threshold": 0.9})
    assert new == {**SPEC_DEFAULTS["template"], "threshold": 0.9}
    update_tool_settings(services.db, "template", {"max_results": 5})
    reopened = Services.open(services.settings)
    try:
        assert get_tool_settings(reopened.db, "template") == {
            **SPEC_DEFAULTS["template"],
            "threshold": 0.9,
            "max_results": 5,
        }
    finally:
        reopened.close()
    # other tools untouched
    assert get_tool_settings(services.db, "feature") == SPEC_DEFAULTS["feature"]


def test_invalid_update_changes_nothing(services: Services) -> None:
    with pytest.raises(ValidationError):
        update_tool_settings(services.db, "feature", {"ratio_threshold": 1.5})
    assert get_tool_settings(services.db, "feature") == SPEC_DEFAULTS["feature"]
