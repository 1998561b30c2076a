"""The filesystem broker (development and the demo) keeps all its files under var/, none in the working directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings


def test_the_filesystem_broker_keeps_its_control_files_under_var() -> None:
    if not settings.CELERY_BROKER_URL.startswith("filesystem"):
        pytest.skip("the broker is not the filesystem one")
    queue = Path(settings.VAR_DIR) / "queue"

    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS

    assert options["control_folder"] == str(queue / "control")
    assert options["data_folder_in"] == str(queue / "out")
