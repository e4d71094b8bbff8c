import pytest

from tests import processes


@pytest.fixture
def daphne(transactional_db, tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path / "media")  # what it records lands in the test's directory
    service = processes.start_daphne(tmp_path)
    yield service
    service.stop()
